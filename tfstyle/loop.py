"""`stylize()`: targets once, initial image, optimisation over one or more scales, callbacks."""

import collections
import dataclasses
import functools
import time
import warnings

import numpy as np

from tfstyle import preprocessing as pp
from tfstyle.checkpoint import Checkpoint, digest_images
from tfstyle.config import StyleConfig
from tfstyle.errors import CheckpointError, ConfigError, Interrupted, NonFiniteLossError
from tfstyle.features import build_feature_extractor, min_input_size
from tfstyle.lbfgs import minimize_lbfgs
from tfstyle.losses import LOSS_NAMES, blend_statistics, style_statistics, style_transfer_losses
from tfstyle.memory import compiled_refusal, estimate_warning
from tfstyle.optimizers import make_optimizer
from tfstyle.progress import Progress
from tfstyle.step import free_device_memory, make_runner


@dataclasses.dataclass(frozen=True)
class StyleResult:
    """What `stylize` returns.

    Attributes:
        image: float32 `[H, W, 3]` in [0, 1].
        history: `{loss name: float32 array}`, one entry per step over all scales.
        config: the settings used.
        evaluations: objective evaluations (equal to the steps, except for L-BFGS).
        elapsed_s: wall time of the whole call, compilation included.
    """

    image: np.ndarray
    history: dict
    config: StyleConfig
    evaluations: int
    elapsed_s: float

    def final_losses(self):
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

    Returns:
        A `StyleResult` with the image and the per-step loss history.

    Raises:
        ConfigError: settings that do not fit the images (sizes, number of styles).
        CheckpointError: `resume` was made with other settings or images.
        NonFiniteLossError: the loss became NaN or infinite; carries the last finite image.
        Interrupted: a KeyboardInterrupt arrived; carries the current image and a `Checkpoint`.
    """
    start = time.perf_counter()
    config = config or StyleConfig()
    content = pp.as_float_image(content)
    styles = [pp.as_float_image(s) for s in (style if isinstance(style, list | tuple) else [style])]
    blend = config.blend_weights(len(styles))
    if config.init == "image" and init_image is None:
        raise ConfigError("init='image' needs an init_image")
    init_image = None if init_image is None else pp.as_float_image(init_image)
    extra = [] if init_image is None else [init_image]
    inputs = functools.partial(digest_images, content, *styles, *extra)
    if resume is not None:
        resume.check_resumable(config, inputs())
    if config.preserve_colors == "histogram":
        styles = [pp.match_color(s, content) for s in styles]
    elif config.preserve_colors == "luminance":
        styles = [_luminance_only(s, reference=content) for s in styles]
    plan = scale_plan(config, content.shape)
    sizes = [size for size, _ in plan]
    _check_sizes(config, sizes, content.shape, styles)
    _check_memory(config, sizes[-1])
    extractor = extractor or feature_extractor_for(config)
    source = _luminance_only(content, reference=content) if _luminance(config) else content
    clock = _Clock(start, total_steps=sum(n for _, n in plan), callbacks=callbacks)
    run = _Run(config, clock, inputs, resume, [n for _, n in plan])
    finish = functools.partial(_finish, config, content=content)
    try:
        for size in sizes[run.scale :]:
            content_s = pp.resize(source, *size)
            targets = compute_targets(extractor, content_s, styles, blend=blend, config=config)
            if run.image is None:
                run.image = initial_image(config, content_s, styles, init_image)
            image = pp.resize(run.image, *size)
            run.next_scale(_optimise(config, extractor, targets, image, run, runners))
    except NonFiniteLossError as exc:
        exc.image = finish(exc.image)
        raise
    except KeyboardInterrupt as exc:
        checkpoint = run.checkpoint()
        image = None if checkpoint is None else finish(checkpoint.image)
        raise Interrupted(
            f"interrupted after step {clock.step} of {clock.total_steps}",
            checkpoint=checkpoint,
            image=image,
            step=clock.step if checkpoint is None else checkpoint.step,
            total_steps=clock.total_steps,
        ) from exc
    return StyleResult(
        finish(run.image), run.full_history(), config, run.evaluations, time.perf_counter() - start
    )


def feature_extractor_for(config):
    """The (cached) extractor with every content and style layer of `config`."""
    return build_feature_extractor(
        layers=config.content_layers + config.style_layers,
        network=config.network,
        weights=config.weights,
        pooling=config.pooling,
        dtype=None if config.precision == "float32" else config.precision,
        remat=config.remat,
    )


def scale_plan(config, shape):
    """`[((height, width), steps), ...]` of each scale of a run on an image of `shape`, coarse
    to fine (`StyleConfig.scale_count` and `scale_iterations`)."""
    longest = min(config.max_size, max(shape[:2]))
    sizes = scale_sizes(shape, max_size=config.max_size, scales=config.scale_count(longest))
    return list(zip(sizes, config.scale_iterations(len(sizes)), strict=True))


def scale_sizes(shape, *, max_size, scales):
    """(height, width) of each scale, coarse to fine, each twice the previous; the last fits
    `max_size` (never larger than the content). With `scales=1`, just the final size."""
    longest = min(max_size, max(shape[:2]))
    return [
        pp.scaled_shape(shape, max(1, round(longest / 2**k))) for k in range(scales - 1, -1, -1)
    ]


def compute_targets(extractor, content, styles, *, blend, config):
    """Content features and blended style statistics, computed once per scale.

    Several style images are blended as `losses.blend_statistics` describes: for "gram" the
    weighted mean of the Grams, as neural-style does; for the others the mixture distribution.
    With "sliced_wasserstein", `targets["seed"]` (int32) seeds the random directions: a
    tensor argument, so a new seed does not recompile the step.
    """
    content_features = extractor(content[None], training=False)
    targets = {"content": {k: content_features[k] for k in config.content_layers}, "style": {}}
    if not config.style_layers:
        return targets
    kind = config.style_loss
    style_shape = content.shape
    statistics = {k: [] for k in config.style_layers}
    for style, weight in zip(styles, blend, strict=True):
        scaled = pp.scale_style(style, style_shape, config.style_scale)
        features = extractor(scaled[None], training=False)
        for k in config.style_layers:
            statistics[k].append((style_statistics(features[k], kind=kind), weight))
    targets["style"] = {k: blend_statistics(v, kind=kind) for k, v in statistics.items()}
    if kind == "sliced_wasserstein":
        targets["seed"] = np.asarray(config.seed % 2**31, np.int32)
    return targets


def initial_image(config, content, styles, init_image=None):
    """The starting image at the content's size, with `init_noise_ratio` of noise mixed in."""
    shape = content.shape
    noise = pp.noise_image(shape, seed=config.seed, blur_sigma=0.0)
    if config.init == "noise":
        return noise
    if config.init == "blurred_noise":
        base = pp.noise_image(shape, seed=config.seed, blur_sigma=max(shape[:2]) / 32)
    elif config.init == "style":
        base = pp.resize(styles[0], *shape[:2])
    elif config.init == "image":
        # Cropped to the content's aspect ratio, not stretched to it.
        cropped = pp.crop_to_aspect(init_image, height=shape[0], width=shape[1])
        base = pp.resize(cropped, *shape[:2])
    else:
        base = content
    ratio = config.init_noise_ratio
    return ((1.0 - ratio) * base + ratio * noise).astype(np.float32)


