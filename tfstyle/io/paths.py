"""Paths: expanding what a user names, and the policy for where tfstyle may write.

The bottom of `tfstyle.io` (`atomic` and `images` build on it): which files count as images,
how command-line lists and patterns become files (an existing path is always taken literally
first), and the checks, run before any work, that an output can be written: a supported
extension, a folder that exists or can be made, a name the file system can hold, no input
overwritten. Nothing here writes a file; `make_directories` is the one function that creates
anything. Also the quoting every `tfstyle.io` message uses for paths.
"""

import contextlib
import csv
import glob
import os
import tempfile

from tfstyle.errors import ConfigError, ImageError, OutputError

SUPPORTED_EXTENSIONS = (".png", ".jpg", ".jpeg")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
_MAX_DETAIL = 160  # characters of a library's message quoted in ours


def is_image_file(path: str | os.PathLike) -> bool:
    """Tell whether a path names an image file, judging by its extension only.

    Args:
        path: file name or path; the file need not exist.

    Returns:
        True for .png, .jpg, .jpeg, .bmp, .gif, .tif, .tiff and .webp (any case).
    """
    return os.path.splitext(os.fsdecode(path))[1].lower() in IMAGE_EXTENSIONS


def expand_image_paths(specs: list[str | os.PathLike]) -> list[str]:
    """The files a list of command-line specs names: files, directories and glob patterns.

    An existing file gives itself (even if its name holds `*`, `?` or `[`), a directory its
    image files (by extension, not recursive) in sorted order, a pattern with `*`, `?` or `[`
    its matches in sorted order, anything else itself (so that loading it reports what is
    wrong). Order is kept and duplicates dropped.

    Args:
        specs: files, directories or glob patterns (`~` expanded in patterns).

    Returns:
        The files, in order, each once.

    Raises:
        ImageError: a directory holds no image files, or a pattern matches nothing.
    """
    found = []
    for spec in specs:
        spec = os.fsdecode(spec)
        if os.path.isfile(spec):  # before patterns: `photo[1].png` is a file, not a pattern
            paths = [spec]
        elif os.path.isdir(spec):
            names = sorted(n for n in os.listdir(spec) if is_image_file(n))
            paths = [p for p in (os.path.join(spec, n) for n in names) if os.path.isfile(p)]
            if not paths:
                raise ImageError(f"directory {quote(spec)} holds no image files")
        elif any(char in spec for char in "*?["):
            paths = sorted(p for p in glob.glob(os.path.expanduser(spec)) if os.path.isfile(p))
            if not paths:
                raise ImageError(f"no files match {quote(spec)}")
        else:
            paths = [spec]
        found.extend(paths)
    return list(dict.fromkeys(found))


def list_images(folder: str | os.PathLike) -> list[str]:
    """The image files (by extension) directly in `folder`, sorted; [] when it is not a folder
    (the web app's bundled examples, present in a source checkout but not in a wheel)."""
    folder = os.fsdecode(folder)
    if not os.path.isdir(folder):
        return []
    names = sorted(n for n in os.listdir(folder) if is_image_file(n))
    return [p for p in (os.path.join(folder, n) for n in names) if os.path.isfile(p)]


def find_stylizers(root: str | os.PathLike, *, marker: str) -> dict[str, str]:
    """`{name: folder}` of the trained stylizers under `root`, a folder holding the file
    `marker` (`stylizer.keras`): `root` itself, `root/NAME` or `root/NAME/VERSION` (the
    highest numbered version of each NAME), named as `model_name` names them, sorted by name;
    {} when `root` is not a folder."""
    root = os.fsdecode(root)
    if not os.path.isdir(root):
        return {}
    found = {}
    if os.path.isfile(os.path.join(root, marker)):
        found[model_name(root)] = root
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            continue
        versions = sorted((int(v) for v in os.listdir(folder) if v.isdigit()), reverse=True)
        candidates = [os.path.join(folder, str(v)) for v in versions] + [folder]
        for candidate in candidates:
            if os.path.isfile(os.path.join(candidate, marker)):
                found[name] = candidate
                break
    return dict(sorted(found.items()))


def split_path_list(text: str) -> list[str]:
    """Split a command-line list of paths: an existing path is taken whole (commas and all),
    anything else is split at commas as one CSV row, so `"a, b.png",c.png` names two files.

    Args:
        text: a flag's value.

    Returns:
        The paths, each stripped of surrounding spaces (empty for "").

    Raises:
        ConfigError: the text is not a valid CSV row (a stray quote, a line break).
    """
    if not text:
        return []
    if os.path.exists(text):
        return [text]
    try:
        (row,) = csv.reader([text], strict=True)
    except (csv.Error, ValueError) as exc:
        raise ConfigError(f"cannot read {text!r} as a comma-separated list: {exc}") from None
    return [item.strip() for item in row]


def file_stem(path: str | os.PathLike) -> str:
    """The file name of `path` (a local path, or a URL such as `gs://bucket/photo.jpg`)
    without its folder and extension.

    Args:
        path: a local path or a URL.

    Returns:
        The stem: "photo" for "gs://bucket/photo.jpg".
    """
    return os.path.splitext(os.fsdecode(path).rstrip("/").rsplit("/", 1)[-1])[0]


