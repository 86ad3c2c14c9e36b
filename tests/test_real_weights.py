"""Checks with real ImageNet-derived VGG16 weights (skipped unless TFSTYLE_TEST_WEIGHTS is set).

TFSTYLE_TEST_WEIGHTS=~/.cache/tfstyle-dev/vgg16_hed_notop.weights.h5 python -m pytest -m weights
"""

import os

import numpy as np
import pytest

from tfstyle import StyleConfig, stylize
from tfstyle.io import load_image

pytestmark = pytest.mark.weights
# test_default_run_paints's bounds, measured on astronaut + shipwreck at 256 px (VGG16 HED
# weights; the photo's own coarse held-out distance is 11.1):
#   0.2 default (128 px x 200 steps, then 256 px x 50): coarse held-out 0.163 (0.0146 of the
#       photo's), held-out 0.061, content 0.389: painted, face kept;
#   0.1 default (300 raw-gradient SGD steps at 256 px, rate 2e-4): coarse held-out 0.357
#       (0.032), held-out 0.053, content 0.301: the photo under a fine texture.
# At full size the two score alike; at half size (the scale of colour fields and large
# strokes, `tfstyle.ops.metrics`) 0.1's misses the bound by 1.5x and 0.2's meets it by 1.5x. At
# 128 px nothing separates them (0.1's default paints there too), so the test runs at 256.
COARSE_HELD_OUT_RATIO = 0.022
HELD_OUT_RATIO = 0.012
CONTENT_LIMIT = 0.6
# test_default_settings_transfer_style_and_keep_content's bound. Measured (chelsea + starry
# night, 96 px, 120 steps): content 0.537 by default; 0.995 with a content loss five times too
# weak (content_weight=0.2) and 1.43 with none (content_weight=0), which the old bound of 1.0
# let through.
KEPT_CONTENT = 0.7
IMAGES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples", "images")


def _load(name, size):
    return load_image(os.path.join(IMAGES, name), max_size=size)


def test_default_settings_transfer_style_and_keep_content(real_weights):
    content = _load("content_chelsea.png", 96)
    style = _load("style_starry_night.jpg", 256)
    config = StyleConfig(network="vgg16", weights=real_weights, max_size=96, iterations=120)
    result = stylize(content, style, config=config)
    history = result.history
    assert history["style"][-1] < 0.3 * history["style"][0]
    assert history["content"][-1] < KEPT_CONTENT
    # Measured apart from the loss (tfstyle.ops.metrics, at the same default content layer), so
    # a content loss that reports a wrong value cannot pass.
    from tfstyle import build_feature_extractor
    from tfstyle.ops import metrics

    scorer = build_feature_extractor(
        layers=metrics.SCORER_LAYERS, network="vgg16", weights=real_weights
    )
    measured = metrics.distances(scorer, result.image, content=content, style=style)["content"]
    assert measured == pytest.approx(float(history["content"][-1]), rel=0.02)
    # The output's mean colour moves from the photo's toward the painting's.
    before = np.abs(content.mean((0, 1)) - style.mean((0, 1))).sum()
    after = np.abs(result.image.mean((0, 1)) - style.mean((0, 1))).sum()
    assert after < 0.6 * before


def test_content_reconstruction_from_noise(real_weights):
    content = _load("content_coffee.png", 64)
    config = StyleConfig(
        network="vgg16",
        weights=real_weights,
        max_size=64,
        iterations=150,
        style_weight=0.0,
        init="noise",
        optimizer="lbfgs",
        content_layers=("block2_conv2",),
        tv_weight=0.1,
    )
    result = stylize(content, content, config=config)
    assert result.history["content"][-1] < 0.1
    # A reconstruction from shallow features resembles the photo pixel for pixel: the error is
    # less than half that of the noise it started from.
    from tfstyle.optimize.objective import initial_image

    start = initial_image(config, content, [content])
    assert np.abs(result.image - content).mean() < 0.5 * np.abs(start - content).mean()


def test_default_run_paints(real_weights):
    """The quality gate: with default settings at 256 px, the held-out style distance at half
    size (`tfstyle.ops.metrics`) falls below 2.2% of the photo's own and at full size below 1.2%,
    while the content distance stays under 0.6 (the painting without losing the photo)."""
    from tfstyle import build_feature_extractor
    from tfstyle.ops import metrics

    content = _load("content_astronaut.png", 256)
    style = _load("style_shipwreck.jpg", 512)
    config = StyleConfig(network="vgg16", weights=real_weights, max_size=256)
    result = stylize(content, style, config=config)
    scorer = build_feature_extractor(
        layers=metrics.SCORER_LAYERS, network="vgg16", weights=real_weights
    )
    photo = metrics.distances(scorer, content, content=content, style=style)
    painted = metrics.distances(scorer, result.image, content=content, style=style)
    coarse = painted["coarse_held_out_style"] / photo["coarse_held_out_style"]
    assert coarse < COARSE_HELD_OUT_RATIO, painted
    assert painted["held_out_style"] < HELD_OUT_RATIO * photo["held_out_style"], painted
    assert painted["content"] < CONTENT_LIMIT, painted
