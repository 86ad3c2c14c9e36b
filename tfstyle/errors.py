"""The package's own exceptions: every user mistake surfaces as one of these.

The CLI turns any `TfstyleError` into one line on stderr and a non-zero exit; anything else is a
bug and keeps its traceback.
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
