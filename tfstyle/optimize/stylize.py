"""`stylize()`: targets once, initial image, optimisation over one or more scales, callbacks.

The parts live in their own modules of `tfstyle.optimize`, from the bottom up: `pyramid` (the
scales), `objective` (extractor, targets, initial image, loss), `run_state` (progress,
checkpoints, resume) and `runners` (the compiled steps and the loops around them).
"""

import dataclasses
import functools
import time
import warnings

import keras
import numpy as np

from tfstyle.errors import ConfigError, Interrupted, NonFiniteLossError
from tfstyle.io import host
from tfstyle.ops import masks
from tfstyle.ops import preprocessing as pp
from tfstyle.ops.tiles import tile_count
from tfstyle.optimize.checkpoint import digest_images
from tfstyle.optimize.memory import (
    ACTIVATION_COPIES,
    CPU_ACTIVATION_COPIES,
    automatic_tile_size,
    estimate_warning,
    host_refusal,
)
from tfstyle.optimize.objective import (
    compute_targets,
    feature_extractor_for,
    initial_image,
    luminance_only,
    temporal_targets,
)
from tfstyle.optimize.pyramid import check_sizes, scale_plan
from tfstyle.optimize.run_state import Clock, RunState
from tfstyle.optimize.runners import optimise
from tfstyle.optimize.step import free_device_memory, with_precision
from tfstyle.settings.style import TILE_GRID, StyleConfig


@dataclasses.dataclass(frozen=True)
class StyleResult:
    """What `stylize` returns.

    Attributes:
        image: float32 `[H, W, 3]` in [0, 1].
        history: `{loss name: float32 array}`, one entry per step over all scales.
        config: the settings used (precision "auto" resolved to the policy that ran).
        evaluations: objective evaluations (equal to the steps, except for L-BFGS).
        elapsed_s: wall time of the whole call, compilation included.
        automatic_tiles: True when the memory check chose tiles (the untiled step of the
            finest scale would not fit the host's memory), not asked for: `config.tile_size`
            is then the finest scale's tile, and each coarser scale has its own (none where
            its untiled step fits).
    """

    image: np.ndarray
    history: dict
    config: StyleConfig
    evaluations: int
    elapsed_s: float
    automatic_tiles: bool = False

    def final_losses(self):
        """`{loss name: float}` of the last step (NaN for a run of no steps)."""
        return {
            name: float(values[-1]) if len(values) else float("nan")
            for name, values in self.history.items()
        }


