"""Keras optimizers and learning-rate schedules for image optimisation.

`make_optimizer` builds SGD or Adam with one of the `config.SCHEDULES`; L-BFGS is not a Keras
optimizer and lives in `lbfgs.py`.
"""

import math

import keras
from keras import ops

from tfstyle.settings.style import DEFAULTS, SGD_GRADIENT_CLIP_RMS


@keras.saving.register_keras_serializable(package="tfstyle")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Smith's one-cycle policy as fastai runs it: cosine warm-up from `max_lr / div_factor` to
    `max_lr` over `pct_start` of the steps, then cosine annealing to `max_lr / final_div`.

    Args:
        max_lr: the peak learning rate.
        total_steps: the steps of the whole cycle.
        pct_start: the fraction of the steps spent warming up.
        div_factor: the starting rate is `max_lr / div_factor`.
        final_div: the final rate is `max_lr / final_div`.
    """

    def __init__(self, max_lr, total_steps, *, pct_start=0.3, div_factor=25.0, final_div=1e4):
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div = float(final_div)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = max(1.0, self.pct_start * self.total_steps)
        cool = max(1.0, self.total_steps - warm)
        start, end = self.max_lr / self.div_factor, self.max_lr / self.final_div
        up = ops.clip(step / warm, 0.0, 1.0)
        down = ops.clip((step - warm) / cool, 0.0, 1.0)
        rising = start + (self.max_lr - start) * (1 - ops.cos(math.pi * up)) / 2
        falling = end + (self.max_lr - end) * (1 + ops.cos(math.pi * down)) / 2
        return ops.where(step < warm, rising, falling)

    def get_config(self):
        """The constructor's arguments, for Keras serialisation."""
        return {
            "max_lr": self.max_lr,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div": self.final_div,
        }


