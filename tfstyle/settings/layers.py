"""The VGG networks' conv layer names, and the checks of layer settings: the one home of the
layer table, here rather than in `models/vgg.py` so that settings can refuse an unknown layer
without importing Keras.
"""

from tfstyle.errors import ConfigError
from tfstyle.settings.checks import check_choice

# Conv layers in each of the five blocks of each network. The table lives here, not in
# models/vgg.py, so that settings can refuse unknown layers without importing Keras.
VGG_BLOCK_DEPTHS = {"vgg19": (2, 2, 4, 4, 4), "vgg16": (2, 2, 3, 3, 3)}


def layer_names(network):
    """Return the conv layer names of `network` in forward order.

    Args:
        network: "vgg16" or "vgg19".

    Returns:
        A tuple such as ("block1_conv1", "block1_conv2", "block2_conv1", ...).

    Raises:
        ConfigError: an unknown network.
    """
    check_choice("network", network, tuple(VGG_BLOCK_DEPTHS))
    return tuple(
        f"block{block}_conv{i}"
        for block, depth in enumerate(VGG_BLOCK_DEPTHS[network], start=1)
        for i in range(1, depth + 1)
    )


def check_layers(network, layers):
    """Raise ConfigError unless `layers` is a non-empty sequence of `network`'s conv layers.

    Args:
        network: "vgg16" or "vgg19".
        layers: layer names, such as ("block1_conv1", "block4_conv2").

    Raises:
        ConfigError: no layers, an unknown network or an unknown layer (the message lists
            the valid ones).
    """
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
    a layer of block b comes after b - 1 poolings, each halving the size (rounding down).

    Args:
        network: "vgg16" or "vgg19".
        layers: the layers used (checked as by `check_layers`).

    Returns:
        The size in pixels: 2 ** (deepest block - 1).

    Raises:
        ConfigError: as `check_layers`.
    """
    check_layers(network, layers)
    return 2 ** (max(int(name[5]) for name in layers) - 1)
