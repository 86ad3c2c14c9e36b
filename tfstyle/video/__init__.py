"""Stylizing videos: the frame loop (Ruder et al. 2016's temporal loss, per-frame, or a fast
stylizer with flow blending). Its settings are `tfstyle.settings.video`; frames are read and
written by `tfstyle.io.video`.

    stylize.py   `stylize_video()`, `frame_size()`, `mean_warping_error()`
"""
