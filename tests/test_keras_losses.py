"""Keras losses: values against the functional losses, get_config round trips, and model.fit."""

import keras
import numpy as np
import pytest

import tfstyle
from tfstyle.models.vgg import build_feature_extractor
from tfstyle.ops import losses as fl

STYLE_LAYERS = ("block1_conv1", "block2_conv1")
CONTENT_LAYERS = ("block2_conv2",)
NET = {"network": "vgg16", "weights": None}


@pytest.fixture
def batch(rng):
    """Two 32x32 targets and two predictions, float32 in [0, 1]."""
    true = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
    pred = np.clip(true + 0.2 * rng.standard_normal(true.shape), 0, 1).astype(np.float32)
    return true, pred


def _functional(
    true, pred, *, layers, content_weight=1.0, style_weight=1.0, tv_weight=0.0, style=None
):
    """The whole-batch functional losses of `losses.py`, one image (batch of 1) at a time.

    `layers`: those the loss object asked for, so that the (cached) random-weight extractor is
    the very one it uses.
    """
    extractor = build_feature_extractor(layers=layers, **NET)
    out = []
    for t, p in zip(true, pred, strict=True):
        ft, fp = extractor(t[None]), extractor(p[None])
        ft_style = extractor(style[None]) if style is not None else ft
        out.append(
            fl.style_transfer_losses(
                fp,
                p[None],
                content_targets={k: ft[k] for k in CONTENT_LAYERS if k in layers},
                style_targets={k: fl.gram_matrix(ft_style[k]) for k in STYLE_LAYERS if k in layers},
                content_layer_weights={k: 1.0 for k in CONTENT_LAYERS},
                style_layer_weights={"block1_conv1": 1.0, "block2_conv1": 0.5},
                content_weight=content_weight,
                style_weight=style_weight,
                tv_weight=tv_weight,
            )
        )
    return {k: np.mean([float(o[k]) for o in out]) for k in out[0]}


def test_values_match_functional_losses(batch):
    true, pred = batch
    weights = {"content_weight": 2.0, "style_weight": 3.0, "tv_weight": 5.0}
    expected = _functional(true, pred, layers=CONTENT_LAYERS + STYLE_LAYERS, **weights)
    content = tfstyle.ContentLoss(layers=CONTENT_LAYERS, **NET)
    style = tfstyle.StyleLoss(layers=STYLE_LAYERS, layer_weights="decreasing", **NET)
    perceptual = tfstyle.PerceptualLoss(
        content_layers=CONTENT_LAYERS,
        style_layers=STYLE_LAYERS,
        style_layer_weights=(1.0, 0.5),
        content_weight=2.0,
        style_weight=3.0,
        tv_weight=5.0,
        **NET,
    )
    # Batch mean of per-image values equals the mean of one-image functional losses.
    assert float(perceptual(true, pred)) == pytest.approx(expected["total"], rel=1e-4)
    expected_content = _functional(true, pred, layers=CONTENT_LAYERS)["content"]
    assert float(content(true, pred)) == pytest.approx(expected_content, rel=1e-4)
    expected_style = _functional(true, pred, layers=STYLE_LAYERS)["style"]
    assert float(style(true, pred)) == pytest.approx(expected_style, rel=1e-4)
    assert expected_content > 0.01 and expected_style > 1e-4
    assert float(content(true, true)) == pytest.approx(0.0, abs=1e-6)


def test_per_image_values_and_sample_weight(batch):
    true, pred = batch
    loss = tfstyle.ContentLoss(layers=CONTENT_LAYERS, reduction=None, **NET)
    per_image = np.asarray(loss(true, pred))
    assert per_image.shape == (2,)
    first = _functional(true[:1], pred[:1], layers=CONTENT_LAYERS)["content"]
    assert per_image[0] == pytest.approx(first, rel=1e-4)
    summed = tfstyle.ContentLoss(layers=CONTENT_LAYERS, reduction="sum", **NET)
    weighted = float(summed(true, pred, sample_weight=np.array([1.0, 0.0])))
    assert weighted == pytest.approx(per_image[0], rel=1e-5)


def test_fixed_style_image_replaces_y_true_for_style(batch, style_image):
    true, pred = batch
    style = style_image[:32, :32]
    loss = tfstyle.StyleLoss(
        layers=STYLE_LAYERS, layer_weights=(1.0, 0.5), style_image=style, **NET
    )
    expected = _functional(true, pred, layers=STYLE_LAYERS, style=style)["style"]
    assert float(loss(true, pred)) == pytest.approx(expected, rel=1e-4)
    # y_true is ignored: any batch gives the same value.
    assert float(loss(np.zeros_like(true), pred)) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("cls", ["ContentLoss", "StyleLoss", "PerceptualLoss"])
def test_get_config_round_trip(cls, batch, style_image):
    true, pred = batch
    kwargs = {"network": "vgg16", "weights": None, "name": "mine", "reduction": "sum"}
    if cls != "ContentLoss":
        kwargs["style_image"] = style_image[:20, :20]
    original = getattr(tfstyle, cls)(**kwargs)
    config = original.get_config()
    assert config["network"] == "vgg16" and config["name"] == "mine"
    restored = getattr(tfstyle, cls).from_config(config)
    assert restored.get_config() == config
    assert float(restored(true, pred)) == pytest.approx(float(original(true, pred)), rel=1e-6)
    # Through Keras' registry, as a saved model's compile config is restored.
    serialized = keras.saving.serialize_keras_object(original)
    assert serialized["registered_name"] == f"tfstyle>{cls}"
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(original) and revived.get_config() == config


def test_bad_options_raise_config_error():
    with pytest.raises(tfstyle.ConfigError, match="unknown vgg16 layer"):
        tfstyle.StyleLoss(layers=("block9_conv9",), **NET)
    with pytest.raises(tfstyle.ConfigError, match="one weight per layer"):
        tfstyle.StyleLoss(layers=STYLE_LAYERS, layer_weights=(1.0,), **NET)


def test_only_the_gram_style_loss_is_offered():
    from tfstyle.integrations.keras_losses import _FeatureLoss

    config = tfstyle.StyleConfig(weights=None, style_loss="sliced_wasserstein")
    with pytest.raises(tfstyle.ConfigError, match="style_loss='gram' only"):
        _FeatureLoss(config=config, style_image=None, name="x", reduction="sum", dtype=None)


def test_fit_image_to_image_model_with_perceptual_loss(rng):
    keras.utils.set_random_seed(0)
    inputs = rng.uniform(size=(8, 32, 32, 3)).astype(np.float32)
    targets = np.ascontiguousarray(inputs[:, :, ::-1, :])  # learn a mirror: needs real work
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid"),
        ]
    )
    loss = tfstyle.PerceptualLoss(
        content_layers=("block1_conv2",), style_layers=("block1_conv1",), tv_weight=0.1, **NET
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    history = model.fit(inputs, targets, batch_size=4, epochs=8, verbose=0).history["loss"]
    assert len(history) == 8 and np.all(np.isfinite(history))
    assert history[-1] < 0.8 * history[0]
    # The compiled value is the loss object's own value on the trained model's output.
    evaluated = model.evaluate(inputs, targets, batch_size=8, verbose=0)
    assert evaluated == pytest.approx(float(loss(targets, model(inputs))), rel=1e-3)
