"""`stylize()`: targets once, initial image, optimisation over one or more scales, callbacks."""

import collections
import dataclasses
import functools
import time

import numpy as np

from tfstyle import preprocessing as pp
from tfstyle.config import StyleConfig
from tfstyle.errors import ConfigError, NonFiniteLossError
from tfstyle.features import build_feature_extractor, min_input_size
from tfstyle.lbfgs import minimize_lbfgs
from tfstyle.losses import LOSS_NAMES, gram_matrix, style_transfer_losses
from tfstyle.memory import HEADROOM, describe_bytes, estimate_step_bytes, largest_fitting_size
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
        return {name: float(values[-1]) for name, values in self.history.items()}


def stylize(
    content, style, *, config=None, callbacks=(), init_image=None, extractor=None, runners=None
):
    """Paint `content` in the style of `style` (Gatys et al., 2016).

    Args:
        content: RGB image, float `[H, W, 3]` in [0, 1] or uint8.
        style: one style image or a list of them (blended by `config.style_blend_weights`).
        config: a `StyleConfig`; None for the defaults.
        callbacks: callables, each called with a `Progress` record after every step.
        init_image: starting image when `config.init == "image"` (resized to fit).
        extractor: a feature extractor to reuse (built from `config` if None).
        runners: a `RunnerCache` to reuse compiled steps across calls (images of one size
            then compile once); None builds fresh ones.

    Returns:
        A `StyleResult` with the image and the per-step loss history.

    Raises:
        ConfigError: settings that do not fit the images (sizes, number of styles).
        NonFiniteLossError: the loss became NaN or infinite; carries the last finite image.
    """
    start = time.perf_counter()
    config = config or StyleConfig()
    content = pp.as_float_image(content)
    styles = [pp.as_float_image(s) for s in (style if isinstance(style, list | tuple) else [style])]
    blend = _blend_weights(config, len(styles))
    if config.init == "image" and init_image is None:
        raise ConfigError("init='image' needs an init_image")
    if config.preserve_colors == "histogram":
        styles = [pp.match_color(s, content) for s in styles]
    elif config.preserve_colors == "luminance":
        styles = [_luminance_only(s, reference=content) for s in styles]
    sizes = scale_sizes(content.shape, max_size=config.max_size, scales=config.scales)
    _check_sizes(config, sizes, styles)
    _check_memory(config, sizes[-1])
    extractor = extractor or feature_extractor_for(config)
    source = (
        _luminance_only(content, reference=content)
        if config.preserve_colors == "luminance"
        else content
    )

    image, history, evaluations = None, {name: [] for name in LOSS_NAMES}, 0
    clock = _Clock(start, total_steps=config.iterations * len(sizes), callbacks=callbacks)
    for index, size in enumerate(sizes):
        content_s = pp.resize(source, *size)
        targets = compute_targets(extractor, content_s, styles, blend=blend, config=config)
        if image is None:
            image = initial_image(config, content_s, styles, init_image)
        else:
            image = pp.resize(image, *size)
        image, scale_history, scale_evals = _optimise(
            config, extractor, targets, image, clock, index, runners
        )
        for name in LOSS_NAMES:
            history[name].append(scale_history[name])
        evaluations += scale_evals
    if config.preserve_colors == "luminance":
        image = pp.luminance_transfer(image, content)
    history = {name: np.concatenate(parts).astype(np.float32) for name, parts in history.items()}
    return StyleResult(image, history, config, evaluations, time.perf_counter() - start)


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


def scale_sizes(shape, *, max_size, scales):
    """(height, width) of each scale, coarse to fine, each twice the previous; the last fits
    `max_size` (never larger than the content). With `scales=1`, just the final size."""
    longest = min(max_size, max(shape[:2]))
    return [
        pp.scaled_shape(shape, max(1, round(longest / 2**k))) for k in range(scales - 1, -1, -1)
    ]


