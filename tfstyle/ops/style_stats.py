"""The statistics and distances of the "mean_cov" and "sliced_wasserstein" style losses, and
the integer hash that draws the sliced directions (keras.ops only: any backend, no state, no I/O).

Both are relative errors, as every loss in `losses.py` (which chooses between them):

* "mean_cov": the squared Wasserstein-2 distance between Gaussian fits of the features,
  `|mu - mu_t|^2 + tr(S + S_t - 2 (S_t^1/2 S S_t^1/2)^1/2)`, as in crowsonkb's
  style-transfer-pytorch (`StyleLossW2`), divided by the target's second moment
  `|mu_t|^2 + tr(S_t)` (the distance of an all-zero feature map). Deviations: a ridge
  `COVARIANCE_RIDGE * tr(S_t) / C` is added to both covariances (crowsonkb adds an absolute
  1e-4 to the image's only), so the distance stays an exact W2 between two regularised Gaussians
  (never negative) and the Newton-Schulz iteration sees no singular matrix; the square roots are
  `NEWTON_SCHULZ_ITERATIONS` coupled Newton-Schulz iterations, and the gradient of the trace
  term is its closed form `A^-1/2 / 2` from the same iteration's inverse root (`trace_sqrt`;
  crowsonkb solves a Lyapunov equation for the backward pass instead); crowsonkb averages over
  channels where we divide by the target's second moment.
* "sliced_wasserstein": Heitz et al. (CVPR 2021): the features are projected onto random unit
  directions (a quarter as many as channels, `SLICED_DIRECTIONS_PER_CHANNEL`, where Heitz et al.
  draw as many as channels), the projections sorted over positions, and the
  mean squared difference to the target's sorted projections taken. The target's quantiles are
  linearly interpolated at the image's `(k + 0.5) / N` levels when the style has another number
  of positions (the identity when they are equal); a blend of styles is the mixture
  distribution: each style's samples weigh `w_i / N_i` in the target quantile function. Divided by
  the target's mean squared projection (a blank image scores 1 exactly when the numbers of
  positions are equal). Deviation: Heitz et al. draw directions with a stateful RNG; here they are
  a pure function of an integer seed (`random_directions`), drawn in-graph from the seed mixed
  with a hash of the current image, so every step gets new directions with no state and no host
  round trip (see `style_transfer_losses`).
"""

from keras import ops

from tfstyle.settings.style import COVARIANCE_RIDGE, NEWTON_SCHULZ_ITERATIONS

EPSILON = 1e-8


def flat_positions(features):
    """The positions of `[B, H, W, C]` features as rows.

    Args:
        features: activations `[B, H, W, C]`.

    Returns:
        float32 `[B, H * W, C]`.
    """
    x = ops.cast(features, "float32")
    shape = ops.shape(x)
    return ops.reshape(x, (shape[0], -1, shape[3]))


# --- "mean_cov" -------------------------------------------------------------------------------


def mean_covariance(features):
    """Mean `[B, C]` and covariance `[B, C, C]` over positions of `[B, H, W, C]` features.

    Args:
        features: activations `[B, H, W, C]`.

    Returns:
        `(mean, cov)`, float32; the covariance divides by the number of positions.
    """
    flat = flat_positions(features)
    mean = ops.mean(flat, axis=1)
    centred = flat - mean[:, None, :]
    positions = ops.cast(ops.shape(flat)[1], "float32")
    return mean, ops.einsum("bnc,bnd->bcd", centred, centred) / positions


def sqrtm_newton_schulz(matrix, *, iterations=NEWTON_SCHULZ_ITERATIONS):
    """Square root of symmetric positive semi-definite `[..., C, C]` matrices, by the coupled
    Newton-Schulz iteration (Higham 2008, eq. 6.35) on the matrix divided by its Frobenius norm
    (so every eigenvalue is in [0, 1], where the iteration converges). Matmuls only: runs on any
    backend and differentiates by autodiff. Eigenvalues below about `2.25^-iterations` of the
    norm are not resolved (their roots come out too small).

    Args:
        matrix: `[..., C, C]`, symmetrised here.
        iterations: Newton-Schulz iterations.

    Returns:
        float32 `[..., C, C]`, the principal square root.
    """
    return _newton_schulz(matrix, iterations)[0]


