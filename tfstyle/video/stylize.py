"""`stylize_video()`: the frame loop of a video, in three modes.

* temporal (Ruder et al. 2016, "Artistic style transfer for videos"): frame 1 is stylized in
  full (`StyleConfig`: pyramid, iterations); each later frame starts from the previous output
  warped by the optical flow between the two input frames (`tfstyle.ops.flow`), runs
  `VideoConfig.frame_iterations` steps at the final size only, and adds the temporal loss
  `temporal_weight * mean(mask * (image - warped)^2)` where `mask` is 0 at disocclusions and
  motion boundaries (the forward-backward consistency check).
* per_frame: every frame stylized alone from its content, the flickering baseline.
* fast: a trained feed-forward stylizer per frame (`FastStylizer`), optionally blending the
  warped previous output into each new frame where the mask trusts it (`flow_blend`).

Deviations from Ruder et al.: one pass over the frames (not their multi-pass algorithm), the
short-term loss only (no long-term loss over several past frames), DIS flow instead of
DeepFlow/EpicFlow, and the later frames' content loss and optimizer are tfstyle's own (SGD or
Adam rather than L-BFGS by default).

Every output frame is rounded to 8 bits before it is warped into the next one, so a run resumed
from written frames continues exactly as the uninterrupted run would have. The library touches
no file: `on_frame` receives each finished frame, and the caller writes it (the `video`
command, atomically) before the next one starts.
"""

import dataclasses
import time
import warnings

import numpy as np

from tfstyle.errors import ConfigError
from tfstyle.ops import preprocessing as pp
from tfstyle.ops.flow import frame_motion, warping_error
from tfstyle.optimize.objective import feature_extractor_for
from tfstyle.optimize.runners import RunnerCache
from tfstyle.optimize.stylize import stylize
from tfstyle.settings.style import StyleConfig
from tfstyle.settings.video import VideoConfig


@dataclasses.dataclass(frozen=True)
class FrameRecord:
    """One finished frame.

    Attributes:
        index: 0-based frame number.
        image: float32 `[H, W, 3]`, 8-bit values (what is written); None in `VideoResult`.
        losses: the final `{"content", "style", "tv", "total"}` of an optimised frame (total
            includes the temporal term), plus `"temporal"` (the unweighted temporal loss of
            the output, 0 for frame 1); empty in fast mode.
        steps: optimisation steps (0 in fast mode).
        seconds: wall time of the frame, flow included.
        warping_error: `flow.warping_error` against the previous output (None for frame 1).
        reliable: fraction of pixels the consistency check trusts (None for frame 1).
    """

    index: int
    image: np.ndarray | None
    losses: dict
    steps: int
    seconds: float
    warping_error: float | None
    reliable: float | None

    def to_dict(self):
        return {
            "index": self.index,
            "losses": {k: float(v) for k, v in self.losses.items()},
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "warping_error": self.warping_error,
            "reliable": self.reliable,
        }


@dataclasses.dataclass(frozen=True)
class VideoResult:
    """What `stylize_video` returns: the records of the frames it made (images dropped)."""

    frames: list
    config: StyleConfig
    video: VideoConfig

    @property
    def mean_warping_error(self):
        return mean_warping_error(self.frames)


def mean_warping_error(records):
    """The stability number: mean of the frames' warping errors (frames after the first);
    None with fewer than two frames."""
    errors = [r.warping_error for r in records if r.warping_error is not None]
    return float(np.mean(errors)) if errors else None


def frame_size(shape, max_size, *, even=False):
    """(height, width) of the output frames for input frames of `shape`: the longest side
    `max_size` at most (never upscaled); with `even`, rounded down to even sides (H.264)."""
    height, width = pp.scaled_shape(shape, min(max_size, max(shape[:2])))
    if even:
        height, width = max(2, height - height % 2), max(2, width - width % 2)
    return height, width


