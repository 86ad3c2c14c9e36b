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
* "mean_cov": the squared Wasserstein-2 distance between Gaussian fits of the features,
  `|mu - mu_t|^2 + tr(S + S_t - 2 (S_t^1/2 S S_t^1/2)^1/2)`, as in crowsonkb's
  style-transfer-pytorch (`StyleLossW2`), divided by the target's second moment
  `|mu_t|^2 + tr(S_t)` (the distance of an all-zero feature map). Deviations: a ridge
  `COVARIANCE_RIDGE * tr(S_t) / C` is added to both covariances (crowsonkb adds an absolute
  1e-4 to the image's only), so the distance stays an exact W2 between two regularised Gaussians
  (never negative) and the Newton-Schulz iteration sees no singular matrix; the square roots are
  `NEWTON_SCHULZ_ITERATIONS` coupled Newton-Schulz iterations differentiated by autodiff
  (crowsonkb solves a Lyapunov equation for the backward pass instead); crowsonkb averages over
  channels where we divide by the target's second moment.
* "sliced_wasserstein": Heitz et al. (CVPR 2021): the features are projected onto C random unit
  directions (C = channels, as Heitz et al.), the projections sorted over positions, and the
  mean squared difference to the target's sorted projections taken. The target's quantiles are
  linearly interpolated at the image's `(k + 0.5) / N` levels when the style has another number
  of positions (the identity when they are equal); a blend of styles is the mixture
  distribution: each style's samples weigh `w_i / N_i` in the target quantile function. Divided by
  the target's mean squared projection (a blank image scores 1 exactly when the numbers of
  positions are equal). Deviation: Heitz et al. draw directions with a stateful RNG; here they are
  a pure function of an integer seed (`random_directions`), drawn in-graph from the seed mixed
  with a hash of the current image, so every step gets new directions with no state and no host
  round trip (see `style_transfer_losses`).

Blends of several style images (`blend_statistics`): "gram" averages the Grams with the blend
weights, as neural-style does; "mean_cov" uses the moments of the mixture (mean `sum w_i mu_i`,
covariance `sum w_i (S_i + (mu_i - mu)(mu_i - mu)^T)`); "sliced_wasserstein" pools the samples.
"""

from keras import ops

from tfstyle.config import COVARIANCE_RIDGE, DEFAULTS, NEWTON_SCHULZ_ITERATIONS, STYLE_LOSSES

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


def style_statistics(features, *, kind=DEFAULTS.style_loss):
    """The style target of one image's `[B, H, W, C]` features for the style loss `kind`.

    "gram": the Gram `[B, C, C]`; "mean_cov": `{"mean": [B, C], "cov": [B, C, C], "cov_sqrt":
    [B, C, C]}` (the square root of the ridged covariance, computed once); "sliced_wasserstein":
    `{"features": [B * H * W, C]}` (the samples: directions change every step, so they cannot be
    projected here).
    """
    _check_kind(kind)
    if kind == "gram":
        return gram_matrix(features)
    if kind == "mean_cov":
        return _mean_cov_target(*mean_covariance(features))
    flat = _flat(features)
    return {"features": ops.reshape(flat, (-1, ops.shape(flat)[2]))}


def blend_statistics(weighted, *, kind=DEFAULTS.style_loss):
    """The style target of a blend of style images: `weighted` is `[(statistics, weight), ...]`
    (from `style_statistics`); weights are normalised to sum to 1 and zero weights dropped.
    See the module docstring for how each kind blends. One style is returned as it is."""
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
        return _mean_cov_target(mean, cov)
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

    `seed`: an int or int32 scalar tensor: the random directions of "sliced_wasserstein".
    """
    _check_kind(kind)
    if kind == "gram":
        return relative_squared_error(gram_matrix(features), target)
    if kind == "mean_cov":
        return mean_cov_loss(features, target)
    channels = features.shape[-1]
    directions = random_directions(seed, channels=channels, count=channels)
    return sliced_wasserstein_loss(features, target, directions=directions)


