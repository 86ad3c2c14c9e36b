"""Pure maths on arrays (keras.ops on any backend, or NumPy): no files, no state, no printing.

preprocessing.py  float images, resizing, colour spaces, colour matching, noise
losses.py         content, style (three kinds), total-variation and temporal losses
style_stats.py    the "mean_cov" and "sliced_wasserstein" statistics and distances
masks.py          spatial control: masks resized to each layer, per-region statistics
flow.py           optical flow between video frames (OpenCV), warping, consistency
metrics.py        content and style distances for judging results (scripts/quality.py)
"""
