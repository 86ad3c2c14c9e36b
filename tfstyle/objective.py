"""The objective of a run: the feature extractor, the targets computed once per scale, the
starting image and the loss function the step minimises."""

import functools

import numpy as np

from tfstyle import preprocessing as pp
from tfstyle.features import build_feature_extractor
from tfstyle.losses import (
    blend_statistics,
    style_statistics,
    style_transfer_losses,
    temporal_loss,
)


def feature_extractor_for(config):
    """The (cached) extractor with every content and style layer of `config`."""
    return build_feature_extractor(
        layers=config.content_layers + config.style_layers,
        network=config.network,
        weights=config.weights,
        pooling=config.pooling,
        dtype=None if config.precision == "float32" else config.precision,
        remat=config.remat,
    )


def compute_targets(extractor, content, styles, *, blend, config):
    """Content features and blended style statistics, computed once per scale.

    Several style images are blended as `losses.blend_statistics` describes: for "gram" the
    weighted mean of the Grams, as neural-style does; for the others the mixture distribution.
    With "sliced_wasserstein", `targets["seed"]` (int32) seeds the random directions: a
    tensor argument, so a new seed does not recompile the step.
    """
    content_features = extractor(content[None], training=False)
    targets = {"content": {k: content_features[k] for k in config.content_layers}, "style": {}}
    if not config.style_layers:
        return targets
    kind = config.style_loss
    style_shape = content.shape
    statistics = {k: [] for k in config.style_layers}
    for style, weight in zip(styles, blend, strict=True):
        scaled = pp.scale_style(style, style_shape, config.style_scale)
        features = extractor(scaled[None], training=False)
        for k in config.style_layers:
            statistics[k].append((style_statistics(features[k], kind=kind), weight))
    targets["style"] = {k: blend_statistics(v, kind=kind) for k, v in statistics.items()}
    if kind == "sliced_wasserstein":
        targets["seed"] = np.asarray(config.seed % 2**31, np.int32)
    return targets


def initial_image(config, content, styles, init_image=None):
    """The starting image at the content's size, with `init_noise_ratio` of noise mixed in."""
    shape = content.shape
    noise = pp.noise_image(shape, seed=config.seed, blur_sigma=0.0)
    if config.init == "noise":
        return noise
    if config.init == "blurred_noise":
        base = pp.noise_image(shape, seed=config.seed, blur_sigma=max(shape[:2]) / 32)
    elif config.init == "style":
        base = pp.resize(styles[0], *shape[:2])
    elif config.init == "image":
        # Cropped to the content's aspect ratio, not stretched to it.
        cropped = pp.crop_to_aspect(init_image, height=shape[0], width=shape[1])
        base = pp.resize(cropped, *shape[:2])
    else:
        base = content
    ratio = config.init_noise_ratio
    return ((1.0 - ratio) * base + ratio * noise).astype(np.float32)


def make_loss_fn(config):
    """`loss_fn(features, image, targets) -> losses` with the weights of `config`."""
    return functools.partial(
        _loss_fn,
        content_layer_weights={k: 1.0 for k in config.content_layers},
        style_layer_weights=config.style_layer_weight_map(),
        content_weight=config.content_weight,
        style_weight=config.style_weight,
        tv_weight=config.tv_weight,
        style_kind=config.style_loss,
        # New sliced-Wasserstein directions every step, except for L-BFGS (one objective).
        redraw_directions=config.optimizer != "lbfgs",
    )


def _loss_fn(features, image, targets, **weights):
    losses = style_transfer_losses(
        features,
        image,
        content_targets=targets["content"],
        style_targets=targets["style"],
        seed=targets.get("seed", 0),
        **weights,
    )
    temporal = targets.get("temporal")
    if temporal is not None:
        # Video (`tfstyle.video`): the warped previous frame, its mask and the weight are all
        # tensor arguments of the compiled step, so every frame reuses one trace. The term is
        # in "total" only: the recorded terms stay the same four for every run.
        term = temporal_loss(image, temporal["image"], temporal["mask"])
        losses["total"] = losses["total"] + temporal["weight"] * term
    return losses


def temporal_targets(temporal, size):
    """The `targets["temporal"]` of one scale: `temporal` (`{"image": [H, W, 3], "mask":
    [H, W], "weight": float}`) resized to `size` and batched, the weight a float32 scalar."""
    mask = pp.resize_field(np.asarray(temporal["mask"], np.float32)[..., None], *size)
    return {
        "image": pp.resize(temporal["image"], *size)[None],
        "mask": np.clip(mask, 0.0, 1.0)[None],
        "weight": np.asarray(temporal["weight"], np.float32),
    }


def luminance_only(image, *, reference):
    """Grey RGB image of `image`'s luminance, matched in mean and spread to `reference`'s
    (Gatys et al. 2016, luminance-only transfer)."""
    y = pp.rgb_to_yuv(image)[..., 0]
    ref = pp.rgb_to_yuv(reference)[..., 0]
    y = (y - y.mean()) / (y.std() + 1e-6) * ref.std() + ref.mean()
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)