def stylize(
    content,
    style,
    *,
    config=None,
    callbacks=(),
    init_image=None,
    extractor=None,
    resume=None,
    runners=None,
    style_masks=None,
    content_mask=None,
    style_image_masks=None,
    temporal=None,
):
    """Paint `content` in the style of `style` (Gatys et al., 2016).

    Args:
        content: RGB image, float `[H, W, 3]` in [0, 1] or uint8.
        style: one style image or a list of them (blended by `config.style_blend_weights`).
        config: a `StyleConfig`; None for the defaults.
        callbacks: callables, each called with a `Progress` record after every step.
        init_image: starting image when `config.init == "image"` (resized to fit).
        extractor: a feature extractor to reuse (built from `config` if None).
        resume: a `Checkpoint` from an interrupted call with the same settings and images: the
            run continues where that one stopped (callbacks see only the remaining steps).
        runners: a `RunnerCache` to reuse compiled steps across calls (images of one size
            then compile once); None builds fresh ones.
        style_masks: one greyscale mask per style image (`[H, W]`, `[H, W, 1]` or RGB, uint8
            or float in [0, 1]; white where that style applies), stretched to the content's
            shape; see `tfstyle.ops.masks` (Gatys et al. 2017) for overlaps and gaps.
        content_mask: a mask of where the content is kept: no style there, and its content
            loss weighted by `config.mask_content_weight`.
        style_image_masks: one mask per style image, white where its texture is taken from
            (stretched to its style image).
        temporal: video only (`tfstyle.video.stylize`): `{"image": [H, W, 3] previous output warped
            into this frame, "mask": [H, W] where that warp is reliable, "weight": float}`,
            adding Ruder et al.'s temporal loss (`losses.temporal_loss`) to the total.

    Returns:
        A `StyleResult` with the image and the per-step loss history.

    Raises:
        ConfigError: settings that do not fit the images (sizes, number of styles).
        CheckpointError: `resume` was made with other settings or images.
        NonFiniteLossError: the loss became NaN or infinite; carries the last finite image.
        Interrupted: a KeyboardInterrupt arrived; carries the current image and a `Checkpoint`.
    """
    start = time.perf_counter()
    # precision="auto" and the style loss's default weight are resolved here, once: everything
    # below, the result's config and so the report and checkpoints see what runs.
    config = with_precision(config or StyleConfig())
    config = config.replace(style_weight=config.effective_style_weight)
    content, styles, blend, init_image, inputs = _prepare_inputs(
        content,
        style,
        config=config,
        init_image=init_image,
        style_masks=style_masks,
        content_mask=content_mask,
        style_image_masks=style_image_masks,
        temporal=temporal,
    )
    if resume is not None:
        resume.check_resumable(config, inputs())
    styles = _recoloured(styles, config=config, content=content)
    # The mask and memory checks stay in this function, not in a helper: their warnings'
    # stacklevels count the frames up to here, so the warnings point where they did.
    image_masks = masks.prepare_style_image_masks(config, style_image_masks, styles)
    plan = scale_plan(config, content.shape)
    sizes = [size for size, _ in plan]
    check_sizes(config, sizes, content.shape, styles)
    has_masks = any(
        m is not None for m in (*(style_masks or ()), content_mask, *(style_image_masks or ()))
    )
    tiles_possible = _check_tiles(config, masks=has_masks, temporal=temporal is not None)
    tiles = _check_memory(config, sizes, tiles_possible=tiles_possible)
    automatic_tiles = tiles[sizes[-1]] != config.tile_size
    config = config.replace(tile_size=tiles[sizes[-1]])
    # Each scale's settings: the run's, with that scale's tile.
    scale_configs = {size: config.replace(tile_size=tiles[size]) for size in sizes}
    tile_counts = {size: tile_count(scale_configs[size], size) for size in sizes}
    spatial = masks.prepare(
        config,
        style_masks=style_masks,
        content_mask=content_mask,
        styles=len(styles),
        content_shape=content.shape,
        size=sizes[-1],
    )
    extractor = extractor or feature_extractor_for(config)
    source = luminance_only(content, reference=content) if _luminance(config) else content
    clock = Clock(
        start,
        total_steps=sum(n for _, n in plan),
        callbacks=callbacks,
        tiles=tile_counts.__getitem__,
    )
    run = RunState(config, clock, inputs, resume, [n for _, n in plan])
    finish = functools.partial(_finish, config, content=content)
    targets_for = functools.partial(
        _scale_targets,
        extractor,
        styles,
        config=config,
        blend=blend,
        spatial=spatial,
        style_image_masks=image_masks,
        temporal=temporal,
    )
    try:
        _run_scales(
            run,
            scale_configs,
            source=source,
            styles=styles,
            init_image=init_image,
            extractor=extractor,
            runners=runners,
            targets_for=targets_for,
        )
    except NonFiniteLossError as exc:
        exc.image = finish(exc.image)
        raise
    except KeyboardInterrupt as exc:
        raise _interrupted(run, finish) from exc
    return StyleResult(
        finish(run.image),
        run.full_history(),
        config,
        run.evaluations,
        time.perf_counter() - start,
        automatic_tiles,
    )


def _prepare_inputs(
    content, style, *, config, init_image, style_masks, content_mask, style_image_masks, temporal
):
    """The images of a call as float32 arrays, checked in the order a user's mistakes are
    reported, and the digest that recognises them in a checkpoint.

    Returns:
        `(content, styles, blend, init_image, inputs)`: the content, a list of style images,
        their blend weights, the initial image or None, and `inputs()`, the digest of every
        input image (masks and a video frame's temporal inputs included).

    Raises:
        ConfigError: blend weights that do not fit the styles, or init "image" without one.
        ImageError: an array that is no image or no mask.
    """
    content = pp.as_float_image(content)
    styles = [pp.as_float_image(s) for s in (style if isinstance(style, list | tuple) else [style])]
    blend = config.blend_weights(len(styles))
    if config.init == "image" and init_image is None:
        raise ConfigError("init='image' needs an init_image")
    init_image = None if init_image is None else pp.as_float_image(init_image)
    extra = [] if init_image is None else [init_image]
    given = [*(style_masks or []), content_mask, *(style_image_masks or [])]
    if any(m is not None for m in given):
        # Which masks there are (a style mask and a content mask could hold the same pixels).
        kinds = [len(style_masks or ()), content_mask is not None, len(style_image_masks or ())]
        extra.append(np.array(kinds, np.float32))
        extra += [masks.as_mask(m) for m in given if m is not None]
    if temporal is not None:
        extra += [pp.as_float_image(temporal["image"]), np.asarray(temporal["mask"], np.float32)]
    inputs = functools.partial(digest_images, content, *styles, *extra)
    return content, styles, blend, init_image, inputs


def _recoloured(styles, *, config, content):
    """The style images with the content's colours for `preserve_colors` "histogram", as
    luminance only for "luminance", else as they are."""
    if config.preserve_colors == "histogram":
        return [pp.match_color(s, content) for s in styles]
    if config.preserve_colors == "luminance":
        return [luminance_only(s, reference=content) for s in styles]
    return styles


def _scale_targets(
    extractor, styles, content, size, *, config, blend, spatial, style_image_masks, temporal
):
    """The targets of one scale (`compute_targets`) from `content` resized to `size`, with a
    video frame's temporal target at that size."""
    targets = compute_targets(
        extractor,
        content,
        styles,
        blend=blend,
        config=config,
        spatial=spatial,
        style_image_masks=style_image_masks,
    )
    if temporal is not None:
        targets["temporal"] = temporal_targets(temporal, size)
    return targets