def compute_targets(extractor, content, styles, *, blend, config):
    """Content features and blended style Grams, computed once per scale.

    Several style images are blended in Gram space, as neural-style does: the target Gram of a
    layer is the weighted mean of the style images' Grams.
    """
    content_features = extractor(content[None], training=False)
    targets = {"content": {k: content_features[k] for k in config.content_layers}, "style": {}}
    if not config.style_layers:
        return targets
    style_shape = content.shape
    grams = {k: 0.0 for k in config.style_layers}
    for style, weight in zip(styles, blend, strict=True):
        scaled = pp.scale_style(style, style_shape, config.style_scale)
        features = extractor(scaled[None], training=False)
        for k in config.style_layers:
            grams[k] = grams[k] + weight * gram_matrix(features[k])
    targets["style"] = grams
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
        base = pp.resize(init_image, *shape[:2])
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
        "content_weight",
        "style_weight",
        "tv_weight",
        "optimizer",
        "learning_rate",
        "schedule",
        "iterations",
        "average",
        "ema_decay",
    )

    def __init__(self, maxsize=8):
        self.maxsize = maxsize
        self._runners = collections.OrderedDict()

    def get(self, config, extractor, image):
        """A runner for `image`: a cached one reset to it, or a new one (then cached)."""
        # The cached runner holds `extractor`, so its id cannot be reused by another object.
        key = (id(extractor), image.shape, *(getattr(config, f) for f in self.KEY_FIELDS))
        runner = self._runners.get(key)
        if runner is not None and hasattr(runner, "reset"):
            self._runners.move_to_end(key)
            runner.reset(image)
            return runner
        runner = _new_runner(config, extractor, image)
        self._runners[key] = runner
        while len(self._runners) > self.maxsize:
            self._runners.popitem(last=False)
        return runner

    def __len__(self):
        return len(self._runners)

    def runners(self):
        return list(self._runners.values())


def _new_runner(config, extractor, image):
    optimizer = None
    if config.optimizer != "lbfgs":
        optimizer = make_optimizer(
            name=config.optimizer,
            learning_rate=config.lr,
            schedule=config.schedule,
            total_steps=config.iterations,
        )
    return make_runner(
        extractor=extractor,
        loss_fn=make_loss_fn(config),
        optimizer=optimizer,
        image=image,
        average=config.average,
        ema_decay=config.ema_decay,
        loss_scale=config.precision == "mixed_float16",
    )


def _optimise(config, extractor, targets, image, clock, scale, runners=None):
    if runners is None:
        runner = _new_runner(config, extractor, image)
    else:
        runner = runners.get(config, extractor, image)
    if config.optimizer == "lbfgs":
        return _optimise_lbfgs(config, runner, targets, image, clock, scale)
    return _optimise_keras(config, runner, targets, clock, scale)


def _loss_fn(features, image, targets, **weights):
    return style_transfer_losses(
        features,
        image,
        content_targets=targets["content"],
        style_targets=targets["style"],
        **weights,
    )


def _optimise_keras(config, runner, targets, clock, scale):
    history = {name: [] for name in LOSS_NAMES}
    done, last_good = 0, runner.image()
    while done < config.iterations:
        steps = min(config.steps_per_call, config.iterations - done)
        chunk = runner.run(targets, steps)
        if not np.all(np.isfinite(chunk["total"])):
            bad = clock.step + int(np.argmin(np.isfinite(chunk["total"]))) + 1
            raise NonFiniteLossError(
                f"the loss became non-finite at step {bad}; try a smaller learning rate (now "
                f"{config.lr:g}), smaller loss weights, or the adam optimizer",
                image=last_good,
            )
        done += steps
        last_good = runner.image(averaged=done == config.iterations)
        for name in LOSS_NAMES:
            history[name].append(chunk[name])
        clock.report(chunk, scale=scale, size=last_good.shape[:2], image=last_good)
    return runner.image(averaged=True), _stack(history), config.iterations


