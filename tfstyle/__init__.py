"""tfstyle: neural style transfer (Gatys et al.) for TensorFlow and Keras 3.

The public names below are imported on first use (PEP 562): `import tfstyle.cli` must not import
TensorFlow, so that the command can quiet TensorFlow's start-up logging and refuse bad flags and
files before paying for the import.
"""

import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "Checkpoint": "tfstyle.checkpoint",
    "CheckpointError": "tfstyle.errors",
    "ConfigError": "tfstyle.errors",
    "ImageError": "tfstyle.errors",
    "Interrupted": "tfstyle.errors",
    "NonFiniteLossError": "tfstyle.errors",
    "OutputError": "tfstyle.errors",
    "TfstyleError": "tfstyle.errors",
    "WeightsError": "tfstyle.errors",
    "StyleConfig": "tfstyle.config",
    "Progress": "tfstyle.progress",
    "load_image": "tfstyle.io",
    "load_mask": "tfstyle.io",
    "save_image": "tfstyle.io",
    "build_feature_extractor": "tfstyle.features",
    "ContentLoss": "tfstyle.keras_losses",
    "PerceptualLoss": "tfstyle.keras_losses",
    "StyleLoss": "tfstyle.keras_losses",
    "RunnerCache": "tfstyle.loop",
    "StyleResult": "tfstyle.loop",
    "stylize": "tfstyle.loop",
    "VideoConfig": "tfstyle.video_config",
    "stylize_video": "tfstyle.video",
    "FastStylizer": "tfstyle.fast.stylizer",
    "TrainConfig": "tfstyle.fast.config",
    "build_stylizer": "tfstyle.fast.network",
    "export_stylizer": "tfstyle.fast.stylizer",
    "train_stylizer": "tfstyle.fast.train",
}

# Submodules the README uses as attributes (`tfstyle.losses.gram_matrix`), also imported on
# first use (`image_io`: 0.1's name of `io`).
_SUBMODULES = ("callbacks", "colab", "image_io", "io", "losses", "outputs")

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
