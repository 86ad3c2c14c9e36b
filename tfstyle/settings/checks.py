"""Validation of settings: numbers, choices and VGG layer names, each refused with one line.

Under `config` (which validates every setting with these) and importing nothing of tfstyle but
its errors, so that checking a layer name never imports Keras.
"""

import math

from tfstyle.errors import ConfigError

# Conv layers in each of the five blocks of each network. The table lives here, not in
# features.py, so that settings can refuse unknown layers without importing Keras.
VGG_BLOCK_DEPTHS = {"vgg19": (2, 2, 4, 4, 4), "vgg16": (2, 2, 3, 3, 3)}


def layer_names(network):
    """Return the conv layer names of `network` ("vgg16" or "vgg19") in forward order."""
    check_choice("network", network, tuple(VGG_BLOCK_DEPTHS))
    return tuple(
        f"block{block}_conv{i}"
        for block, depth in enumerate(VGG_BLOCK_DEPTHS[network], start=1)
        for i in range(1, depth + 1)
    )


def check_layers(network, layers):
    """Raise ConfigError unless `layers` is a non-empty sequence of `network`'s conv layers."""
    if not layers:
        raise ConfigError("at least one layer is needed")
    names = layer_names(network)
    unknown = [name for name in layers if name not in names]
    if unknown:
        raise ConfigError(
            f"unknown {network} layer(s) {', '.join(map(str, unknown))}; valid: {', '.join(names)}"
        )


def min_input_size(network, layers):
    """Smallest image side (pixels) for which every layer in `layers` has at least 1x1 output:
    a layer of block b comes after b - 1 poolings, each halving the size (rounding down)."""
    check_layers(network, layers)
    return 2 ** (max(int(name[5]) for name in layers) - 1)


def check_choice(name, value, allowed):
    """Raise ConfigError unless `value` is one of `allowed`."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def check_number(name, value, *, low=None, high=None, low_open=False, high_open=False):
    """Raise ConfigError unless `value` is a finite number within the bounds (open or closed)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number; got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        bounds = (
            f"{lo}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hi}"
        )
        raise ConfigError(f"{name} must be in {bounds}; got {value!r}")


def check_int(name, value, *, low):
    """Raise ConfigError unless `value` is an integer (not a bool) of at least `low`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer; got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be at least {low}; got {value}")
