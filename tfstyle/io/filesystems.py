"""Reading and writing through Apache Beam's `FileSystems`: local paths, and `gs://` or
`s3://` when Beam's `gcp` or `aws` extra is installed. Used by `tfstyle.beam`, whose workers
may run on machines that see only a bucket.

Writes are atomic as far as the filesystem allows: the bytes go to a temporary name beside the
target, then `FileSystems.rename` moves them over it (an atomic rename on a local disk; on
object stores, a copy then a delete, so a reader never sees a half-written object either).
"""

import os
import uuid

from tfstyle.errors import ImageError, OutputError, TfstyleError
from tfstyle.io.images import decode_image, encode_image
from tfstyle.io.paths import image_format

EXTRA_HINT = 'tfstyle.beam needs Apache Beam: pip install "tfstyle[beam]"'


def beam_filesystems():
    """`apache_beam.io.filesystems.FileSystems`, or an ImportError that names the extra."""
    try:
        from apache_beam.io.filesystems import FileSystems
    except ImportError as exc:
        raise ImportError(f"{EXTRA_HINT} ({exc})") from exc
    return FileSystems


def check_scheme(path):
    """Raise TfstyleError (naming Beam's extra) for a path whose filesystem is not installed,
    `gs://` without `apache-beam[gcp]` say; Beam raises a ValueError from deep inside.

    Args:
        path: a local path or a URL.

    Returns:
        `path` as a str.

    Raises:
        TfstyleError: no filesystem for its scheme.
        ImportError: Beam is not installed (the message names the extra).
    """
    path = os.fsdecode(path)
    try:
        beam_filesystems().get_filesystem(path)
    except ValueError:
        scheme = path.split("://", 1)[0]
        raise TfstyleError(
            f"cannot use {path}: Beam has no filesystem for {scheme}:// here (gs:// needs "
            'pip install "apache-beam[gcp]", s3:// "apache-beam[aws]")'
        ) from None
    return path


def join(folder, name):
    """`folder/name` on `folder`'s filesystem.

    Args:
        folder: a local folder or a URL.
        name: a file name.

    Returns:
        The joined path.

    Raises:
        TfstyleError: as `check_scheme`.
    """
    return beam_filesystems().join(check_scheme(folder), name)


def exists(path):
    """Whether `path` exists on its filesystem.

    Args:
        path: a local path or a URL.

    Returns:
        A bool.

    Raises:
        TfstyleError: as `check_scheme`.
    """
    return beam_filesystems().exists(check_scheme(path))


def match(patterns):
    """The files each pattern (a file, a folder's `*` or a glob) matches, sorted; a folder is
    matched as `folder/*`.

    Args:
        patterns: paths, folders or globs, local or URLs.

    Returns:
        A sorted list of the matching paths, each once.

    Raises:
        TfstyleError: as `check_scheme`.
    """
    fs = beam_filesystems()
    paths = []
    for pattern in patterns:
        pattern = check_scheme(pattern)
        if fs.exists(pattern) and not pattern.endswith(("*", "?", "]")) and _is_folder(pattern):
            pattern = fs.join(pattern, "*")
        for result in fs.match([pattern]):
            paths += [m.path for m in result.metadata_list]
    return sorted(set(paths))


def _is_folder(path):
    # Beam has no "is a directory": a local folder, or a bucket prefix given with a slash.
    return os.path.isdir(path) or path.endswith("/")


def read_bytes(path):
    """The whole file; OSError-like failures of any filesystem become TfstyleError.

    Args:
        path: a local path or a URL.

    Returns:
        The file's bytes.

    Raises:
        TfstyleError: the file cannot be read (the first line of the reason).
    """
    fs = beam_filesystems()
    try:
        with fs.open(os.fsdecode(path)) as file:
            return file.read()
    except Exception as exc:  # Beam raises BeamIOError, OSError, or the store's own errors
        raise TfstyleError(f"cannot read {path}: {_reason(exc)}") from exc


def read_image(path, *, max_size=None):
    """Decode an image file on any Beam filesystem, as `tfstyle.io.load_image`.

    Args:
        path: a local path or a URL.
        max_size: downscale so the longer side is at most this, or None.

    Returns:
        float32 `[H, W, 3]` in [0, 1].

    Raises:
        ImageError: the file cannot be read or decoded.
    """
    data = read_bytes(path)
    try:
        return decode_image(data, name=repr(os.fsdecode(path)), max_size=max_size)
    except ImageError:
        raise
    except TfstyleError as exc:
        raise ImageError(str(exc)) from exc


def write_bytes(data, path):
    """Write `data` to `path`: to a temporary name first, then renamed over `path`.

    Args:
        data: bytes.
        path: a local path (its folder is created) or a URL.

    Returns:
        `path` as a str.

    Raises:
        OutputError: the write or the rename failed (the temporary file is removed).
    """
    fs = beam_filesystems()
    path = os.fsdecode(path)
    folder, name = path.rsplit("/", 1) if "/" in path else ("", path)
    temporary = f"{folder}/.{name}.{uuid.uuid4().hex[:12]}.tmp" if folder else f".{name}.tmp"
    try:
        if folder and "://" not in folder:
            os.makedirs(folder, exist_ok=True)
        with fs.create(temporary) as file:
            file.write(data)
        fs.rename([temporary], [path])
    except Exception as exc:
        _delete_quietly(fs, temporary)
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from exc
    return path


def write_image(image, path):
    """Encode `image` as its extension says (PNG or JPEG) and `write_bytes` it.

    Args:
        image: an RGB image.
        path: a `.png`, `.jpg` or `.jpeg` path or URL.

    Returns:
        `path` as a str.

    Raises:
        OutputError: as `write_bytes`, or an unsupported extension.
    """
    return write_bytes(encode_image(image, image_format(os.fsdecode(path))), path)


def _delete_quietly(fs, path):
    try:
        if fs.exists(path):
            fs.delete([path])
    except Exception:  # the write's own error is the one to report
        pass


def _reason(exc):
    # BeamIOError wraps the per-file exceptions; the first one says what went wrong.
    details = getattr(exc, "exception_details", None)
    if details:
        exc = next(iter(details.values()))
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
