"""Style, content and perceptual losses as `keras.losses.Loss` objects, to train other networks.

`stylize()` optimises one image; these losses let a Keras model learn instead, with
`model.compile(loss=tfstyle.PerceptualLoss(...))` and `model.fit` (for example an image-to-image
network trained with a perceptual loss, as Johnson et al. 2016 train fast stylization networks).
`y_true` and `y_pred` are batches of RGB images in [0, 1], `[batch, height, width, 3]`; the
feature extractor (`features.build_feature_extractor`) does the caffe preprocessing itself.

The terms are those of `losses.py`, normalised the same way, so the weights mean what they mean in
`StyleConfig`. They are computed per batch item (one value per image, as Keras' reduction and
`sample_weight` expect): relative errors against each item's own target. A fixed style target, as
in fast style transfer, comes from `style_image`; `y_true` then serves as the content target only.

All three are registered with `keras.saving` (package "tfstyle") and round-trip through
`get_config` / `from_config`, so a compiled model saved to `.keras` loads with its loss.

Example:
    >>> model.compile(optimizer="adam", loss=tfstyle.PerceptualLoss(weights=None))
    >>> model.fit(inputs, targets, epochs=1)
"""

import keras

from tfstyle.errors import ConfigError
from tfstyle.models.vgg import build_feature_extractor
from tfstyle.ops import preprocessing as pp
from tfstyle.ops.losses import (
    gram_matrix,
    relative_squared_error,
    total_variation_loss,
    weighted_mean,
)
from tfstyle.settings.style import DEFAULTS, StyleConfig

_PER_IMAGE = (1, 2, 3)  # axes of one image's features
_PER_GRAM = (1, 2)  # axes of one image's Gram matrix