def output_name(content: str | os.PathLike, second: str) -> str:
    """A batch output's file name, `<content stem>__<second>.png`: `second` is the style's
    stem (`file_stem`) or the trained stylizer's `model_name`.

    Args:
        content: the content file's path or URL.
        second: the style's stem or the model's name.

    Returns:
        The file name, without a folder.
    """
    return f"{file_stem(content)}__{second}.png"


def model_name(path: str | os.PathLike) -> str:
    """`NAME` for a trained stylizer at `saved_models/NAME/1` (a versioned folder),
    `saved_models/NAME` or `NAME.keras`: the second half of its outputs' names.

    Args:
        path: the stylizer's folder or `.keras` file.

    Returns:
        The name.
    """
    path = os.path.abspath(os.fsdecode(path)).rstrip(os.sep)
    base = os.path.basename(path)
    if base.isdigit():
        return os.path.basename(os.path.dirname(path))
    return os.path.splitext(base)[0]


def check_output_file(
    path: str | os.PathLike, *, extensions: tuple[str, ...], create_directory: bool = False
) -> str:
    """Check, before any work, that a non-image output file (a log, a plot) can be written.

    Args:
        path: the intended file.
        extensions: the allowed extensions, lower case with the dot (".json", ".csv").
        create_directory: accept a missing directory that `make_directories` could create.

    Returns:
        The absolute path.

    Raises:
        OutputError: a wrong extension, the path is a directory, or its directory is missing
            (or, with `create_directory`, cannot be created).
    """
    target = os.path.abspath(os.fsdecode(path))
    extension = os.path.splitext(target)[1].lower()
    if extension not in extensions:
        raise OutputError(
            f"cannot write {quote(target)}: use a name ending in {' or '.join(extensions)}"
        )
    if os.path.isdir(target):
        raise OutputError(f"cannot write {quote(target)}: it is a directory")
    check_parent(target, create=create_directory)
    check_name_length(target)
    return target


def check_output_path(
    path: str | os.PathLike,
    *,
    inputs: tuple[str | os.PathLike, ...] = (),
    create_directory: bool = False,
) -> str:
    """Check that an image can be written to a path, before any work starts; creates nothing.

    Args:
        path: the intended output image.
        inputs: the run's input files, none of which may be overwritten.
        create_directory: accept a missing directory that `make_directories` could create.

    Returns:
        The absolute output path.

    Raises:
        OutputError: unsupported extension, the path is a directory, its directory is missing
            (or, with `create_directory`, cannot be created) or not writable, or it is one of
            the inputs.
    """
    target = os.path.abspath(os.fsdecode(path))
    if os.path.isdir(target):
        raise OutputError(f"output {quote(target)} is a directory; give a file name like out.png")
    image_format(target)
    check_parent(target, create=create_directory, writable=True)
    check_name_length(target)
    check_not_input(target, inputs=inputs)
    return target


def check_directory(path: str | os.PathLike, *, create: bool = False) -> str:
    """Check, creating nothing, that files can be written in a directory: it exists (or, with
    `create`, it or its missing parents can be created where the nearest existing folder is)
    and is writable.

    Args:
        path: the directory.
        create: accept a directory that does not exist yet but can be made.

    Returns:
        The absolute path.

    Raises:
        OutputError: naming the part of the path that is in the way.
    """
    target = os.path.abspath(os.fsdecode(path))
    problem = _directory_problem(target, create=create, writable=True)
    if problem:
        raise OutputError(f"cannot write in {quote(target)}: {problem}")
    check_name_length(target)
    return target


def check_name_length(path: str | os.PathLike) -> str:
    """Check, creating nothing, that the file system can hold a path's name: no part of it (the
    file's name, a folder still to be made) longer than its limit (NAME_MAX, usually 255 bytes),
    nor the whole path longer than PATH_MAX.

    Args:
        path: the path to be written (it and its parents may not exist yet).

    Returns:
        The absolute path.

    Raises:
        OutputError: naming the limit and the length.
    """
    target = os.path.abspath(os.fsdecode(path))
    existing = os.path.dirname(target)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    name_max = _path_limit(existing, "PC_NAME_MAX", 255)
    path_max = _path_limit(existing, "PC_PATH_MAX", 4096)
    for part in os.path.relpath(target, existing).split(os.sep):
        if len(os.fsencode(part)) > name_max:
            raise OutputError(
                f"cannot write {quote(target)}: the name {quote(part[:40] + '...')} is "
                f"{len(os.fsencode(part))} bytes long, too long for this file system (at most "
                f"{name_max}); choose a shorter name"
            )
    if len(os.fsencode(target)) >= path_max:
        raise OutputError(
            f"cannot write {quote(target)}: the path is {len(os.fsencode(target))} bytes long, "
            f"too long for this file system (less than {path_max}); choose a shorter path"
        )
    return target


def _path_limit(directory: str, name: str, default: int) -> int:
    try:
        return os.pathconf(directory, name)
    except (OSError, ValueError, AttributeError):  # not POSIX, or no limit reported
        return default


