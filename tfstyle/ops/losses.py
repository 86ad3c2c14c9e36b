"""Content, style and total-variation losses (keras.ops only: any backend, no state, no I/O).

Normalisation, and how it deviates from Gatys et al. (2016):

* Gram matrices are averaged over positions, `G = F^T F / (H W)`, so a texture has the same Gram
  at 256 px and at 1024 px. (Gatys et al. use the plain sum and divide the loss by `4 N^2 M^2`,
  which amounts to the same up to a constant.)
* Each style layer's loss is the squared error of the Grams divided by the squared norm of the
  target Gram, and the content loss is the squared feature error divided by the squared norm of
  the target features. Both are relative errors: 0 for a perfect match, about 1 for an image that
  shares nothing with the target. Gatys et al. leave them in activation units, which differ by
  orders of magnitude between layers and between VGG16 and VGG19; that is why the Keras example's
  weights (2.5e-8 and 1e-6) must be retuned for every network and image size, and ours need not.
* The style loss is a weighted mean over layers (weights normalised to sum to 1), not a sum.
* Total variation is the mean squared difference between neighbouring pixels (image in [0, 1]),
  as Mahendran and Vedaldi's beta=2 regulariser; a mean, so it too is independent of image size.

Three style losses (`StyleConfig.style_loss`), each a relative error: 0 for a perfect match and
about 1 for a blank image (all-zero features), independent of the image size (positions are
averaged) and of the layer's scale.

* "gram": the relative squared error of position-averaged Gram matrices (above).
* "mean_cov" and "sliced_wasserstein": see `style_stats.py`, where their statistics and
  distances live.

Spatial control (Gatys et al. 2017; the masks are prepared in `masks.py`): with masks, the
style targets are one Gram per region `[R, C, C]`, and the image's Gram of region r weights each
position by its mask value squared, `G_r = sum_p m_rp^2 f_p f_p^T / sum_p m_rp^2`: the Gram of
the masked features `m_r * F`, as Gatys et al. compute it, normalised by the mask's area (where
Gatys et al. normalise by the whole image's), so a region's Gram is its texture's whatever its
size. The style loss is the blend-weighted sum of the regions' relative errors. A content mask
weights each position's squared content error (`content_weights`); the sum is still divided by
the unweighted target norm, so the weight raises the content's pull where the mask is white.

Blends of several style images (`blend_statistics`): "gram" averages the Grams with the blend
weights, as neural-style does; "mean_cov" uses the moments of the mixture (mean `sum w_i mu_i`,
covariance `sum w_i (S_i + (mu_i - mu)(mu_i - mu)^T)`); "sliced_wasserstein" pools the samples.
"""

from keras import ops

from tfstyle.ops.style_stats import (
    EPSILON,
    flat_positions,
    hash32,
    image_seed,
    int32_constant,
    mean_cov_loss,
    mean_cov_target,
    mean_covariance,
    random_directions,
    sliced_wasserstein_loss,
)
from tfstyle.settings.style import DEFAULTS, SLICED_DIRECTIONS_PER_CHANNEL, STYLE_LOSSES


def gram_matrix(features):
    """Position-averaged Gram matrix: `[B, H, W, C]` to `[B, C, C]`, computed in float32.

    Args:
        features: activations `[B, H, W, C]`, any float dtype.

    Returns:
        `F^T F / (H W)` per batch item, float32 `[B, C, C]`.
    """
    x = ops.cast(features, "float32")
    shape = ops.shape(x)
    flat = ops.reshape(x, (shape[0], -1, shape[3]))
    positions = ops.cast(shape[1] * shape[2], "float32")
    return ops.einsum("bnc,bnd->bcd", flat, flat) / positions


def masked_gram_matrices(features, masks):
    """Gram matrices `[R, C, C]` of one image's `[1, H, W, C]` features under each of `masks`
    `[R, H, W, 1]`: `sum_p m_p^2 f_p f_p^T / sum_p m_p^2` (see the module docstring).

    Args:
        features: one image's activations `[1, H, W, C]`.
        masks: one mask per region, `[R, H, W, 1]`, at the features' size.

    Returns:
        float32 `[R, C, C]`.
    """
    flat = ops.reshape(ops.cast(features, "float32"), (-1, ops.shape(features)[3]))
    weights = ops.square(ops.reshape(ops.cast(masks, "float32"), (ops.shape(masks)[0], -1)))
    weighted = weights[:, :, None] * flat[None]
    area = ops.sum(weights, axis=1)
    return ops.einsum("rnc,nd->rcd", weighted, flat) / (area[:, None, None] + EPSILON)


