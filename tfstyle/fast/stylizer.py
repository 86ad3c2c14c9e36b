"""Applying a trained stylizer: `FastStylizer` loads the folder that `tfstyle train` or
`tfstyle.export.stylizer.export_stylizer` writes (a SavedModel with `stylizer.keras` beside it;
see that module for the format) and paints images with it.

`FastStylizer` paints images larger than `tile_size` on a side in overlapping tiles, blended
with linear ramps across the overlaps, so that memory stays bounded. Tiles are a departure
from the one-pass network: instance normalisation sees each tile's statistics, not the whole
image's, which the blending hides but does not undo (the SavedModel never tiles).
"""

import os

import keras
import numpy as np

from tfstyle.errors import ConfigError, ImageError, WeightsError
from tfstyle.models.transformer import MIN_SIDE
from tfstyle.ops import preprocessing as pp
from tfstyle.settings.checks import check_int as _check_int
from tfstyle.settings.train import TILE_OVERLAP, TILE_SIZE

KERAS_FILE = "stylizer.keras"
REPORT_FILE = "training.json"


class FastStylizer:
    """A trained feed-forward stylizer.

    Args:
        model: the Keras network (`build_stylizer`, trained by `train_stylizer`).
        tile_size: images with a side longer than this are painted in overlapping tiles of
            this side (0: never tile).
        jit_compile: compile the network with XLA for each image size. About 1.4 times faster
            per call on a CPU once compiled, but each new size costs seconds to compile: worth
            it for many images of one size (video frames), not for a folder of assorted photos.
            The JAX backend always compiles (jax.jit).

    Example:
        >>> stylizer = FastStylizer.load("saved_models/starry_night/1")
        >>> painted = stylizer(tfstyle.load_image("photo.jpg"))  # [H, W, 3] float in [0, 1]
    """

    def __init__(self, model, *, tile_size=TILE_SIZE, jit_compile=False):
        _check_int("tile_size", tile_size, low=0)
        if tile_size and tile_size <= 2 * TILE_OVERLAP:
            raise ConfigError(f"tile_size must be 0 or over {2 * TILE_OVERLAP}; got {tile_size}")
        self.model = model
        self.tile_size = tile_size
        self._forward = _compiled_forward(model, jit_compile=jit_compile)

    @classmethod
    def load(cls, path, **options):
        """Load an exported folder (or a `.keras` file); `options` as for the constructor.

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
        from tfstyle.models import transformer as network  # noqa: F401

        try:
            model = keras.saving.load_model(keras_file, compile=False)
        except (OSError, ValueError, TypeError) as exc:
            raise WeightsError(f"cannot load the stylizer {keras_file!r}: {exc}") from None
        return cls(model, **options)

    def __call__(self, image):
        """Stylise one `[H, W, 3]` image (float in [0, 1] or uint8); float32 in [0, 1] out.

        Raises:
            ImageError: a side is under `MIN_SIDE` pixels.
        """
        image = pp.as_float_image(image)
        height, width = image.shape[:2]
        if not self.tile_size or max(height, width) <= self.tile_size:
            return self._paint(image)
        total = np.zeros(image.shape, np.float32)
        weight = np.zeros((*image.shape[:2], 1), np.float32)
        for rows in _tile_spans(height, self.tile_size):
            for cols in _tile_spans(width, self.tile_size):
                ramp = np.outer(_ramp(rows, height), _ramp(cols, width))[..., None]
                total[rows, cols] += ramp * self._paint(image[rows, cols])
                weight[rows, cols] += ramp
        return total / weight

    def paint_batch(self, images):
        """Stylise `[N, H, W, 3]` images of one size (float in [0, 1] or uint8) in one forward
        pass; float32 `[N, H, W, 3]` in [0, 1] out. Images over `tile_size` go one by one, in
        tiles."""
        images = np.asarray(images)
        if images.ndim != 4:
            raise ConfigError(f"paint_batch takes [N, H, W, 3] images; got shape {images.shape}")
        if self.tile_size and max(images.shape[1:3]) > self.tile_size:
            return np.stack([self(image) for image in images])
        return self._forward_numpy(np.stack([pp.as_float_image(image) for image in images]))

    def _paint(self, image):
        return self._forward_numpy(image[None])[0]

    def _forward_numpy(self, batch):
        if min(batch.shape[1:3]) < MIN_SIDE:
            # Said here in one line: the network's reflection padding would fail inside
            # TensorFlow (a MirrorPad traceback) or JAX.
            raise ImageError(
                f"a {batch.shape[2]}x{batch.shape[1]} px image is too small for a stylizer: "
                f"it needs at least {MIN_SIDE} px on each side"
            )
        out = self._forward(batch)
        return np.clip(np.asarray(keras.ops.convert_to_numpy(out), np.float32), 0.0, 1.0)


def _compiled_forward(model, *, jit_compile):
    """`model`'s inference call as a compiled function of a float32 batch."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # reduce_retracing: after a second image size, one graph serves every size.
        return tf.function(
            lambda batch: model(batch, training=False),
            jit_compile=jit_compile,
            reduce_retracing=True,
        )
    if backend == "jax":
        import jax

        @jax.jit
        def call(trainable, non_trainable, batch):
            return model.stateless_call(trainable, non_trainable, batch, training=False)[0]

        return lambda batch: call(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            batch,
        )
    return lambda batch: model(batch, training=False)


def _tile_spans(length, tile):
    """Slices of `tile` pixels covering `length`, neighbours overlapping by at least
    TILE_OVERLAP (the last one flush with the end)."""
    if length <= tile:
        return [slice(0, length)]
    stride = tile - TILE_OVERLAP
    starts = [*range(0, length - tile, stride), length - tile]
    return [slice(start, start + tile) for start in starts]


def _ramp(span, length):
    """Blending weights along one tile side: rising linearly over the first TILE_OVERLAP pixels
    and falling over the last, except at the image's own edges (there is no neighbour to blend
    with). Never zero, so every pixel has weight."""
    size = span.stop - span.start
    ramp = np.ones(size, np.float32)
    edge = (np.arange(TILE_OVERLAP, dtype=np.float32) + 0.5) / TILE_OVERLAP
    if span.start > 0:
        ramp[:TILE_OVERLAP] = edge
    if span.stop < length:
        ramp[-TILE_OVERLAP:] = np.minimum(ramp[-TILE_OVERLAP:], edge[::-1])
    return ramp
