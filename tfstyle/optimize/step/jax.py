"""JAX runner: `jax.jit` + `jax.value_and_grad` + the Keras optimizer's `stateless_apply`.

Everything the compiled step touches is an argument: the image and optimizer state (donated on
accelerators, so XLA updates them in place), the network's frozen weights and the targets.
Nothing is baked in as a constant, so a new content or style image of the same size reuses the
compiled step, and XLA does not constant-fold ~80 MB of weights into the program. Several steps
run in one call through `jax.lax.fori_loop` with the step count as a traced argument (a
while loop, so steps past the count cost nothing), writing the per-step losses into buffers of
a fixed `chunk` length: one program per image size, whatever the count.

The compiled functions are shared between runners with the same network, loss weights,
optimizer settings and averaging (`stylize` builds a runner per scale and per call): a second
stylization of the same size compiles nothing.
"""

import functools
import json

import jax
import jax.numpy as jnp
import keras
import numpy as np

from tfstyle.optimize.step import (
    STATIC_LOSS_SCALE,
    check_optimizer_state,
    chunk_counts,
    join_histories,
    optimizer_variable_names,
)
from tfstyle.settings.style import LOSS_NAMES


class JaxRunner:
    """See `tfstyle.optimize.step` for the interface; built by `make_runner`, whose Args these
    are.

    `run` compiles once per image size, whatever the number of steps. `jit_compile=False` runs
    the same code uncompiled (for debugging).
    """

    def __init__(
        self,
        *,
        extractor,
        loss_fn,
        optimizer,
        image,
        average,
        ema_decay,
        jit_compile,
        loss_scale,
        chunk,
    ):
        if loss_scale and optimizer is not None:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        self._static_scale = STATIC_LOSS_SCALE if loss_scale else 1.0
        self._average = average
        self._ema_decay = float(ema_decay)
        self._chunk = int(chunk)
        self._weights = (
            [v.value for v in extractor.trainable_variables],
            [v.value for v in extractor.non_trainable_variables],
        )
        image = np.asarray(image, np.float32)[None]
        # The optimizer's fresh state (step count, moments), restored by `reset`.
        self._initial_optimizer_state = []
        if optimizer is not None:
            optimizer.build([keras.Variable(image, name="image")])
            self._initial_optimizer_state = [np.asarray(v.value) for v in optimizer.variables]
        self._names = optimizer_variable_names(optimizer)
        self.reset(image[0])
        spec = _Spec(extractor, loss_fn, optimizer, average, self._ema_decay, loss_scale)
        # The optimizer was built for this image's shape, so the shape is part of the key.
        jit = jit_compile is None or bool(jit_compile)
        key = (*_cache_key(spec), image.shape, self._chunk, jit)
        self._compiled = _compiled(key, spec, self._chunk, jit)

    def run(self, targets, steps):
        """Run `steps` optimisation updates, in compiled calls of at most `chunk` steps.

        Args:
            targets: the scale's targets (`objective.compute_targets`), arguments of the call.
            steps: how many updates.

        Returns:
            `{loss name: float32 [steps]}`, the losses of the image each update started from.
        """
        parts = []
        for count in chunk_counts(steps, self._chunk):
            self._state, history = self._compiled.run(
                self._state, self._weights, targets, np.int32(count)
            )
            parts.append({k: np.asarray(v)[:count] for k, v in history.items()})
        return join_histories(parts)

    def trace_count(self):
        """How many times `run`'s step has been traced (compiled) so far."""
        return self._compiled.traces

    def memory_analysis(self, targets):
        """XLA's memory account of the compiled `run` (a `CompiledMemoryStats`), or None
        without `jit_compile`. Compiling here costs nothing extra: `run` reuses the program.

        Args:
            targets: the scale's targets (their shapes are part of the program).

        Returns:
            A `CompiledMemoryStats`, or None.
        """
        if not hasattr(self._compiled.run, "lower"):
            return None
        lowered = self._compiled.run.lower(
            self._state, self._weights, targets, np.int32(self._chunk)
        )
        return lowered.compile().memory_analysis()

    def image(self, averaged=False):
        """The current image.

        Args:
            averaged: the moving average or best image instead, when averaging is on.

        Returns:
            float32 `[H, W, 3]` in [0, 1].
        """
        image, _, average, _, ema_steps, _ = self._state
        if averaged and self._average == "ema" and int(ema_steps) > 0:
            correction = 1.0 - self._ema_decay ** int(ema_steps)
            return np.clip(np.asarray(average)[0] / correction, 0.0, 1.0)
        if averaged and self._average == "best":
            return np.asarray(average)[0]
        return np.asarray(image)[0]

    def assign(self, image):
        """Replace the current image, keeping the optimizer state.

        Args:
            image: float32 `[H, W, 3]` of the runner's size.
        """
        image = jnp.asarray(np.asarray(image, np.float32)[None])
        self._state = (image, *self._state[1:])

    def reset(self, image):
        """Start afresh from `image`: image, averages and optimizer state as new, compiled
        functions kept (the next image of this size does not compile again).

        Args:
            image: float32 `[H, W, 3]` of the runner's size.
        """
        image = np.asarray(image, np.float32)[None]
        # What the compiled loop carries: the image, the optimizer's variables, the averaged
        # image (a moving average started at zero and bias-corrected, as Adam's moments are, or
        # the lowest-loss image), the lowest loss, the number of averaged steps and the number
        # of updates applied (skipped float16 steps included; the optimizer's own counter
        # leaves those out). Fresh buffers each time: they are donated to the compiled loop.
        self._state = (
            jnp.asarray(image),
            [jnp.asarray(value) for value in self._initial_optimizer_state],
            jnp.asarray(np.zeros_like(image) if self._average == "ema" else image),
            jnp.asarray(np.inf, jnp.float32),
            jnp.asarray(0, jnp.int32),
            jnp.asarray(0, jnp.int32),
        )

    def state(self):
        """Everything `run` depends on, as NumPy arrays, for checkpoints.

        Returns:
            The dict `tfstyle.optimize.step` describes ("image", "averaged", "best_loss",
            "ema_steps", "steps", "optimizer/<name>").
        """
        image, optimizer_state, averaged, best_loss, ema_steps, steps = self._state
        state = {
            "image": np.asarray(image)[0],
            "averaged": np.asarray(averaged)[0],
            "best_loss": np.float32(best_loss),
            "ema_steps": np.float32(ema_steps),
            "steps": np.int64(steps),
        }
        for name, value in zip(self._names, optimizer_state, strict=True):
            state[f"optimizer/{name}"] = np.array(value)
        return state

    def load_state(self, state):
        """Restore a `state()` so that `run` continues exactly as the runner that made it.

        Args:
            state: a dict from `state()` of a runner with the same settings and image size.

        Raises:
            ValueError: the state does not fit (image shape; missing, extra or reshaped
                optimizer variables), naming what.
        """
        image, optimizer_state, *_ = self._state
        shape = tuple(image.shape[1:])
        for key in ("image", "averaged"):
            if np.shape(state[key]) != shape:
                raise ValueError(f"state {key} has shape {np.shape(state[key])}, not {shape}")
        check_optimizer_state(
            state, {n: tuple(v.shape) for n, v in zip(self._names, optimizer_state, strict=True)}
        )
        self._state = (
            jnp.asarray(np.asarray(state["image"], np.float32)[None]),
            [
                jnp.asarray(np.asarray(state[f"optimizer/{name}"]).astype(current.dtype))
                for name, current in zip(self._names, optimizer_state, strict=True)
            ],
            jnp.asarray(np.asarray(state["averaged"], np.float32)[None]),
            jnp.asarray(np.float32(state["best_loss"])),
            jnp.asarray(int(state.get("ema_steps", 0)), jnp.int32),
            jnp.asarray(int(state["steps"]), jnp.int32),
        )

    def value_and_grad(self, image, targets):
        """The losses and the gradient of the objective at `image`, for L-BFGS.

        Args:
            image: float `[H, W, 3]`.
            targets: the scale's targets.

        Returns:
            `({loss name: float}, gradient)`: the gradient float32 `[H, W, 3]`, of `total * H
            * W` (see `tfstyle.optimize.step`), unscaled again under float16.
        """
        batch = jnp.asarray(np.asarray(image, np.float32)[None])
        while True:
            scale = self._static_scale
            losses, grad = self._compiled.value_and_grad(self._weights, batch, targets, scale)
            grad = np.asarray(grad)[0]
            # Float16 gradients that overflowed: halve the scale and evaluate again.
            if np.all(np.isfinite(grad)) or scale <= 1.0:
                break
            self._static_scale = scale / 2
        return {k: float(v) for k, v in losses.items()}, grad / scale


