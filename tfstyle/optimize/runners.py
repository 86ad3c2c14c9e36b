"""Optimising one scale: the runners (compiled steps, cached across calls), the Keras-optimizer
and L-BFGS loops around them, and the errors they raise."""

import collections

import numpy as np

from tfstyle.errors import ConfigError, NonFiniteLossError
from tfstyle.ops.tiles import run_plan
from tfstyle.optimize.lbfgs import minimize_lbfgs
from tfstyle.optimize.memory import compiled_refusal
from tfstyle.optimize.objective import make_loss_fn
from tfstyle.optimize.optimizers import make_optimizer
from tfstyle.optimize.step import free_device_memory, make_runner


class RunnerCache:
    """Runners (compiled steps with their image and optimizer state) kept across `stylize`
    calls: a runner is reused, reset to the new image, when the extractor, the image size and
    every setting its compiled step depends on are the same. Targets are arguments of the
    step, so new content and style images do not retrace it. Keeps the `maxsize` most recently
    used runners.

    Args:
        maxsize: how many runners to keep (the least recently used is dropped first).
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
        "mask_content_weight",
        "optimizer",
        "learning_rate",
        "momentum",
        "precondition",
        "schedule",
        "iterations",
        "average",
        "ema_decay",
        "tile_size",
    )

    def __init__(self, maxsize=8):
        self.maxsize = maxsize
        self._runners = collections.OrderedDict()

    def get(self, config, extractor, image, *, total_steps):
        """A runner for `image`: a cached one reset to it, or a new one (then cached).

        Args:
            config: the run's `StyleConfig` (its `KEY_FIELDS` are part of the key).
            extractor: the feature extractor the step calls.
            image: the scale's starting image, float32 `[H, W, 3]`.
            total_steps: the run's steps in all scales (the schedule's length).

        Returns:
            A runner (`optimize.step`), holding `image`.
        """
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
        runner = new_runner(config, extractor, image, total_steps=total_steps)
        self._runners[key] = runner
        while len(self._runners) > self.maxsize:
            self._runners.popitem(last=False)
        return runner

    def __len__(self):
        return len(self._runners)

    def runners(self):
        """The cached runners, least recently used first."""
        return list(self._runners.values())


def new_runner(config, extractor, image, *, total_steps):
    """A runner for one scale, with a fresh optimizer (none for L-BFGS).

    Args:
        config: the run's `StyleConfig`.
        extractor: the feature extractor the step calls.
        image: the scale's starting image, float32 `[H, W, 3]`.
        total_steps: the run's steps in all scales (the schedule's length).

    Returns:
        The backend's runner (`optimize.step.make_runner`).
    """
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
        **tiling(config, image.shape[:2]),
    )


def tiling(config, size):
    """`make_runner`'s tile arguments for an image of `size` (height, width): none when
    `config.tile_size` is None or the image is one tile (an untiled step is then the same)."""
    plan = run_plan(config, size)
    if plan is None:
        return {}
    return {
        "tiles": plan,
        "tile_weights": {
            "style_layers": config.style_layers,
            "style_layer_weights": config.style_layer_weight_map(),
            "content_weight": config.content_weight,
            "style_weight": config.effective_style_weight,
            "tv_weight": config.tv_weight,
        },
    }


def optimise(config, extractor, targets, image, run, runners=None):
    """Optimise one scale from `image` (or from `run`'s pending resumed state); returns its
    result.

    Args:
        config: the run's `StyleConfig`.
        extractor: the feature extractor.
        targets: the scale's targets (`objective.compute_targets`).
        image: the scale's starting image, float32 `[H, W, 3]`.
        run: the call's `RunState` (history, clock, pending state), updated as steps run.
        runners: a `RunnerCache`, or None for a new runner.

    Returns:
        The scale's final image, float32 `[H, W, 3]` (averaged if `config.average`).

    Raises:
        NonFiniteLossError: a loss or pixel became NaN or infinite.
        ConfigError: the compiled step would not fit the accelerator's free memory.
        CheckpointError: a resumed state does not fit the runner.
    """
    # The schedule runs over the whole pyramid: the step count is carried between scales.
    total_steps = sum(run.scale_steps)
    if runners is None:
        runner = new_runner(config, extractor, image, total_steps=total_steps)
    else:
        runner = runners.get(config, extractor, image, total_steps=total_steps)
    if config.optimizer == "lbfgs":
        return _optimise_lbfgs(config, runner, targets, image, run)
    run.attach(runner)
    check_compiled_memory(config, runner, targets)
    return _optimise_keras(config, runner, targets, run)


def _optimise_keras(config, runner, targets, run):
    clock = run.clock
    done, last_good = run.steps_in_scale(), runner.image()
    iterations = run.scale_steps[run.scale]
    while done < iterations:
        # Calls end on multiples of steps_per_call counted over the whole run, so images (and
        # the CLI's snapshots) come at the same steps whatever the number of scales.
        # A tiled step (minutes at print sizes) is reported one at a time, with its image.
        per_call = 1 if getattr(runner, "one_step_calls", False) else config.steps_per_call
        until_boundary = per_call - clock.step % per_call
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

    Args:
        config: the run's `StyleConfig` (its weights and rate are named in the message).
        step: the first step whose loss was not finite.
        image: the last finite image.
        image_step: the steps taken to reach `image`.

    Returns:
        A `NonFiniteLossError` (not raised here).
    """
    weights = (
        f"content_weight {config.content_weight:g}, "
        f"style_weight {config.effective_style_weight:g}, tv_weight {config.tv_weight:g}"
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


def check_compiled_memory(config, runner, targets):
    """Refuse a scale whose compiled step does not fit the accelerator's free memory, by XLA's
    own figures (JAX only), before it runs.

    Args:
        config: the run's `StyleConfig` (`memory_check` off skips the check).
        runner: the scale's runner; only runners with `memory_analysis` are checked.
        targets: the scale's targets.

    Raises:
        ConfigError: the compiled step needs more than the free memory.
    """
    analyse = getattr(runner, "memory_analysis", None)
    free = free_device_memory() if config.memory_check and analyse else None
    if free is None:
        return
    stats = analyse(targets)
    message = stats and compiled_refusal(stats=stats, free=free, size=runner.image().shape[:2])
    if message:
        raise ConfigError(message)