def make_loss_fn(config):
    """`loss_fn(features, image, targets) -> losses` with the weights of `config`."""
    return functools.partial(
        _loss_fn,
        content_layer_weights={k: 1.0 for k in config.content_layers},
        style_layer_weights=config.style_layer_weight_map(),
        content_weight=config.content_weight,
        style_weight=config.style_weight,
        tv_weight=config.tv_weight,
        style_kind=config.style_loss,
        # New sliced-Wasserstein directions every step, except for L-BFGS (one objective).
        redraw_directions=config.optimizer != "lbfgs",
    )


class RunnerCache:
    """Runners (compiled steps with their image and optimizer state) kept across `stylize`
    calls: a runner is reused, reset to the new image, when the extractor, the image size and
    every setting its compiled step depends on are the same. Targets are arguments of the
    step, so new content and style images do not retrace it. Keeps the `maxsize` most recently
    used runners.
    """

    # Settings a runner's compiled step or optimizer depends on (the targets are arguments).
    KEY_FIELDS = (
        "content_layers",
        "style_layers",
        "style_layer_weights",
        "style_loss",
        "content_weight",
        "style_weight",
        "tv_weight",
        "optimizer",
        "learning_rate",
        "momentum",
        "precondition",
        "schedule",
        "iterations",
        "average",
        "ema_decay",
    )

    def __init__(self, maxsize=8):
        self.maxsize = maxsize
        self._runners = collections.OrderedDict()

    def get(self, config, extractor, image, *, total_steps):
        """A runner for `image`: a cached one reset to it, or a new one (then cached)."""
        # The cached runner holds `extractor`, so its id cannot be reused by another object.
        key = (
            id(extractor),
            image.shape,
            total_steps,
            *(getattr(config, f) for f in self.KEY_FIELDS),
        )
        runner = self._runners.get(key)
        if runner is not None and hasattr(runner, "reset"):
            self._runners.move_to_end(key)
            runner.reset(image)
            return runner
        runner = _new_runner(config, extractor, image, total_steps=total_steps)
        self._runners[key] = runner
        while len(self._runners) > self.maxsize:
            self._runners.popitem(last=False)
        return runner

    def __len__(self):
        return len(self._runners)

    def runners(self):
        return list(self._runners.values())


