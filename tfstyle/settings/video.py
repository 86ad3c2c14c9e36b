"""Every setting of stylizing a video beyond those of one image (`StyleConfig`), its default and
its validation: the `video` command maps its flags onto `VideoConfig`, `tfstyle.video.stylize` reads
only it. Imports neither TensorFlow nor OpenCV, so the CLI can check flags before loading them.
"""

import dataclasses
from fractions import Fraction

from tfstyle.settings.checks import check_choice as _check_choice
from tfstyle.settings.checks import check_int as _check_int
from tfstyle.settings.checks import check_number as _check_number
from tfstyle.settings.style import Settings

VIDEO_MODES = ("temporal", "per_frame")
# Optical flow methods (OpenCV), checked here so that the CLI need not import OpenCV first.
FLOW_METHODS = ("dis", "farneback")

# The frame rate of a video made from a folder of frames, unless --frame_rate says otherwise.
DEFAULT_FRAME_RATE = 25


@dataclasses.dataclass(frozen=True)
class VideoConfig(Settings):
    """Settings of one video run. All fields are keyword arguments with validated defaults.

    Optimisation mode (`StyleConfig` sets the first frame's run, and the loss of every frame):
        mode: "temporal" (Ruder et al. 2016: each later frame starts from the previous output
            warped by the optical flow and adds a temporal loss) or "per_frame" (every frame
            stylized alone from its own content: the flickering baseline).
        temporal_weight: weight of the temporal loss (`losses.temporal_loss`, a mean squared
            pixel difference, so it needs a weight far above the relative content and style
            losses' to matter: at 1000, a 0.03 mean difference costs about as much as the
            style term at weight 10 and loss 0.1).
        frame_iterations: steps for each frame after the first, at the final size only (the
            warped previous frame is already a finished picture; a pyramid would blur it).
    Fast mode (a trained stylizer, `FastStylizer`):
        flow_blend: blend this fraction of the previous output, warped by the flow, into each
            new frame where the consistency mask trusts it (0: no blending).
    Both:
        flow: "dis" or "farneback" (OpenCV), computed on the input frames.
    """

    mode: str = "temporal"
    temporal_weight: float = 1000.0
    frame_iterations: int = 50
    flow_blend: float = 0.0
    flow: str = "dis"

    def __post_init__(self):
        _check_choice("mode", self.mode, VIDEO_MODES)
        _check_choice("flow", self.flow, FLOW_METHODS)
        _check_number("temporal_weight", self.temporal_weight, low=0.0)
        _check_int("frame_iterations", self.frame_iterations, low=1)
        _check_number("flow_blend", self.flow_blend, low=0.0, high=1.0, high_open=True)


VIDEO_DEFAULTS = VideoConfig()


@dataclasses.dataclass(frozen=True)
class SegmentConfig(Settings):
    """How a video on Apache Beam (`tfstyle.beam.video`) is cut into segments that run in
    parallel, each from its own full first frame.

    Attributes:
        frames: frames each segment keeps (the last segment keeps what is left).
        overlap: frames before each later segment's start that it makes too, so that the
            stitch cross-fades from the previous segment's version of them into its own
            instead of jumping at the boundary (0: a hard cut). Fewer than `frames`.
    """

    frames: int = 100
    overlap: int = 2

    def __post_init__(self):
        _check_int("segment_frames", self.frames, low=1)
        _check_int("segment_overlap", self.overlap, low=0)
        if self.overlap >= self.frames:
            from tfstyle.errors import ConfigError

            raise ConfigError(
                f"segment_overlap ({self.overlap}) must be smaller than segment_frames "
                f"({self.frames})"
            )


SEGMENT_DEFAULTS = SegmentConfig()


def as_frame_rate(value):
    """A frame rate as a positive `Fraction` (from an int, float, Fraction or "30000/1001").

    Args:
        value: the rate, in frames per second.

    Returns:
        A `fractions.Fraction`, its denominator at most 1,000,000.

    Raises:
        ConfigError: not a number, or not positive.
    """
    from tfstyle.errors import ConfigError

    try:
        rate = Fraction(value).limit_denominator(1_000_000)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ConfigError(f"frame_rate must be a positive number; got {value!r}") from None
    if rate <= 0:
        raise ConfigError(f"frame_rate must be a positive number; got {value!r}")
    return rate
