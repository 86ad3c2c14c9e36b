"""Atomic file writing: a file (or a directory) holds its old content or all of the new one.

The bytes go to a hidden temporary file in the target's directory, which is then renamed onto
the target, so an interrupted run never leaves a half-written output. JSON, CSV and NumPy
`.npz` files (reports, histories, checkpoints) are written here too, and checkpoints read.
"""

import contextlib
import csv
import io
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable

import numpy as np

from tfstyle.errors import CheckpointError, OutputError
from tfstyle.io.paths import check_parent, detail, quote, reason


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> str:
    """Write bytes to a file so that it holds either its old content or all of the new one.

    The bytes go to a hidden temporary file in the same directory (a rename is only atomic
    within one file system), are flushed to disk, and the file is renamed onto the target.
    On any failure the temporary file is removed.

    Args:
        data: the file's complete content.
        path: the file to create or replace.

    Returns:
        The absolute path written.

    Raises:
        OutputError: the directory is missing or not writable, the path is a directory, or
            writing fails (disk full...).
    """

    def write(temporary):
        with open(temporary, "wb") as file:
            file.write(data)

    return write_file(path, write)


def write_file(path: str | os.PathLike, write: Callable[[str], object]) -> str:
    """Create or replace a file whole or not at all, for writers that need a path rather than
    bytes (a video encoder): `write` fills a hidden temporary file beside the target, which is
    then renamed onto it; on any failure the temporary file is removed.

    Args:
        path: the file to create or replace.
        write: called with the temporary file's path; writes the whole file there.

    Returns:
        The absolute path written.

    Raises:
        OutputError: the directory is missing or not writable, the path is a directory, or
            writing fails with an OSError.
    """
    target = os.path.abspath(os.fsdecode(path))
    check_parent(target)
    if os.path.isdir(target):
        raise OutputError(f"cannot write {quote(target)}: it is a directory")
    mode = _new_file_mode(target)
    try:
        fd, temporary = tempfile.mkstemp(
            prefix="." + os.path.basename(target)[:100] + ".",
            suffix=".tmp",
            dir=os.path.dirname(target),
        )
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write {quote(target)}: {reason(exc)}") from exc
    try:
        write(temporary)
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException as exc:
        _remove_quietly(temporary)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {quote(target)}: {reason(exc)}") from exc
        raise
    _fsync_directory(os.path.dirname(target))
    return target


def write_directory(
    path: str | os.PathLike,
    write: Callable[[str], object],
    *,
    overwrite: bool = False,
) -> str:
    """Create a directory whole or not at all: `write` fills a hidden temporary directory beside
    it, which is then renamed into place (a SavedModel export, for instance).

    Missing parent directories are created, and the directory gets the permissions `mkdir`
    would give it (not `mkdtemp`'s 700). With `overwrite`, an existing directory is replaced
    only after the new one is complete.

    Args:
        path: the directory to create.
        write: called with the temporary directory's path; writes the content there.
        overwrite: replace `path` if it exists.

    Returns:
        The absolute path written.

    Raises:
        OutputError: `path` exists and `overwrite` is false, is a file, or cannot be written.
    """
    target = check_new_directory(path, overwrite=overwrite)
    parent = os.path.dirname(target)
    hidden = "." + os.path.basename(target)[:100] + "."
    try:
        os.makedirs(parent, exist_ok=True)
        temporary = tempfile.mkdtemp(prefix=hidden, dir=parent)
    except OSError as exc:
        raise OutputError(f"cannot write {quote(target)}: {reason(exc)}") from exc
    old = None
    try:
        write(temporary)
        # mkdtemp makes the folder 700: give it what `mkdir` would (755 under umask 022), as
        # the shipped model has; a served model is read by other users.
        os.chmod(temporary, 0o777 & ~_UMASK)
        if os.path.exists(target):
            # Moved aside, not deleted, until the new directory is in place.
            old = tempfile.mkdtemp(prefix=hidden + "old.", dir=parent)
            os.replace(target, os.path.join(old, "previous"))
        os.replace(temporary, target)
    except BaseException as exc:
        # Whatever stopped it (a failed rename, or Ctrl-C between the two renames), the
        # previous directory goes back, and is never deleted unless the new one is in place.
        shutil.rmtree(temporary, ignore_errors=True)
        stranded = _put_back(old, target)
        if stranded is not None:
            raise OutputError(
                f"cannot write {quote(target)}: {detail(exc)}; the previous directory could "
                f"not be put back and is kept in {quote(stranded)}"
            ) from exc
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {quote(target)}: {reason(exc)}") from exc
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_directory(parent)
    return target