def _check_kind(kind):
    if kind not in STYLE_LOSSES:
        raise ValueError(f"style loss kind must be one of {', '.join(STYLE_LOSSES)}; got {kind!r}")


def _flat(features):
    x = ops.cast(features, "float32")
    shape = ops.shape(x)
    return ops.reshape(x, (shape[0], -1, shape[3]))


# --- "mean_cov" -------------------------------------------------------------------------------


def mean_covariance(features):
    """Mean `[B, C]` and covariance `[B, C, C]` over positions of `[B, H, W, C]` features."""
    flat = _flat(features)
    mean = ops.mean(flat, axis=1)
    centred = flat - mean[:, None, :]
    positions = ops.cast(ops.shape(flat)[1], "float32")
    return mean, ops.einsum("bnc,bnd->bcd", centred, centred) / positions


def sqrtm_newton_schulz(matrix, *, iterations=NEWTON_SCHULZ_ITERATIONS):
    """Square root of symmetric positive semi-definite `[..., C, C]` matrices, by the coupled
    Newton-Schulz iteration (Higham 2008, eq. 6.35) on the matrix divided by its Frobenius norm
    (so every eigenvalue is in [0, 1], where the iteration converges). Matmuls only: runs on any
    backend and differentiates by autodiff. Eigenvalues below about `2.25^-iterations` of the
    norm are not resolved (their roots come out too small)."""
    a = ops.cast(matrix, "float32")
    a = 0.5 * (a + ops.swapaxes(a, -1, -2))
    # The floor keeps an all-zero matrix at zero instead of 0 / 0.
    norm = ops.sqrt(ops.maximum(ops.sum(ops.square(a), axis=(-2, -1), keepdims=True), 1e-30))
    eye = ops.eye(a.shape[-1], dtype="float32")
    y, z = a / norm, ops.broadcast_to(eye, ops.shape(a))
    for _ in range(iterations):
        t = 0.5 * (3.0 * eye - ops.matmul(z, y))
        y, z = ops.matmul(y, t), ops.matmul(t, z)
    return y * ops.sqrt(norm)


def gaussian_wasserstein(mean, cov, target_mean, target_cov, target_cov_sqrt):
    """Squared Wasserstein-2 distance `[B]` between N(mean, cov) and N(target_mean, target_cov),
    given `target_cov_sqrt` (its square root): `|mu - mu_t|^2 + tr(S + S_t) - 2 tr((S_t^1/2 S
    S_t^1/2)^1/2)` (Dowson and Landau 1982), the inner root by `sqrtm_newton_schulz`."""
    middle = ops.matmul(ops.matmul(target_cov_sqrt, cov), target_cov_sqrt)
    cross = ops.trace(sqrtm_newton_schulz(middle), axis1=-2, axis2=-1)
    return (
        ops.sum(ops.square(mean - target_mean), axis=-1)
        + ops.trace(cov, axis1=-2, axis2=-1)
        + ops.trace(target_cov, axis1=-2, axis2=-1)
        - 2.0 * cross
    )


def mean_cov_loss(features, target):
    """`gaussian_wasserstein` between the features' Gaussian fit and the target's, both
    covariances ridged, divided by the target's second moment `|mu_t|^2 + tr(S_t)`."""
    mean, cov = mean_covariance(features)
    ridge = _ridge(target["cov"])
    distance = gaussian_wasserstein(
        mean, cov + ridge, target["mean"], target["cov"] + ridge, target["cov_sqrt"]
    )
    scale = ops.sum(ops.square(target["mean"]), axis=-1) + ops.trace(
        target["cov"], axis1=-2, axis2=-1
    )
    return ops.mean(distance / (scale + EPSILON))


def _ridge(cov):
    channels = cov.shape[-1]
    size = COVARIANCE_RIDGE * ops.trace(cov, axis1=-2, axis2=-1) / channels
    return size[:, None, None] * ops.eye(channels, dtype="float32")


def _mean_cov_target(mean, cov):
    return {"mean": mean, "cov": cov, "cov_sqrt": sqrtm_newton_schulz(cov + _ridge(cov))}


