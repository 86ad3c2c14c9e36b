"""Training a fast stylizer (Johnson et al. 2016): `model.fit` on random crops of photos.

The loss is `tfstyle.PerceptualLoss` with the style image's Gram matrices computed once; the
content target of each crop is the crop itself. Training runs one Keras epoch per step
(`steps_per_epoch=1`): each epoch's log is then that step's loss, not a running mean, and a
resumed run starts at `initial_epoch` with the same step numbers, learning rate and batches as
an uninterrupted one.

Deviations from Johnson et al.: random crops and flips of any photos at `size` (the paper
squashes 80k COCO photos to 256 x 256 and runs 40k steps of batch 4) and the relative,
size-independent loss normalisation of `tfstyle.ops.losses` (so the weights differ from the
paper's).

Nothing here touches files or prints: checkpoints and previews are values handed to callables
the caller passes (the `train` command writes them), and Keras callbacks (TensorBoard, a
progress display) can be added.
"""

import dataclasses
import json
import math
import time

import keras
import numpy as np

import tfstyle
from tfstyle.errors import CheckpointError, Interrupted
from tfstyle.fast import data
from tfstyle.integrations.keras_losses import PerceptualLoss
from tfstyle.models.transformer import build_stylizer
from tfstyle.ops import preprocessing as pp
from tfstyle.optimize.step import with_precision
from tfstyle.settings.train import TRAIN_DEFAULTS

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class TrainCheckpoint:
    """Where a training run stood after `step` steps: enough to continue it exactly.

    Attributes:
        step: steps done.
        config: the run's settings, as `TrainConfig.to_dict()`.
        model: `{variable path: array}` of the stylizer.
        optimizer: `{variable path: array}` of the optimizer (Adam's moments, its step count).
        versions: `{"backend", "keras", "tfstyle"}` of the process that wrote it.
        history: `{loss name: [value per step]}` so far.
        seconds: training wall time so far, over every run that led here (0 in checkpoints
            written before tfstyle 0.2 recorded it).
        inputs: `{"style", "photos"}`: digests of the style image and of the training photos
            (`input_digests`), checked on resume (empty in checkpoints written before tfstyle
            0.2 recorded them: not checked).
    """

    step: int
    config: dict
    model: dict
    optimizer: dict
    versions: dict
    history: dict
    seconds: float = 0.0
    inputs: dict = dataclasses.field(default_factory=dict)

    def to_arrays(self):
        """A flat `{name: array}` dict (no pickles) for `image_io.save_npz`."""
        names = ("step", "config", "versions", "history", "seconds", "inputs")
        meta = {k: getattr(self, k) for k in names}
        arrays = {"meta": np.array(json.dumps({"format": FORMAT_VERSION, **meta}))}
        arrays.update({f"model/{k}": v for k, v in self.model.items()})
        arrays.update({f"optimizer/{k}": v for k, v in self.optimizer.items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays):
        """The inverse of `to_arrays`.

        Raises:
            CheckpointError: the arrays are not a tfstyle training checkpoint.
        """
        try:
            meta = json.loads(str(arrays["meta"]))
            if meta.pop("format") != FORMAT_VERSION:
                raise ValueError("format")
            groups = {"model": {}, "optimizer": {}}
            for name, value in arrays.items():
                group, _, path = name.partition("/")
                if group in groups:
                    groups[group][path] = value
            return cls(**meta, **groups)
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"not a tfstyle training checkpoint ({exc})") from None


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """A trained stylizer and how it got there.

    Attributes:
        model: the `keras.Model` (see `tfstyle.models.transformer`).
        history: `{loss name: [value per step]}` of the whole run, resumed steps included.
        config: the `TrainConfig`.
        seconds: wall time of this call.
        skipped: `(path, reason)` of each training file left out.
        total_seconds: training wall time over every run: the resumed checkpoint's and this
            call's.
    """

    model: keras.Model
    history: dict
    config: object
    seconds: float
    skipped: tuple = ()
    total_seconds: float = 0.0


