"""The objective of a run: the feature extractor, the targets computed once per scale, the
starting image and the loss function the step minimises."""

import functools

import numpy as np
from keras import ops

from tfstyle.models.vgg import build_feature_extractor
from tfstyle.ops import masks as masks_lib
from tfstyle.ops import preprocessing as pp
from tfstyle.ops.losses import (
    blend_statistics,
    masked_gram_matrices,
    style_statistics,
    style_transfer_losses,
    temporal_loss,
)
from tfstyle.ops.tiles import layer_stride, tile_plan
from tfstyle.optimize.step import with_precision


def feature_extractor_for(config):
    """The (cached) extractor with every content and style layer of `config` (precision "auto"
    resolved as `stylize` resolves it, so a prebuilt extractor matches its run).

    Args:
        config: the run's `StyleConfig` (network, weights, pooling, precision, remat).

    Returns:
        `build_feature_extractor`'s frozen dict-output `keras.Model`.

    Raises:
        WeightsError: the weights cannot be loaded.
    """
    config = with_precision(config)
    return build_feature_extractor(
        layers=config.content_layers + config.style_layers,
        network=config.network,
        weights=config.weights,
        pooling=config.pooling,
        dtype=None if config.precision == "float32" else config.precision,
        remat=config.remat,
    )


def compute_targets(
    extractor, content, styles, *, blend, config, spatial=None, style_image_masks=None
):
    """Content features and blended style statistics, computed once per scale.

    Several style images are blended as `losses.blend_statistics` describes: for "gram" the
    weighted mean of the Grams, as neural-style does; for the others the mixture distribution.
    With "sliced_wasserstein", `targets["seed"]` (int32) seeds the random directions: a
    tensor argument, so a new seed does not recompile the step.

    `spatial`: None, or `{"regions": [R, H, W], "content": [H, W] or None}` from `masks`:
    then `targets["masks"]` holds them resized to each layer of this scale (tensor arguments
    of the step, like the targets: new masks of the same size do not recompile it), and the
    style targets are one Gram per region (each style's own with style masks, else the blend).
    `style_image_masks`: None, or one `[H, W]` mask per style image at its size: each style's
    Gram is then that of its masked features (the part of the painting that supplies the
    texture), area-averaged to each layer as the image's masks are.

    Args:
        extractor: the feature extractor.
        content: the content image at this scale, float32 `[H, W, 3]`.
        styles: the style images, float32 `[h, w, 3]` each (scaled here by `style_scale`).
        blend: one weight per style image, summing to 1 (`StyleConfig.blend_weights`).
        config: the run's `StyleConfig`.
        spatial: as above, or None.
        style_image_masks: as above, or None.

    Returns:
        `{"content": {layer: features}, "style": {layer: target}}`, with "masks" and "seed"
        as above when they apply.
    """
    tiled = functools.partial(_tiled_features, extractor, config=config)
    tiles = config.tile_size is not None and max(content.shape[:2]) > config.tile_size
    if tiles:  # a tiled run (no masks, "gram"): VGG never sees the whole image at once
        content_features = tiled(content, content_layers=config.content_layers)
    else:
        content_features = extractor(content[None], training=False)
    targets = {"content": {k: content_features[k] for k in config.content_layers}, "style": {}}
    if not config.style_layers:
        return targets
    kind = config.style_loss
    style_shape = content.shape
    statistics = {k: [] for k in config.style_layers}
    image_masks = style_image_masks or [None] * len(styles)
    for style, weight, mask in zip(styles, blend, image_masks, strict=True):
        scaled = pp.scale_style(style, style_shape, config.style_scale)
        if config.tile_size is not None and max(scaled.shape[:2]) > config.tile_size:
            features = tiled(scaled, gram_layers=config.style_layers)
            for k in config.style_layers:
                statistics[k].append((features[k], weight))
            continue
        features = extractor(scaled[None], training=False)
        for k in config.style_layers:
            statistics[k].append((_style_target(features[k], mask, kind=kind), weight))
    targets["style"] = {k: blend_statistics(v, kind=kind) for k, v in statistics.items()}
    if spatial is not None:
        targets["masks"] = _layer_masks(spatial, content_features, blend=blend, config=config)
        if spatial["per_style"]:  # one region per style: each style's own Gram, not the blend
            targets["style"] = {
                k: ops.concatenate([gram for gram, _ in v], axis=0) for k, v in statistics.items()
            }
    if kind == "sliced_wasserstein":
        targets["seed"] = np.asarray(config.seed % 2**31, np.int32)
    return targets