@keras.saving.register_keras_serializable(package="tfstyle")
class PreconditionedSGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` (momentum, Nesterov, schedules) on a preconditioned gradient.

    Each value's gradient is divided by the root of a bias-corrected moving average of its own
    squared gradients (decay `rms_decay`, RMSprop's diagonal preconditioner) before SGD's
    update. A deviation from the Keras example and from Gatys et al., who step on the raw
    gradient: on raw pixel gradients, plain SGD spends its steps on the high frequencies, where
    the gradient is large, and the colours and large shapes of the painting barely move (the
    default run gave back the photo with faint noise). With every value's step normalised, the
    update's size is set by the learning rate alone, as with Adam, while the rest of the update
    stays SGD's: `learning_rate` (and its schedule), `momentum` and `nesterov`.

    Args:
        rms_decay: decay of the moving average of squared gradients per step.
        epsilon: added to the root, in gradient units; damps values whose gradient is tiny.
        **kwargs: `keras.optimizers.SGD`'s arguments.
    """

    def __init__(self, *, rms_decay=0.99, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.rms_decay = float(rms_decay)
        self.epsilon = float(epsilon)

    def build(self, variables):
        """Create SGD's state and one mean-square slot per variable.

        Args:
            variables: the variables optimised.
        """
        if self.built:
            return
        super().build(variables)
        self.mean_squares = self.add_optimizer_variables(variables, "mean_square")

    def update_step(self, gradient, variable, learning_rate):
        """SGD's update on the gradient divided by its bias-corrected running RMS.

        Args:
            gradient: the variable's gradient.
            variable: the variable updated.
            learning_rate: the rate in force at this step.
        """
        gradient = ops.cast(gradient, variable.dtype)
        mean_square = self.mean_squares[self._get_variable_index(variable)]
        decay = ops.cast(self.rms_decay, variable.dtype)
        self.assign(mean_square, decay * mean_square + (1.0 - decay) * ops.square(gradient))
        # Bias correction, as Adam's: the average starts at zero.
        steps = ops.cast(self.iterations + 1, variable.dtype)
        corrected = mean_square / (1.0 - ops.power(decay, steps))
        scaled = gradient / (ops.sqrt(corrected) + self.epsilon)
        super().update_step(scaled, variable, learning_rate)

    def get_config(self):
        """SGD's config plus `rms_decay` and `epsilon`, for Keras serialisation."""
        return {**super().get_config(), "rms_decay": self.rms_decay, "epsilon": self.epsilon}


def make_schedule(name, learning_rate, total_steps):
    """A Keras `LearningRateSchedule` (or a float for "constant") over `total_steps` steps.

    Args:
        name: one of `StyleConfig`'s schedules ("constant", "exponential", "piecewise",
            "polynomial", "cosine", "cosine_restarts", "one_cycle").
        learning_rate: the starting (for "one_cycle", the peak) rate.
        total_steps: the run's steps in all scales.

    Returns:
        A `LearningRateSchedule`, or a float.

    Raises:
        ValueError: an unknown name (settings refuse it first).
    """
    schedules = keras.optimizers.schedules
    total_steps = max(1, int(total_steps))
    if name == "constant":
        return float(learning_rate)
    if name == "exponential":
        # The Keras example's schedule: x0.96 every 100 steps.
        return schedules.ExponentialDecay(learning_rate, decay_steps=100, decay_rate=0.96)
    if name == "piecewise":
        bounds = [max(1, total_steps // 2), max(2, (3 * total_steps) // 4)]
        return schedules.PiecewiseConstantDecay(
            bounds, [learning_rate, learning_rate / 3, learning_rate / 10]
        )
    if name == "polynomial":
        return schedules.PolynomialDecay(
            learning_rate, total_steps, end_learning_rate=learning_rate / 100, power=1.0
        )
    if name == "cosine":
        return schedules.CosineDecay(learning_rate, total_steps, alpha=0.01)
    if name == "cosine_restarts":
        return schedules.CosineDecayRestarts(
            learning_rate, max(1, total_steps // 4), t_mul=1.0, m_mul=0.7, alpha=0.01
        )
    if name == "one_cycle":
        return OneCycle(learning_rate, total_steps)
    raise ValueError(f"unknown schedule {name!r}")


def make_optimizer(
    *,
    name=DEFAULTS.optimizer,
    learning_rate=DEFAULTS.lr,
    schedule=DEFAULTS.schedule,
    total_steps=DEFAULTS.iterations,
    values=None,
    momentum=DEFAULTS.momentum,
    precondition=DEFAULTS.precondition,
):
    """A fresh Keras optimizer ("sgd" or "adam") with its learning-rate schedule.

    SGD uses `momentum` (Nesterov's, when not 0) and, with `precondition="rms"`, steps on the
    preconditioned gradient of `PreconditionedSGD`. With `precondition="none"` it steps on the
    raw gradient, as the Keras example does, and `values` (the number of values optimised,
    H * W * 3) clips the gradient's global norm to `SGD_GRADIENT_CLIP_RMS` per value (see
    settings/style.py; None: no clipping).

    Adam uses beta_1=0.99 and epsilon=0.1, the TensorFlow style-transfer tutorial's settings:
    the large epsilon damps the first steps, where Adam's normalised update is otherwise as large
    for a pixel with a tiny gradient as for one with a large one.

    Args:
        name: "sgd" or "adam".
        learning_rate: the starting rate.
        schedule: the schedule's name (`make_schedule`).
        total_steps: the run's steps in all scales.
        values: the number of values optimised (plain SGD's clipping), or None.
        momentum: SGD's momentum.
        precondition: SGD's gradient: "rms" or "none".

    Returns:
        A new `keras.optimizers.Optimizer`.

    Raises:
        ValueError: another name (L-BFGS is not a Keras optimizer).
    """
    rate = make_schedule(schedule, learning_rate, total_steps)
    if name == "sgd":
        sgd = {"learning_rate": rate, "momentum": momentum, "nesterov": momentum > 0}
        if precondition == "rms":
            return PreconditionedSGD(**sgd)
        return keras.optimizers.SGD(**sgd, global_clipnorm=sgd_clipnorm(values))
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=rate, beta_1=0.99, epsilon=0.1)
    raise ValueError(f"make_optimizer handles 'sgd' and 'adam', not {name!r}")


def sgd_clipnorm(values):
    """SGD's global gradient-norm limit for `values` optimised values, or None.

    Args:
        values: the number of values optimised, or None.

    Returns:
        `SGD_GRADIENT_CLIP_RMS * sqrt(values)`, or None for None.
    """
    if values is None:
        return None
    return float(SGD_GRADIENT_CLIP_RMS * math.sqrt(values))
