"""VGG feature extractors: RGB images in [0, 1] in, a dict of named activations out.

`build_feature_extractor` returns a frozen functional `keras.Model` whose output is
`{layer_name: activation}` for exactly the requested layers. It stops at the deepest requested
layer, so the unused tail of VGG is never computed. Caffe preprocessing (RGB to BGR, ImageNet mean
subtracted, 0-255 scale) runs inside the model, so callers never preprocess and input arrays are
never mutated (Keras' own `preprocess_input` edits float NumPy arrays in place).
"""

import functools
import os

import keras
import numpy as np
from keras import ops

from tfstyle.errors import ConfigError, WeightsError
from tfstyle.io import weights as weights_file
from tfstyle.settings.style import DEFAULTS, check_layers, layer_names, min_input_size

# Caffe-trained VGG expects BGR pixels in 0..255 minus this per-channel mean (BGR order).
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)

_APPLICATIONS = {"vgg16": "VGG16", "vgg19": "VGG19"}

# layer_names and min_input_size live in settings.layers (StyleConfig validates with them) and
# are part of this module's API too.
__all__ = [
    "IMAGENET_BGR_MEAN",
    "CaffePreprocess",
    "build_feature_extractor",
    "layer_names",
    "min_input_size",
]


@keras.saving.register_keras_serializable(package="tfstyle")
class CaffePreprocess(keras.layers.Layer):
    """RGB in [0, 1] to caffe input: scale to 0..255, reverse to BGR, subtract the ImageNet mean."""

    def call(self, inputs):
        """Apply the layer.

        Args:
            inputs: RGB `[B, H, W, 3]` in [0, 1].

        Returns:
            caffe BGR, mean subtracted.
        """
        bgr = ops.flip(inputs * 255.0, axis=-1)
        mean = ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=bgr.dtype)
        return bgr - mean


def build_feature_extractor(
    *,
    layers,
    network=DEFAULTS.network,
    weights=DEFAULTS.weights,
    pooling=DEFAULTS.pooling,
    dtype=None,
    remat=False,
):
    """Build a frozen dict-output VGG feature extractor.

    Args:
        layers: conv layer names to return, e.g. `("block1_conv1", "block4_conv2")`.
        network: `"vgg19"` (default) or `"vgg16"`.
        weights: `"imagenet"` (downloaded once by Keras and cached under `~/.keras/models`),
            `None` (random weights drawn from a fixed seed, for tests), or a path to a local
            `include_top=False` weights file of the same network.
        pooling: `"max"` (as trained) or `"avg"` (Gatys et al. found average pooling gives
            slightly smoother results).
        dtype: optional Keras dtype policy name (e.g. `"mixed_bfloat16"`) for the conv layers.
        remat: recompute each VGG block's activations in the backward pass instead of keeping
            them (`keras.RematScope`; `jax.checkpoint` or `tf.recompute_grad` underneath): only
            block inputs and the returned layers stay in memory, so larger images fit, for
            about one more forward pass of compute per step.

    Returns:
        A `keras.Model` mapping a `[batch, height, width, 3]` RGB batch in [0, 1] to
        `{name: activation}`.

    Example:
        >>> extractor = build_feature_extractor(layers=("block1_conv1",), weights=None)
        >>> extractor(np.zeros((1, 32, 32, 3)))["block1_conv1"].shape
        TensorShape([1, 32, 32, 64])
    """
    layers = tuple(dict.fromkeys(layers))
    check_layers(network, layers)
    if pooling not in ("max", "avg"):
        raise ConfigError(f"pooling must be 'max' or 'avg', got {pooling!r}")
    return _build_cached(layers, network, _normalise_weights(weights), pooling, dtype, remat)


@functools.lru_cache(maxsize=8)
def _build_cached(layers, network, weights, pooling, dtype, remat):
    # Building VGG and loading ~80 MB of weights takes seconds; stylize() and the tests call this
    # repeatedly with the same arguments, and the model is frozen, so sharing it is safe.
    vgg = _copy_layers(_load_base(network, weights), network, layers, pooling, dtype)
    inputs = keras.Input(shape=(None, None, 3), name="rgb")
    x = CaffePreprocess(name="caffe_preprocess")(inputs)
    outputs = {}
    if remat:
        for name, block_layers in _by_block(vgg):
            # Created in a RematScope, the block recomputes its activations in the backward pass.
            with keras.RematScope(mode="full"):
                block = VGGBlock(block_layers, taps=layers, name=name, dtype=dtype)
            x, tapped = block(x)
            outputs.update(tapped)
    else:
        for layer in vgg:
            x = layer(x)
            if layer.name in layers:
                outputs[layer.name] = x
    model = keras.Model(
        inputs, {name: outputs[name] for name in layers}, name=f"{network}_features"
    )
    model.trainable = False
    return model


