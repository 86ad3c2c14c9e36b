"""tfstyle: neural style transfer (Gatys et al.) for TensorFlow and Keras 3.

The names that need TensorFlow (`stylize`, `StyleResult`, `build_feature_extractor`) are
imported on first use: `import tfstyle.cli` must not import TensorFlow, so that the command can
quiet TensorFlow's start-up logging and refuse bad flags and files before paying for the import.
"""

import importlib

from tfstyle.checkpoint import Checkpoint
from tfstyle.config import StyleConfig
from tfstyle.errors import (
    CheckpointError,
    ConfigError,
    ImageError,
    Interrupted,
    NonFiniteLossError,
    OutputError,
    TfstyleError,
    WeightsError,
)
from tfstyle.progress import Progress

__version__ = "0.1.0"

_LAZY = {
    "build_feature_extractor": "tfstyle.features",
    "StyleResult": "tfstyle.loop",
    "stylize": "tfstyle.loop",
}

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "ImageError",
    "Interrupted",
    "NonFiniteLossError",
    "OutputError",
    "Progress",
    "StyleConfig",
    "StyleResult",
    "TfstyleError",
    "WeightsError",
    "build_feature_extractor",
    "stylize",
]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'tfstyle' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