def _newton_schulz(matrix, iterations):
    """`(root, inverse_root)` of `matrix` by the coupled iteration (see `sqrtm_newton_schulz`):
    Y tends to `A^1/2` and Z to `A^-1/2` together, both returned unnormalised."""
    a = ops.cast(matrix, "float32")
    a = 0.5 * (a + ops.swapaxes(a, -1, -2))
    # The floor keeps an all-zero matrix at zero instead of 0 / 0.
    norm = ops.sqrt(ops.maximum(ops.sum(ops.square(a), axis=(-2, -1), keepdims=True), 1e-30))
    eye = ops.eye(a.shape[-1], dtype="float32")
    y, z = a / norm, ops.broadcast_to(eye, ops.shape(a))
    for _ in range(iterations):
        t = 0.5 * (3.0 * eye - ops.matmul(z, y))
        y, z = ops.matmul(y, t), ops.matmul(t, z)
    return y * ops.sqrt(norm), z / ops.sqrt(norm)


def trace_sqrt(matrix, *, iterations=NEWTON_SCHULZ_ITERATIONS):
    """`tr(A^1/2)` `[...]` of symmetric positive definite `[..., C, C]` matrices, with the
    gradient `A^-1/2 / 2` in closed form (d tr(A^1/2) = tr(A^-1/2 dA) / 2) from the inverse
    root the same Newton-Schulz iteration computes, instead of backpropagating through its
    `3 * iterations` matmuls: the backward pass of the iteration was most of a "mean_cov"
    step's cost. The closed form is the gradient of the exact trace, where autodiff gives that
    of the truncated iteration; both tend to it as the iteration converges.

    Args:
        matrix: `[..., C, C]`, symmetric positive definite (symmetrised here).
        iterations: Newton-Schulz iterations.

    Returns:
        float32 `[...]`.
    """
    a = ops.cast(matrix, "float32")
    root, inverse_root = _newton_schulz(ops.stop_gradient(a), iterations)
    inverse_root = 0.5 * (inverse_root + ops.swapaxes(inverse_root, -1, -2))
    # The second term is exactly 0 in value; its gradient with respect to `a` is A^-1/2 / 2.
    return ops.trace(root, axis1=-2, axis2=-1) + ops.sum(
        ops.stop_gradient(0.5 * inverse_root) * (a - ops.stop_gradient(a)), axis=(-2, -1)
    )


def gaussian_wasserstein(mean, cov, target_mean, target_cov, target_cov_sqrt):
    """Squared Wasserstein-2 distance `[B]` between N(mean, cov) and N(target_mean, target_cov),
    given `target_cov_sqrt` (its square root): `|mu - mu_t|^2 + tr(S + S_t) - 2 tr((S_t^1/2 S
    S_t^1/2)^1/2)` (Dowson and Landau 1982), the inner root's trace by `trace_sqrt`.

    Args:
        mean, cov: the first Gaussian, `[B, C]` and `[B, C, C]`.
        target_mean, target_cov: the second, same shapes.
        target_cov_sqrt: the square root of `target_cov`, `[B, C, C]`.

    Returns:
        float32 `[B]`.
    """
    middle = ops.matmul(ops.matmul(target_cov_sqrt, cov), target_cov_sqrt)
    cross = trace_sqrt(middle)
    return (
        ops.sum(ops.square(mean - target_mean), axis=-1)
        + ops.trace(cov, axis1=-2, axis2=-1)
        + ops.trace(target_cov, axis1=-2, axis2=-1)
        - 2.0 * cross
    )


def mean_cov_loss(features, target):
    """`gaussian_wasserstein` between the features' Gaussian fit and the target's, both
    covariances ridged, divided by the target's second moment `|mu_t|^2 + tr(S_t)`.

    Args:
        features: activations `[B, H, W, C]` of the image being optimised.
        target: `mean_cov_target`'s dict.

    Returns:
        A float32 scalar, the mean over the batch.
    """
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