def masked_style_loss(features, target, *, masks, region_weights):
    """`sum_r w_r * relative error of region r's Gram`.

    Args:
        features: one image's activations `[1, H, W, C]`.
        target: one Gram per region, `[R, C, C]`.
        masks: the regions' masks at this layer, `[R, H, W, 1]`.
        region_weights: `[R]`, each region's share of the loss.

    Returns:
        A float32 scalar.
    """
    errors = relative_squared_error(masked_gram_matrices(features, masks), target, axis=(1, 2))
    return ops.sum(errors * ops.cast(region_weights, "float32"))


def relative_squared_error(value, target, *, axis=None):
    """`sum((value - target)^2) / (sum(target^2) + eps)`, in float32.

    Args:
        value: the array compared.
        target: the array it should match (same shape, or broadcastable).
        axis: the axes summed over (None: all, a scalar); `axis=(1, 2, 3)` gives one value per
            batch item, as a `keras.losses.Loss` needs.

    Returns:
        float32: 0 for a perfect match, about 1 for a `value` of zeros.
    """
    value = ops.cast(value, "float32")
    target = ops.cast(target, "float32")
    error = ops.sum(ops.square(value - target), axis=axis)
    return error / (ops.sum(ops.square(target), axis=axis) + EPSILON)


def content_loss(features, target, *, weights=None):
    """Relative squared error between content features and their target; with `weights`
    (broadcast to the features, e.g. `[1, H, W, 1]`), each position's error weighted by them and
    the sum divided by the unweighted target norm.

    Args:
        features: activations `[B, H, W, C]` of the image being optimised.
        target: the content image's activations, same shape.
        weights: None, or per-position weights broadcast to `features`.

    Returns:
        A float32 scalar.
    """
    if weights is None:
        return relative_squared_error(features, target)
    error = ops.square(ops.cast(features, "float32") - ops.cast(target, "float32"))
    target_norm = ops.sum(ops.square(ops.cast(target, "float32")))
    return ops.sum(error * ops.cast(weights, "float32")) / (target_norm + EPSILON)


def style_statistics(features, *, kind=DEFAULTS.style_loss):
    """The style target of one image's `[B, H, W, C]` features for the style loss `kind`.

    "gram": the Gram `[B, C, C]`; "mean_cov": `{"mean": [B, C], "cov": [B, C, C], "cov_sqrt":
    [B, C, C]}` (the square root of the ridged covariance, computed once); "sliced_wasserstein":
    `{"features": [B * H * W, C]}` (the samples: directions change every step, so they cannot be
    projected here).

    Args:
        features: one image's activations `[B, H, W, C]`.
        kind: "gram", "mean_cov" or "sliced_wasserstein".

    Returns:
        The target, a tensor or a dict of tensors as above.

    Raises:
        ValueError: an unknown `kind`.
    """
    _check_kind(kind)
    if kind == "gram":
        return gram_matrix(features)
    if kind == "mean_cov":
        return mean_cov_target(*mean_covariance(features))
    flat = flat_positions(features)
    return {"features": ops.reshape(flat, (-1, ops.shape(flat)[2]))}