def _copy_layers(base, network, layers, pooling, dtype):
    """VGG's conv and pooling layers up to the deepest of `layers`, built, with base's weights."""
    last = max(layers, key=layer_names(network).index)
    copies, channels = [], 3
    for layer in base.layers[1:]:
        if isinstance(layer, keras.layers.MaxPooling2D):
            pool = keras.layers.AveragePooling2D if pooling == "avg" else keras.layers.MaxPooling2D
            copies.append(pool(2, strides=2, name=layer.name, dtype=dtype))
            continue
        # Zero initialisers: the weights are copied in next, and random initialisation of ~20M
        # weights costs seconds (a compiled kernel per shape on the JAX backend). Settings are
        # copied one by one: `get_config()` would import TensorFlow even on the JAX backend.
        conv = keras.layers.Conv2D(
            layer.filters,
            layer.kernel_size,
            strides=layer.strides,
            padding=layer.padding,
            activation=layer.activation,
            name=layer.name,
            dtype=dtype or "float32",
            kernel_initializer="zeros",
            bias_initializer="zeros",
        )
        conv.build((None, None, None, channels))
        conv.set_weights(layer.get_weights())
        channels = conv.filters
        copies.append(conv)
        if conv.name == last:
            break
    return copies


def _by_block(vgg):
    """`[(block name, its layers)]`: "block1_conv1" and "block1_pool" belong to "block1"."""
    blocks = {}
    for layer in vgg:
        blocks.setdefault(layer.name.split("_")[0], []).append(layer)
    return list(blocks.items())


class VGGBlock(keras.layers.Layer):
    """A run of VGG layers as one layer, so that it can be rematerialised as a whole.

    Args:
        block_layers: the block's Keras layers, in order.
        taps: layer names whose activations are returned (those not in the block are ignored).
        **kwargs: `keras.layers.Layer`'s (name, dtype).
    """

    def __init__(self, block_layers, *, taps, **kwargs):
        super().__init__(**kwargs)
        self.block_layers = list(block_layers)
        names = {layer.name for layer in block_layers}
        self.taps = tuple(name for name in taps if name in names)

    def call(self, x):
        """Apply the layer.

        Args:
            x: the block's input.

        Returns:
            `(output, {tap name: activation})`.
        """
        tapped = {}
        for layer in self.block_layers:
            x = layer(x)
            if layer.name in self.taps:
                tapped[layer.name] = x
        return x, tapped


def _normalise_weights(weights):
    if weights is None or (isinstance(weights, str) and weights.lower() == "none"):
        return None
    if weights == "imagenet":
        return "imagenet"
    return os.path.abspath(os.path.expanduser(os.fspath(weights)))


def _load_base(network, weights):
    factory = getattr(keras.applications, _APPLICATIONS[network])
    if weights is not None and weights != "imagenet":
        weights_file.check_weights_file(weights)
        _check_network_of_file(network, weights)
    try:
        base = factory(include_top=False, weights=weights, input_shape=(None, None, 3))
    except Exception as exc:  # download and h5 failures come in many types
        raise WeightsError(_weights_message(network, weights, exc)) from exc
    if weights is None:
        _seed_random_weights(base)
    return base


def _check_network_of_file(network, path):
    """Raise WeightsError when the weights file at `path` holds the other VGG's convolutions.

    Given a VGG16 file, Keras's VGG19 printed five "Skipping nested container" warnings, then
    an error cut off at a colon. The number of 4-D arrays (convolution kernels) tells the two
    apart, whatever the file's layer names: 13 in VGG16, 16 in VGG19. A file h5py cannot read
    is left to Keras, whose failure is reported as before. (This only peeks at the file Keras
    is about to read, through `tfstyle.io.weights`.)"""
    count = weights_file.count_kernels(path)
    found = {len(layer_names(net)): net for net in _APPLICATIONS}.get(count)
    if found is not None and found != network:
        raise WeightsError(
            f"{path} looks like a {found} weights file ({count} convolutions; {network} "
            f"has {len(layer_names(network))}): pass --network {found} (network={found!r} in "
            "Python)"
        )


def _seed_random_weights(model, seed=0):
    """Re-draw random weights from a fixed seed (Glorot uniform kernels, zero biases).

    Keras draws fresh random weights per build, so two extractors with different layer sets, or
    two processes, would see different networks; with a fixed draw, `weights=None` runs are
    reproducible everywhere, which tests of determinism and resume rely on.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            fan_in = np.prod(kernel.shape[:3])
            fan_out = kernel.shape[0] * kernel.shape[1] * kernel.shape[3]
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            kernel = rng.uniform(-limit, limit, kernel.shape).astype(kernel.dtype)
            layer.set_weights([kernel, np.zeros_like(bias)])


def _weights_message(network, weights, exc):
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if weights == "imagenet":
        return (
            f"could not get the ImageNet {network.upper()} weights ({reason}); download them on a "
            f"machine with internet into ~/.keras/models, or pass a local include_top=False "
            f"weights file with --weights PATH (weights=PATH in Python)"
        )
    return (
        f"could not load {network.upper()} weights from {weights} ({reason}); the file must be "
        f"a Keras include_top=False weights file for {network} (name ending in .weights.h5 or .h5)"
    )