def _new_runner(config, extractor, image, *, total_steps):
    optimizer = None
    if config.optimizer != "lbfgs":
        optimizer = make_optimizer(
            name=config.optimizer,
            learning_rate=config.lr,
            schedule=config.schedule,
            total_steps=total_steps,
            values=int(np.prod(image.shape)),
            momentum=config.momentum,
            precondition=config.precondition,
        )
    return make_runner(
        extractor=extractor,
        loss_fn=make_loss_fn(config),
        optimizer=optimizer,
        image=image,
        average=config.average,
        ema_decay=config.ema_decay,
        loss_scale=config.precision == "mixed_float16",
        chunk=config.steps_per_call,
    )


def _optimise(config, extractor, targets, image, run, runners=None):
    """Optimise one scale from `image` (or from `run`'s pending resumed state); returns its
    result."""
    # The schedule runs over the whole pyramid: the step count is carried between scales.
    total_steps = sum(run.scale_steps)
    if runners is None:
        runner = _new_runner(config, extractor, image, total_steps=total_steps)
    else:
        runner = runners.get(config, extractor, image, total_steps=total_steps)
    if config.optimizer == "lbfgs":
        return _optimise_lbfgs(config, runner, targets, image, run)
    run.attach(runner)
    _check_compiled_memory(config, runner, targets)
    return _optimise_keras(config, runner, targets, run)


def _loss_fn(features, image, targets, **weights):
    return style_transfer_losses(
        features,
        image,
        content_targets=targets["content"],
        style_targets=targets["style"],
        seed=targets.get("seed", 0),
        **weights,
    )


def _optimise_keras(config, runner, targets, run):
    clock = run.clock
    done, last_good = run.steps_in_scale(), runner.image()
    iterations = run.scale_steps[run.scale]
    while done < iterations:
        # Calls end on multiples of steps_per_call counted over the whole run, so images (and
        # the CLI's snapshots) come at the same steps whatever the number of scales.
        until_boundary = config.steps_per_call - clock.step % config.steps_per_call
        steps = min(until_boundary, iterations - done)
        chunk = runner.run(targets, steps)
        current = runner.image(averaged=done + steps == iterations)
        finite = np.isfinite(chunk["total"])
        if not finite.all() or not np.isfinite(current).all():
            # A NaN pixel survives clipping; its loss would show only at the next step.
            bad = clock.step + (int(np.argmin(finite)) + 1 if not finite.all() else steps)
            raise non_finite_error(config, step=bad, image=last_good, image_step=clock.step)
        done += steps
        last_good = current
        run.record(chunk, evaluations=steps)
        clock.report(chunk, scale=run.scale, size=last_good.shape[:2], image=last_good)
    return runner.image(averaged=True)


