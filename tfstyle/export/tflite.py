"""A trained stylizer as a TensorFlow Lite model, for phones and small devices.

    export_tflite(model, "starry_512x384.tflite", height=384, width=512)

The `.tflite` file paints one image of a fixed size: input `image`, uint8 `[H, W, 3]`; output
uint8 `[H, W, 3]`, rounded to the nearest level (as the SavedModel's `serving_default`). It runs
with LiteRT (`pip install ai-edge-litert`: `ai_edge_litert.interpreter.Interpreter`) or
TensorFlow's `tf.lite.Interpreter`.

Why a fixed size: with height and width unknown, TensorFlow 2.21's converter keeps the
network's convolutions as TensorFlow ops ("Flex" ops, which need a TensorFlow runtime on the
device), because instance normalisation's reshapes leave even the channel count unknown. Why
through a SavedModel (`keras.export.ExportArchive`, then `TFLiteConverter.from_saved_model`,
both public): that path freezes the variables into constants. `from_concrete_functions` on the
traced function kept resource variables without their values (73 KB instead of 1.75 MB for
the shipped network, every output pixel NaN), and freezing the function first needs
TensorFlow's private `convert_to_constants` module.
"""

import os

from tfstyle import io as image_io
from tfstyle.errors import ConfigError, OutputError
from tfstyle.export.stylizer import check_backend
from tfstyle.io.atomic import scratch_directory
from tfstyle.settings.checks import check_int

TFLITE_EXTENSION = ".tflite"
# The largest image a TFLite model is exported for: 16 megapixels (4096 x 4096).
MAX_TFLITE_PIXELS = 4096 * 4096


def export_tflite(model, path, *, height, width, overwrite=False):
    """Write `model` (a stylizer's `keras.Model`) to `path` as a TFLite model of one image size.
    TensorFlow backend only.

    Args:
        model: a stylizer's `keras.Model`.
        path: the `.tflite` file to write.
        height, width: the one image size the model paints, in pixels (at least 16).
        overwrite: replace an existing file.

    Returns:
        The absolute path written (whole or not at all).

    Raises:
        ConfigError: not the TensorFlow backend, a side under 16 px, over `MAX_TFLITE_PIXELS`
            in all, or a path that does not end in `.tflite`.
        OutputError: `path` exists (without `overwrite`) or cannot be written.
    """
    check_backend("exporting a TFLite model")
    check_int("height", height, low=16)
    check_int("width", width, low=16)
    if height * width > MAX_TFLITE_PIXELS:
        # TensorFlow's graph optimiser crashed the process (a segmentation fault) converting
        # 100000x100000; a phone model that size makes no sense anyway.
        raise ConfigError(
            f"a {width}x{height} TFLite model is over {MAX_TFLITE_PIXELS:,} pixels; "
            "export a smaller size"
        )
    path = os.fsdecode(path)
    if not path.lower().endswith(TFLITE_EXTENSION):
        raise ConfigError(f"a TFLite model is written to a {TFLITE_EXTENSION} file; got {path}")
    if os.path.exists(path) and not overwrite:
        raise OutputError(f"{path} already exists; remove it or pass --overwrite")
    return image_io.atomic_write_bytes(tflite_bytes(model, height=height, width=width), path)


def tflite_bytes(model, *, height, width):
    """The flatbuffer of `model` painting uint8 `[height, width, 3]` images.

    Args:
        model: a stylizer's `keras.Model`.
        height, width: the image size, in pixels.

    Returns:
        The `.tflite` file's bytes (variables frozen into constants).
    """
    import tensorflow as tf

    spec = tf.TensorSpec([height, width, 3], tf.uint8, name="image")

    def paint(image):
        floats = tf.cast(image[None], tf.float32) / 255.0
        out = tf.cast(model(floats, training=False), tf.float32)[0]
        return tf.cast(tf.round(tf.clip_by_value(out, 0.0, 1.0) * 255.0), tf.uint8)

    import keras

    # Through a SavedModel written by Keras's public exporter, in a scratch folder: the
    # converter's from_saved_model freezes its variables into constants. (A plain tf.Module
    # does not track a Keras 3 model's variables, and the function that freezes a concrete
    # function is private to TensorFlow; see the module docstring.)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", paint, input_signature=[spec])
    with scratch_directory(prefix="tfstyle-tflite-") as folder:
        saved = os.path.join(folder, "model")
        archive.write_out(saved, verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(saved).convert()
