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
        ({"optimizer": "lbfgs", "average": "ema"}, "average applies to sgd and adam, not lbfgs"),
        ({"style_layers": ("block1_conv1", "conv9")}, r"unknown vgg19 layer\(s\) conv9; valid: "),
        ({"network": "vgg16", "content_layers": ("block5_conv4",)}, "unknown vgg16 layer"),
        ({"max_size": 15}, "max_size must be at least 16 for vgg19 with layers up to block5_conv1"),
        ({"max_size": 100, "scales": 4}, r"at least 128 .* and 4 scale\(s\)"),
        ({"style_loss": "wasserstein"}, "style_loss must be one of gram, mean_cov, sliced_"),
    ],
)
def test_bad_values_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        StyleConfig(**changes)


def test_defaults_are_valid_and_documented():
    config = StyleConfig()
    assert config.network == "vgg19"
    assert config.optimizer == "sgd" and config.schedule == "exponential"
    # The rate in force follows the optimizer, as docs/flags.md's --learning_rate row says:
    # "SGD 5e-4, Adam 0.02 (L-BFGS: none, ...); SGD with --precondition none: 2e-4".
    assert config.lr == 5e-4
    assert config.replace(optimizer="adam").lr == 0.02
    assert config.replace(optimizer="lbfgs").lr is None
    assert config.replace(precondition="none").lr == 2e-4
    assert config.replace(optimizer="adam", learning_rate=0.3).lr == 0.3


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


def test_minimum_follows_the_deepest_layer():
    shallow = StyleConfig(content_layers=("block2_conv2",), style_layers=("block1_conv1",))
    assert shallow.deepest_layer == "block2_conv2"
    assert shallow.replace(max_size=2).max_size == 2  # block 2 needs 2 px
    with pytest.raises(ConfigError, match="at least 2 for vgg19 with layers up to block2_conv2"):
        shallow.replace(max_size=1)


def test_blend_weights_are_normalised_and_counted():
    assert StyleConfig().blend_weights(4) == [0.25] * 4
    assert StyleConfig(style_blend_weights=(1, 3)).blend_weights(2) == [0.25, 0.75]
    with pytest.raises(ConfigError, match="has 2 values for 3 style image"):
        StyleConfig(style_blend_weights=(1, 3)).blend_weights(3)


def test_config_and_cli_import_without_tensorflow():
    # The CLI refuses bad flags, settings and files before paying for TensorFlow's import.
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    code = (
        "import sys, tfstyle.cli; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0


def test_style_weight_defaults_to_the_style_loss_own():
    from tfstyle.settings.style import DEFAULT_STYLE_WEIGHTS

    assert StyleConfig().style_weight is None
    for kind, weight in DEFAULT_STYLE_WEIGHTS.items():
        assert StyleConfig(style_loss=kind).effective_style_weight == weight
        # replace() of a default config takes the new loss's default, not the old loss's.
        assert StyleConfig().replace(style_loss=kind).effective_style_weight == weight
        assert StyleConfig(style_loss=kind, style_weight=2.5).effective_style_weight == 2.5
    assert DEFAULT_STYLE_WEIGHTS["sliced_wasserstein"] != DEFAULT_STYLE_WEIGHTS["gram"]
    with pytest.raises(ConfigError, match="nothing to optimise"):
        StyleConfig(content_weight=0.0, style_weight=0.0)


def test_style_loss_defaults_to_gram_and_round_trips():
    assert StyleConfig().style_loss == "gram"
    for kind in ("gram", "mean_cov", "sliced_wasserstein"):
        config = StyleConfig(style_loss=kind)
        assert StyleConfig(**config.to_dict()) == config