def _optimise_lbfgs(config, runner, targets, image, run):
    clock = run.clock
    first_step, remaining = clock.step, run.scale_steps[run.scale] - run.steps_in_scale()
    if remaining <= 0:  # resumed from a checkpoint taken at the end of this scale
        return image

    def value_and_grad(image):
        run.evaluations += 1
        return runner.value_and_grad(image, targets)

    def report(losses, iterate, *, last):
        if not (np.isfinite(losses["total"]) and np.isfinite(iterate).all()):
            raise non_finite_error(
                config, step=clock.step + 1, image=run.image, image_step=clock.step
            )
        # What an interruption saves; resuming restarts L-BFGS's memory from it.
        run.image = iterate
        chunk = {k: np.array([v], np.float32) for k, v in losses.items()}
        run.record(chunk, evaluations=0)
        show = last or (clock.step + 1) % config.steps_per_call == 0
        clock.report(
            chunk, scale=run.scale, size=iterate.shape[:2], image=iterate if show else None
        )

    def on_iteration(losses, iterate):
        report(losses, iterate, last=clock.step + 1 == first_step + remaining)

    image, _ = minimize_lbfgs(value_and_grad, image, iterations=remaining, callback=on_iteration)
    if clock.step < first_step + remaining:
        # L-BFGS stopped early (no further decrease possible, or not one iteration): report the
        # final image as the scale's last step, so callbacks still see the end of the scale and
        # the next scale's step numbers line up. The history is then shorter than the steps.
        clock.step = first_step + remaining - 1
        report(value_and_grad(image)[0], image, last=True)
    return image


def non_finite_error(config, *, step, image, image_step):
    """The error for a loss that became NaN or infinite at `step` (1-based, over all scales),
    saying what to change; `image` is the last finite image, reached after `image_step` steps.
    """
    weights = (
        f"content_weight {config.content_weight:g}, style_weight {config.style_weight:g}, "
        f"tv_weight {config.tv_weight:g}"
    )
    if step == 1:
        message = (
            f"the loss of the starting image is not finite; check the loss weights ({weights}) "
            "and the network weights"
        )
    else:
        # Clipping keeps pixels in [0, 1], so in practice an overflowing gradient (huge loss
        # weights) or an overflowing learning rate is what makes the loss non-finite.
        rate = "" if config.optimizer == "lbfgs" else f"the learning_rate (now {config.lr:g}) or "
        message = (
            f"the loss became non-finite at step {step}; lower {rate}the loss weights ({weights})"
        )
    return NonFiniteLossError(message, image=image, step=image_step)


