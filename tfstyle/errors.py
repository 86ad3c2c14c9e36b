"""The package's own exceptions: every user mistake surfaces as one of these.

The CLI turns any `TfstyleError` into one line on stderr and a non-zero exit; anything else is a
bug and keeps its traceback. `Interrupted` is the exception to the rule: not a mistake, but a
KeyboardInterrupt that carries the state needed to resume.
"""


class TfstyleError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""


class ImageError(TfstyleError):
    """An image file is missing, unreadable, corrupt, too large or of an unsupported kind."""


class OutputError(TfstyleError):
    """An output path cannot be written (missing directory, no permission, bad extension)."""


class ConfigError(TfstyleError, ValueError):
    """A setting is out of range or contradicts another one."""


class WeightsError(TfstyleError):
    """Network weights cannot be downloaded or loaded."""


class NonFiniteLossError(TfstyleError):
    """The loss became NaN or infinite during optimisation.

    Attributes:
        image: the last image whose loss was finite (float32 `[H, W, 3]`), or None.
        step: the optimisation steps that led to `image` (0: the starting image).
    """

    def __init__(self, message, *, image=None, step=0):
        super().__init__(message)
        self.image = image
        self.step = step


class CheckpointError(TfstyleError):
    """A checkpoint cannot be read, or belongs to another run (other settings or images)."""


class Interrupted(KeyboardInterrupt):
    """`stylize` was interrupted (Ctrl-C, or a signal its caller turned into a KeyboardInterrupt).

    A KeyboardInterrupt, not a TfstyleError: code that knows nothing of tfstyle still stops, as
    it would have without tfstyle; code that does can save what this carries and continue later
    with `stylize(..., resume=exc.checkpoint)`.

    Attributes:
        checkpoint: a `tfstyle.optimize.checkpoint.Checkpoint`, or None if the run was interrupted
            before it had an image.
        image: the current image, finished like a result (colours preserved as configured):
            what to save; None with `checkpoint`.
        step: steps done over the whole run.
        total_steps: steps of the whole run (all scales).
    """

    def __init__(self, message, *, checkpoint=None, image=None, step=0, total_steps=0):
        super().__init__(message)
        self.total_steps = total_steps
        self.checkpoint = checkpoint
        self.image = image
        self.step = step


class VideoError(ImageError):
    """A video file is missing, not a video, has no video stream or no frames, or cannot be
    decoded."""


class MissingPackageError(TfstyleError, ImportError):
    """An optional package a feature needs is not installed; the message names the extra that
    installs it."""


def import_optional(module, *, package, extra, purpose):
    """`importlib.import_module(module)`, or `MissingPackageError` with one line naming the
    pip `package` and the tfstyle `extra` that installs it (`purpose`: what needs it)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingPackageError(
            f"{purpose} needs the {package} package, which is not installed: "
            f'pip install "tfstyle[{extra}]"'
        ) from None
