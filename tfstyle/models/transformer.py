"""The feed-forward stylizer: Johnson et al.'s (2016) image transformation network, in Keras 3.

One forward pass turns a photo into a painting in the style the network was trained for
(`tfstyle.fast.train`). The layout follows the paper's supplementary material: a 9x9
convolution, two stride-2 convolutions down, residual blocks, two upsampling steps back and a
9x9 convolution to RGB, each convolution but the last followed by normalisation and ReLU.

Deviations from Johnson et al., each for a reason that later work measured:
- Instance normalisation (Ulyanov et al. 2016, "Instance Normalization: The Missing Ingredient
  for Fast Stylization") instead of batch normalisation: the output no longer depends on the
  rest of the batch, and the network stylises better.
- Nearest-neighbour upsampling followed by a convolution instead of transposed convolutions
  (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"): no checkerboard pattern.
- Reflection padding before every convolution instead of zero padding (and no 40 px
  reflection border with "valid" residual blocks): the same output size without dark borders.
- The output is a sigmoid in [0, 1] (the paper scales a tanh to [0, 255]): the same shape of
  squashing, in this package's pixel range.
- Any input size: the input is reflection-padded to a multiple of 4 (two halvings) and the
  output cropped back, so odd sizes come back the same size.
"""

import keras
from keras import ops

from tfstyle.settings.checks import check_int as _check_int

# Stride-2 convolutions on the way down (and upsamplings on the way up), as in the paper.
DOWNSAMPLINGS = 2
# The smallest side the network takes: reflection padding needs more pixels than it adds, and
# a side under 5 is either padded by more than itself to a multiple of 4 (1-3 px) or is 4 px,
# too few for the first 9x9 convolution's 4 px of reflection (found by trying 1-9 px).
MIN_SIDE = 5


@keras.saving.register_keras_serializable(package="tfstyle")
class ReflectionPad(keras.layers.Layer):
    """Pad height and width by `pad` pixels on each side, mirroring the image at its edges.

    Args:
        pad: pixels added on each side (less than the input's height and width).
        **kwargs: `keras.layers.Layer`'s (name, dtype).
    """

    def __init__(self, pad, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, x):
        """Apply the layer.

        Args:
            x: `[B, H, W, C]`.

        Returns:
            `[B, H + 2 pad, W + 2 pad, C]`.
        """
        p = self.pad
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, shape):
        """The output shape for an input of `shape` (None for an unknown size).

        Args:
            shape: `(batch, height, width, channels)`.

        Returns:
            `(batch, height, width, channels)`.
        """
        grow = lambda n: None if n is None else n + 2 * self.pad  # noqa: E731
        return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])

    def get_config(self):
        """The constructor's arguments, so that `keras.saving` restores the layer."""
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package="tfstyle")
class PadToMultiple(keras.layers.Layer):
    """Reflection-pad the bottom and right edges up to a multiple of `multiple` pixels.

    Args:
        multiple: the height and width are padded up to a multiple of this.
        **kwargs: `keras.layers.Layer`'s (name, dtype).
    """

    def __init__(self, multiple, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x):
        """Apply the layer.

        Args:
            x: `[B, H, W, C]`.

        Returns:
            `[B, H', W', C]`, H' and W' multiples of `multiple`.
        """
        shape = ops.shape(x)
        bottom, right = (-shape[1]) % self.multiple, (-shape[2]) % self.multiple
        return ops.pad(x, [[0, 0], [0, bottom], [0, right], [0, 0]], mode="reflect")

    def compute_output_shape(self, shape):
        """The output shape for an input of `shape` (None for an unknown size).

        Args:
            shape: `(batch, height, width, channels)`.

        Returns:
            `(batch, height, width, channels)`.
        """
        grow = lambda n: None if n is None else n + (-n) % self.multiple  # noqa: E731
        return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])

    def get_config(self):
        """The constructor's arguments, so that `keras.saving` restores the layer."""
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="tfstyle")
class CropToInput(keras.layers.Layer):
    """Crop the first input to the height and width of the second (undoing `PadToMultiple`)."""

    def call(self, inputs):
        """Apply the layer.

        Args:
            inputs: `(image [B, H', W', C], reference [B, H, W, ...])`, H' >= H, W' >= W.

        Returns:
            `image[:, :H, :W, :]`.
        """
        image, reference = inputs
        shape = ops.shape(reference)
        return image[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, shapes):
        """The output shape for an input of `shapes` (None for an unknown size).

        Args:
            shapes: the image's and the reference's shapes.

        Returns:
            `(batch, height, width, channels)`.
        """
        image, reference = shapes
        return (image[0], reference[1], reference[2], image[3])


