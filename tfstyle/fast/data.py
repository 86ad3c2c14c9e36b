"""Training photos for a fast stylizer: the folder listing and the `tf.data` pipeline.

The only module of `tfstyle.fast` that reads files. A training source is a tuple of strings,
either file paths (read in the pipeline) or encoded PNG images (photos given as arrays); the
pipeline decodes each, scales it so its shorter side is the crop size, takes a random square
crop and a random horizontal flip, and batches.

Every random choice is a pure function of `(seed, element index)`: the photo order of each pass
(`tf.random.experimental.index_shuffle`), each crop and each flip (stateless ops). The batches
from step `k` on are therefore the same whether the run started at 0 or resumed at `k`, which is
what makes `--resume` continue an interrupted training exactly.
"""

import dataclasses
import hashlib
import os

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from tfstyle import io as image_io
from tfstyle.errors import ImageError
from tfstyle.ops import preprocessing as pp

# Formats tf.io.decode_image reads in the pipeline (others are skipped with a count).
TRAINING_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_LAST_INDEX = 2**62  # an endless stream of element indices (index_shuffle needs int64)


@dataclasses.dataclass(frozen=True)
class TrainingSource:
    """What the pipeline reads.

    Attributes:
        items: file paths (`files` true) or encoded PNG images.
        files: whether `items` are paths.
        skipped: files left out because they are unreadable, in a format the pipeline cannot
            read, or fail to decode (a truncated JPEG), as `(path, reason)` pairs.
    """

    items: tuple[bytes | str, ...]
    files: bool
    skipped: tuple[tuple[str, str], ...] = ()


def source_digest(source):
    """A short hex digest of a `TrainingSource`, to recognise the photos a training checkpoint
    was made from: each usable file's name and size in order (not its folder: a moved folder
    still resumes; reading every photo's bytes would take minutes for a large set), or each
    encoded image's bytes."""
    digest = hashlib.sha256()
    for item in source.items:
        if source.files:
            digest.update(f"{os.path.basename(item)}\0{os.path.getsize(item)}\0".encode())
        else:
            digest.update(hashlib.sha256(item).digest())
    return digest.hexdigest()[:32]


def training_source(photos):
    """A `TrainingSource` from a folder, a list of image paths or a list of images.

    Args:
        photos: a directory (its image files, not recursive), a glob pattern, a sequence of
            paths, or a sequence of `[H, W, 3]` images (float in [0, 1] or uint8).

    Every file is decoded once here, as the pipeline will decode it: a photo the pipeline
    could not read is skipped with a reason before training starts, not found by `tf.data`
    mid-run (a TensorFlow traceback, or batches shifted by `ignore_errors`, which would make a
    resumed run differ from an uninterrupted one).

    Raises:
        ImageError: the folder does not exist or holds no usable image, or the list is empty.
    """
    if isinstance(photos, TrainingSource):
        return photos
    others = []
    if isinstance(photos, str | os.PathLike):
        folder = os.fsdecode(photos)
        if not os.path.isdir(folder) and not any(char in folder for char in "*?["):
            raise ImageError(f"content folder {folder!r} does not exist or is not a folder")
        photos = image_io.expand_image_paths([folder])
        if os.path.isdir(folder):
            others = _other_files(folder, photos)
    photos = list(photos)
    if not photos:
        raise ImageError("no training photos given")
    if all(isinstance(p, str | os.PathLike) for p in photos):
        return _file_source([os.fsdecode(p) for p in photos], others=others)
    encoded = tuple(tf.io.encode_png(pp.to_uint8(pp.as_float_image(p))).numpy() for p in photos)
    return TrainingSource(items=encoded, files=False)


def _other_files(folder, photos):
    """`(path, reason)` of the folder's files that are not image files (notes, archives...):
    left out like unreadable photos, and counted with them (hidden files are not)."""
    listed = {os.path.basename(os.fsdecode(p)) for p in photos}
    return [
        (os.path.join(folder, name), "not an image file")
        for name in sorted(os.listdir(folder))
        if name not in listed
        and not name.startswith(".")
        and os.path.isfile(os.path.join(folder, name))
    ]


