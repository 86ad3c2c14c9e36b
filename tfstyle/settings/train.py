"""Every setting of training a feed-forward stylizer, its default and its validation.

The fast stylizer's counterpart of `tfstyle.settings.style.StyleConfig`: the `train` command maps
its flags onto `TrainConfig`, `train_stylizer` reads only `TrainConfig`. The feature network's
settings are validated by building the `StyleConfig` of the loss (`loss_config()`).
"""

import dataclasses

from tfstyle.settings.checks import check_choice as _check_choice
from tfstyle.settings.checks import check_int as _check_int
from tfstyle.settings.checks import check_number as _check_number
from tfstyle.settings.style import (
    NETWORKS,
    POOLINGS,
    PRECISIONS,
    Settings,
    StyleConfig,
)

# Johnson et al. (2016, section 4.1) with VGG16: content at relu2_2, style at relu1_2, relu2_2,
# relu3_3 and relu4_3. The same names exist in VGG19 (whose blocks 3-5 have a fourth conv
# after them), so the defaults work with both networks.
CONTENT_LAYERS = ("block2_conv2",)
STYLE_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3")

# Applying a stylizer (`FastStylizer`, `tfstyle --model`): images with a side over TILE_SIZE
# pixels are painted in tiles of that side (about 1.5 GB of activations for the 32-wide network
# at 2048 px), neighbours overlapping by at least TILE_OVERLAP pixels.
TILE_SIZE = 2048
# Painting on Apache Beam (`tfstyle.beam.run_stylizer`): at most this many photos per batch of
# Beam's RunInference (photos of one size share a forward pass).
BEAM_BATCH_SIZE = 8
TILE_OVERLAP = 128


@dataclasses.dataclass(frozen=True)
class TrainConfig(Settings):
    """Settings of one training run. All fields are keyword arguments with validated defaults.

    Network trained:
        width: channels of the stylizer's first convolution (32: Johnson et al.'s network;
            8 or 16: small, fast variants).
        residual_blocks: residual blocks at the lowest resolution (5 in the paper).
    Loss (see `tfstyle.integrations.keras_losses.PerceptualLoss`; the weights mean what they mean in
    `StyleConfig`: relative errors, about 1 for a blank image):
        network, weights, pooling: the VGG feature network of the loss.
        content_layers, style_layers: its layers.
        content_weight, style_weight, tv_weight.
        style_size: the style image's longest side, in pixels.
    Data and optimisation:
        size: side of the square random crops the network trains on.
        batch_size: crops per step.
        steps: optimizer steps in all (a resumed run counts the steps already done).
        learning_rate: Adam's rate (1e-3 in Johnson et al.).
        seed: seeds the network's initial weights and every crop and flip: a run is
            repeatable, and a resumed run sees the same batches an uninterrupted one would.
        precision: Keras dtype policy of the stylizer and the loss network ("auto": as for
            `StyleConfig.precision`, resolved when training starts).
    Side outputs (callbacks of `train_stylizer`; 0 turns one off):
        checkpoint_every, preview_every: steps between checkpoints and between previews.
    """

    width: int = 32
    residual_blocks: int = 5
    network: str = "vgg19"
    weights: str | None = "imagenet"
    pooling: str = "max"
    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] = STYLE_LAYERS
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1.0
    style_size: int = 512
    size: int = 256
    batch_size: int = 4
    steps: int = 2000
    learning_rate: float = 1e-3
    seed: int = 0
    precision: str = "auto"
    checkpoint_every: int = 200
    preview_every: int = 200

    def __post_init__(self):
        for name, allowed in (
            ("network", NETWORKS),
            ("pooling", POOLINGS),
            ("precision", PRECISIONS),
        ):
            _check_choice(name, getattr(self, name), allowed)
        for name in ("content_layers", "style_layers"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("width", "style_size", "size", "batch_size", "steps"):
            _check_int(name, getattr(self, name), low=1)
        for name in ("residual_blocks", "seed", "checkpoint_every", "preview_every"):
            _check_int(name, getattr(self, name), low=0)
        _check_number("learning_rate", self.learning_rate, low=0.0, low_open=True)
        # The loss's own checks: layers, weights, at least one term.
        self.loss_config()

    def loss_config(self):
        """The `StyleConfig` of the perceptual loss (network, layers, weights)."""
        return StyleConfig(
            network=self.network,
            weights=self.weights,
            pooling=self.pooling,
            content_layers=self.content_layers,
            style_layers=self.style_layers,
            content_weight=self.content_weight,
            style_weight=self.style_weight,
            tv_weight=self.tv_weight,
            max_size=self.size,
            scales=1,
        )


TRAIN_DEFAULTS = TrainConfig()
