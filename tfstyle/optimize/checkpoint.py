"""Where an interrupted stylization stood, as a value: enough to continue it exactly.

`stylize` raises `tfstyle.errors.Interrupted` carrying a `Checkpoint`; `stylize(...,
resume=checkpoint)` continues from it. `to_arrays`/`from_arrays` turn a checkpoint into a flat
dict of NumPy arrays and back (no pickles), which `tfstyle.io.save_npz`/`load_npz` write and read
atomically; the settings travel inside as JSON.

Resuming continues the same arithmetic: the image, the averaged image, and the optimizer's
variables (Adam's moments, the step counter that drives the learning-rate schedule) are
restored, and the chunks of steps line up with an uninterrupted run's. Nothing is random after
the initial image, so on the CPU the result equals an uninterrupted run's within float
tolerance. L-BFGS is the exception: scipy does not expose its memory of past gradients, so a
resumed L-BFGS scale restarts that memory from the saved image (a close, not an equal result).

A checkpoint records where it was made (`environment`: the Keras backend and the Keras and
tfstyle versions) and resumes only where the same arithmetic runs: another backend, or another
Keras major or minor version, is refused with one line; a Keras patch release or another tfstyle
version only warns (the settings and the optimizer's variables, matched by name and shape when
the runner loads them, are checked on their own). See docs/reliability.md.
"""

import dataclasses
import hashlib
import json
import warnings

import numpy as np

from tfstyle.errors import CheckpointError, ConfigError
from tfstyle.settings.style import LOSS_NAMES, StyleConfig

# 2: optimizer variables by name, and the environment (backend and versions) recorded.
FORMAT_VERSION = 2

