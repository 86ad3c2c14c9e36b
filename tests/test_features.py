"""Feature extractor: keys, shapes, truncation, preprocessing, pooling, weights errors."""

import warnings

import keras
import numpy as np
import pytest
from keras import ops

from tfstyle import WeightsError
from tfstyle.errors import ConfigError
from tfstyle.models.vgg import (
    IMAGENET_BGR_MEAN,
    CaffePreprocess,
    build_feature_extractor,
    layer_names,
    min_input_size,
)


def test_keys_and_shapes():
    layers = ("block1_conv1", "block3_conv1", "block4_conv2")
    model = build_feature_extractor(layers=layers, weights=None)
    out = model(np.zeros((1, 32, 48, 3), np.float32))
    assert set(out) == set(layers)
    assert tuple(out["block1_conv1"].shape) == (1, 32, 48, 64)
    assert tuple(out["block3_conv1"].shape) == (1, 8, 12, 256)
    assert tuple(out["block4_conv2"].shape) == (1, 4, 6, 512)


def test_stops_at_deepest_requested_layer():
    model = build_feature_extractor(layers=("block2_conv1",), weights=None, network="vgg16")
    names = [layer.name for layer in model.layers]
    assert "block2_conv1" in names
    assert "block2_conv2" not in names and "block5_conv1" not in names


def test_extractor_is_frozen():
    model = build_feature_extractor(layers=("block1_conv1",), weights=None)
    assert not model.trainable_weights
    assert model.non_trainable_weights


def test_caffe_preprocess_values_and_no_mutation():
    image = np.array([[[[1.0, 0.5, 0.0]]]], np.float32)
    copy = image.copy()
    out = ops.convert_to_numpy(CaffePreprocess()(image))
    r, g, b = 255.0, 127.5, 0.0
    expected = [b - IMAGENET_BGR_MEAN[0], g - IMAGENET_BGR_MEAN[1], r - IMAGENET_BGR_MEAN[2]]
    np.testing.assert_allclose(out[0, 0, 0], expected, rtol=1e-6)
    np.testing.assert_array_equal(image, copy)


def test_extractor_matches_keras_vgg_with_same_weights():
    """Our truncated dict model equals keras.applications' VGG16 + preprocess_input."""
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    model = build_feature_extractor(layers=("block2_conv2",), weights=None, network="vgg16")
    for ours in model.layers:
        if ours.weights:
            ours.set_weights(base.get_layer(ours.name).get_weights())
    image = np.random.default_rng(0).uniform(size=(1, 20, 20, 3)).astype(np.float32)
    reference = keras.Model(base.input, base.get_layer("block2_conv2").output)
    expected = reference(keras.applications.vgg16.preprocess_input(image.copy() * 255.0))
    actual = model(image)["block2_conv2"]
    np.testing.assert_allclose(
        ops.convert_to_numpy(actual), ops.convert_to_numpy(expected), rtol=1e-4, atol=1e-3
    )
    # Reset the shared cached model's weights are not our concern: the test built its own
    # extractor with a layer set no other test uses.


def test_average_pooling_differs_from_max():
    image = np.random.default_rng(1).uniform(size=(1, 16, 16, 3)).astype(np.float32)
    max_model = build_feature_extractor(layers=("block2_conv1",), weights=None, pooling="max")
    avg_model = build_feature_extractor(layers=("block2_conv1",), weights=None, pooling="avg")
    # Same conv weights (both random from the same seed would differ), so copy them over.
    for layer in avg_model.layers:
        if layer.weights:
            layer.set_weights(max_model.get_layer(layer.name).get_weights())
    # Each pool takes the mean or the max of the 2x2 windows of block1_conv2's activations.
    conv, pool = _pool_input_and_output(avg_model, image)
    windows = conv.reshape(1, 8, 2, 8, 2, 64)
    np.testing.assert_allclose(pool, windows.mean(axis=(2, 4)), rtol=1e-5, atol=1e-6)
    conv, pool = _pool_input_and_output(max_model, image)
    np.testing.assert_array_equal(pool, conv.reshape(1, 8, 2, 8, 2, 64).max(axis=(2, 4)))
    max_out = ops.convert_to_numpy(max_model(image)["block2_conv1"])
    avg_out = ops.convert_to_numpy(avg_model(image)["block2_conv1"])
    assert max_out.shape == avg_out.shape == (1, 8, 8, 128)
    assert np.abs(max_out - avg_out).mean() > 1e-3


def _pool_input_and_output(model, image):
    probe = keras.Model(
        model.input, [model.get_layer(n).output for n in ("block1_conv2", "block1_pool")]
    )
    return [ops.convert_to_numpy(x) for x in probe(image)]


def test_layer_names_and_min_size():
    assert len(layer_names("vgg16")) == 13 and len(layer_names("vgg19")) == 16
    assert min_input_size("vgg19", ("block1_conv1",)) == 1
    assert min_input_size("vgg19", ("block5_conv1", "block1_conv1")) == 16
    assert min_input_size("vgg16", ("block4_conv2",)) == 8


def test_unknown_layer_lists_valid_names():
    with pytest.raises(ConfigError, match=r"unknown vgg16 layer.*block4_conv4.*valid"):
        build_feature_extractor(layers=("block4_conv4",), network="vgg16", weights=None)


def test_unknown_network():
    with pytest.raises(ConfigError, match="network must be one of"):
        build_feature_extractor(layers=("block1_conv1",), network="resnet", weights=None)


def test_missing_weights_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        build_feature_extractor(layers=("block1_conv1",), weights=str(tmp_path / "no.weights.h5"))


def test_corrupt_weights_file(tmp_path):
    path = tmp_path / "bad.weights.h5"
    path.write_bytes(b"not an h5 file")
    with pytest.raises(WeightsError, match="could not load VGG19 weights"):
        build_feature_extractor(layers=("block1_conv1",), weights=str(path))


def test_local_weights_file_is_loaded(tmp_path):
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    path = str(tmp_path / "vgg16.weights.h5")
    base.save_weights(path)
    model = build_feature_extractor(layers=("block1_conv1",), weights=path, network="vgg16")
    np.testing.assert_array_equal(
        model.get_layer("block1_conv1").get_weights()[0],
        base.get_layer("block1_conv1").get_weights()[0],
    )


def test_a_weights_file_of_the_other_network_is_named(tmp_path):
    # A VGG16 file with the default vgg19: five "Skipping nested container" warnings, then an
    # error cut off at a colon. Both directions, from files Keras wrote.
    for saved, asked in (("vgg16", "vgg19"), ("vgg19", "vgg16")):
        factory = getattr(keras.applications, saved.upper())
        path = str(tmp_path / f"{saved}.weights.h5")
        factory(include_top=False, weights=None, input_shape=(None, None, 3)).save_weights(path)
        convs = {"vgg16": 13, "vgg19": 16}
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # and no Keras warning on the way
            with pytest.raises(WeightsError) as info:
                build_feature_extractor(layers=("block1_conv1",), weights=path, network=asked)
        assert str(info.value) == (
            f"{path} looks like a {saved} weights file ({convs[saved]} convolutions; {asked} "
            f"has {convs[asked]}): pass --network {saved} (network='{saved}' in Python)"
        )


def test_imagenet_download_failure_is_one_clear_error(monkeypatch):
    import keras.src.utils.file_utils as file_utils

    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(WeightsError, match=r"ImageNet VGG19 weights.*--weights PATH") as info:
        build_feature_extractor(layers=("block2_conv2",), weights="imagenet")
    assert "\n" not in str(info.value)