class _Run:
    """Where a `stylize` call stands: the scale in progress, its image or runner, the history
    and evaluations so far. Kept so that an interruption can become a `Checkpoint`, and
    started from one on resume.
    """

    def __init__(self, config, clock, inputs, resume, scale_steps):
        self.config, self.clock, self.inputs = config, clock, inputs
        self.scale_steps = scale_steps
        self.runner = None
        self.history = {name: [] for name in LOSS_NAMES}
        if resume is None:
            self.scale, self.image, self.pending, self.evaluations = 0, None, {}, 0
            return
        self.scale, self.image, self.evaluations = resume.scale, resume.image, resume.evaluations
        # Loaded into the scale's runner once built: that scale's state, or the previous
        # scale's when the run was interrupted between two scales.
        self.pending = dict(resume.runner_state)
        clock.step = resume.step
        for name in LOSS_NAMES:
            self.history[name].append(np.asarray(resume.history[name], np.float32))

    def steps_in_scale(self):
        return self.clock.step - sum(self.scale_steps[: self.scale])

    def attach(self, runner):
        """Make `runner` the current scale's, loading the pending state if there is one: a
        resumed state of this scale, or the previous scale's, whose optimizer state is
        resized and carried (crowsonkb's style-transfer carries Adam's moments the same way)."""
        if self.pending:
            try:
                runner.load_state(_carried_state(self.pending, runner.state()))
            except (KeyError, ValueError) as exc:
                raise CheckpointError(
                    f"the checkpoint's optimizer state does not fit this run ({exc}); start again"
                ) from exc
        self.runner = runner

    def record(self, chunk, *, evaluations):
        for name in LOSS_NAMES:
            self.history[name].append(np.asarray(chunk[name], np.float32))
        self.evaluations += evaluations

    def next_scale(self, image):
        """The scale in progress finished with `image`; the next one starts from it and from
        its optimizer state."""
        self.pending = {} if self.runner is None else self.runner.state()
        self.scale, self.image, self.runner = self.scale + 1, image, None

    def full_history(self, length=None):
        """The history as arrays, padded with NaN to `length` steps if given."""
        history = {}
        for name, parts in self.history.items():
            values = np.concatenate(parts) if parts else np.zeros(0, np.float32)
            if length is not None and len(values) < length:
                values = np.concatenate([values, np.full(length - len(values), np.nan)])
            history[name] = values.astype(np.float32)
        return history

    def checkpoint(self):
        """The current state as a `Checkpoint`, or None before there is an image."""
        if self.image is None:
            return None
        state, image, step, length = self.pending, self.image, self.clock.step, None
        if self.runner is not None:
            state = self.runner.state()
            image = self.runner.image(averaged=True)
            # The runner's count (carried from scale to scale, so it counts the whole run) is
            # the truth: the interrupt may have come after a compiled call had updated the
            # image but before its losses were recorded (NaN in history).
            step = length = int(state["steps"])
        return Checkpoint(
            config=self.config,
            scale=self.scale,
            step=step,
            image=image,
            runner_state=state,
            history=self.full_history(length),
            evaluations=self.evaluations,
            inputs=self.inputs(),
        )


def _carried_state(pending, fresh):
    """The state to load into a runner whose own state is `fresh`: `pending` itself when it
    has the runner's image size (a resumed scale); else `fresh` with `pending`'s step count and
    optimizer variables, those of the image's shape resized to the new size (a new scale, which
    starts from its own image)."""
    old_shape, new_shape = np.shape(pending["image"]), np.shape(fresh["image"])
    if old_shape == new_shape:
        return pending
    carried = dict(fresh, steps=pending["steps"])
    for key, value in pending.items():
        if key.startswith("optimizer/"):
            value = np.asarray(value)
            if value.shape[1:] == old_shape:
                value = pp.resize_field(value[0], *new_shape[:2])[None].astype(value.dtype)
            carried[key] = value
    return carried


def _finish(config, image, *, content):
    """A result image as the caller gets it: colours put back for luminance-only transfer."""
    if image is None or not _luminance(config):
        return image
    return pp.luminance_transfer(image, content)


def _luminance(config):
    return config.preserve_colors == "luminance"


def _luminance_only(image, *, reference):
    """Grey RGB image of `image`'s luminance, matched in mean and spread to `reference`'s
    (Gatys et al. 2016, luminance-only transfer)."""
    y = pp.rgb_to_yuv(image)[..., 0]
    ref = pp.rgb_to_yuv(reference)[..., 0]
    y = (y - y.mean()) / (y.std() + 1e-6) * ref.std() + ref.mean()
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)


