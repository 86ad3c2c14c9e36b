"""tfstyle: neural style transfer (Gatys et al.) for TensorFlow and Keras 3."""

from tfstyle.config import StyleConfig
from tfstyle.errors import (
    ConfigError,
    ImageError,
    NonFiniteLossError,
    OutputError,
    TfstyleError,
    WeightsError,
)
from tfstyle.features import build_feature_extractor
from tfstyle.keras_losses import ContentLoss, PerceptualLoss, StyleLoss
from tfstyle.loop import RunnerCache, StyleResult, stylize
from tfstyle.progress import Progress

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ContentLoss",
    "ImageError",
    "NonFiniteLossError",
    "OutputError",
    "PerceptualLoss",
    "Progress",
    "RunnerCache",
    "StyleConfig",
    "StyleLoss",
    "StyleResult",
    "TfstyleError",
    "WeightsError",
    "build_feature_extractor",
    "stylize",
]