# --- "sliced_wasserstein" ---------------------------------------------------------------------


def sliced_wasserstein_loss(features, target, *, directions):
    """Sliced Wasserstein loss (Heitz et al. 2021) of `[B, H, W, C]` features against a
    target from `style_statistics`/`blend_statistics`, along `directions` `[C, P]` (unit
    columns): mean squared difference of the sorted projections to the target's quantiles,
    divided by the target's mean squared projection."""
    d = ops.cast(directions, "float32")
    flat = _flat(features)
    projected = ops.sort(ops.swapaxes(ops.matmul(flat, d), 1, 2), axis=-1)  # [B, P, N]
    target_projected = ops.transpose(ops.matmul(target["features"], d))  # [P, M]
    quantiles, scale = _target_quantiles(
        target_projected, target.get("mass"), ops.shape(projected)[-1]
    )
    return ops.mean(ops.square(projected - quantiles)) / (scale + EPSILON)


def _target_quantiles(values, mass, count):
    """The quantiles `[P, count]` of each row of `values` `[P, M]` at levels `(k + 0.5) / count`
    (linear between samples, each sample at the middle of its probability mass; constant beyond
    the first and last), and the mean squared value, for equal sample weights (`mass` None) or
    integer `mass` `[M]` per sample."""
    m = ops.shape(values)[-1]
    k = ops.arange(count, dtype="float32")
    if mass is None:
        ordered = ops.sort(values, axis=-1)
        # Sample j sits at level (j + 0.5) / M: level k of `count` is at fractional index
        # (k + 0.5) M / count - 0.5; the identity when M == count.
        position = (k + 0.5) * (ops.cast(m, "float32") / ops.cast(count, "float32")) - 0.5
        low = ops.clip(ops.floor(position), 0.0, ops.cast(m - 1, "float32"))
        frac = ops.clip(position - low, 0.0, 1.0)
        low = ops.cast(low, "int32")
        high = ops.minimum(low + 1, m - 1)
        below, above = ops.take(ordered, low, axis=1), ops.take(ordered, high, axis=1)
        return below + frac * (above - below), ops.mean(ops.square(values))
    order = ops.argsort(values, axis=-1)
    ordered = ops.take_along_axis(values, order, axis=-1)
    weights = ops.take(mass, order)  # [P, M] int32
    total = ops.cast(ops.sum(mass), "float32")
    centres = (
        ops.cast(ops.cumsum(weights, axis=-1), "float32") - 0.5 * ops.cast(weights, "float32")
    ) / total
    levels = (k + 0.5) / ops.cast(count, "float32")
    index = _count_at_or_below(centres, levels)
    low, high = ops.clip(index - 1, 0, m - 1), ops.clip(index, 0, m - 1)
    c_low, c_high = ops.take_along_axis(centres, low, -1), ops.take_along_axis(centres, high, -1)
    v_low, v_high = ops.take_along_axis(ordered, low, -1), ops.take_along_axis(ordered, high, -1)
    frac = ops.clip((levels - c_low) / ops.maximum(c_high - c_low, 1e-30), 0.0, 1.0)
    scale = ops.sum(ops.mean(ops.square(values), axis=0) * ops.cast(mass, "float32")) / total
    return v_low + frac * (v_high - v_low), scale


def _count_at_or_below(sorted_rows, levels):
    """For each row of `sorted_rows` `[P, M]` (ascending) and each of the ascending `levels`
    `[N]`, how many of the row's values lie below the level: a batched searchsorted (keras.ops'
    is 1-D only) by merging the two sorted lists and ranking the merge."""
    rows, m = ops.shape(sorted_rows)[0], ops.shape(sorted_rows)[1]
    n = ops.shape(levels)[0]
    merged = ops.concatenate([sorted_rows, ops.broadcast_to(levels[None], (rows, n))], axis=-1)
    rank = ops.cast(ops.argsort(ops.argsort(merged, axis=-1), axis=-1), "int32")
    # Level k is preceded in the merge by the k smaller levels and by the values below it.
    return rank[:, m:] - ops.arange(n, dtype="int32")