def _optimise_lbfgs(config, runner, targets, image, clock, scale):
    history = {name: [] for name in LOSS_NAMES}
    value_and_grad = functools.partial(runner.value_and_grad, targets=targets)

    last_good = image

    def on_iteration(losses, iterate):
        nonlocal last_good
        if not np.isfinite(losses["total"]):
            raise NonFiniteLossError(
                f"the loss became non-finite at step {clock.step + 1}; try smaller loss weights",
                image=last_good,
            )
        last_good = iterate
        for name in LOSS_NAMES:
            history[name].append(np.array([losses[name]], np.float32))
        count = len(history["total"])
        show = count % config.steps_per_call == 0 or count == config.iterations
        chunk = {k: np.array([v]) for k, v in losses.items()}
        clock.report(chunk, scale=scale, size=iterate.shape[:2], image=iterate if show else None)

    image, evaluations = minimize_lbfgs(
        value_and_grad, image, iterations=config.iterations, callback=on_iteration
    )
    # L-BFGS may stop before its iteration limit (no further decrease possible): skip ahead so
    # the next scale's step numbers line up.
    clock.step += config.iterations - len(history["total"])
    return image, _stack(history), evaluations


def _stack(history):
    return {
        name: np.concatenate(parts) if parts else np.zeros(0, np.float32)
        for name, parts in history.items()
    }


def _blend_weights(config, count):
    weights = config.style_blend_weights
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise ConfigError(
            f"style_blend_weights has {len(weights)} values for {count} style image(s); "
            "give one weight per style image"
        )
    return [w / sum(weights) for w in weights]


def _luminance_only(image, *, reference):
    """Grey RGB image of `image`'s luminance, matched in mean and spread to `reference`'s
    (Gatys et al. 2016, luminance-only transfer)."""
    y = pp.rgb_to_yuv(image)[..., 0]
    ref = pp.rgb_to_yuv(reference)[..., 0]
    y = (y - y.mean()) / (y.std() + 1e-6) * ref.std() + ref.mean()
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)


def _check_sizes(config, sizes, styles):
    layers = config.content_layers + config.style_layers
    minimum = min_input_size(config.network, layers)
    smallest = min(min(size) for size in sizes)
    if smallest < minimum:
        raise ConfigError(
            f"the image is too small: its shorter side is {smallest} px at the first scale, and "
            f"{config.network} with layers up to {max(layers)} needs at least {minimum} px; "
            "use a larger image, a larger max_size or fewer scales"
        )
    for style in styles:
        if min(style.shape[:2]) < minimum:
            # Upscaling a style image this small to the output's size would invent its texture.
            raise ConfigError(
                f"the style image is too small: {style.shape[1]}x{style.shape[0]} px, and "
                f"{config.network} with layers up to {max(layers)} needs at least {minimum} px"
            )
        style_size = pp.scaled_shape(style.shape, round(config.style_scale * max(sizes[0])))
        if min(style_size) < minimum:
            raise ConfigError(
                f"the style image is too small at style_scale {config.style_scale:g}: "
                f"{style_size[1]}x{style_size[0]} px, and the network needs at least {minimum} px"
            )


def _check_memory(config, size):
    """Refuse, before any work, a run whose step will not fit the accelerator's free memory."""
    free = free_device_memory()
    if free is None:  # a CPU: the operating system's memory is not ours to predict
        return
    settings = {
        "network": config.network,
        "layers": config.content_layers + config.style_layers,
        "precision": config.precision,
        "remat": config.remat,
        "content_layers": config.content_layers,
    }
    needed = estimate_step_bytes(height=size[0], width=size[1], **settings)
    if needed * HEADROOM <= free:
        return
    longest = largest_fitting_size(aspect=size[0] / size[1], available_bytes=free, **settings)
    hints = [f"max_size={longest}"] if longest else []
    hints += [] if config.remat else ["remat=True"]
    hints += ["precision='mixed_bfloat16'"] if config.precision == "float32" else []
    raise ConfigError(
        f"a {size[1]}x{size[0]} image needs about {describe_bytes(needed)} of accelerator memory "
        f"per step but {describe_bytes(free)} is free, so at most {longest} px (longest side) "
        f"fits with these settings; try {', '.join(hints) or 'a smaller image'}"
    )


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