def build_stylizer(*, width=32, residual_blocks=5, dtype=None, name="stylizer"):
    """Build the image transformation network.

    Args:
        width: channels of the first convolution; the downsampled layers have 2x and 4x as many.
            32 is Johnson et al.'s network (about 1.7 M parameters); 8 or 16 make small, fast
            variants (about 16 and 4 times fewer multiply-adds).
        residual_blocks: number of residual blocks at the lowest resolution (5 in the paper).
        dtype: Keras dtype policy of the layers (None: the global policy; the last activation
            is always float32, so the output is).
        name: the model's name.

    Returns:
        A `keras.Model` from `[batch, height, width, 3]` RGB in [0, 1] (any height and width)
        to a stylised batch of the same shape, in [0, 1].

    Example:
        >>> model = build_stylizer(width=8)
        >>> model(np.zeros((1, 33, 47, 3), "float32")).shape
        (1, 33, 47, 3)
    """
    _check_int("width", width, low=1)
    _check_int("residual_blocks", residual_blocks, low=0)
    d = {"dtype": dtype}
    inputs = keras.Input((None, None, 3), name="image")
    x = PadToMultiple(2**DOWNSAMPLINGS, name="pad_to_multiple", **d)(inputs)
    # [0, 1] -> [-1, 1]: zero-centred inputs for the first convolution.
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="centre", **d)(x)
    x = _conv_block(x, width, 9, name="in", d=d)
    for i in range(1, DOWNSAMPLINGS + 1):
        x = _conv_block(x, width * 2**i, 3, strides=2, name=f"down{i}", d=d)
    for i in range(1, residual_blocks + 1):
        x = _residual_block(x, width * 2**DOWNSAMPLINGS, name=f"res{i}", d=d)
    for i in range(DOWNSAMPLINGS - 1, -1, -1):
        up = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{i + 1}_resize", **d)
        x = _conv_block(up(x), width * 2**i, 3, name=f"up{i + 1}", d=d)
    x = _conv(x, 3, 9, name="out", d=d)
    x = keras.layers.Activation("sigmoid", dtype="float32", name="to_rgb")(x)
    outputs = CropToInput(name="crop", dtype="float32")([x, inputs])
    return keras.Model(inputs, outputs, name=name)


def _conv(x, filters, kernel, *, strides=1, name, d):
    x = ReflectionPad(kernel // 2, name=f"{name}_pad", **d)(x)
    return keras.layers.Conv2D(filters, kernel, strides=strides, name=f"{name}_conv", **d)(x)


def _conv_block(x, filters, kernel, *, strides=1, relu=True, name, d):
    x = _conv(x, filters, kernel, strides=strides, name=name, d=d)
    # groups=-1: one group per channel, i.e. instance normalisation.
    x = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=f"{name}_norm", **d)(x)
    return keras.layers.ReLU(name=f"{name}_relu", **d)(x) if relu else x


def _residual_block(x, filters, *, name, d):
    y = _conv_block(x, filters, 3, name=f"{name}a", d=d)
    y = _conv_block(y, filters, 3, relu=False, name=f"{name}b", d=d)
    return keras.layers.Add(name=f"{name}_add", **d)([x, y])