def train_stylizer(
    style,
    photos,
    *,
    config=TRAIN_DEFAULTS,
    resume=None,
    on_checkpoint=None,
    on_preview=None,
    callbacks=(),
    stop=None,
):
    """Train a feed-forward network to paint photos in the style of `style`.

    Args:
        style: the style image, `[H, W, 3]` float in [0, 1] or uint8.
        photos: training photos: a folder, a list of paths, a list of images or a
            `TrainingSource` already made (see `tfstyle.fast.data.training_source`).
        config: a `TrainConfig`.
        resume: a `TrainCheckpoint` of an interrupted run with the same settings.
        on_checkpoint: called with a `TrainCheckpoint` every `config.checkpoint_every` steps
            and after the last step.
        on_preview: called with `(step, image)` every `config.preview_every` steps: the
            network applied to a centre crop of the first photo.
        callbacks: more `keras.callbacks.Callback`s for `model.fit` (one epoch is one step).
        stop: an object whose `is_set()` is checked after every step (a `threading.Event`, or
            the CLI's signal flag): when true, training stops there, as on KeyboardInterrupt.

    Returns:
        A `TrainResult`.

    Raises:
        Interrupted: on KeyboardInterrupt or `stop`, carrying the `TrainCheckpoint` of the last
            step done in `checkpoint` (resume with it).
        CheckpointError: `resume` was written with other settings or by another backend.
        ImageError: no usable training photo.
    """
    start = time.perf_counter()
    # precision="auto" resolved once: the model, the checkpoints and the result see the policy
    # that runs.
    config = with_precision(config)
    source = data.training_source(photos)
    inputs = input_digests(style, source)
    if resume is not None:  # before the network is built: a refusal costs nothing
        _check_inputs(resume, inputs)
    model = _compiled_model(style, config)
    history = {"loss": []}
    if resume is not None:
        _restore(model, resume, config)
        history = {k: list(v) for k, v in resume.history.items()}
    first = resume.step if resume is not None else 0
    batches = data.training_batches(
        source, size=config.size, batch_size=config.batch_size, seed=config.seed, start_step=first
    ).map(lambda x: (x, x))
    clock = _Clock(start, earlier=resume.seconds if resume is not None else 0.0)
    recorder = _Recorder(
        model, config, history, on_checkpoint, on_preview, source, stop, clock, inputs=inputs
    )
    try:
        if first < config.steps:
            model.fit(
                batches,
                epochs=config.steps,
                initial_epoch=first,
                steps_per_epoch=1,
                verbose=0,
                shuffle=False,  # the pipeline shuffles, reproducibly
                callbacks=[recorder, *callbacks],
            )
    except KeyboardInterrupt as exc:
        checkpoint = recorder.checkpoint(interrupted=True)
        raise Interrupted(
            f"training interrupted after step {checkpoint.step}",
            checkpoint=checkpoint,
            step=checkpoint.step,
            total_steps=config.steps,
        ) from exc
    if stop is not None and stop.is_set() and len(history["loss"]) < config.steps:
        checkpoint = recorder.checkpoint()
        raise Interrupted(
            f"training stopped after step {checkpoint.step}",
            checkpoint=checkpoint,
            step=checkpoint.step,
            total_steps=config.steps,
        )
    recorder.finish()
    return TrainResult(
        model, history, config, clock.this_run(), source.skipped, total_seconds=clock.total()
    )


class _Clock:
    """Training time: this call's, and the total with the runs before a resume."""

    def __init__(self, start, *, earlier):
        self._start, self._earlier = start, earlier

    def this_run(self):
        return time.perf_counter() - self._start

    def total(self):
        return self._earlier + self.this_run()


def _compiled_model(style, config):
    # The seed fixes the network's initial weights (and nothing else is random in training:
    # the data pipeline has its own stateless seeds).
    keras.utils.set_random_seed(config.seed)
    dtype = None if config.precision == "float32" else config.precision
    model = build_stylizer(width=config.width, residual_blocks=config.residual_blocks, dtype=dtype)
    style = pp.fit_to_max_size(pp.as_float_image(style), config.style_size)
    c = config.loss_config()
    loss = PerceptualLoss(
        content_layers=c.content_layers,
        style_layers=c.style_layers,
        content_weight=c.content_weight,
        style_weight=c.style_weight,
        tv_weight=c.tv_weight,
        style_image=style,
        network=c.network,
        weights=c.weights,
        pooling=c.pooling,
    )
    # A fixed name: variable paths start with it, and checkpoints are matched by path.
    optimizer = keras.optimizers.Adam(config.learning_rate, name="adam")
    if config.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=loss)
    model.optimizer.build(model.trainable_variables)
    return model


def _state(variables):
    return {v.path: np.asarray(keras.ops.convert_to_numpy(v)) for v in variables}


def input_digests(style, source):
    """`{"style", "photos"}`: digests of the style image (its pixels) and of the training
    photos (`data.source_digest`), which a resumed training must share."""
    from tfstyle.optimize.checkpoint import digest_images

    return {"style": digest_images(pp.as_float_image(style)), "photos": data.source_digest(source)}