class _Spec:
    """The static parts of a step: what the compiled functions close over."""

    def __init__(self, extractor, loss_fn, optimizer, average, ema_decay, loss_scale):
        self.extractor = extractor
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.average = average
        self.ema_decay = ema_decay
        # Where the LossScaleOptimizer keeps its scale among the optimizer's variables.
        self.scale_index = None
        if loss_scale and optimizer is not None:
            variables = optimizer.variables
            self.scale_index = next(
                i for i, v in enumerate(variables) if v is optimizer.dynamic_scale
            )


def _cache_key(spec):
    # Two specs with equal keys trace to the same program: the optimizer's state is an
    # argument, so only its class and settings matter, not the object.
    return (
        id(spec.extractor),
        _function_key(spec.loss_fn),
        None if spec.optimizer is None else _settings_key(spec.optimizer),
        spec.average,
        spec.ema_decay if spec.average == "ema" else None,
        spec.scale_index,
    )


def _settings_key(optimizer):
    """Class and plain settings of a Keras optimizer, its schedule and any inner optimizer.

    Read from the attributes, not `get_config()`, which imports TensorFlow to serialise a
    schedule even on the JAX backend.
    """
    items = [type(optimizer)]
    for key, value in sorted(vars(optimizer).items()):
        if key in ("name", "built", "_lock"):
            continue
        if value is None or isinstance(value, bool | int | float | str):
            items.append((key, value))
        elif isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
            settings = json.dumps(value.get_config(), sort_keys=True, default=repr)
            items.append((key, type(value), settings))
        elif isinstance(value, keras.optimizers.Optimizer):
            items.append((key, _settings_key(value)))
    return tuple(items)