def mean_cov_target(mean, cov):
    """The "mean_cov" style target of a mean and covariance.

    Args:
        mean: `[B, C]`.
        cov: `[B, C, C]`.

    Returns:
        `{"mean", "cov", "cov_sqrt"}`: the square root of the ridged covariance computed once
        here, not at every step.
    """
    return {"mean": mean, "cov": cov, "cov_sqrt": sqrtm_newton_schulz(cov + _ridge(cov))}


# --- "sliced_wasserstein" ---------------------------------------------------------------------


def sliced_wasserstein_loss(features, target, *, directions):
    """Sliced Wasserstein loss (Heitz et al. 2021) of `[B, H, W, C]` features against a
    target from `style_statistics`/`blend_statistics`, along `directions` `[C, P]` (unit
    columns): mean squared difference of the sorted projections to the target's quantiles,
    divided by the target's mean squared projection.

    Args:
        features: activations `[B, H, W, C]` of the image being optimised.
        target: `{"features": [M, C]}`, with `"mass": [M]` int32 for a blend.
        directions: `[C, P]`, unit columns (`random_directions`).

    Returns:
        A float32 scalar.
    """
    d = ops.cast(directions, "float32")
    flat = flat_positions(features)
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
    takes no tensor seed on TensorFlow, hence the hash.

    Args:
        seed: an int or an int32 scalar tensor.
        channels: the dimension of each direction.
        count: how many directions.

    Returns:
        float32 `[channels, count]`, each column of unit length.
    """
    size = channels * count
    key = hash32(ops.cast(seed, "int32"))
    bits = hash32(hash32(ops.arange(2 * size, dtype="int32") + key))
    uniform = (ops.cast(_shift_right(bits, 8), "float32") + 0.5) / 2.0**24  # in (0, 1)
    radius = ops.sqrt(-2.0 * ops.log(uniform[:size]))
    normal = ops.reshape(radius * ops.cos(6.283185307179586 * uniform[size:]), (channels, count))
    return normal / ops.sqrt(ops.sum(ops.square(normal), axis=0, keepdims=True))


def image_seed(image):
    """An int32 hash of `image`'s pixel values (no gradient): two images that differ in any
    pixel by more than float32 rounding of a sum of them give different seeds, in practice.

    Args:
        image: any shape, float.

    Returns:
        An int32 scalar tensor.
    """
    flat = ops.reshape(ops.stop_gradient(ops.cast(image, "float32")), (-1,))
    signs = 1.0 - 2.0 * ops.cast(
        ops.bitwise_and(hash32(ops.arange(ops.shape(flat)[0], dtype="int32")), 1), "float32"
    )
    return hash32(
        ops.bitwise_xor(_float_bits(ops.sum(flat * signs)), hash32(_float_bits(ops.sum(flat))))
    )


def _float_bits(value):
    # The digits of a float32 down to its rounding, as an int32 (a sum of up to ~10^6 pixels
    # times 4096 keeps every digit float32 has).
    return ops.cast(ops.floor(ops.mod(value * 4096.0, 2.0**24)), "int32")


def _shift_right(x, bits):
    # A logical shift on int32 (the arithmetic shift copies the sign bit).
    return ops.bitwise_and(ops.right_shift(x, bits), (1 << (32 - bits)) - 1)


def int32_constant(value):
    """An int32 tensor holding the low 32 bits of `value`, read as two's complement.

    Args:
        value: a Python int in [0, 2^32) (or a negative int32).

    Returns:
        An int32 scalar tensor (0x80000000 and above become negative).
    """
    return ops.convert_to_tensor((value ^ 0x80000000) - 0x80000000, "int32")


def hash32(x):
    """Chris Wellons' "lowbias32" integer hash on int32 (multiplication wraps modulo 2^32 on
    both backends, as it does on uint32).

    Args:
        x: an int32 tensor, any shape.

    Returns:
        int32, same shape, each element hashed.
    """
    x = ops.bitwise_xor(x, _shift_right(x, 16))
    x = x * int32_constant(0x7FEB352D)
    x = ops.bitwise_xor(x, _shift_right(x, 15))
    x = x * int32_constant(0x846CA68B)
    return ops.bitwise_xor(x, _shift_right(x, 16))
