"""Network weights files, looked at before Keras loads them (`tfstyle.models.vgg` does the
loading, through `keras.applications`): whether the file is there, and how many convolution
kernels it holds, which tells a VGG16 file from a VGG19 one whatever its layer names."""

import os

from tfstyle.errors import WeightsError


def check_weights_file(path):
    """Raise WeightsError unless `path` is an existing file."""
    if not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")


def count_kernels(path):
    """The number of 4-D arrays (convolution kernels) in the HDF5 file at `path`, or None where
    h5py is not installed or cannot read the file (Keras then reports its own failure)."""
    try:
        import h5py

        kernels = []
        with h5py.File(path, "r") as file:
            file.visititems(
                lambda name, item: (
                    kernels.append(name)
                    if isinstance(item, h5py.Dataset) and item.ndim == 4
                    else None
                )
            )
    except (ImportError, OSError):
        return None
    return len(kernels)