def _check_sizes(config, sizes, content_shape, styles):
    minimum = min_input_size(config.network, config.content_layers + config.style_layers)
    needs = f"{config.network} with layers up to {config.deepest_layer} needs at least {minimum} px"
    smallest = min(min(size) for size in sizes)
    if smallest < minimum:
        height, width = content_shape[:2]
        enough = _max_size_needed(config, content_shape, minimum)
        single = None
        if enough is None and config.scales == "auto":
            # A pyramid starts near 128 px whatever max_size is: one scale may still fit.
            single = _max_size_needed(config.replace(scales=1), content_shape, minimum)
        fewer = ", fewer scales" if len(sizes) > 1 else ""
        if enough is not None:
            fix = f"use max_size {enough} or more"
        elif single is not None:
            fix = f"use scales=1 and max_size {single} or more"
        else:
            fix = f"use a larger image{fewer} or shallower layers"
        raise ConfigError(
            f"the image is too small: {width}x{height} px gives a shorter side of {smallest} px "
            f"at the first scale (max_size {config.max_size}, {len(sizes)} scale(s)), and "
            f"{needs}; {fix}"
        )
    for style in styles:
        if min(style.shape[:2]) < minimum:
            # Upscaling a style image this small to the output's size would invent its texture.
            raise ConfigError(
                f"the style image is too small: {style.shape[1]}x{style.shape[0]} px, and {needs}"
            )
        style_size = pp.scaled_shape(style.shape, round(config.style_scale * max(sizes[0])))
        if min(style_size) < minimum:
            raise ConfigError(
                f"the style image is too small at style_scale {config.style_scale:g}: "
                f"{style_size[1]}x{style_size[0]} px at the first scale, and {needs}; use a "
                "larger style_scale or a larger style image"
            )


def _max_size_needed(config, shape, minimum):
    """The smallest max_size that makes every scale of `shape` big enough, or None (images are
    never upscaled, so a small image cannot be fixed with max_size)."""
    short, long = sorted(shape[:2])
    factor = 2 ** (config.scale_count(min(config.max_size, long)) - 1)
    # Sizes are rounded, so start a little below the exact bound and search upwards.
    estimate = int((minimum - 0.5) * factor * long / short) - factor - 1
    for max_size in range(max(config.max_size + 1, estimate), long + 1):
        scales = config.scale_count(min(max_size, long))
        sizes = scale_sizes(shape, max_size=max_size, scales=scales)
        if min(min(size) for size in sizes) >= minimum:
            return max_size
    return None


def _check_memory(config, size):
    """Warn, before any work, when the estimated step for `size` exceeds the accelerator's free
    memory (a warning: the estimate has not been measured on a GPU; see `tfstyle.memory`)."""
    free = free_device_memory() if config.memory_check else None
    if free is None:  # a CPU: the operating system's memory is not ours to predict
        return
    message = estimate_warning(
        size=size,
        free=free,
        network=config.network,
        layers=config.content_layers + config.style_layers,
        precision=config.precision,
        remat=config.remat,
        content_layers=config.content_layers,
    )
    if message:
        warnings.warn(message, stacklevel=3)


def _check_compiled_memory(config, runner, targets):
    """Refuse a scale whose compiled step does not fit the accelerator's free memory, by XLA's
    own figures (JAX only), before it runs."""
    analyse = getattr(runner, "memory_analysis", None)
    free = free_device_memory() if config.memory_check and analyse else None
    if free is None:
        return
    stats = analyse(targets)
    message = stats and compiled_refusal(stats=stats, free=free, size=runner.image().shape[:2])
    if message:
        raise ConfigError(message)


class _Clock:
    """Turns per-chunk loss arrays into per-step `Progress` records for the callbacks."""

    def __init__(self, start, *, total_steps, callbacks):
        self.start = start
        self.total_steps = total_steps
        self.callbacks = tuple(callbacks)
        self.step = 0

    def report(self, chunk, *, scale, size, image):
        steps = len(chunk["total"])
        for i in range(steps):
            self.step += 1
            record = Progress(
                step=self.step,
                total_steps=self.total_steps,
                scale=scale,
                size=tuple(int(n) for n in size),
                losses={name: float(chunk[name][i]) for name in LOSS_NAMES},
                elapsed_s=time.perf_counter() - self.start,
                image=image if i == steps - 1 else None,
            )
            for callback in self.callbacks:
                callback(record)