def random_directions(seed, *, channels, count):
    """`count` random unit directions in `channels` dimensions, `[channels, count]`, a pure
    function of the int32 `seed` (a Python int or a scalar tensor, also inside a compiled step):
    Gaussian samples by Box-Muller from a counter-based integer hash, normalised. keras.random
    takes no tensor seed on TensorFlow, hence the hash."""
    size = channels * count
    key = _hash32(ops.cast(seed, "int32"))
    bits = _hash32(_hash32(ops.arange(2 * size, dtype="int32") + key))
    uniform = (ops.cast(_shift_right(bits, 8), "float32") + 0.5) / 2.0**24  # in (0, 1)
    radius = ops.sqrt(-2.0 * ops.log(uniform[:size]))
    normal = ops.reshape(radius * ops.cos(6.283185307179586 * uniform[size:]), (channels, count))
    return normal / ops.sqrt(ops.sum(ops.square(normal), axis=0, keepdims=True))


def image_seed(image):
    """An int32 hash of `image`'s pixel values (no gradient): two images that differ in any
    pixel by more than float32 rounding of a sum of them give different seeds, in practice."""
    flat = ops.reshape(ops.stop_gradient(ops.cast(image, "float32")), (-1,))
    signs = 1.0 - 2.0 * ops.cast(
        ops.bitwise_and(_hash32(ops.arange(ops.shape(flat)[0], dtype="int32")), 1), "float32"
    )
    return _hash32(
        ops.bitwise_xor(_float_bits(ops.sum(flat * signs)), _hash32(_float_bits(ops.sum(flat))))
    )


def _float_bits(value):
    # The digits of a float32 down to its rounding, as an int32 (a sum of up to ~10^6 pixels
    # times 4096 keeps every digit float32 has).
    return ops.cast(ops.floor(ops.mod(value * 4096.0, 2.0**24)), "int32")


def _shift_right(x, bits):
    # A logical shift on int32 (the arithmetic shift copies the sign bit).
    return ops.bitwise_and(ops.right_shift(x, bits), (1 << (32 - bits)) - 1)


def _int32(value):
    return ops.convert_to_tensor((value ^ 0x80000000) - 0x80000000, "int32")


def _hash32(x):
    """Chris Wellons' "lowbias32" integer hash on int32 (multiplication wraps modulo 2^32 on
    both backends, as it does on uint32)."""
    x = ops.bitwise_xor(x, _shift_right(x, 16))
    x = x * _int32(0x7FEB352D)
    x = ops.bitwise_xor(x, _shift_right(x, 15))
    x = x * _int32(0x846CA68B)
    return ops.bitwise_xor(x, _shift_right(x, 16))


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
    style_kind=DEFAULTS.style_loss,
    seed=0,
    redraw_directions=False,
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

    Returns:
        `{"content", "style", "tv", "total"}`, each a float32 scalar. The first three are
        unweighted, so they can be compared across runs with different weights.
    """
    seeds = {}
    if style_kind == "sliced_wasserstein":
        base = _hash32(ops.cast(seed, "int32"))
        if redraw_directions:
            base = ops.bitwise_xor(base, image_seed(image))
        # Each layer its own directions (layers of a block have as many channels).
        seeds = {name: _hash32(base + _int32(i + 1)) for i, name in enumerate(style_targets)}

    def layer_style_loss(name, layer_features, target):
        return style_loss(layer_features, target, kind=style_kind, seed=seeds.get(name, 0))

    losses = {
        "content": _layer_mean(
            lambda name, f, t: content_loss(f, t), features, content_targets, content_layer_weights
        ),
        "style": _layer_mean(layer_style_loss, features, style_targets, style_layer_weights),
    }
    losses["tv"] = total_variation_loss(image)
    losses["total"] = (
        content_weight * losses["content"]
        + style_weight * losses["style"]
        + tv_weight * losses["tv"]
    )
    return losses


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
