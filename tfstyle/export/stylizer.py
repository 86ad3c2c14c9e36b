"""Exporting a trained stylizer for serving.

An exported stylizer is a folder: a TensorFlow SavedModel (loads with TensorFlow alone, no
tfstyle: `tf.saved_model.load(path).signatures["serving_default"]`) holding, beside it,
`stylizer.keras` (the Keras model, for any Keras backend; `FastStylizer.load` reads it) and,
after training, `training.json`. Signatures:

    serving_default   image: uint8 [H, W, 3]     -> image: uint8 [H, W, 3]
    batch             images: uint8 [N, H, W, 3] -> images: uint8 [N, H, W, 3]

Uint8 in and out, rounded (not truncated) to the nearest level, any size.
"""

import os

import keras

from tfstyle import io as image_io
from tfstyle.errors import ConfigError
from tfstyle.fast.stylizer import KERAS_FILE, REPORT_FILE


def check_backend(what):
    """Raise `ConfigError` unless Keras runs on TensorFlow: a SavedModel and a TFLite model are
    traced TensorFlow graphs. `what` names the step that needs it, for the message."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ConfigError(
            f"{what} needs the TensorFlow backend (a SavedModel is a TensorFlow graph); this is "
            f"KERAS_BACKEND={backend}: run it with KERAS_BACKEND=tensorflow"
        )


def export_stylizer(model, path, *, overwrite=False, report=None):
    """Write `model` to the folder `path` as a SavedModel plus `stylizer.keras` (see the module
    docstring) and, given a `report` dict, `training.json`; whole or not at all. TensorFlow
    backend only.

    Args:
        model: a stylizer's `keras.Model` (`build_stylizer`, trained); a copy without its
            compiled loss and optimizer is written.
        path: the folder to write.
        overwrite: replace an existing folder.
        report: a JSON-able dict written as `training.json`, or None.

    Returns:
        The absolute path written.

    Raises:
        OutputError: `path` exists (without `overwrite`) or cannot be written.
        ConfigError: not the TensorFlow backend.
    """
    check_backend("exporting a stylizer")
    import tensorflow as tf

    model = _network_only(model)
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


def _network_only(model):
    """A copy of `model` without what training compiled into it: saved as it is, the files
    would hold the loss's VGG network and style targets and Adam's moments too (46 MB instead
    of 1.7 MB for the 16-wide network)."""
    # From the config, not keras.models.clone_model: that compiles the copy as the original.
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


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
