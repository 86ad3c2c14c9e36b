"""Losses against hand-computed values, and their gradients against finite differences."""

import numpy as np
import pytest
from keras import ops

from tfstyle import losses


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
    from tfstyle.loop import compute_targets, feature_extractor_for, make_loss_fn
    from tfstyle.step import make_runner

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
