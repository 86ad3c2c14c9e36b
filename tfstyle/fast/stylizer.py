"""Applying a trained stylizer, and exporting it for serving.

An exported stylizer is a folder: a TensorFlow SavedModel (loads with TensorFlow alone, no
tfstyle: `tf.saved_model.load(path).signatures["serving_default"]`) holding, beside it,
`stylizer.keras` (the Keras model, for any Keras backend). Signatures:

    serving_default   image: uint8 [H, W, 3]     -> image: uint8 [H, W, 3]
    batch             images: uint8 [N, H, W, 3] -> images: uint8 [N, H, W, 3]

Uint8 in and out, rounded (not truncated) to the nearest level, any size.
"""

import os

import keras
import numpy as np

from tfstyle import io as image_io
from tfstyle import preprocessing as pp
from tfstyle.errors import WeightsError

KERAS_FILE = "stylizer.keras"
REPORT_FILE = "training.json"


class FastStylizer:
    """A trained feed-forward stylizer.

    Example:
        >>> stylizer = FastStylizer.load("saved_models/starry_night/1")
        >>> painted = stylizer(tfstyle.load_image("photo.jpg"))  # [H, W, 3] float in [0, 1]
    """

    def __init__(self, model):
        self.model = model

    @classmethod
    def load(cls, path):
        """Load an exported folder (or a `.keras` file).

        Raises:
            WeightsError: nothing loadable at `path`.
        """
        path = os.fsdecode(path)
        keras_file = path if path.endswith(".keras") else os.path.join(path, KERAS_FILE)
        if not os.path.isfile(keras_file):
            raise WeightsError(
                f"no stylizer at {path!r}: expected a folder written by `tfstyle train` "
                f"(with {KERAS_FILE}) or a .keras file"
            )
        # Importing the network registers its custom layers for deserialisation.
        from tfstyle.fast import network  # noqa: F401

        try:
            model = keras.saving.load_model(keras_file, compile=False)
        except (OSError, ValueError, TypeError) as exc:
            raise WeightsError(f"cannot load the stylizer {keras_file!r}: {exc}") from None
        return cls(model)

    def __call__(self, image):
        """Stylise one `[H, W, 3]` image (float in [0, 1] or uint8); float32 in [0, 1] out."""
        batch = pp.as_float_image(image)[None]
        out = self.model(batch, training=False)
        return np.clip(np.asarray(keras.ops.convert_to_numpy(out))[0], 0.0, 1.0)


def export_stylizer(model, path, *, overwrite=False, report=None):
    """Write `model` to the folder `path` as a SavedModel plus `stylizer.keras` (see the module
    docstring) and, given a `report` dict, `training.json`; whole or not at all. TensorFlow
    backend only.

    Returns:
        The absolute path written.
    """
    import tensorflow as tf

    module = _serving_module_class()(model)

    def write(folder):
        tf.saved_model.save(
            module,
            folder,
            signatures={
                "serving_default": module.serve.get_concrete_function(),
                "batch": module.serve_batch.get_concrete_function(),
            },
        )
        model.save(os.path.join(folder, KERAS_FILE))
        if report is not None:
            image_io.save_json(report, os.path.join(folder, REPORT_FILE))

    return image_io.write_directory(path, write, overwrite=overwrite)


def _serving_module_class():
    import tensorflow as tf

    class ServingModule(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def _paint(self, images):
            floats = tf.cast(images, tf.float32) / 255.0
            out = tf.cast(self.model(floats, training=False), tf.float32)
            return tf.cast(tf.round(tf.clip_by_value(out, 0.0, 1.0) * 255.0), tf.uint8)

        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8, name="image")])
        def serve(self, image):
            return {"image": self._paint(image[None])[0]}

        @tf.function(
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")]
        )
        def serve_batch(self, images):
            return {"images": self._paint(images)}

    return ServingModule