def _run_scales(run, configs, *, source, styles, init_image, extractor, runners, targets_for):
    """Optimise the scales `run` has still to do, coarse to fine: the first from the initial
    image (unless resumed), each later one from the previous scale's result, enlarged.
    `configs`: `{size: settings}` of every scale, coarse to fine; `targets_for(content, size)`
    gives a scale's targets."""
    for size, config in list(configs.items())[run.scale :]:
        content = pp.resize(source, *size)
        targets = targets_for(content, size)
        if run.image is None:
            run.image = initial_image(config, content, styles, init_image)
        image = pp.resize(run.image, *size)
        run.next_scale(optimise(config, extractor, targets, image, run, runners))


def _interrupted(run, finish):
    """The `Interrupted` error for a KeyboardInterrupt during `run`: its checkpoint (None before
    the first image exists) and the image so far, finished as a result would be."""
    clock = run.clock
    checkpoint = run.checkpoint()
    image = None if checkpoint is None else finish(checkpoint.image)
    return Interrupted(
        f"interrupted after step {clock.step} of {clock.total_steps}",
        checkpoint=checkpoint,
        image=image,
        step=clock.step if checkpoint is None else checkpoint.step,
        total_steps=clock.total_steps,
    )


def _finish(config, image, *, content):
    """A result image as the caller gets it: colours put back for luminance-only transfer."""
    if image is None or not _luminance(config):
        return image
    return pp.luminance_transfer(image, content)


def _luminance(config):
    return config.preserve_colors == "luminance"


def _check_tiles(config, *, masks, temporal):
    """Refuse `config.tile_size` where the tiled step cannot honour it (see
    `tfstyle.optimize.step.tiled`); return whether these settings and inputs could run tiled
    (for the memory check's suggestions)."""
    reasons = []
    if keras.backend.backend() != "tensorflow":
        reasons.append(f"the {keras.backend.backend()} backend (tensorflow only)")
    if masks:
        reasons.append("masks")
    if temporal:
        reasons.append("the temporal loss (video)")
    if config.style_loss != "gram":
        reasons.append(f"style_loss={config.style_loss!r}")
    if config.precision == "mixed_float16":
        reasons.append("precision='mixed_float16'")
    if config.tile_size is not None and reasons:
        raise ConfigError(f"tile_size does not work with {', '.join(reasons)}")
    return not reasons


def _check_memory(config, sizes, *, tiles_possible):
    """Before any work: on a CPU, each scale of an untiled run whose step would not fit the
    host's available memory is tiled (`automatic_tile_size`: the largest tile that fits; the
    scales that fit stay untiled) when these settings can be; then refuse the first scale
    (largest first) whose estimated step still exceeds the available memory, naming what would
    fit. On an accelerator, warn for the largest (a warning: the estimate has not been
    measured on a GPU). See `tfstyle.optimize.memory`.

    Returns:
        `{size: tile_size}` for every scale: `config.tile_size`, or the tile the check chose
        for that scale (None: untiled).
    """
    tiles = dict.fromkeys(sizes, config.tile_size)
    if not config.memory_check:
        return tiles
    settings = {
        "network": config.network,
        "layers": config.content_layers + config.style_layers,
        "precision": config.precision,
        "remat": config.remat,
        "content_layers": config.content_layers,
    }
    free = free_device_memory()
    if free is not None:
        message = estimate_warning(
            size=sizes[-1], free=free, tile_size=config.tile_size, **settings
        )
        if message:
            warnings.warn(message, stacklevel=3)
        return tiles
    available = host.available_memory()
    if available is None:  # not Linux: nothing to compare with
        return tiles
    # TensorFlow's own CPU kernels keep fewer copies of each activation than XLA (JAX) does.
    tensorflow = keras.backend.backend() == "tensorflow"
    copies = CPU_ACTIVATION_COPIES if tensorflow else ACTIVATION_COPIES
    if tensorflow and config.precision == "mixed_bfloat16":
        # TensorFlow's CPU step in mixed_bfloat16 holds as much as in float32: measured 7082 MiB
        # at 2048x1536 untiled against 6713 MiB in float32 (docs/recipes.md), where a 2-byte
        # model said 4034 MiB and a 4096 px run it let through untiled would have run out.
        settings["precision"] = "float32"
    if config.tile_size is None and tiles_possible:
        # Per scale: a tile chosen for the finest scale would also cut the coarser ones whose
        # untiled step fits, and a tiled step costs about twice an untiled one.
        for size in sizes:
            tiles[size] = automatic_tile_size(
                size=size, available=available, copies=copies, grid=TILE_GRID, **settings
            )
    for size in sorted(sizes, key=lambda s: s[0] * s[1], reverse=True):
        message = host_refusal(
            size=size,
            available=available,
            copies=copies,
            grid=TILE_GRID,
            tiles_possible=tiles_possible,
            tile_size=tiles[size],
            **settings,
        )
        if message:
            raise ConfigError(message)
    return tiles