def blend_statistics(weighted, *, kind=DEFAULTS.style_loss):
    """The style target of a blend of style images: `weighted` is `[(statistics, weight), ...]`
    (from `style_statistics`); weights are normalised to sum to 1 and zero weights dropped.
    See the module docstring for how each kind blends. One style is returned as it is.

    Args:
        weighted: `[(statistics, weight), ...]`, statistics of one `kind`; at least one weight
            above 0.
        kind: "gram", "mean_cov" or "sliced_wasserstein".

    Returns:
        One target of the form `style_statistics` gives ("sliced_wasserstein" adds "mass",
        each sample's int32 share).

    Raises:
        ValueError: an unknown `kind`.
    """
    _check_kind(kind)
    total = sum(float(w) for _, w in weighted)
    weighted = [(stats, float(w) / total) for stats, w in weighted if w > 0]
    if len(weighted) == 1:
        return weighted[0][0]
    if kind == "gram":
        blended = 0.0
        for gram, weight in weighted:
            blended = blended + weight * gram
        return blended
    if kind == "mean_cov":
        mean = sum(weight * stats["mean"] for stats, weight in weighted)
        cov = 0.0
        for stats, weight in weighted:
            # The mixture's covariance, in the form that does not subtract two large numbers.
            offset = stats["mean"] - mean
            cov = cov + weight * (stats["cov"] + offset[:, :, None] * offset[:, None, :])
        return mean_cov_target(mean, cov)
    # Integer masses make the target's cumulative weights exact (a float32 cumulative sum over
    # 10^5 samples drifts by thousands of ranks); 2^30 in all, so int32 cannot overflow.
    masses = []
    for stats, weight in weighted:
        count = ops.shape(stats["features"])[0]
        masses.append(ops.full((count,), max(1, round(weight * 2**30 / count)), "int32"))
    return {
        "features": ops.concatenate([stats["features"] for stats, _ in weighted], axis=0),
        "mass": ops.concatenate(masses, axis=0),
    }


def style_loss(features, target, *, kind=DEFAULTS.style_loss, seed=0):
    """The style loss `kind` between `features` `[B, H, W, C]` and a target from
    `style_statistics` or `blend_statistics` (a float32 scalar relative error).

    Args:
        features: activations `[B, H, W, C]` of the image being optimised.
        target: the style target for `kind`.
        kind: "gram", "mean_cov" or "sliced_wasserstein".
        seed: an int or int32 scalar tensor: the random directions of "sliced_wasserstein".

    Returns:
        A float32 scalar.

    Raises:
        ValueError: an unknown `kind`.
    """
    _check_kind(kind)
    if kind == "gram":
        return relative_squared_error(gram_matrix(features), target)
    if kind == "mean_cov":
        return mean_cov_loss(features, target)
    channels = features.shape[-1]
    count = max(1, round(channels * SLICED_DIRECTIONS_PER_CHANNEL))
    directions = random_directions(seed, channels=channels, count=count)
    return sliced_wasserstein_loss(features, target, directions=directions)


def _check_kind(kind):
    if kind not in STYLE_LOSSES:
        raise ValueError(f"style loss kind must be one of {', '.join(STYLE_LOSSES)}; got {kind!r}")


def total_variation_loss(image, *, axis=None):
    """Mean squared difference between vertically and horizontally adjacent pixels.

    Args:
        image: `[B, H, W, C]`.
        axis: the axes averaged over (None: all; `(1, 2, 3)`: one value per batch item).

    Returns:
        float32; a direction with no neighbours (an image 1 px tall or wide) adds 0.
    """
    image = ops.cast(image, "float32")
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return _mean_or_zero(ops.square(dy), axis) + _mean_or_zero(ops.square(dx), axis)


def _mean_or_zero(values, axis):
    # An image 1 px tall or wide has no neighbours in that direction: the mean of nothing is
    # NaN, and shallow layers accept such images (a 4000x16 strip resized to 32 px is 1x32).
    count = ops.sum(ops.ones_like(values), axis=axis)
    return ops.sum(values, axis=axis) / ops.maximum(count, 1.0)


def temporal_loss(image, warped, mask):
    """Ruder et al.'s (2016) short-term temporal loss: `sum(mask * (image - warped)^2) / D`,
    with D the number of values (H * W * 3), as in their equation 7: a mean over the whole
    image, so masked-out pixels lower it rather than being ignored.

    Args:
        image: `[B, H, W, 3]` in [0, 1].
        warped: the previous output warped into this frame, `[B, H, W, 3]`.
        mask: `[B, H, W, 1]`, 1 where the warp is reliable, 0 at disocclusions.

    Returns:
        A float32 scalar.
    """
    image = ops.cast(image, "float32")
    return ops.mean(ops.cast(mask, "float32") * ops.square(image - ops.cast(warped, "float32")))


def weighted_mean(losses):
    """Mean of `{name: (loss, weight)}` weighted by `weight`, with weights normalised to sum 1.

    Args:
        losses: `{name: (loss, weight)}`; the weights must not sum to 0.

    Returns:
        `sum(loss * weight) / sum(weight)`.
    """
    total_weight = sum(weight for _, weight in losses.values())
    return sum(loss * (weight / total_weight) for loss, weight in losses.values())


