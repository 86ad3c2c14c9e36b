"""Where a `stylize` call stands (`RunState`: scale, image or runner, history), how it becomes
a `Checkpoint` and starts again from one, and the per-step `Progress` records (`Clock`)."""

import time

import numpy as np

from tfstyle.errors import CheckpointError
from tfstyle.ops import preprocessing as pp
from tfstyle.optimize.checkpoint import Checkpoint
from tfstyle.optimize.progress import Progress
from tfstyle.settings.style import LOSS_NAMES


class RunState:
    """Where a `stylize` call stands: the scale in progress, its image or runner, the history
    and evaluations so far. Kept so that an interruption can become a `Checkpoint`, and
    started from one on resume.

    Args:
        config: the run's `StyleConfig`.
        clock: the run's `Clock` (its step count is the run's).
        inputs: a callable returning the digest of the inputs, for `Checkpoint.inputs`.
        resume: a `Checkpoint` to continue from, or None.
        scale_steps: the steps of each scale, coarse to fine.
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
        """The steps already taken in the scale in progress (nonzero when resumed mid-scale)."""
        return self.clock.step - sum(self.scale_steps[: self.scale])

    def attach(self, runner):
        """Make `runner` the current scale's, loading the pending state if there is one: a
        resumed state of this scale, or the previous scale's, whose optimizer state is
        resized and carried (crowsonkb's style-transfer carries Adam's moments the same way).

        Args:
            runner: the scale's runner (`optimize.step`), fresh or from the `RunnerCache`.

        Raises:
            CheckpointError: the pending state does not fit the runner.
        """
        if self.pending:
            try:
                runner.load_state(carried_state(self.pending, runner.state()))
            except (KeyError, ValueError) as exc:
                raise CheckpointError(
                    f"the checkpoint's optimizer state does not fit this run ({exc}); start again"
                ) from exc
        self.runner = runner

    def record(self, chunk, *, evaluations):
        """Add a compiled call's losses to the history.

        Args:
            chunk: `{loss name: array of the call's steps}`.
            evaluations: the objective evaluations the call made.
        """
        for name in LOSS_NAMES:
            self.history[name].append(np.asarray(chunk[name], np.float32))
        self.evaluations += evaluations

    def next_scale(self, image):
        """The scale in progress finished with `image`; the next one starts from it and from
        its optimizer state.

        Args:
            image: the finished scale's image, float32 `[H, W, 3]`.
        """
        self.pending = {} if self.runner is None else self.runner.state()
        self.scale, self.image, self.runner = self.scale + 1, image, None

    def full_history(self, length=None):
        """The history as arrays, padded with NaN to `length` steps if given.

        Args:
            length: the number of steps wanted, or None for those recorded.

        Returns:
            `{loss name: float32 [steps]}`.
        """
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


def carried_state(pending, fresh):
    """The state to load into a runner whose own state is `fresh`: `pending` itself when it
    has the runner's image size (a resumed scale); else `fresh` with `pending`'s step count and
    optimizer variables, those of the image's shape resized to the new size (a new scale, which
    starts from its own image).

    Args:
        pending: a runner state (`runner.state()`) of this scale or the previous one.
        fresh: the new runner's own state.

    Returns:
        A runner state for `runner.load_state`.
    """
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


class Clock:
    """Turns per-chunk loss arrays into per-step `Progress` records for the callbacks.

    Args:
        start: `time.perf_counter()` at the start of the run.
        total_steps: the run's steps in all scales.
        callbacks: callables, each given every `Progress` record.
        tiles: `size -> the number of tiles of that scale's step`, or None (untiled).
    """

    def __init__(self, start, *, total_steps, callbacks, tiles=None):
        self.start = start
        self.tiles = tiles
        self.total_steps = total_steps
        self.callbacks = tuple(callbacks)
        self.step = 0

    def report(self, chunk, *, scale, size, image):
        """Call every callback once per step of a compiled call, in order.

        Args:
            chunk: `{loss name: array of the call's steps}`.
            scale: the scale's index, from 0.
            size: the scale's `(height, width)`.
            image: the image after the call (given with the call's last record only).
        """
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
                tiles=self.tiles(size) if self.tiles else 1,
            )
            for callback in self.callbacks:
                callback(record)
