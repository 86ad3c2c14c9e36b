"""StyleConfig validation: every bad value is refused with the valid range in the message."""

import pytest

from tfstyle import ConfigError, StyleConfig


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iterations": 0}, "iterations must be at least 1"),
        ({"iterations": -3}, "iterations must be at least 1"),
        ({"max_size": 0}, "max_size must be at least 1"),
        ({"content_weight": -1.0}, r"content_weight must be in \[0.0, inf\]"),
        ({"style_weight": float("nan")}, "style_weight must be a finite number"),
        ({"tv_weight": -0.1}, "tv_weight must be in"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of sgd, adam, lbfgs"),
        ({"network": "vgg11"}, "network must be one of"),
        ({"init": "zeros"}, "init must be one of"),
        ({"style_scale": 0.0}, r"style_scale must be in \(0.0, 10.0\]"),
        ({"init_noise_ratio": 1.5}, r"init_noise_ratio must be in \[0.0, 1.0\]"),
        ({"learning_rate": 0.0}, "learning_rate must be in"),
        ({"style_layer_weights": (1.0, 2.0)}, "2 values but there are 5 style layers"),
        ({"style_layer_weights": "deep"}, "style_layer_weights must be one of equal, decreasing"),
        ({"style_blend_weights": (0.0, 0.0)}, "must not all be 0"),
        ({"content_weight": 0.0, "style_weight": 0.0}, "nothing to optimise"),
        ({"content_layers": (), "style_layers": ()}, "at least one content or style layer"),
        ({"iterations": 2.5}, "iterations must be an integer"),
        ({"optimizer": "lbfgs", "learning_rate": 0.1}, "learning_rate does not apply to lbfgs"),
    ],
)
def test_bad_values_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        StyleConfig(**changes)


def test_defaults_are_valid_and_documented():
    config = StyleConfig()
    assert config.network == "vgg19"
    assert config.optimizer == "sgd" and config.schedule == "exponential"
    assert config.lr > 0


def test_layer_weight_presets():
    layers = ("block1_conv1", "block2_conv1", "block3_conv1")
    assert StyleConfig(style_layers=layers).style_layer_weight_map() == dict.fromkeys(layers, 1.0)
    decreasing = StyleConfig(style_layers=layers, style_layer_weights="decreasing")
    assert list(decreasing.style_layer_weight_map().values()) == [1.0, 0.5, 0.25]
    explicit = StyleConfig(style_layers=layers, style_layer_weights=[3, 2, 1])
    assert explicit.style_layer_weights == (3.0, 2.0, 1.0)


def test_to_dict_is_plain_json():
    import json

    data = StyleConfig(style_blend_weights=(1, 3)).to_dict()
    assert json.loads(json.dumps(data))["style_blend_weights"] == [1.0, 3.0]


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        StyleConfig().iterations = 5