def user_cache_dir(name: str) -> str:
    """Where tfstyle keeps a cache named `name` between runs: `$XDG_CACHE_HOME/tfstyle/NAME`,
    or `~/.cache/tfstyle/NAME` (the XDG base directory convention). Not created here.

    Args:
        name: the cache's folder, such as "jax".

    Returns:
        An absolute path.
    """
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.abspath(os.path.join(root, "tfstyle", name))


def make_directories(path: str | os.PathLike) -> str:
    """Create a directory and its missing parents (nothing if it exists), like `mkdir -p`.

    Args:
        path: the directory.

    Returns:
        The absolute path.

    Raises:
        OutputError: it cannot be created (a file in the way, no permission...).
    """
    target = os.path.abspath(os.fsdecode(path))
    try:
        os.makedirs(target, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create directory {quote(target)}: {reason(exc)}") from exc
    return target


def check_not_input(path: str | os.PathLike, *, inputs: tuple[str | os.PathLike, ...]) -> str:
    """Refuse a path that names one of `inputs` (through links or any relative spelling).

    Args:
        path: a file the run will write (an image, its JSON report, a checkpoint).
        inputs: the run's input files.

    Returns:
        The absolute path.

    Raises:
        OutputError: `path` is one of the inputs.
    """
    target = os.path.abspath(os.fsdecode(path))
    for source in inputs:
        if _same_file(target, source):
            raise OutputError(
                f"refusing to overwrite input file {quote(target)}; choose another output path"
            )
    return target


def image_format(target: str) -> str:
    """Return Pillow's format name for an output path's extension, or raise OutputError.

    Args:
        target: the output path.

    Returns:
        "PNG" or "JPEG".

    Raises:
        OutputError: another extension, or none (the message lists those supported).
    """
    extension = os.path.splitext(target)[1]
    if extension.lower() in _SAVE_FORMATS:
        return _SAVE_FORMATS[extension.lower()]
    found = f"extension {extension!r}" if extension else "no extension"
    raise OutputError(
        f"cannot write {quote(target)}: {found} is not supported; "
        f"use one of {', '.join(SUPPORTED_EXTENSIONS)}"
    )


def check_parent(target: str, *, create: bool = False, writable: bool = False) -> None:
    """Raise OutputError unless the directory that would hold `target` exists (or, with
    `create`, could be created), and, with `writable`, lets files be created in it.

    Args:
        target: the absolute path of a file to be written.
        create: accept a folder that does not exist but can be made.
        writable: also require that files can be created in it.

    Raises:
        OutputError: naming what is in the way.
    """
    problem = _directory_problem(os.path.dirname(target), create=create, writable=writable)
    if problem:
        raise OutputError(f"cannot write {quote(target)}: {problem}")


def _directory_problem(directory: str, *, create: bool, writable: bool) -> str | None:
    """Why files cannot be written in `directory` (see `_check_directory`), or None."""
    if not os.path.exists(directory):
        if not create:
            return f"directory {quote(directory)} does not exist; create it first"
        existing = directory
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            return f"{quote(existing)} is not a directory"
        if not _can_create_in(existing):
            return f"directory {quote(existing)} is not writable, so no folder can be made in it"
        return None
    if not os.path.isdir(directory):
        return f"{quote(directory)} is not a directory"
    if writable and not _can_create_in(directory):
        return f"directory {quote(directory)} is not writable"
    return None


def _can_create_in(directory: str) -> bool:
    """Whether a file can be created in `directory`, found by creating (and removing) one.
    Permission bits and `os.access` say yes to root everywhere, /proc included, and know
    nothing of read-only mounts: an unwritable output was found only after the run."""
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".tfstyle-probe.", dir=directory)
    except OSError:
        return False
    os.close(descriptor)
    with contextlib.suppress(OSError):
        os.remove(probe)
    return True


def _same_file(target: str, other: str | os.PathLike) -> bool:
    """Tell whether two paths name the same file, following links and relative spellings."""
    other = os.fsdecode(other)
    if os.path.exists(target) and os.path.exists(other):
        try:
            return os.path.samefile(target, other)
        except OSError:
            pass  # fall back on comparing names
    return os.path.realpath(target) == os.path.realpath(other)


def quote(path: str | os.PathLike) -> str:
    """Quote a path for a one-line message (escaped where it holds control characters).

    Args:
        path: a path.

    Returns:
        `'path'`, or its `repr` when it is not printable.
    """
    text = os.fsdecode(path)
    return f"'{text}'" if text.isprintable() else repr(text)


def reason(exc: OSError) -> str:
    """The OS's words for a failure, e.g. 'Permission denied'.

    Args:
        exc: the OSError.

    Returns:
        Its `strerror`, or else its message on one short line (`detail`).
    """
    return exc.strerror or detail(exc)


def detail(exc: BaseException) -> str:
    """An exception's message squeezed onto one short line.

    Args:
        exc: any exception.

    Returns:
        Its message with whitespace collapsed, cut with "..." past `_MAX_DETAIL` characters
        (its type's name when it has none).
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