def _file_source(paths, *, others=()):
    usable, skipped = [], list(others)
    for path in paths:
        reason = _unusable(path)
        if reason:
            skipped.append((path, reason))
        else:
            usable.append(path)
    if not usable:
        raise ImageError(
            f"none of the {len(paths)} training file(s) is a readable PNG, JPEG, BMP or GIF "
            f"image (first: {paths[0]!r}: {skipped[0][1]})"
        )
    return TrainingSource(items=tuple(usable), files=True, skipped=tuple(skipped))


def _unusable(path):
    """Why `path` cannot be a training photo, or None: the header and format first (cheap,
    and a clear reason; a JPEG without its end marker is the usual truncation), then a full
    decode by the same op as the pipeline's, so that no photo fails inside `tf.data` (a
    traceback, or batches shifted by `ignore_errors`, which would break an exact resume)."""
    if os.path.splitext(path)[1].lower() not in TRAINING_EXTENSIONS:
        return "not a PNG, JPEG, BMP or GIF file"
    try:
        with Image.open(path) as im:
            kind = im.format
            im.verify()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        return f"unreadable ({exc.__class__.__name__})"
    if kind == "JPEG" and not _has_jpeg_end(path):
        return "truncated (a JPEG without its end marker)"
    try:
        _decode(tf.io.read_file(path))
    except (tf.errors.OpError, ValueError):
        return "does not decode (truncated or corrupt)"
    return None


def _has_jpeg_end(path):
    """Whether a JPEG file ends with its end-of-image marker (FF D9), allowing the padding some
    cameras and editors put after it. A cut-off download or copy lacks it."""
    with open(path, "rb") as file:
        file.seek(max(0, os.path.getsize(path) - 4096))
        return b"\xff\xd9" in file.read()


def _decode(data):
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def training_batches(source, *, size, batch_size, seed, start_step=0):
    """An endless `tf.data.Dataset` of float32 batches `[batch_size, size, size, 3]` in [0, 1].

    Args:
        source: a `TrainingSource`.
        size: side of the square crops.
        batch_size: crops per batch.
        seed: the seed of every random choice.
        start_step: batches to leave out at the start (a resumed run's steps already done).
    """
    items = tf.constant(source.items)
    count = len(source.items)

    def element(index):
        passes = index // count
        pass_seed = tf.stack([tf.constant(seed, tf.int64), passes])
        order = tf.random.experimental.index_shuffle(
            index % count, seed=pass_seed, max_index=count - 1
        )
        data = items[order]
        if source.files:
            data = tf.io.read_file(data)
        image = _decode(data)
        return _augment(image, index, size=size, seed=seed)

    start = start_step * batch_size
    return (
        tf.data.Dataset.range(start, _LAST_INDEX)
        # No ignore_errors: every photo was decoded once by `training_source`, and a dropped
        # element would shift every later batch (a resumed run would see other batches).
        .map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def _augment(image, index, *, size, seed):
    """Scale so the shorter side is `size`, crop a random square, flip at random."""
    image = _shorter_side_to(image, size)
    element_seed = tf.stack([tf.constant(seed, tf.int64), index])
    image = tf.image.stateless_random_crop(image, [size, size, 3], seed=element_seed)
    flip_seed = tf.stack([tf.constant(seed + 1, tf.int64), index])
    image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return tf.clip_by_value(image, 0.0, 1.0)


def _shorter_side_to(image, size):
    """uint8 `image` as floats in [0, 1], scaled so that its shorter side is `size`."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    # ceil, so that rounding never leaves a side under `size`.
    scaled = tf.cast(tf.math.ceil(shape * size / tf.reduce_min(shape)), tf.int32)
    return tf.image.resize(tf.cast(image, tf.float32) / 255.0, scaled, antialias=True)


def preview_crop(source, *, size):
    """The first photo, scaled so its shorter side is `size` and centre-cropped to a square
    (the fixed image previews show), as float32 `[size, size, 3]`."""
    data = source.items[0]
    if source.files:
        data = tf.io.read_file(data)
    image = tf.image.resize_with_crop_or_pad(_shorter_side_to(_decode(data), size), size, size)
    return np.clip(image.numpy(), 0.0, 1.0)
