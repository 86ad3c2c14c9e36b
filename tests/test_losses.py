"""Losses against hand-computed values, and their gradients against finite differences."""

import numpy as np
import pytest
from keras import ops

from tfstyle.ops import losses, style_stats


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def test_gram_matrix_hand_computed():
    # One image, 2x1 positions, 2 channels: F = [[1, 2], [3, 4]] (rows are positions).
    features = np.array([[[[1.0, 2.0]], [[3.0, 4.0]]]], np.float32)
    gram = _np(losses.gram_matrix(features))
    # F^T F = [[1+9, 2+12], [2+12, 4+16]] = [[10, 14], [14, 20]], averaged over 2 positions.
    np.testing.assert_allclose(gram, [[[5.0, 7.0], [7.0, 10.0]]], rtol=1e-6)


def test_gram_matrix_is_independent_of_image_size():
    tile = np.random.default_rng(0).standard_normal((1, 4, 4, 3)).astype(np.float32)
    big = np.tile(tile, (1, 3, 2, 1))
    np.testing.assert_allclose(
        _np(losses.gram_matrix(tile)), _np(losses.gram_matrix(big)), rtol=1e-5
    )


def test_relative_squared_error_hand_computed():
    value = np.array([1.0, 2.0, 3.0], np.float32)
    target = np.array([1.0, 0.0, 1.0], np.float32)
    # ((0)^2 + 2^2 + 2^2) / (1 + 0 + 1) = 8 / 2 = 4
    assert float(losses.relative_squared_error(value, target)) == pytest.approx(4.0, rel=1e-6)


def test_content_loss_zero_for_match_and_one_for_zero_image():
    target = np.random.default_rng(1).uniform(size=(1, 3, 3, 4)).astype(np.float32)
    assert float(losses.content_loss(target, target)) == pytest.approx(0.0, abs=1e-7)
    assert float(losses.content_loss(np.zeros_like(target), target)) == pytest.approx(1.0, 1e-6)


def test_style_loss_hand_computed():
    features = np.array([[[[1.0, 2.0]], [[3.0, 4.0]]]], np.float32)  # gram [[5, 7], [7, 10]]
    target = np.array([[[4.0, 7.0], [7.0, 12.0]]], np.float32)
    # ((5-4)^2 + 0 + 0 + (10-12)^2) / (16 + 49 + 49 + 144) = 5 / 258
    assert float(losses.style_loss(features, target)) == pytest.approx(5.0 / 258.0, rel=1e-6)


