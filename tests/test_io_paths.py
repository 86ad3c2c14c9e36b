"""Tests of `tfstyle.io.paths`: input expansion and the output-path policy."""

import os

import numpy as np
import pytest
from io_helpers import (
    png_with_size,
    raises_one_line,
    write_file,
)
from PIL import Image

from tfstyle.errors import ImageError, OutputError
from tfstyle.io import (
    check_output_path,
    is_image_file,
    load_image,
    save_image,
)

# ---------------------------------------------------------------------------------------------
# check_output_path and is_image_file


def test_check_output_path_accepts_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_output_path("out.jpg", inputs=("content.jpg",)) == str(tmp_path / "out.jpg")
    assert os.listdir(tmp_path) == []


def test_check_output_path_refuses_inputs(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    content = write_file(tmp_path / "content.png", Image.new("RGB", (2, 2)))
    monkeypatch.chdir(tmp_path / "sub")
    message = raises_one_line(
        OutputError,
        "refusing to overwrite input file",
        check_output_path,
        "../content.png",
        inputs=[str(content)],
    )
    assert "content.png" in message
    os.symlink(content, tmp_path / "link.png")
    raises_one_line(
        OutputError, "refusing", check_output_path, tmp_path / "link.png", inputs=[content]
    )
    # The same name before the input exists (e.g. an input still to be generated).
    raises_one_line(OutputError, "refusing", check_output_path, "new.png", inputs=["./new.png"])
    assert check_output_path(tmp_path / "other.png", inputs=[content]) == str(
        tmp_path / "other.png"
    )


def test_check_output_path_failures(tmp_path, monkeypatch):
    (tmp_path / "dir.png").mkdir()
    raises_one_line(OutputError, "is a directory", check_output_path, tmp_path / "dir.png")
    raises_one_line(OutputError, "not supported", check_output_path, tmp_path / "out.bmp")
    raises_one_line(
        OutputError, "does not exist", check_output_path, tmp_path / "missing" / "out.png"
    )
    import tempfile

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as patch:
        patch.setattr(tempfile, "mkstemp", refused)
        raises_one_line(OutputError, "is not writable", check_output_path, tmp_path / "out.png")
    assert sorted(os.listdir(tmp_path)) == ["dir.png"]  # the probe left nothing


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_unwritable_directory_is_found_by_trying(tmp_path):
    # Found by creating a file, not by permission bits: as root, os.access allowed /proc, and
    # the run failed only when it wrote its output at the end.
    raises_one_line(OutputError, "is not writable", check_output_path, "/proc/out.png")
    raises_one_line(
        OutputError,
        "is not writable, so no folder can be made",
        check_output_path,
        "/proc/new/out.png",
        create_directory=True,
    )
    assert check_output_path(tmp_path / "out.png") == str(tmp_path / "out.png")
    assert os.listdir(tmp_path) == []


def test_supported_extensions_are_saved(tmp_path):
    image = np.full((4, 6, 3), 0.5, np.float32)
    for extension in (".png", ".jpg", ".jpeg", ".PNG"):
        path = save_image(image, tmp_path / f"out{extension}")
        np.testing.assert_allclose(load_image(path), image, atol=1 / 255)
    message = raises_one_line(OutputError, "not supported", check_output_path, tmp_path / "o.bmp")
    assert "use one of .png, .jpg, .jpeg" in message


def test_default_pixel_limit_is_128_million(tmp_path):
    # 16000x8000 is exactly the limit: not refused by it (the 1x1 file then fails to decode);
    # one row more is.
    path = tmp_path / "limit.png"
    path.write_bytes(png_with_size(16_000, 8_000))
    raises_one_line(ImageError, "is truncated or corrupt", load_image, path)
    path.write_bytes(png_with_size(16_000, 8_001))
    raises_one_line(ImageError, "16000x8001 = 128,016,000 pixels", load_image, path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.png", True),
        ("b.JPG", True),
        ("dir/c.jpeg", True),
        ("d.bmp", True),
        ("e.gif", True),
        ("f.TIF", True),
        ("g.tiff", True),
        ("h.webp", True),
        ("notes.txt", False),
        ("png", False),
        (".png.bak", False),
    ],
)
def test_is_image_file(name, expected):
    assert is_image_file(name) is expected


def test_creatable_directories_are_checked_without_creating_them(tmp_path):
    from tfstyle.io import check_directory, check_output_file, make_directories

    (tmp_path / "file.png").write_bytes(b"x")
    deep = tmp_path / "a" / "b"
    assert check_output_path(deep / "out.png", create_directory=True) == str(deep / "out.png")
    assert check_output_file(deep / "h.csv", extensions=(".csv",), create_directory=True)
    assert check_directory(deep, create=True) == str(deep)
    assert not (tmp_path / "a").exists()
    raises_one_line(OutputError, "does not exist", check_directory, deep)
    blocked = tmp_path / "file.png" / "sub"
    raises_one_line(
        OutputError, "file.png' is not a directory", check_directory, blocked, create=True
    )
    raises_one_line(
        OutputError,
        "is not a directory",
        check_output_path,
        blocked / "out.png",
        create_directory=True,
    )
    assert make_directories(deep) == str(deep) and deep.is_dir()
    assert make_directories(deep) == str(deep)  # already there: nothing to do
    raises_one_line(OutputError, "cannot create directory", make_directories, blocked)


def test_existing_paths_are_taken_literally_before_patterns_and_lists(tmp_path, monkeypatch):
    from tfstyle.io import expand_image_paths, split_path_list

    monkeypatch.chdir(tmp_path)
    for name in ("photo[1].png", "photo1.png", "a, b.png", "c.png"):
        (tmp_path / name).write_bytes(b"x")
    # `photo[1].png` as a pattern would match photo1.png only.
    assert expand_image_paths(["photo[1].png"]) == ["photo[1].png"]
    assert expand_image_paths(["photo[0-9].png"]) == ["photo1.png"]
    assert split_path_list("a, b.png") == ["a, b.png"]
    assert split_path_list('"a, b.png",c.png') == ["a, b.png", "c.png"]
    assert split_path_list("c.png, photo1.png") == ["c.png", "photo1.png"]
    assert split_path_list("") == []


def test_check_name_length(tmp_path):
    from tfstyle.io import check_name_length

    assert check_name_length(tmp_path / ("a" * 255)) == str(tmp_path / ("a" * 255))
    message = raises_one_line(
        OutputError, "256 bytes long", check_name_length, tmp_path / ("a" * 256)
    )
    assert "at most 255" in message
    # A folder still to be made is a name too; non-ASCII characters count in bytes.
    raises_one_line(OutputError, "too long", check_name_length, tmp_path / ("ü" * 128) / "out.png")
    raises_one_line(
        OutputError, "path is", check_name_length, tmp_path / "/".join(["d" * 200] * 25)
    )
