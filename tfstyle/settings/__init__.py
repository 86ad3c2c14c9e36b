"""Every setting and its default, in frozen dataclasses that validate themselves: the one home
of defaults. Imports nothing heavier than the standard library, so the CLI can check its flags
before loading TensorFlow.

    base.py     `Settings`: replace() and to_dict(), shared by the classes below
    checks.py   check_choice / check_number / check_int: one ConfigError line per bad value
    layers.py   the VGG networks' conv layer names, and the checks of layer settings
    style.py    `StyleConfig` (one stylization), `DEFAULTS`, `LOSS_NAMES` and the tuned constants
    video.py    `VideoConfig` (a video run), `SegmentConfig` (a video in segments on Beam)
    train.py    `TrainConfig` (training a feed-forward stylizer)
"""