# Settings that do not change the result: the CLI derives steps_per_call from --save_every, and
# how steps are grouped into compiled calls does not change the arithmetic; the memory check
# only decides whether a run starts; tiles give the untiled step's loss and gradient (within
# float rounding), so a run stopped for memory can resume tiled.
RESULT_NEUTRAL_SETTINGS = ("steps_per_call", "memory_check", "tile_size")


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """The state of an interrupted `stylize` call.

    Attributes:
        config: the run's settings.
        scale: 0-based index of the scale in progress (equal to the number of scales when all
            were done and only the finishing touches were left).
        step: steps done over the whole run; the next step is `step + 1`.
        image: float32 `[H, W, 3]` in [0, 1] at the size of scale `scale` (or of the previous
            scale when that one had not started): the run's current image, averaged when
            averaging is on. What an interrupted run saves, and where a scale without
            `runner_state` starts from.
        runner_state: the step runner's `state()` (see `tfstyle.optimize.step`) at scale `scale`;
            empty when the scale had not started, and for L-BFGS.
        history: `{loss name: float32 array}` of the steps done (NaN for the losses of steps
            whose compiled call finished just as the interrupt came).
        evaluations: objective evaluations so far.
        inputs: digest of the content, style and init images (see `digest_images`).
        environment: `{"backend", "keras", "tfstyle"}` where the checkpoint was made
            (`current_environment()` by default).
    """

    config: StyleConfig
    scale: int
    step: int
    image: np.ndarray
    runner_state: dict
    history: dict
    evaluations: int
    inputs: str
    environment: dict = dataclasses.field(default_factory=lambda: current_environment())

    def check_resumable(self, config, inputs):
        """Raise CheckpointError unless a run with `config` and images digested as `inputs`
        can continue from this checkpoint and give the result it would have given.

        Args:
            config: the new run's `StyleConfig`.
            inputs: `digest_images` of the new run's images.

        Raises:
            CheckpointError: other settings, environment or images.
        """
        self.check_settings(config)
        if inputs != self.inputs:
            raise CheckpointError(
                "the checkpoint was made from other content, style, init or mask images; resume "
                "with the same images, or start again"
            )

    def check_settings(self, config):
        """Raise CheckpointError if `config` differs from the checkpoint's settings in anything
        that changes the result, or if it was made on another backend or Keras version (see
        `check_environment`; the images are checked by `check_resumable`).

        Args:
            config: the new run's `StyleConfig`; `RESULT_NEUTRAL_SETTINGS` may differ.

        Raises:
            CheckpointError: naming up to three settings that differ.
        """
        self.check_environment()
        now = _compared(config)
        if now["precision"] == "auto":
            # The checkpoint holds the precision its run resolved "auto" to; `stylize` resolves
            # it here before calling `check_resumable`, so a run that would compute in another
            # precision is refused there, not here (the CLI checks before TensorFlow loads).
            now["precision"] = self.config.precision
        differences = [
            f"{key} {_show(before)} there, {_show(now[key])} now"
            for key, before in _compared(self.config).items()
            if key not in RESULT_NEUTRAL_SETTINGS and before != now[key]
        ]
        if differences:
            shown = "; ".join(differences[:3]) + ("; ..." if len(differences) > 3 else "")
            raise CheckpointError(
                f"the checkpoint was made with other settings ({shown}); resume with the same "
                "settings, or start again"
            )

    def check_environment(self, now=None):
        """Raise CheckpointError if the checkpoint was made on another Keras backend or another
        Keras major.minor version than `now` (default: `current_environment()`); warn for a
        Keras patch release or another tfstyle version alone.

        Args:
            now: `{"backend", "keras", "tfstyle"}`, or None for this process's.

        Raises:
            CheckpointError: another backend or Keras major.minor version.
        """
        now = now or current_environment()
        then = self.environment
        if then["backend"] != now["backend"]:
            raise CheckpointError(
                f"the checkpoint was made on the {then['backend']} backend and this run uses "
                f"{now['backend']}; resume with KERAS_BACKEND={then['backend']}, or start again"
            )
        if _minor(then["keras"]) != _minor(now["keras"]):
            raise CheckpointError(
                f"the checkpoint was made with Keras {then['keras']} and this is Keras "
                f"{now['keras']}; resume with Keras {_minor(then['keras'])}.x, or start again"
            )
        for name, label in (("keras", "Keras"), ("tfstyle", "tfstyle")):
            if then[name] != now[name]:
                warnings.warn(
                    f"the checkpoint was made with {label} {then[name]} and this is "
                    f"{label} {now[name]}; resuming anyway",
                    stacklevel=3,
                )

    def to_arrays(self):
        """A flat `{name: np.ndarray}` of everything (strings as 0-d unicode arrays)."""
        arrays = {
            "format": np.int64(FORMAT_VERSION),
            "config": np.str_(json.dumps(self.config.to_dict())),
            "inputs": np.str_(self.inputs),
            "scale": np.int64(self.scale),
            "step": np.int64(self.step),
            "evaluations": np.int64(self.evaluations),
            "image": np.asarray(self.image, np.float32),
        }
        arrays.update({f"environment/{k}": np.str_(v) for k, v in self.environment.items()})
        arrays.update({f"history/{k}": np.asarray(v, np.float32) for k, v in self.history.items()})
        arrays.update({f"state/{k}": np.asarray(v) for k, v in self.runner_state.items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays):
        """The checkpoint `to_arrays` described; CheckpointError if something is missing or
        of the wrong kind (another program's file, another version).

        Args:
            arrays: a mapping of names to arrays, as `to_arrays` gives (or `np.load` reads).

        Returns:
            A `Checkpoint`.

        Raises:
            CheckpointError: another format version, or a missing or malformed entry.
        """
        try:
            version = int(arrays["format"])
            if version != FORMAT_VERSION:
                raise CheckpointError(
                    f"checkpoint format {version} is not supported (this tfstyle reads format "
                    f"{FORMAT_VERSION}); start again"
                )
            config = StyleConfig(**json.loads(str(arrays["config"])))
            image = np.asarray(arrays["image"], np.float32)
            if image.ndim != 3 or image.shape[-1] != 3:
                raise ValueError(f"image of shape {image.shape}")
            return cls(
                config=config,
                scale=int(arrays["scale"]),
                step=int(arrays["step"]),
                image=image,
                runner_state=_section(arrays, "state/"),
                history={k: np.asarray(arrays[f"history/{k}"], np.float32) for k in LOSS_NAMES},
                evaluations=int(arrays["evaluations"]),
                inputs=str(arrays["inputs"]),
                environment={k: str(arrays[f"environment/{k}"]) for k in ENVIRONMENT_KEYS},
            )
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise CheckpointError(f"not a valid tfstyle checkpoint ({detail})") from exc


ENVIRONMENT_KEYS = ("backend", "keras", "tfstyle")


def current_environment():
    """`{"backend", "keras", "tfstyle"}` of this process."""
    import keras

    import tfstyle

    return {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "tfstyle": tfstyle.__version__,
    }


def _minor(version):
    """'3.15' of '3.15.1' (or of '3.15.1.dev0')."""
    return ".".join(version.split(".")[:2])


def digest_images(*images):
    """A short hex digest of float images (their shapes and values), to recognise the inputs a
    checkpoint was made from.

    Args:
        *images: float arrays (compared as float32).

    Returns:
        32 hex digits of their SHA-256.
    """
    digest = hashlib.sha256()
    for image in images:
        array = np.ascontiguousarray(image, np.float32)
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:32]


def _section(arrays, prefix):
    return {k[len(prefix) :]: np.asarray(v) for k, v in arrays.items() if k.startswith(prefix)}


def _show(value):
    return "none" if value is None else json.dumps(value) if isinstance(value, list) else value


def _compared(config):
    """`config.to_dict()` with the style weight in force: a default (None) and the same weight
    given explicitly compute the same result."""
    return {**config.to_dict(), "style_weight": config.effective_style_weight}
