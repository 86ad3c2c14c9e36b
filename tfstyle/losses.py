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
"""

from keras import ops

EPSILON = 1e-8
LOSS_NAMES = ("content", "style", "tv", "total")


def gram_matrix(features):
    """Position-averaged Gram matrix: `[B, H, W, C]` to `[B, C, C]`, computed in float32."""
    x = ops.cast(features, "float32")
    shape = ops.shape(x)
    flat = ops.reshape(x, (shape[0], -1, shape[3]))
    positions = ops.cast(shape[1] * shape[2], "float32")
    return ops.einsum("bnc,bnd->bcd", flat, flat) / positions


def relative_squared_error(value, target, *, axis=None):
    """`sum((value - target)^2) / (sum(target^2) + eps)`, in float32.

    `axis`: the axes summed over (None: all, a scalar); `axis=(1, 2, 3)` gives one value per
    batch item, as a `keras.losses.Loss` needs.
    """
    value = ops.cast(value, "float32")
    target = ops.cast(target, "float32")
    error = ops.sum(ops.square(value - target), axis=axis)
    return error / (ops.sum(ops.square(target), axis=axis) + EPSILON)


def content_loss(features, target):
    """Relative squared error between content features and their target."""
    return relative_squared_error(features, target)


def style_loss(features, target_gram):
    """Relative squared error between the Gram of `features` and a target Gram."""
    return relative_squared_error(gram_matrix(features), target_gram)


def total_variation_loss(image, *, axis=None):
    """Mean squared difference between vertically and horizontally adjacent pixels.

    `axis`: the axes averaged over (None: all; `(1, 2, 3)`: one value per batch item).
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


def weighted_mean(losses):
    """Mean of `{name: (loss, weight)}` weighted by `weight`, with weights normalised to sum 1."""
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
):
    """All named losses of one image.

    Args:
        features: `{layer: activation}` of the image being optimised.
        image: the image itself, `[B, H, W, 3]` in [0, 1] (for total variation).
        content_targets: `{layer: target activation}`.
        style_targets: `{layer: target Gram}` (from `gram_matrix`).
        content_layer_weights, style_layer_weights: `{layer: weight}` (normalised here).
        content_weight, style_weight, tv_weight: the weights of the three terms in "total".

    Returns:
        `{"content", "style", "tv", "total"}`, each a float32 scalar. The first three are
        unweighted, so they can be compared across runs with different weights.
    """
    losses = {
        "content": _layer_mean(content_loss, features, content_targets, content_layer_weights),
        "style": _layer_mean(style_loss, features, style_targets, style_layer_weights),
    }
    losses["tv"] = total_variation_loss(image)
    losses["total"] = (
        content_weight * losses["content"]
        + style_weight * losses["style"]
        + tv_weight * losses["tv"]
    )
    return losses


def _layer_mean(loss_fn, features, targets, layer_weights):
    """Weighted mean over layers of `loss_fn(features[layer], target)`; 0 for no layers."""
    if not targets:
        return ops.zeros((), "float32")
    return weighted_mean(
        {name: (loss_fn(features[name], t), layer_weights[name]) for name, t in targets.items()}
    )