def stylize_video(
    frames,
    style,
    *,
    config=None,
    video=None,
    stylizer=None,
    size=None,
    start=0,
    previous_output=None,
    on_frame=None,
    extractor=None,
    runners=None,
    masks=None,
):
    """Stylize a sequence of frames (see the module docstring for the modes).

    Args:
        frames: an iterable of RGB frames of one size (uint8 or float in [0, 1]), from the
            first frame of the video, even when resuming (frames before `start - 1` are
            never looked at, and may be None).
        style: the style image, or a list of them (optimisation modes only).
        config: the `StyleConfig` of each frame's optimisation (frame 1's in full); its
            `max_size` bounds the frames unless `size` is given.
        video: a `VideoConfig`; None for the defaults.
        stylizer: a callable `image -> image` (a `FastStylizer`): fast mode.
        size: (height, width) of the output frames; None: `frame_size(shape, max_size)`.
        start: the first frame to make (0-based): a resumed run.
        previous_output: with `start > 0`, output frame `start - 1` (as written).
        on_frame: called with each `FrameRecord` as soon as the frame is done.
        extractor, runners: to reuse a feature extractor and compiled steps across calls.
        masks: `{"style_masks", "content_mask", "style_image_masks"}`, the keywords of
            `stylize` (see docs/masks.md), applied to every optimised frame (each mask
            resized to the frame); None for none. Not with `stylizer`, which paints every
            pixel in one pass.

    Returns:
        A `VideoResult` with the records of frames `start` onwards.

    Raises:
        ConfigError: settings that do not fit together or a missing `previous_output`.
        Interrupted: from `stylize` (the current frame is lost; finished ones were delivered).
    """
    config = config or StyleConfig()
    video = video or VideoConfig()
    if start > 0 and previous_output is None:
        raise ConfigError("resuming at a later frame needs the previous output frame")
    if stylizer is None and video.mode == "temporal" and config.preserve_colors == "luminance":
        # The warped previous output is in colour, the optimised image a grey luminance one.
        raise ConfigError("temporal mode does not support preserve_colors='luminance' yet")
    masks = {k: v for k, v in (masks or {}).items() if v is not None}
    if stylizer is not None and masks:
        raise ConfigError("masks need optimised frames: a trained stylizer cannot apply them")
    make = _fast_frame if stylizer is not None else _optimised_frame
    context = {
        "config": config,
        "video": video,
        "style": style,
        "stylizer": stylizer,
        "extractor": None if stylizer is not None else extractor or feature_extractor_for(config),
        "runners": runners if runners is not None else RunnerCache(),
        "masks": masks,
    }
    records = []
    previous_input = None
    previous = None if previous_output is None else pp.as_float_image(previous_output)
    for index, frame in enumerate(frames):
        if index < start - 1:
            continue
        began = time.perf_counter()
        shape = np.shape(frame)
        height, width = size or frame_size(shape, config.max_size)
        current = pp.resize(pp.as_float_image(frame), height, width)
        if index == start - 1:
            previous_input = current
            continue
        motion = None
        if previous_input is not None:
            motion = frame_motion(previous_input, current, method=video.flow)
        image, losses, steps = make(context, current, previous, motion)
        image = pp.to_uint8(image).astype(np.float32) / 255.0
        error = None if motion is None else warping_error(image, previous, motion)
        if losses and motion is not None:
            warped = motion.warp(previous)
            losses["temporal"] = float(np.mean(motion.mask[..., None] * (image - warped) ** 2))
        elif losses:
            losses["temporal"] = 0.0
        record = FrameRecord(
            index=index,
            image=image,
            losses=losses,
            steps=steps,
            seconds=time.perf_counter() - began,
            warping_error=error,
            reliable=None if motion is None else motion.reliable_fraction,
        )
        if on_frame is not None:
            on_frame(record)
        records.append(dataclasses.replace(record, image=None))
        previous_input, previous = current, image
    return VideoResult(records, config, video)


def _optimised_frame(context, current, previous, motion):
    config, video = context["config"], context["video"]
    temporal = None
    init = None
    if video.mode == "temporal":
        if motion is None:
            # Frame 1: the temporal term at weight 0, so that every frame's step has the same
            # arguments (a later frame of the same steps reuses this frame's compiled step).
            temporal = {"image": current, "mask": np.zeros(current.shape[:2]), "weight": 0.0}
        else:
            warped = motion.warp(previous)
            # Deviation from Ruder et al., who start from the warped frame everywhere: where the
            # mask distrusts the warp (pixels that entered the frame, disocclusions), start from
            # this frame's content instead. The warp repeats the edge pixels there, and the
            # few steps of a later frame left those streaks visible.
            mask = motion.mask[..., None]
            init = mask * warped + (1.0 - mask) * current
            temporal = {"image": warped, "mask": motion.mask, "weight": video.temporal_weight}
            config = config.replace(init="image", scales=1, iterations=video.frame_iterations)
    with warnings.catch_warnings():
        if context.get("masks_seen"):
            # The same masks on frames of one size: the first frame said it once already.
            warnings.filterwarnings("ignore", message=r".*the mask is stretched to fit")
        result = stylize(
            current,
            context["style"],
            config=config.replace(max_size=max(current.shape[:2])),
            init_image=init,
            extractor=context["extractor"],
            runners=context["runners"],
            temporal=temporal,
            **context["masks"],
        )
    context["masks_seen"] = True
    return result.image, result.final_losses(), len(result.history.get("total", ()))


def _fast_frame(context, current, previous, motion):
    image = pp.as_float_image(context["stylizer"](current))
    if image.shape != current.shape:
        image = pp.resize(image, *current.shape[:2])
    blend = context["video"].flow_blend
    if blend > 0 and motion is not None:
        # Where the flow is trusted, keep `blend` of the previous output moved along it: a
        # low-pass filter along motion trajectories that damps the network's flicker.
        weight = blend * motion.mask[..., None]
        image = weight * motion.warp(previous) + (1.0 - weight) * image
    return image, {}, 0