def _check_inputs(checkpoint, inputs):
    """CheckpointError if the checkpoint was trained on another style image or other photos
    (the settings alone do not tell: the same flags can name other files)."""
    what = {"style": "another style image", "photos": "other training photos"}
    changed = [what[k] for k in what if checkpoint.inputs.get(k, inputs[k]) != inputs[k]]
    if changed:
        raise CheckpointError(
            f"the checkpoint was trained on {' and '.join(changed)}; resume with the same style "
            "image and photos, or start again"
        )


def _restore(model, checkpoint, config):
    versions = _versions()
    if checkpoint.versions.get("backend") != versions["backend"]:
        raise CheckpointError(
            f"the checkpoint was written with the {checkpoint.versions.get('backend')} backend; "
            f"this is {versions['backend']}: resume with the same KERAS_BACKEND"
        )
    if checkpoint.config != config.to_dict():
        changed = sorted(
            k for k, v in config.to_dict().items() if checkpoint.config.get(k) != v and k != "steps"
        )
        if changed:
            raise CheckpointError(
                f"the checkpoint was trained with other settings ({', '.join(changed)}); "
                "resume with the same settings (only steps may change)"
            )
    for group, variables in (("model", model.weights), ("optimizer", model.optimizer.variables)):
        _assign(variables, getattr(checkpoint, group), group)


def _assign(variables, saved, group):
    paths = {v.path for v in variables}
    if paths != set(saved):
        missing = sorted(paths - set(saved))[:3] or sorted(set(saved) - paths)[:3]
        raise CheckpointError(
            f"the checkpoint's {group} variables do not match this network "
            f"(first differences: {', '.join(missing)})"
        )
    for v in variables:
        value = saved[v.path]
        if tuple(value.shape) != tuple(v.shape):
            raise CheckpointError(
                f"the checkpoint's {group} variable {v.path} has shape {tuple(value.shape)}, "
                f"this network's {tuple(v.shape)}"
            )
        v.assign(value)


def _versions():
    return {
        "backend": keras.backend.backend(),
        "keras": keras.version(),
        "tfstyle": tfstyle.__version__,
    }


class _Recorder(keras.callbacks.Callback):
    """Keeps the per-step history and hands out checkpoints and previews."""

    def __init__(
        self, model, config, history, on_checkpoint, on_preview, source, stop, clock, *, inputs
    ):
        super().__init__()
        self._stop = stop
        self._clock = clock
        self._stylizer = model
        self._config = config
        self._history = history
        self._on_checkpoint = on_checkpoint
        self._on_preview = on_preview
        self._preview = data.preview_crop(source, size=config.size) if on_preview else None
        self._step = None
        self._iterations = int(model.optimizer.iterations)
        self._inputs = inputs  # `input_digests`, recorded in every checkpoint

    def on_epoch_end(self, epoch, logs=None):
        self._step = epoch + 1
        self._iterations = int(self._stylizer.optimizer.iterations)
        for name, value in (logs or {}).items():
            self._history.setdefault(name, []).append(float(value))
        every = self._config.checkpoint_every
        if self._on_checkpoint and every and self._step % every == 0:
            self._on_checkpoint(self.checkpoint())
        every = self._config.preview_every
        if self._on_preview and every and self._step % every == 0:
            self._on_preview(self._step, self.preview())
        if self._stop is not None and self._stop.is_set():
            self._stylizer.stop_training = True

    def finish(self):
        """After the last step: the final checkpoint, unless it was just taken."""
        every = self._config.checkpoint_every
        if self._on_checkpoint and self._step is not None and (not every or self._step % every):
            self._on_checkpoint(self.checkpoint())

    def preview(self):
        out = self._stylizer(self._preview[None], training=False)
        return np.asarray(keras.ops.convert_to_numpy(out))[0]

    def checkpoint(self, *, interrupted=False):
        """The state now. An interrupt usually lands just after a step's update and before
        Keras logs it (the KeyboardInterrupt is raised when the compiled call returns): the
        optimizer's step count tells, and that step is counted, with a NaN loss, so a resumed
        run does not apply it twice."""
        if interrupted and int(self._stylizer.optimizer.iterations) > self._iterations:
            for values in self._history.values():
                values.append(math.nan)
        return TrainCheckpoint(
            step=len(self._history["loss"]),
            config=self._config.to_dict(),
            model=_state(self._stylizer.weights),
            optimizer=_state(self._stylizer.optimizer.variables),
            versions=_versions(),
            history={k: list(v) for k, v in self._history.items()},
            seconds=self._clock.total(),
            inputs=self._inputs,
        )
