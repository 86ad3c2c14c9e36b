"""TensorFlow runner: a `tf.function` with `GradientTape`, several steps per call."""

import keras
import numpy as np
import tensorflow as tf

from tfstyle.optimize.step import (
    STATIC_LOSS_SCALE,
    check_optimizer_state,
    chunk_counts,
    join_histories,
    optimizer_variable_names,
)
from tfstyle.settings.style import LOSS_NAMES


class TensorFlowRunner:
    """See `tfstyle.optimize.step` for the interface; built by `make_runner`, whose Args these
    are.

    `run` traces once per image size, whatever the number of steps: the count is a tensor
    argument and the loss buffers hold `chunk` steps (see `tfstyle.optimize.step`). Targets are
    arguments, not captured constants, so new content and style images of the same size reuse
    the traced graph.
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
        self._extractor = extractor
        self._loss_fn = loss_fn
        if loss_scale and optimizer is not None:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        self._optimizer = optimizer
        self._chunk = int(chunk)
        self._loss_scale = loss_scale
        self._static_scale = STATIC_LOSS_SCALE if loss_scale else 1.0
        self._average = average
        self._ema_decay = float(ema_decay)
        image = np.asarray(image, np.float32)[None]
        self._variable = tf.Variable(image, name="image")
        # The averaged image: an exponential moving average (started at zero and bias-corrected,
        # as Adam's moments are, so the initial image does not linger), or the lowest-loss image.
        start = np.zeros_like(image) if average == "ema" else image
        self._averaged = tf.Variable(start, name="averaged_image")
        self._best_loss = tf.Variable(np.inf, dtype=tf.float32, name="best_loss")
        self._ema_steps = tf.Variable(0.0, dtype=tf.float32, name="ema_steps")
        # Updates applied, skipped float16 steps included (the optimizer's own counter leaves
        # those out): what checkpoints and the multi-scale plan count.
        self._steps = tf.Variable(0, dtype=tf.int64, name="steps")
        if optimizer is not None:
            optimizer.build([self._variable])
        self._names = optimizer_variable_names(optimizer)
        # The optimizer's fresh state (step count, moments), restored by `reset`.
        self._initial_state = [v.numpy() for v in optimizer.variables] if optimizer else []
        # XLA is not faster than TensorFlow's own CPU kernels for VGG's big convolutions
        # (scripts/benchmark.py), so it is used only when asked for or on a GPU.
        if jit_compile is None:
            jit_compile = bool(tf.config.list_physical_devices("GPU"))
        self._run = tf.function(self._run_steps, jit_compile=jit_compile, reduce_retracing=True)
        self._value_and_grad = tf.function(self._losses_and_grad, reduce_retracing=True)

    def _losses_and_grad(self, image, targets, scale):
        """Losses and the gradient of `scale` times the objective (see `tfstyle.optimize.step`)."""
        with tf.GradientTape() as tape:
            tape.watch(image)
            losses = self._loss_fn(self._extractor(image, training=False), image, targets)
            pixels = tf.cast(tf.shape(image)[1] * tf.shape(image)[2], tf.float32)
            objective = losses["total"] * pixels * scale
        return losses, tape.gradient(objective, image)

    def _run_steps(self, targets, steps):
        # `steps` (at most `chunk`) is a tensor, so one trace serves every count; the buffers
        # have a fixed size, and the entries past `steps` stay zero (`run` drops them).
        history = {
            k: tf.TensorArray(tf.float32, size=self._chunk, element_shape=()) for k in LOSS_NAMES
        }
        for i in tf.range(steps):
            current = tf.identity(self._variable)
            # The LossScaleOptimizer divides by its scale again, and skips non-finite steps.
            scale = self._optimizer.dynamic_scale if self._loss_scale else 1.0
            losses, grad = self._losses_and_grad(current, targets, scale)
            self._optimizer.apply_gradients([(grad, self._variable)])
            # Projected gradient descent: keep pixels in the valid range after every update.
            self._variable.assign(tf.clip_by_value(self._variable, 0.0, 1.0))
            self._update_average(current, losses["total"])
            self._steps.assign_add(1)
            history = {k: history[k].write(i, losses[k]) for k in history}
        return {k: v.stack() for k, v in history.items()}

    def _update_average(self, current, loss):
        if self._average == "ema":
            decay = self._ema_decay
            self._averaged.assign(decay * self._averaged + (1.0 - decay) * self._variable)
            self._ema_steps.assign_add(1.0)
        elif self._average == "best":
            # `loss` belongs to `current`, the image before this update.
            better = loss < self._best_loss
            self._averaged.assign(tf.where(better, current, self._averaged))
            self._best_loss.assign(tf.where(better, loss, self._best_loss))

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
            history = self._run(targets, tf.constant(count, tf.int32))
            parts.append({k: v.numpy()[:count] for k, v in history.items()})
        return join_histories(parts)

    def trace_count(self):
        """How many times `run`'s step has been traced (compiled) so far."""
        return self._run.experimental_get_tracing_count()

    def image(self, averaged=False):
        """The current image.

        Args:
            averaged: the moving average or best image instead, when averaging is on.

        Returns:
            float32 `[H, W, 3]` in [0, 1].
        """
        if averaged and self._average == "ema" and self._ema_steps.numpy() > 0:
            correction = 1.0 - self._ema_decay ** float(self._ema_steps.numpy())
            return np.clip(self._averaged.numpy()[0] / correction, 0.0, 1.0)
        if averaged and self._average == "best":
            return self._averaged.numpy()[0]
        return self._variable.numpy()[0]

    def assign(self, image):
        """Replace the current image, keeping the optimizer state.

        Args:
            image: float32 `[H, W, 3]` of the runner's size.
        """
        self._variable.assign(np.asarray(image, np.float32)[None])

    def reset(self, image):
        """Start afresh from `image`: image, averages and optimizer state as new, compiled
        functions kept (the next image of this size does not compile again).

        Args:
            image: float32 `[H, W, 3]` of the runner's size.
        """
        # Variables are assigned, never replaced, so the traced functions stay valid.
        image = np.asarray(image, np.float32)[None]
        self._variable.assign(image)
        self._averaged.assign(np.zeros_like(image) if self._average == "ema" else image)
        self._best_loss.assign(np.inf)
        self._ema_steps.assign(0.0)
        self._steps.assign(0)
        if self._optimizer is not None:
            for variable, value in zip(self._optimizer.variables, self._initial_state, strict=True):
                variable.assign(value)

    def state(self):
        """Everything `run` depends on, as NumPy arrays, for checkpoints.

        Returns:
            The dict `tfstyle.optimize.step` describes ("image", "averaged", "best_loss",
            "ema_steps", "steps", "optimizer/<name>").
        """
        state = {
            "image": self._variable.numpy()[0],
            "averaged": self._averaged.numpy()[0],
            "best_loss": np.float32(self._best_loss.numpy()),
            "ema_steps": np.float32(self._ema_steps.numpy()),
            "steps": np.int64(self._steps.numpy()),
        }
        if self._optimizer is not None:
            for name, variable in zip(self._names, self._optimizer.variables, strict=True):
                state[f"optimizer/{name}"] = np.array(variable.numpy())
        return state

    def load_state(self, state):
        """Restore a `state()` so that `run` continues exactly as the runner that made it.

        Args:
            state: a dict from `state()` of a runner with the same settings and image size.

        Raises:
            ValueError: the state does not fit (image shape; missing, extra or reshaped
                optimizer variables), naming what.
        """
        shape = tuple(self._variable.shape[1:])
        for key in ("image", "averaged"):
            if np.shape(state[key]) != shape:
                raise ValueError(f"state {key} has shape {np.shape(state[key])}, not {shape}")
        variables = self._optimizer.variables if self._optimizer is not None else []
        shapes = {n: tuple(v.shape) for n, v in zip(self._names, variables, strict=True)}
        check_optimizer_state(state, shapes)
        self._variable.assign(np.asarray(state["image"], np.float32)[None])
        self._averaged.assign(np.asarray(state["averaged"], np.float32)[None])
        self._best_loss.assign(np.float32(state["best_loss"]))
        self._ema_steps.assign(np.float32(state.get("ema_steps", 0.0)))
        self._steps.assign(np.int64(state["steps"]))
        for name, variable in zip(self._names, variables, strict=True):
            variable.assign(np.asarray(state[f"optimizer/{name}"]).astype(variable.dtype))

    def value_and_grad(self, image, targets):
        """The losses and the gradient of the objective at `image`, for L-BFGS.

        Args:
            image: float `[H, W, 3]`.
            targets: the scale's targets.

        Returns:
            `({loss name: float}, gradient)`: the gradient float32 `[H, W, 3]`, of `total * H
            * W` (see `tfstyle.optimize.step`), unscaled again under float16.
        """
        batch = tf.constant(np.asarray(image, np.float32)[None])
        while True:
            scale = self._static_scale
            losses, grad = self._value_and_grad(batch, targets, tf.constant(scale, tf.float32))
            grad = grad.numpy()[0]
            # Float16 gradients that overflowed: halve the scale and evaluate again.
            if np.all(np.isfinite(grad)) or scale <= 1.0:
                break
            self._static_scale = scale / 2
        return {k: float(v) for k, v in losses.items()}, grad / scale
