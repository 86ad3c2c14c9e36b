"""Everything tfstyle reads or writes on disk, and the only code in tfstyle that does.

Modules, each importing only those before it:

* `paths`: which files are images, expanding command-line lists, directories and patterns
  (an existing path is taken literally first), and the output-path policy checked before any
  work: extensions, folders that exist or can be made, name lengths, inputs never overwritten.
* `atomic`: writes that leave either the old file or all of the new one (images, JSON, CSV,
  `.npz` checkpoints, whole directories), and reading checkpoints back.
* `images` (with `modes`, every Pillow mode to RGB): decoding any common image file into
  float32 RGB in [0, 1], encoding PNG or JPEG (from and to files, or bytes).
* `host`: the host's available memory (Linux's MemAvailable, a memory cgroup's room), which
  the CPU memory check of `stylize` compares a step's estimate with.
* `weights`: a network weights file looked at before Keras loads it (is it there, how many
  convolution kernels it holds), for `tfstyle.models.vgg`.
* `hardware`: the CPU's feature flags, read once from /proc/cpuinfo (for `precision="auto"`).
* `filesystems`: the same through Apache Beam's `FileSystems` (local paths, `gs://`, `s3://`),
  for `tfstyle.beam`; imported on its own, as it needs the `beam` extra.
* `video`: video files (PyAV) and folders of frames, read and written whole or not at all.
* `outputs`: what a run leaves beside its image: the JSON report, side-file names, snapshots.
* `native_logs`: filtering the lines TensorFlow's C++ code writes to stderr while it loads
  (imports nothing of tfstyle).

Example:
    >>> from tfstyle.io import load_image, save_image
    >>> save_image(load_image("photo.jpg", max_size=512), "small.png")
"""

from tfstyle.io.atomic import (
    atomic_write_bytes,
    check_new_directory,
    load_npz,
    remove_file,
    save_csv,
    save_json,
    save_npz,
    write_directory,
)
from tfstyle.io.images import (
    decode_image,
    encode_image,
    load_image,
    load_mask,
    save_image,
)
from tfstyle.io.paths import (
    IMAGE_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    check_directory,
    check_name_length,
    check_not_input,
    check_output_file,
    check_output_path,
    expand_image_paths,
    file_stem,
    is_image_file,
    make_directories,
    model_name,
    output_name,
    split_path_list,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "atomic_write_bytes",
    "check_directory",
    "check_name_length",
    "check_new_directory",
    "check_not_input",
    "check_output_file",
    "check_output_path",
    "decode_image",
    "encode_image",
    "expand_image_paths",
    "file_stem",
    "is_image_file",
    "load_image",
    "load_mask",
    "load_npz",
    "make_directories",
    "model_name",
    "output_name",
    "remove_file",
    "save_csv",
    "save_image",
    "save_json",
    "save_npz",
    "split_path_list",
    "write_directory",
]