class _FeatureLoss(keras.losses.Loss):
    """Shared machinery: a validated `StyleConfig`, the extractor, optional fixed style Grams."""

    def __init__(self, *, config, style_image, name, reduction, dtype):
        if config.style_loss != "gram":
            # y_true-against-y_pred style terms here are Gram matrices only.
            raise ConfigError(
                f"the Keras losses support style_loss='gram' only; got {config.style_loss!r}"
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self._config = config
        self._extractor = build_feature_extractor(
            layers=config.content_layers + config.style_layers,
            network=config.network,
            weights=config.weights,
            pooling=config.pooling,
        )
        self._style_image = None if style_image is None else pp.as_float_image(style_image)
        self._style_grams = None
        if self._style_image is not None and config.style_layers:
            # Computed once: the style target is fixed, so it is not part of each step's work.
            features = self._extractor(self._style_image[None], training=False)
            self._style_grams = {k: gram_matrix(features[k]) for k in config.style_layers}

    def _content_term(self, pred, true):
        layers = self._config.content_layers
        return weighted_mean(
            {k: (relative_squared_error(pred[k], true[k], axis=_PER_IMAGE), 1.0) for k in layers}
        )

    def _style_term(self, pred, true):
        weights = self._config.style_layer_weight_map()
        terms = {}
        for k, weight in weights.items():
            target = self._style_grams[k] if self._style_grams else gram_matrix(true[k])
            error = relative_squared_error(gram_matrix(pred[k]), target, axis=_PER_GRAM)
            terms[k] = (error, weight)
        return weighted_mean(terms)

    def _features(self, y_true, y_pred):
        return self._extractor(y_true, training=False), self._extractor(y_pred, training=False)

    def _base_config(self):
        config = super().get_config()
        config.update(
            network=self._config.network,
            weights=self._config.weights,
            pooling=self._config.pooling,
        )
        return config

    def _style_image_config(self):
        # Nested lists keep the config plain JSON; keep style images small (a few hundred px).
        return None if self._style_image is None else self._style_image.tolist()


@keras.saving.register_keras_serializable(package="tfstyle")
class ContentLoss(_FeatureLoss):
    """Feature-reconstruction loss: relative squared error of VGG features, per image.

    Args:
        layers: conv layer names whose features are compared (equal weights).
        network, weights, pooling: the feature network, as in `StyleConfig`.
        name, reduction, dtype: as for any `keras.losses.Loss`.
    """

    def __init__(
        self,
        *,
        layers=DEFAULTS.content_layers,
        network=DEFAULTS.network,
        weights=DEFAULTS.weights,
        pooling=DEFAULTS.pooling,
        name="content_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        config = StyleConfig(
            network=network,
            weights=weights,
            pooling=pooling,
            content_layers=tuple(layers),
            style_layers=(),
            style_layer_weights=(),
        )
        super().__init__(
            config=config, style_image=None, name=name, reduction=reduction, dtype=dtype
        )

    def call(self, y_true, y_pred):
        """The loss of each image of the batch.

        Args:
            y_true: RGB `[B, H, W, 3]` in [0, 1]: the target images.
            y_pred: RGB `[B, H, W, 3]` in [0, 1]: the model's output.

        Returns:
            float32 `[B]`, reduced by Keras afterwards.
        """
        true, pred = self._features(y_true, y_pred)
        return self._content_term(pred, true)

    def get_config(self):
        """The constructor's arguments, so that `keras.saving` restores the loss."""
        return {**self._base_config(), "layers": list(self._config.content_layers)}


@keras.saving.register_keras_serializable(package="tfstyle")
class StyleLoss(_FeatureLoss):
    """Gram-matrix style loss, per image: `y_pred`'s Grams against `y_true`'s (or `style_image`'s).

    Args:
        layers: conv layer names whose Gram matrices are compared.
        layer_weights: "equal", "decreasing" or one weight per layer (see `StyleConfig`).
        style_image: optional fixed style target, `[H, W, 3]` in [0, 1] or uint8; `y_true` is
            then ignored.
        network, weights, pooling: the feature network, as in `StyleConfig`.
        name, reduction, dtype: as for any `keras.losses.Loss`.
    """

    def __init__(
        self,
        *,
        layers=DEFAULTS.style_layers,
        layer_weights=DEFAULTS.style_layer_weights,
        style_image=None,
        network=DEFAULTS.network,
        weights=DEFAULTS.weights,
        pooling=DEFAULTS.pooling,
        name="style_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        config = StyleConfig(
            network=network,
            weights=weights,
            pooling=pooling,
            content_layers=(),
            style_layers=tuple(layers),
            style_layer_weights=_layer_weights(layer_weights),
        )
        super().__init__(
            config=config, style_image=style_image, name=name, reduction=reduction, dtype=dtype
        )

    def call(self, y_true, y_pred):
        """The loss of each image of the batch.

        Args:
            y_true: RGB `[B, H, W, 3]` in [0, 1]: the target images (ignored with a
                `style_image`).
            y_pred: RGB `[B, H, W, 3]` in [0, 1]: the model's output.

        Returns:
            float32 `[B]`, reduced by Keras afterwards.
        """
        true, pred = self._features(y_true, y_pred)
        return self._style_term(pred, true)

    def get_config(self):
        """The constructor's arguments, so that `keras.saving` restores the loss."""
        return {
            **self._base_config(),
            "layers": list(self._config.style_layers),
            "layer_weights": _layer_weights_config(self._config.style_layer_weights),
            "style_image": self._style_image_config(),
        }


@keras.saving.register_keras_serializable(package="tfstyle")
class PerceptualLoss(_FeatureLoss):
    """`content_weight * content + style_weight * style + tv_weight * tv`, per image.

    The objective of `stylize()` (Gatys et al.) as a training loss: the content term compares
    `y_pred`'s features with `y_true`'s, the style term their Gram matrices (or `y_pred`'s with
    a fixed `style_image`'s), and total variation smooths `y_pred`.

    Args:
        content_layers, style_layers, style_layer_weights: as in `StyleConfig`.
        content_weight, style_weight, tv_weight: as in `StyleConfig`.
        style_image: optional fixed style target, `[H, W, 3]` in [0, 1] or uint8.
        network, weights, pooling: the feature network, as in `StyleConfig`.
        name, reduction, dtype: as for any `keras.losses.Loss`.
    """

    def __init__(
        self,
        *,
        content_layers=DEFAULTS.content_layers,
        style_layers=DEFAULTS.style_layers,
        style_layer_weights=DEFAULTS.style_layer_weights,
        content_weight=DEFAULTS.content_weight,
        style_weight=DEFAULTS.style_weight,
        tv_weight=DEFAULTS.tv_weight,
        style_image=None,
        network=DEFAULTS.network,
        weights=DEFAULTS.weights,
        pooling=DEFAULTS.pooling,
        name="perceptual_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        config = StyleConfig(
            network=network,
            weights=weights,
            pooling=pooling,
            content_layers=tuple(content_layers),
            style_layers=tuple(style_layers),
            style_layer_weights=_layer_weights(style_layer_weights),
            content_weight=content_weight,
            style_weight=style_weight,
            tv_weight=tv_weight,
        )
        super().__init__(
            config=config, style_image=style_image, name=name, reduction=reduction, dtype=dtype
        )

    def call(self, y_true, y_pred):
        """The loss of each image of the batch.

        Args:
            y_true: RGB `[B, H, W, 3]` in [0, 1]: the target images (the style term ignores
                them with a `style_image`).
            y_pred: RGB `[B, H, W, 3]` in [0, 1]: the model's output.

        Returns:
            float32 `[B]`, reduced by Keras afterwards.
        """
        true, pred = self._features(y_true, y_pred)
        c = self._config
        total = c.tv_weight * total_variation_loss(y_pred, axis=_PER_IMAGE)
        if c.content_layers:
            total = total + c.content_weight * self._content_term(pred, true)
        if c.style_layers:
            total = total + c.effective_style_weight * self._style_term(pred, true)
        return total

    def get_config(self):
        """The constructor's arguments, so that `keras.saving` restores the loss."""
        c = self._config
        return {
            **self._base_config(),
            "content_layers": list(c.content_layers),
            "style_layers": list(c.style_layers),
            "style_layer_weights": _layer_weights_config(c.style_layer_weights),
            "content_weight": c.content_weight,
            "style_weight": c.effective_style_weight,
            "tv_weight": c.tv_weight,
            "style_image": self._style_image_config(),
        }


def _layer_weights(value):
    """A preset name as is; anything else (a list from a JSON config) as a tuple of floats."""
    return value if isinstance(value, str) else tuple(float(w) for w in value)


def _layer_weights_config(value):
    return value if isinstance(value, str) else list(value)