def style_transfer_losses(
    features,
    image,
    *,
    content_targets,
    style_targets,
    content_layer_weights,
    style_layer_weights,
    content_weight,
    style_weight,
    tv_weight,
    style_kind=DEFAULTS.style_loss,
    seed=0,
    redraw_directions=False,
    masks=None,
):
    """All named losses of one image.

    Args:
        features: `{layer: activation}` of the image being optimised.
        image: the image itself, `[B, H, W, 3]` in [0, 1] (for total variation).
        content_targets: `{layer: target activation}`.
        style_targets: `{layer: target}` (from `style_statistics` / `blend_statistics` for
            `style_kind`; for "gram" a Gram matrix from `gram_matrix`).
        content_layer_weights, style_layer_weights: `{layer: weight}` (normalised here).
        content_weight, style_weight, tv_weight: the weights of the three terms in "total".
        style_kind: the style loss, "gram", "mean_cov" or "sliced_wasserstein".
        seed: int or int32 scalar tensor: the random directions of "sliced_wasserstein".
        redraw_directions: "sliced_wasserstein" only: mix a hash of `image` into the seed, so
            that each step (a new image) gets new directions, as Heitz et al. draw them every
            step. Targets are arguments of a compiled step and the step has no counter the loss
            can see, so the image, which changes every step, stands in for one: the directions
            stay a pure function of (seed, image), deterministic for a seed. Off for L-BFGS,
            whose line search needs one objective.
        masks: None, or spatial control ("gram" only): `{"style": {layer: [R, h, w, 1]},
            "region_weights": [R], "content": {layer: [1, h, w, 1]} (optional)}`, with
            `style_targets` then one Gram per region `[R, C, C]` (see the module docstring).

    Returns:
        `{"content", "style", "tv", "total"}`, each a float32 scalar. The first three are
        unweighted, so they can be compared across runs with different weights.
    """
    masks = masks or {}
    seeds = _layer_seeds(
        style_targets, image, kind=style_kind, seed=seed, redraw_directions=redraw_directions
    )
    losses = {
        "content": _content_term(features, content_targets, content_layer_weights, masks=masks),
        "style": _style_term(
            features, style_targets, style_layer_weights, kind=style_kind, seeds=seeds, masks=masks
        ),
    }
    losses["tv"] = total_variation_loss(image)
    losses["total"] = (
        content_weight * losses["content"]
        + style_weight * losses["style"]
        + tv_weight * losses["tv"]
    )
    return losses


def _layer_seeds(style_targets, image, *, kind, seed, redraw_directions):
    """`{style layer: int32 seed}` of the sliced-Wasserstein directions (see
    `style_transfer_losses` for `seed` and `redraw_directions`); `{}` for the other kinds."""
    if kind != "sliced_wasserstein":
        return {}
    base = hash32(ops.cast(seed, "int32"))
    if redraw_directions:
        base = ops.bitwise_xor(base, image_seed(image))
    # Each layer its own directions (layers of a block have as many channels).
    return {name: hash32(base + int32_constant(i + 1)) for i, name in enumerate(style_targets)}


def _content_term(features, targets, layer_weights, *, masks):
    """The content loss: the weighted mean over layers of `content_loss`, each position
    weighted by the layer's content mask weights when `masks` has them."""

    def layer_loss(name, layer_features, target):
        return content_loss(layer_features, target, weights=masks.get("content", {}).get(name))

    return _layer_mean(layer_loss, features, targets, layer_weights)


def _style_term(features, targets, layer_weights, *, kind, seeds, masks):
    """The style loss: the weighted mean over layers of `style_loss` of `kind`, or of
    `masked_style_loss` (one Gram per region) when `masks` has style masks."""

    def layer_loss(name, layer_features, target):
        if "style" in masks:
            return masked_style_loss(
                layer_features,
                target,
                masks=masks["style"][name],
                region_weights=masks["region_weights"],
            )
        return style_loss(layer_features, target, kind=kind, seed=seeds.get(name, 0))

    return _layer_mean(layer_loss, features, targets, layer_weights)


def _layer_mean(loss_fn, features, targets, layer_weights):
    """Weighted mean over layers of `loss_fn(layer, features[layer], target)`; 0 for none."""
    if not targets:
        return ops.zeros((), "float32")
    return weighted_mean(
        {
            name: (loss_fn(name, features[name], t), layer_weights[name])
            for name, t in targets.items()
        }
    )