def _put_back(old, target):
    """After a failed replacement: move the previous directory, kept in `old`, back to
    `target` unless the new one got there. Returns None when nothing is left to keep in `old`,
    or the previous directory's path there when it could not be moved back."""
    if old is None:
        return None
    previous = os.path.join(old, "previous")
    if not os.path.exists(previous) or os.path.exists(target):
        return None  # never moved aside, or the new directory is complete and in place
    try:
        os.replace(previous, target)
    except OSError:
        return previous
    return None


def check_new_directory(path: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Check, before any work, that `write_directory(path, ..., overwrite=overwrite)` may write
    there: no file has that name, and it does not exist unless `overwrite`.

    Args:
        path: the directory to be written.
        overwrite: accept an existing directory (it will be replaced).

    Returns:
        The absolute path.

    Raises:
        OutputError: a file has that name, or the directory exists and not `overwrite`.
    """
    target = os.path.abspath(os.fsdecode(path))
    if os.path.isfile(target):
        raise OutputError(f"cannot write directory {quote(target)}: a file has that name")
    if os.path.exists(target) and not overwrite:
        raise OutputError(f"{quote(target)} already exists; remove it or pass --overwrite")
    return target


def remove_file(path: str | os.PathLike) -> bool:
    """Delete a file if it exists; returns whether it did.

    Args:
        path: the file.

    Returns:
        True if a file was deleted, False if there was none.

    Raises:
        OutputError: the file exists and cannot be deleted.
    """
    try:
        os.remove(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise OutputError(f"cannot remove {quote(path)}: {reason(exc)}") from exc
    return True


def save_json(data: object, path: str | os.PathLike) -> str:
    """Write a JSON document atomically (UTF-8, indented by 2, keys in their given order).

    Args:
        data: anything `json.dumps` accepts.
        path: the output file.

    Returns:
        The absolute path written.

    Raises:
        OutputError: missing directory or a failed write.
    """
    text = json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    return atomic_write_bytes(text.encode("utf-8"), path)


def save_csv(rows: list[dict], path: str | os.PathLike, *, columns: list[str]) -> str:
    """Write rows as a CSV file atomically (UTF-8, a header line, `\n` line ends).

    Args:
        rows: one dict per line; keys missing from a row are left empty, extra keys ignored.
        path: the output file.
        columns: the header, in order.

    Returns:
        The absolute path written.

    Raises:
        OutputError: missing directory or a failed write.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_bytes(buffer.getvalue().encode("utf-8"), path)


def save_npz(arrays: dict[str, np.ndarray], path: str | os.PathLike) -> str:
    """Write NumPy arrays atomically as an uncompressed `.npz` file (a checkpoint).

    Args:
        arrays: `{name: array}`; no object arrays (they would need pickling to load).
        path: the output file.

    Returns:
        The absolute path written.

    Raises:
        OutputError: missing directory or a failed write.
    """
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write_bytes(buffer.getvalue(), path)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an `.npz` file written by `save_npz` (pickles are refused).

    Args:
        path: the file.

    Returns:
        `{name: array}`.

    Raises:
        CheckpointError: the file is missing, unreadable or not an intact `.npz` file.
    """
    name = quote(path)
    _check_npz_signature(path, name)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint {name} not found") from exc
    except OSError as exc:
        raise CheckpointError(f"checkpoint {name} cannot be read: {reason(exc)}") from exc
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError...: a damaged file
        raise CheckpointError(
            f"checkpoint {name} is damaged or not a checkpoint ({detail(exc)})"
        ) from exc


def _check_npz_signature(path: str | os.PathLike, name: str) -> None:
    """Refuse a file that is not a zip archive (as every .npz is) before NumPy reads it: NumPy
    takes any other file for a pickle and advises `allow_pickle=`."""
    try:
        with open(path, "rb") as file:
            head = file.read(4)
    except OSError:
        return  # np.load reports it below, with the OS's reason
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise CheckpointError(f"{name} is not a tfstyle checkpoint (not an .npz file)")


def _new_file_mode(target: str) -> int:
    """Permissions for the written file: the old file's, or what `open` would give a new one."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        pass
    # mkstemp creates files readable by the owner only.
    return 0o666 & ~_UMASK


def _read_umask() -> int:
    """The process umask. There is no way to read it without setting it, and setting it is
    process-wide (a thread creating a file meanwhile would get umask 0): read once, at import,
    which happens before any of tfstyle's threads or Beam's workers write files."""
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def _fsync_directory(directory: str) -> None:
    """Flush a directory entry to disk so the rename survives a crash; best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync directories; the file itself is already safe
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    """Delete a file if it exists, ignoring failures (used while handling another error)."""
    with contextlib.suppress(OSError):
        os.remove(path)


@contextlib.contextmanager
def scratch_directory(prefix: str = "tfstyle-"):
    """A new private folder (mode 0700) for the files of one job, removed with everything in
    it when the block ends, however it ends (the web app's results, once Gradio has copied
    them into its own cache)."""
    folder = tempfile.mkdtemp(prefix=prefix)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
