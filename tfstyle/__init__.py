"""tfstyle: neural style transfer (Gatys et al.) for TensorFlow and Keras 3.

The public names below are imported on first use (PEP 562): `import tfstyle.cli` must not import
TensorFlow, so that the command can quiet TensorFlow's start-up logging and refuse bad flags and
files before paying for the import.
"""

import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "Checkpoint": "tfstyle.optimize.checkpoint",
    "CheckpointError": "tfstyle.errors",
    "ConfigError": "tfstyle.errors",
    "ImageError": "tfstyle.errors",
    "Interrupted": "tfstyle.errors",
    "NonFiniteLossError": "tfstyle.errors",
    "OutputError": "tfstyle.errors",
    "TfstyleError": "tfstyle.errors",
    "WeightsError": "tfstyle.errors",
    "StyleConfig": "tfstyle.settings.style",
    "Progress": "tfstyle.optimize.progress",
    "load_image": "tfstyle.io",
    "load_mask": "tfstyle.io",
    "save_image": "tfstyle.io",
    "build_feature_extractor": "tfstyle.models.vgg",
    "ContentLoss": "tfstyle.integrations.keras_losses",
    "PerceptualLoss": "tfstyle.integrations.keras_losses",
    "StyleLoss": "tfstyle.integrations.keras_losses",
    "RunnerCache": "tfstyle.optimize.runners",
    "StyleResult": "tfstyle.optimize.stylize",
    "stylize": "tfstyle.optimize.stylize",
    "VideoConfig": "tfstyle.settings.video",
    "stylize_video": "tfstyle.video.stylize",
    "FastStylizer": "tfstyle.fast.stylizer",
    "TrainConfig": "tfstyle.settings.train",
    "build_stylizer": "tfstyle.models.transformer",
    "export_stylizer": "tfstyle.export.stylizer",
    "train_stylizer": "tfstyle.fast.train",
}

# The rooms (subpackages), imported on first use as attributes (`tfstyle.ops.losses` still needs
# `import tfstyle.ops.losses` or `from tfstyle.ops import losses`: rooms import no modules).
_SUBMODULES = (
    "app",
    "beam",
    "cli",
    "export",
    "fast",
    "integrations",
    "io",
    "models",
    "ops",
    "optimize",
    "settings",
    "video",
)

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _SUBMODULES:
        # import_module binds the submodule as an attribute of this package.
        return importlib.import_module(f"tfstyle.{name}")
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tfstyle' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))