def test_total_variation_hand_computed():
    image = np.zeros((1, 2, 3, 3), np.float32)
    image[0, :, :, 0] = [[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]
    # Vertical differences (1x3x3 values): channel 0 = [0, -1, 0] -> sum sq 1 over 9 values.
    # Horizontal differences (2x2x3 values): channel 0 = [1, 0], [0, 1] -> sum sq 2 over 12.
    expected = 1.0 / 9.0 + 2.0 / 12.0
    assert float(losses.total_variation_loss(image)) == pytest.approx(expected, rel=1e-6)


def test_total_variation_zero_for_constant_image():
    assert float(losses.total_variation_loss(np.full((1, 5, 5, 3), 0.3, np.float32))) == 0.0


def test_weighted_mean_normalises_weights():
    value = losses.weighted_mean({"a": (2.0, 1.0), "b": (4.0, 3.0)})
    assert value == pytest.approx((2.0 * 1 + 4.0 * 3) / 4)


def test_style_transfer_losses_combines_weighted_terms():
    rng = np.random.default_rng(2)
    feats = {"c": rng.uniform(size=(1, 4, 4, 2)), "s": rng.uniform(size=(1, 4, 4, 3))}
    feats = {k: v.astype(np.float32) for k, v in feats.items()}
    image = rng.uniform(size=(1, 4, 4, 3)).astype(np.float32)
    content_target = np.zeros_like(feats["c"]) + 0.5
    style_target = np.eye(3, dtype=np.float32)[None]
    out = losses.style_transfer_losses(
        feats,
        image,
        content_targets={"c": content_target},
        style_targets={"s": style_target},
        content_layer_weights={"c": 1.0},
        style_layer_weights={"s": 2.0},
        content_weight=3.0,
        style_weight=5.0,
        tv_weight=7.0,
    )
    content = float(losses.content_loss(feats["c"], content_target))
    style = float(losses.style_loss(feats["s"], style_target))
    tv = float(losses.total_variation_loss(image))
    assert float(out["content"]) == pytest.approx(content, rel=1e-6)
    assert float(out["style"]) == pytest.approx(style, rel=1e-6)
    assert float(out["total"]) == pytest.approx(3 * content + 5 * style + 7 * tv, rel=1e-5)


def test_gradients_match_finite_differences(content_image, fixed_random_weights):
    """The loss gradient with respect to the image, through a conv network, against central
    finite differences (float64 via the backend's autodiff in the runner's value_and_grad)."""
    from tfstyle import StyleConfig
    from tfstyle.optimize.objective import compute_targets, feature_extractor_for, make_loss_fn
    from tfstyle.optimize.step import make_runner

    config = StyleConfig(
        weights=fixed_random_weights,
        max_size=32,
        content_layers=("block1_conv2",),
        style_layers=("block1_conv1", "block2_conv1"),
        tv_weight=0.5,
    )
    extractor = feature_extractor_for(config)
    image = content_image[:24, :24]
    style = np.ascontiguousarray(content_image[:24, 24:48][::-1])
    targets = compute_targets(extractor, image, [style], blend=[1.0], config=config)
    runner = make_runner(
        extractor=extractor, loss_fn=make_loss_fn(config), optimizer=None, image=image
    )
    start = np.clip(image + 0.05, 0, 1).astype(np.float32)
    losses_at, grad = runner.value_and_grad(start, targets)
    rng = np.random.default_rng(3)
    direction = rng.standard_normal(start.shape)
    direction = (direction / np.linalg.norm(direction)).astype(np.float32)
    # The slope of a least-squares line through 8 points of the loss along `direction`: a single
    # central difference of a float32 loss is off by several percent (rounding in the sum).
    steps = np.array([-4, -3, -2, -1, 1, 2, 3, 4]) * 2e-3
    values = [runner.value_and_grad(start + t * direction, targets)[0]["total"] for t in steps]
    pixels = start.shape[0] * start.shape[1]
    numeric = np.polyfit(steps, values, 1)[0] * pixels
    analytic = float(np.sum(grad * direction))
    assert analytic == pytest.approx(numeric, rel=2e-2)
    assert losses_at["total"] > 0


def test_total_variation_of_a_one_pixel_tall_image_is_its_horizontal_part():
    # No vertical neighbours: that term is 0, not the NaN mean of nothing.
    row = np.array([[[[0.0] * 3, [0.5] * 3, [0.5] * 3]]], np.float32)  # [1, 1, 3, 3]
    assert float(losses.total_variation_loss(row)) == pytest.approx(0.125)
    assert float(losses.total_variation_loss(np.zeros((1, 1, 1, 3), np.float32))) == 0.0


# --- style losses "mean_cov" and "sliced_wasserstein" ------------------------------------------

KINDS = ("gram", "mean_cov", "sliced_wasserstein")


def _positions(*channels):
    """`[1, N, 1, C]` features whose channel c takes the values `channels[c]` (N positions)."""
    return np.stack(channels, axis=-1).astype(np.float32)[None, :, None, :]


# Channel 0 is -1, -1, 1, 1 and channel 1 is -1, 1, -1, 1: mean 0, covariance I exactly.
UNIT = _positions([-1.0, -1.0, 1.0, 1.0], [-1.0, 1.0, -1.0, 1.0])


def test_sqrtm_newton_schulz_matches_scipy():
    import scipy.linalg

    rng = np.random.default_rng(4)
    b = rng.standard_normal((8, 8))
    spd = b @ b.T + 0.1 * np.eye(8)
    root = _np(style_stats.sqrtm_newton_schulz(spd.astype(np.float32)))
    np.testing.assert_allclose(root, scipy.linalg.sqrtm(spd).real, atol=2e-5 * np.abs(spd).max())
    np.testing.assert_allclose(_np(style_stats.sqrtm_newton_schulz(np.zeros((3, 3)))), 0.0)


def test_trace_sqrt_value_and_closed_form_gradient_match_scipy():
    """`trace_sqrt` gives tr(A^1/2) and, without backpropagating through the iteration, its
    gradient A^-1/2 / 2 (the inverse root from the same Newton-Schulz iteration)."""
    import scipy.linalg

    rng = np.random.default_rng(6)
    b = rng.standard_normal((6, 6))
    spd = (b @ b.T + 0.5 * np.eye(6)).astype(np.float32)
    root = scipy.linalg.sqrtm(spd.astype(np.float64)).real
    value = float(style_stats.trace_sqrt(spd))
    assert value == pytest.approx(np.trace(root), rel=1e-5)
    grad = _gradient(style_stats.trace_sqrt, _variable(spd))
    np.testing.assert_allclose(grad, 0.5 * np.linalg.inv(root), atol=1e-4)


def _variable(value):
    import keras

    return keras.Variable(value)


def test_mean_covariance_hand_computed():
    mean, cov = style_stats.mean_covariance(_positions([1.0, 3.0], [2.0, 2.0]))
    np.testing.assert_allclose(_np(mean), [[2.0, 2.0]])
    np.testing.assert_allclose(_np(cov), [[[1.0, 0.0], [0.0, 0.0]]])


def test_gaussian_wasserstein_closed_form():
    # Diagonal covariances commute: W2^2 = |mu1 - mu2|^2 + sum_c (sigma1_c - sigma2_c)^2.
    mean, cov = np.array([[0.0, 0.0]]), np.eye(2)[None]
    target_mean, target_cov = np.array([[2.0, 0.0]]), np.diag([9.0, 4.0])[None]
    w2 = style_stats.gaussian_wasserstein(
        *(x.astype(np.float32) for x in (mean, cov, target_mean, target_cov)),
        np.diag([3.0, 2.0])[None].astype(np.float32),
    )
    assert float(w2[0]) == pytest.approx(4.0 + (3 - 1) ** 2 + (2 - 1) ** 2, rel=1e-5)


def test_mean_cov_loss_hand_computed():
    # Target: channel 0 scaled by 3 and shifted by 2, channel 1 scaled by 2: mean (2, 0),
    # covariance diag(9, 4). W2^2 from UNIT (mean 0, cov I) = 4 + 2^2 + 1^2 = 9, divided by
    # |mu_t|^2 + tr(S_t) = 4 + 13 (the ridge moves it by about 1e-4).
    target = losses.style_statistics(UNIT * np.array([3.0, 2.0]) + [2.0, 0.0], kind="mean_cov")
    loss = float(losses.style_loss(UNIT, target, kind="mean_cov"))
    assert loss == pytest.approx(9.0 / 17.0, rel=1e-3)


def test_mean_cov_loss_zero_for_match_and_shift_is_its_squared_norm():
    features = np.random.default_rng(5).uniform(size=(1, 6, 5, 4)).astype(np.float32)
    target = losses.style_statistics(features, kind="mean_cov")
    assert float(losses.style_loss(features, target, kind="mean_cov")) == pytest.approx(
        0.0, abs=1e-4
    )
    shift = np.array([0.5, -0.25, 0.0, 1.0], np.float32)
    mean, cov = (_np(x) for x in style_stats.mean_covariance(features))
    expected = np.sum(shift**2) / (np.sum(mean**2) + np.trace(cov[0]))
    shifted = float(losses.style_loss(features + shift, target, kind="mean_cov"))
    assert shifted == pytest.approx(expected, rel=1e-3)
    blank = float(losses.style_loss(np.zeros_like(features), target, kind="mean_cov"))
    assert blank == pytest.approx(1.0, abs=0.03)


def test_sliced_wasserstein_one_channel_hand_computed():
    # One channel: every direction is +-1, so the loss is the sorted values' mean squared
    # difference: sorted(3, 1, 2, 5) = 1, 2, 3, 5 against 0, 1, 2, 3 gives (1 + 1 + 1 + 4) / 4,
    # divided by the target's mean square (1 + 4 + 9 + 25) / 4.
    target = losses.style_statistics(_positions([3.0, 1.0, 2.0, 5.0]), kind="sliced_wasserstein")
    image = _positions([0.0, 1.0, 2.0, 3.0])
    for seed in (0, 7):
        loss = float(losses.style_loss(image, target, kind="sliced_wasserstein", seed=seed))
        assert loss == pytest.approx(7.0 / 39.0, rel=1e-6)


def test_sliced_wasserstein_draws_a_quarter_as_many_directions_as_channels():
    """The loss of 8 channels projects on round(8 * SLICED_DIRECTIONS_PER_CHANNEL) = 2 random
    directions of its seed (not 8, as Heitz et al.): the same value as the distance along
    exactly those two."""
    from tfstyle.settings.style import SLICED_DIRECTIONS_PER_CHANNEL

    assert SLICED_DIRECTIONS_PER_CHANNEL == 0.25
    rng = np.random.default_rng(8)
    features = rng.standard_normal((1, 5, 6, 8)).astype(np.float32)
    target = losses.style_statistics(
        rng.standard_normal((1, 6, 5, 8)).astype(np.float32), kind="sliced_wasserstein"
    )
    loss = float(losses.style_loss(features, target, kind="sliced_wasserstein", seed=3))
    two = style_stats.random_directions(3, channels=8, count=2)
    expected = float(style_stats.sliced_wasserstein_loss(features, target, directions=two))
    assert loss == pytest.approx(expected, rel=1e-6)
    eight = style_stats.random_directions(3, channels=8, count=8)
    assert loss != pytest.approx(
        float(style_stats.sliced_wasserstein_loss(features, target, directions=eight)), rel=1e-3
    )


def test_sliced_wasserstein_resamples_target_quantiles():
    # Target samples 0, 2 sit at levels 1/4, 3/4; the image's 4 levels 1/8, 3/8, 5/8, 7/8 read
    # 0 (clamped), 0.5, 1.5, 2 (clamped) from the line between them.
    target = losses.style_statistics(_positions([2.0, 0.0]), kind="sliced_wasserstein")
    matching = _positions([1.5, 0.0, 2.0, 0.5])
    assert float(losses.style_loss(matching, target, kind="sliced_wasserstein")) == pytest.approx(
        0.0, abs=1e-7
    )


def test_sliced_wasserstein_zero_for_match_and_one_for_blank():
    features = np.random.default_rng(6).uniform(size=(1, 5, 6, 3)).astype(np.float32)
    target = losses.style_statistics(features, kind="sliced_wasserstein")
    kwargs = {"kind": "sliced_wasserstein", "seed": 3}
    assert float(losses.style_loss(features, target, **kwargs)) == pytest.approx(0.0, abs=1e-7)
    blank = float(losses.style_loss(np.zeros_like(features), target, **kwargs))
    assert blank == pytest.approx(1.0, rel=1e-5)
    # A permutation of the positions is the same distribution.
    shuffled = features.reshape(-1, 3)[::-1].reshape(features.shape)
    assert float(losses.style_loss(shuffled, target, **kwargs)) == pytest.approx(0.0, abs=1e-7)


def test_random_directions_are_unit_deterministic_and_isotropic():
    d = _np(style_stats.random_directions(11, channels=6, count=4000))
    np.testing.assert_allclose(np.linalg.norm(d, axis=0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(d, _np(style_stats.random_directions(11, channels=6, count=4000)))
    assert not np.allclose(d, _np(style_stats.random_directions(12, channels=6, count=4000)))
    # Uniform on the sphere: E[d d^T] = I / C.
    np.testing.assert_allclose(d @ d.T / 4000, np.eye(6) / 6, atol=0.01)


def test_image_seed_changes_with_the_image():
    image = np.random.default_rng(7).uniform(size=(1, 8, 8, 3)).astype(np.float32)
    nudged = image.copy()
    nudged[0, 3, 4, 1] += 1e-4
    seeds = {int(style_stats.image_seed(x)) for x in (image, nudged, image[:, ::-1])}
    assert len(seeds) == 3
    assert int(style_stats.image_seed(image)) == int(style_stats.image_seed(image.copy()))


def test_blend_gram_is_the_weighted_mean():
    rng = np.random.default_rng(8)
    a, b = (rng.uniform(size=(1, 3, 4, 2)).astype(np.float32) for _ in range(2))
    stats = [(losses.style_statistics(x, kind="gram"), w) for x, w in ((a, 1.0), (b, 3.0))]
    expected = 0.25 * _np(losses.gram_matrix(a)) + 0.75 * _np(losses.gram_matrix(b))
    np.testing.assert_allclose(_np(losses.blend_statistics(stats, kind="gram")), expected, 1e-6)


def test_blend_mean_cov_is_the_mixture_moments():
    rng = np.random.default_rng(9)
    a = rng.uniform(size=(1, 3, 4, 3)).astype(np.float32)
    b = (rng.uniform(size=(1, 5, 2, 3)) * 2 + 1).astype(np.float32)
    weights = (0.3, 0.7)
    blended = losses.blend_statistics(
        [
            (losses.style_statistics(x, kind="mean_cov"), w)
            for x, w in zip((a, b), weights, strict=True)
        ],
        kind="mean_cov",
    )
    # By hand in float64: mean = sum w_i mu_i, second moment = sum w_i E_i[x x^T].
    flats = [x.reshape(-1, 3).astype(np.float64) for x in (a, b)]
    mean = sum(w * f.mean(0) for w, f in zip(weights, flats, strict=True))
    second = sum(w * f.T @ f / len(f) for w, f in zip(weights, flats, strict=True))
    cov = second - np.outer(mean, mean)
    np.testing.assert_allclose(_np(blended["mean"])[0], mean, rtol=1e-5)
    np.testing.assert_allclose(_np(blended["cov"])[0], cov, rtol=1e-4, atol=1e-6)
    root = _np(blended["cov_sqrt"])[0]
    ridge = 1e-4 * np.trace(cov) / 3 * np.eye(3)
    np.testing.assert_allclose(root @ root, cov + ridge, rtol=1e-3, atol=1e-4)


def test_blend_sliced_wasserstein_is_the_weighted_mixture():
    # Style A (2 positions, weight 0.25) and B (3 positions, weight 0.75), one channel: the
    # target quantile function interpolates the pooled sorted samples, each at the middle of
    # its mass (A's samples weigh 0.125, B's 0.25), here computed with np.interp.
    a, b = [0.0, 1.0], [2.0, 4.0, 3.0]
    blended = losses.blend_statistics(
        [
            (losses.style_statistics(_positions(a), kind="sliced_wasserstein"), 0.25),
            (losses.style_statistics(_positions(b), kind="sliced_wasserstein"), 0.75),
        ],
        kind="sliced_wasserstein",
    )
    values = np.array(a + sorted(b))
    mass = np.array([0.125, 0.125, 0.25, 0.25, 0.25])
    centres = np.cumsum(mass) - mass / 2
    levels = (np.arange(8) + 0.5) / 8
    quantiles = np.interp(levels, centres, values)
    image = _positions(quantiles[::-1] + 0.0)
    kwargs = {"kind": "sliced_wasserstein"}
    assert float(losses.style_loss(image, blended, **kwargs)) == pytest.approx(0.0, abs=1e-6)
    # A blank image: the mean square of the quantiles over the mixture's second moment.
    blank = float(losses.style_loss(np.zeros_like(image), blended, **kwargs))
    assert blank == pytest.approx(np.mean(quantiles**2) / np.sum(mass * values**2), rel=1e-5)
    # The same samples pooled with equal weights are another distribution.
    pooled = losses.style_statistics(_positions(a + b), kind="sliced_wasserstein")
    assert float(losses.style_loss(image, pooled, **kwargs)) > 0.01


def test_blend_of_one_style_is_that_style():
    features = np.random.default_rng(10).uniform(size=(1, 3, 3, 2)).astype(np.float32)
    for kind in KINDS:
        stats = losses.style_statistics(features, kind=kind)
        assert losses.blend_statistics([(stats, 1.0)], kind=kind) is stats


@pytest.mark.parametrize("kind", ["mean_cov", "sliced_wasserstein"])
def test_style_loss_gradients_are_finite(kind):
    import keras

    rng = np.random.default_rng(11)
    target = losses.style_statistics(rng.uniform(size=(1, 6, 6, 4)).astype(np.float32), kind=kind)
    for start in (rng.uniform(size=(1, 5, 7, 4)), np.zeros((1, 5, 7, 4))):
        x = keras.Variable(start.astype(np.float32))
        grad = _gradient(lambda v: losses.style_loss(v, target, kind=kind, seed=2), x)
        assert np.isfinite(grad).all()
    assert np.abs(grad).sum() > 0


@pytest.mark.parametrize("kind", ["mean_cov", "sliced_wasserstein"])
def test_style_loss_gradients_match_finite_differences(kind):
    """The autodiff gradient of the "mean_cov" loss (through the Newton-Schulz square root) and
    of the "sliced_wasserstein" loss (through the sort) against the loss's slope along a random
    direction: a least-squares line through 8 float32 values, as for the whole objective above
    (a single central difference is off by percents from rounding in the sums)."""
    import keras

    rng = np.random.default_rng(21)
    # 16 channels: "sliced_wasserstein" projects on a quarter as many directions, 4.
    target = losses.style_statistics(rng.uniform(size=(1, 6, 6, 16)).astype(np.float32), kind=kind)
    start = rng.uniform(size=(1, 5, 7, 16)).astype(np.float32)

    def loss(features):
        return losses.style_loss(features, target, kind=kind, seed=2)

    grad = _gradient(loss, keras.Variable(start))
    direction = rng.standard_normal(start.shape)
    direction = (direction / np.linalg.norm(direction)).astype(np.float32)
    # Small enough that the sort's order (sliced_wasserstein) does not change along the line.
    steps = np.array([-4, -3, -2, -1, 1, 2, 3, 4]) * 1e-3
    values = [float(loss((start + t * direction).astype(np.float32))) for t in steps]
    numeric = np.polyfit(steps, values, 1)[0]
    analytic = float(np.sum(grad * direction))
    assert abs(analytic) > 1e-4  # a real slope, not two zeros agreeing
    assert analytic == pytest.approx(numeric, rel=2e-2)


def _gradient(fn, variable):
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: fn(v))(variable.value))
    import tensorflow as tf

    with tf.GradientTape() as tape:
        value = fn(variable.value)
    return tape.gradient(value, variable.value).numpy()


def test_style_transfer_losses_redraws_sliced_directions_per_image():
    rng = np.random.default_rng(12)
    features = {"s": rng.uniform(size=(1, 4, 4, 3)).astype(np.float32)}
    target = {
        "s": losses.style_statistics(rng.uniform(size=(1, 4, 4, 3)), kind="sliced_wasserstein")
    }

    def style(image, redraw, seed=0):
        out = losses.style_transfer_losses(
            features,
            image,
            content_targets={},
            style_targets=target,
            content_layer_weights={},
            style_layer_weights={"s": 1.0},
            content_weight=0.0,
            style_weight=1.0,
            tv_weight=0.0,
            style_kind="sliced_wasserstein",
            seed=seed,
            redraw_directions=redraw,
        )
        return float(out["style"])

    one, two = (rng.uniform(size=(1, 4, 4, 3)).astype(np.float32) for _ in range(2))
    assert style(one, True) != style(two, True)  # same features, new directions
    assert style(one, True) == style(one.copy(), True)  # deterministic
    assert style(one, False) == style(two, False)  # fixed directions (L-BFGS)
    assert style(one, False) != style(one, False, seed=1)


def test_unknown_style_kind_is_refused():
    with pytest.raises(ValueError, match="must be one of gram, mean_cov, sliced_wasserstein"):
        losses.style_statistics(np.zeros((1, 2, 2, 1), np.float32), kind="gatys")


@pytest.mark.parametrize("kind", KINDS)
def test_stylize_lowers_each_style_loss(kind):
    """32 px, random network (weights=None), two blended styles: the style loss falls."""
    from tfstyle import StyleConfig, stylize

    rng = np.random.default_rng(13)
    content = rng.uniform(size=(32, 32, 3)).astype(np.float32)
    x = np.arange(40)
    style = ((np.sin(x / 2.0)[None, :, None] + 1) / 2 * [0.9, 0.4, 0.1]).repeat(40, axis=0)
    config = StyleConfig(
        weights=None,
        max_size=32,
        iterations=8,
        steps_per_call=4,
        optimizer="adam",
        style_loss=kind,
        content_layers=("block2_conv1",),
        style_layers=("block1_conv1", "block2_conv1", "block3_conv1"),
        # The style term alone: nothing else moves the image.
        content_weight=0.0,
        tv_weight=0.0,
    )
    result = stylize(
        content,
        [style.astype(np.float32), np.ascontiguousarray(style.transpose(1, 0, 2)[::-1])],
        config=config,
    )
    history = result.history["style"]
    assert np.isfinite(history).all()
    assert history[-1] < 0.7 * history[0]