def _function_key(function):
    if isinstance(function, functools.partial):
        settings = json.dumps(function.keywords, sort_keys=True, default=repr)
        return (function.func, repr(function.args), settings)
    return function


_CACHE = {}
_CACHE_SIZE = 16


class _Compiled:
    """A spec's `run(state, weights, targets, steps)` and `value_and_grad(weights, image,
    targets, scale)`, compiled when `jit`, and how many times `run` was traced."""

    def __init__(self, spec, chunk, jit):
        self.traces = 0

        def run_steps(state, weights, targets, steps):
            self.traces += 1  # Python runs only while tracing
            return _run_steps(spec, state, weights, targets, steps, chunk=chunk)

        self.run = run_steps
        self.value_and_grad = functools.partial(_losses_and_grad, spec)
        if jit:
            # The CPU backend ignores donation (and warns), so donate only on accelerators.
            donate = (0,) if jax.default_backend() != "cpu" else ()
            self.run = jax.jit(run_steps, donate_argnums=donate)
            self.value_and_grad = jax.jit(self.value_and_grad)


def _compiled(key, spec, chunk, jit):
    """The `_Compiled` functions of `spec`, cached by `key`."""
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _Compiled(spec, chunk, jit)
    return _CACHE[key]


def _losses_and_grad(spec, weights, image, targets, scale):
    """Losses and the gradient of `scale` times the objective (see `tfstyle.optimize.step`)."""
    pixels = image.shape[1] * image.shape[2]

    def objective(x):
        features, _ = spec.extractor.stateless_call(*weights, x, training=False)
        losses = spec.loss_fn(features, x, targets)
        return losses["total"] * pixels * scale, losses

    (_, losses), grad = jax.value_and_grad(objective, has_aux=True)(image)
    return losses, grad


def _run_steps(spec, state, weights, targets, steps, *, chunk):
    """`steps` (traced, at most `chunk`) updates; the losses in `chunk`-long buffers."""

    def step(i, carry):
        state, history = carry
        image, optimizer_state, averaged, best_loss, ema_steps, count = state
        # The LossScaleOptimizer divides by its scale again, and skips non-finite steps.
        scale = 1.0 if spec.scale_index is None else optimizer_state[spec.scale_index]
        losses, grad = _losses_and_grad(spec, weights, image, targets, scale)
        (updated,), optimizer_state = spec.optimizer.stateless_apply(
            optimizer_state, [grad], [image]
        )
        # Projected gradient descent: keep pixels in the valid range after every update.
        updated = jnp.clip(updated, 0.0, 1.0)
        averaged, best_loss = _update_average(
            spec, image, updated, losses["total"], averaged, best_loss
        )
        history = {k: history[k].at[i].set(losses[k].astype(jnp.float32)) for k in LOSS_NAMES}
        # Counted only with "ema", as the TensorFlow runner does: a checkpoint holds the same
        # state on either backend.
        ema_steps = ema_steps + 1 if spec.average == "ema" else ema_steps
        state = (updated, optimizer_state, averaged, best_loss, ema_steps, count + 1)
        return state, history

    history = {k: jnp.zeros((chunk,), jnp.float32) for k in LOSS_NAMES}
    return jax.lax.fori_loop(0, steps, step, (state, history))


def _update_average(spec, current, updated, loss, averaged, best_loss):
    if spec.average == "ema":
        decay = spec.ema_decay
        return decay * averaged + (1.0 - decay) * updated, best_loss
    if spec.average == "best":
        # `loss` belongs to `current`, the image before this update.
        better = loss < best_loss
        return jnp.where(better, current, averaged), jnp.where(better, loss, best_loss)
    return averaged, best_loss