def _tiled_features(extractor, image, *, config, content_layers=(), gram_layers=()):
    """`{layer: features [1, h, w, C]}` for `content_layers` and `{layer: Gram [1, C, C]}` for
    `gram_layers` of `image` `[H, W, 3]`, equal to the untiled ones, with VGG run one tile of
    `config.tile_size` at a time (see `tfstyle.ops.tiles`): a forward pass never holds the
    whole image's activations."""
    height, width = image.shape[:2]
    layers = config.content_layers + config.style_layers
    plan = tile_plan(
        height, width, tile_size=config.tile_size, network=config.network, layers=layers
    )
    out, sums = {}, {}
    for tile in plan:
        features = extractor(
            image[None, tile.top : tile.bottom, tile.left : tile.right], training=False
        )
        for name in (*content_layers, *gram_layers):
            stride = layer_stride(name)
            rows = slice(
                (tile.core_top - tile.top) // stride, (tile.core_bottom - tile.top) // stride
            )
            cols = slice(
                (tile.core_left - tile.left) // stride, (tile.core_right - tile.left) // stride
            )
            core = ops.convert_to_numpy(ops.cast(features[name][:, rows, cols], "float32"))
            if name in content_layers:
                if name not in out:
                    shape = (1, height // stride, width // stride, core.shape[3])
                    out[name] = np.zeros(shape, np.float32)
                top, left = tile.core_top // stride, tile.core_left // stride
                out[name][:, top : top + core.shape[1], left : left + core.shape[2]] = core
            if name in gram_layers:
                flat = core.reshape(-1, core.shape[3]).astype(np.float64)
                sums[name] = sums.get(name, 0.0) + flat.T @ flat
    for name in gram_layers:
        positions = (height // layer_stride(name)) * (width // layer_stride(name))
        out[name] = ops.convert_to_tensor((sums[name] / positions)[None].astype(np.float32))
    return {
        name: ops.convert_to_tensor(value) if name in content_layers else value
        for name, value in out.items()
    }


def _style_target(features, mask, *, kind):
    if mask is None:
        return style_statistics(features, kind=kind)
    return masked_gram_matrices(features, masks_lib.layer_masks(mask[None], features.shape[1:3]))


def _layer_masks(spatial, features, *, blend, config):
    """`spatial`'s masks area-averaged to the shape of each layer's `features` (see
    `style_transfer_losses` for the layout)."""
    shapes = {k: tuple(features[k].shape[1:3]) for k in config.content_layers + config.style_layers}
    layers = {
        "style": {
            k: masks_lib.layer_masks(spatial["regions"], shapes[k]) for k in config.style_layers
        },
        "region_weights": np.asarray(blend if spatial["per_style"] else [1.0], np.float32),
    }
    if spatial["content"] is not None:
        layers["content"] = {
            k: masks_lib.content_weights(
                spatial["content"], shapes[k], weight=config.mask_content_weight
            )
            for k in config.content_layers
        }
    return layers


def initial_image(config, content, styles, init_image=None):
    """The starting image at the content's size, with `init_noise_ratio` of noise mixed in.

    Args:
        config: the run's `StyleConfig` (`init`, `init_noise_ratio`, `seed`).
        content: the content image at the first scale, float32 `[H, W, 3]`.
        styles: the style images (`init="style"` starts from the first).
        init_image: the image for `init="image"` (cropped to the content's aspect ratio).

    Returns:
        float32 `[H, W, 3]` in [0, 1].
    """
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
    """`loss_fn(features, image, targets) -> losses` with the weights of `config`.

    Args:
        config: the run's `StyleConfig` (loss weights, layer weights, style loss, optimizer).

    Returns:
        A function of `(features, image, targets)` returning `{"content", "style", "tv",
        "total"}` (`targets["temporal"]`, if given, adds the temporal loss to "total").
    """
    return functools.partial(
        _loss_fn,
        content_layer_weights={k: 1.0 for k in config.content_layers},
        style_layer_weights=config.style_layer_weight_map(),
        content_weight=config.content_weight,
        style_weight=config.effective_style_weight,
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
        masks=targets.get("masks"),
        **weights,
    )
    temporal = targets.get("temporal")
    if temporal is not None:
        # Video (`tfstyle.video.stylize`): the warped previous frame, its mask and the weight are
        # all tensor arguments of the compiled step, so every frame reuses one trace. The term is
        # in "total" only: the recorded terms stay the same four for every run.
        term = temporal_loss(image, temporal["image"], temporal["mask"])
        losses["total"] = losses["total"] + temporal["weight"] * term
    return losses


def temporal_targets(temporal, size):
    """The `targets["temporal"]` of one scale: `temporal` (`{"image": [H, W, 3], "mask":
    [H, W], "weight": float}`) resized to `size` and batched, the weight a float32 scalar.

    Args:
        temporal: the warped previous output, its consistency mask and the loss weight.
        size: the scale's `(height, width)`.

    Returns:
        `{"image": [1, h, w, 3], "mask": [1, h, w, 1], "weight": float32 scalar}`.
    """
    mask = pp.resize_field(np.asarray(temporal["mask"], np.float32)[..., None], *size)
    return {
        "image": pp.resize(temporal["image"], *size)[None],
        "mask": np.clip(mask, 0.0, 1.0)[None],
        "weight": np.asarray(temporal["weight"], np.float32),
    }


def luminance_only(image, *, reference):
    """Grey RGB image of `image`'s luminance, matched in mean and spread to `reference`'s
    (Gatys et al. 2016, luminance-only transfer).

    Args:
        image: RGB float `[H, W, 3]`.
        reference: the image whose luminance mean and spread are matched.

    Returns:
        float32 `[H, W, 3]` with three equal channels, in [0, 1].
    """
    y = pp.rgb_to_yuv(image)[..., 0]
    ref = pp.rgb_to_yuv(reference)[..., 0]
    y = (y - y.mean()) / (y.std() + 1e-6) * ref.std() + ref.mean()
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)
