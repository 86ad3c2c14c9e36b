"""Tests of `tfstyle.io.atomic` (and the writes of `save_image` that go through it)."""

import errno
import json
import os

import pytest
from io_helpers import (
    IS_ROOT,
    gradient,
    raises_one_line,
)
from PIL import Image

from tfstyle.errors import OutputError
from tfstyle.io import (
    atomic_write_bytes,
    save_image,
    save_json,
    write_directory,
)

# ---------------------------------------------------------------------------------------------
# Writing


def test_missing_output_directory(tmp_path):
    target = tmp_path / "nowhere" / "out.png"
    raises_one_line(OutputError, "nowhere' does not exist", save_image, gradient(4, 4), target)
    raises_one_line(OutputError, "does not exist", save_json, {}, tmp_path / "nowhere" / "r.json")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["out.gif", "out.txt", "out", "out.png.bak"])
def test_unsupported_output_extension(tmp_path, name):
    message = raises_one_line(
        OutputError, "not supported", save_image, gradient(4, 4), tmp_path / name
    )
    assert ".png, .jpg, .jpeg" in message and name in message
    assert os.listdir(tmp_path) == []


def test_output_path_is_a_directory(tmp_path):
    (tmp_path / "out.png").mkdir()
    raises_one_line(OutputError, "is a directory", save_image, gradient(4, 4), tmp_path / "out.png")


def test_existing_output_is_replaced_completely(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old content " * 10_000)
    os.chmod(target, 0o640)
    save_image(gradient(8, 8), target)
    with Image.open(target) as im:
        assert im.format == "PNG" and im.size == (8, 8)
    assert os.listdir(tmp_path) == ["out.png"]
    assert os.stat(target).st_mode & 0o777 == 0o640  # the old file's permissions are kept


def test_new_file_gets_ordinary_permissions(tmp_path, monkeypatch):
    from tfstyle.io import atomic

    monkeypatch.setattr(atomic, "_UMASK", 0o022)  # the process umask, read once at import
    save_image(gradient(4, 4), tmp_path / "out.png")
    assert os.stat(tmp_path / "out.png").st_mode & 0o777 == 0o644  # not mkstemp's 0o600


def test_writes_never_touch_the_process_umask(tmp_path, monkeypatch):
    """Reading the umask means setting it, for the whole process: a thread creating a file
    meanwhile would get the wrong permissions. It is read once, at import."""
    calls = []
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or 0o022)
    save_image(gradient(4, 4), tmp_path / "a.png")
    save_json({}, tmp_path / "b.json")
    assert calls == []


def _directory(path, content):
    path.mkdir(parents=True)
    (path / "file").write_text(content)


def test_write_directory_keeps_the_previous_one_when_interrupted_between_renames(
    tmp_path, monkeypatch
):
    from tfstyle.io import write_directory

    target = tmp_path / "model"
    _directory(target, "previous")
    replace = os.replace

    def interrupted(source, destination, *args, **kwargs):
        # The second rename (the new directory into place) never happens: Ctrl-C.
        if os.fspath(destination) == os.fspath(target) and "old." not in os.fspath(source):
            raise KeyboardInterrupt
        return replace(source, destination, *args, **kwargs)

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_directory(target, lambda d: (tmp_path / d / "file").write_text("new"), overwrite=True)
    assert (target / "file").read_text() == "previous"
    assert os.listdir(tmp_path) == ["model"]  # no temporary or set-aside folder left


def test_write_directory_that_cannot_put_the_previous_back_says_where_it_is(tmp_path, monkeypatch):
    from tfstyle.io import write_directory

    target = tmp_path / "model"
    _directory(target, "previous")
    replace = os.replace

    def failing(source, destination, *args, **kwargs):
        if os.fspath(destination) == os.fspath(target):  # both into place and back
            raise OSError(errno.EIO, "Input/output error")
        return replace(source, destination, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OutputError) as caught:
        write_directory(target, lambda d: (tmp_path / d / "file").write_text("new"), overwrite=True)
    message = str(caught.value)
    assert (
        "Input/output error" in message
        and "the previous directory could not be put back" in message
    )
    kept = message.rsplit("is kept in ", 1)[1].strip("'")
    with open(os.path.join(kept, "file")) as file:
        assert file.read() == "previous"  # not deleted


def test_new_directory_gets_ordinary_permissions(tmp_path):
    # train and export wrote their folders with mkdtemp's 700 (the shipped model is 755).
    old_umask = os.umask(0o022)
    try:
        write_directory(tmp_path / "model", lambda d: open(os.path.join(d, "f"), "w").close())
    finally:
        os.umask(old_umask)
    assert os.stat(tmp_path / "model").st_mode & 0o777 == 0o755
    assert os.umask(old_umask) == old_umask  # the process's umask is left as it was


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_leaves_target_and_no_temporary_file(tmp_path, monkeypatch, failing):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    raises_one_line(
        OutputError, "out.png': No space left on device", save_image, gradient(4, 4), target
    )
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.png"]


def test_interrupted_write_cleans_up_and_propagates(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(b"data", tmp_path / "out.bin")
    assert os.listdir(tmp_path) == []


def test_read_only_directory(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")
    if IS_ROOT:  # root ignores permissions, so simulate the refusal where it would happen

        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(os, "replace", refuse)
    else:
        os.chmod(tmp_path, 0o500)
    try:
        raises_one_line(OutputError, "Permission denied", save_image, gradient(4, 4), target)
    finally:
        os.chmod(tmp_path, 0o700)
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.png"]


def test_save_json(tmp_path):
    data = {"zeta": 1, "alpha": [1.5, None], "name": "ünï cödé"}
    path = save_json(data, tmp_path / "run.json")
    text = (tmp_path / "run.json").read_text(encoding="utf-8")
    assert json.loads(text) == data
    assert text.endswith("}\n") and '  "zeta": 1' in text and "ünï cödé" in text
    assert text.index("zeta") < text.index("alpha")  # keys keep their order
    assert path == str(tmp_path / "run.json")


def test_atomic_write_bytes_replaces(tmp_path):
    target = tmp_path / "data.bin"
    atomic_write_bytes(b"first", target)
    atomic_write_bytes(b"second", target)
    assert target.read_bytes() == b"second"
    assert os.listdir(tmp_path) == ["data.bin"]
