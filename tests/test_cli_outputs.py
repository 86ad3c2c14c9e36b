"""What the command writes: never an input, only supported formats, and always atomically (a
failure leaves the previous file whole and no temporary file behind). In-process CLI runs."""

import errno
import os

import numpy as np
import pytest
from cli_runner import FAST, assert_clean_failure, assert_success, run_inprocess, temporary_files
from PIL import Image

from tfstyle.io import load_image


def _png(path, seed=0, size=(40, 56)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path, "PNG")
    return path


@pytest.fixture
def images(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    return _png(tmp_path / "photo.png"), _png(tmp_path / "paint.png", seed=1)


@pytest.mark.parametrize(
    "output",
    ["photo.png", "./sub/../photo.png", "{tmp}/photo.png", "link.png", "paint.png", "photo.PNG"],
)
def test_never_overwrites_an_input(tmp_path, capfd, images, output):
    content, style = images
    (tmp_path / "link.png").symlink_to(content)
    before = [content.read_bytes(), style.read_bytes()]
    output = output.format(tmp=tmp_path)
    if output == "photo.PNG" and not os.path.exists(output):
        pytest.skip("case-sensitive file system: photo.PNG is another file")
    result = run_inprocess(
        ["--content", "photo.png", "--style", "paint.png", "--output", output, *FAST], capfd
    )
    assert result.code == 1 and len(result.lines) == 1, result
    assert result.lines[0].startswith("tfstyle: error: refusing to overwrite input file")
    assert [content.read_bytes(), style.read_bytes()] == before
    assert temporary_files(tmp_path) == []


def test_never_overwrites_an_input_with_a_side_file(tmp_path, capfd, images):
    style = images[1]
    # A PNG named like the run's JSON report, and one named like a --save_every snapshot.
    report = _png(tmp_path / "out.json", seed=2)
    snapshot = _png(tmp_path / "out_step00002.png", seed=3)
    for name, extra in (("out.json", ()), ("out_step00002.png", ("--save_every", "2"))):
        before = (tmp_path / name).read_bytes()
        result = run_inprocess(
            ["--content", name, "--style", style, "--output", "out.png", *FAST, *extra], capfd
        )
        assert_clean_failure(result, output=tmp_path / "out.png", match="refusing to overwrite")
        assert name in result.lines[0]
        assert (tmp_path / name).read_bytes() == before
    assert report.exists() and snapshot.exists()


@pytest.mark.parametrize("name", ["out.gif", "out.webp", "out", "out.png.txt"])
def test_unsupported_output_is_refused_before_any_work(tmp_path, capfd, name):
    # Nothing else would work either (missing content, missing weights file): the output is
    # checked first, so its error is the one reported.
    output = tmp_path / name
    result = run_inprocess(
        [
            "--content",
            tmp_path / "missing.png",
            "--style",
            tmp_path / "missing.png",
            "--output",
            output,
            *FAST,
            "--weights",
            tmp_path / "missing.weights.h5",
        ],
        capfd,
    )
    line = assert_clean_failure(result, output=output, match="is not supported")
    assert "use one of .png, .jpg, .jpeg" in line


def test_existing_output_is_replaced_only_by_a_complete_new_file(tmp_path, capfd, images):
    content, style = images
    output = tmp_path / "out.png"
    old = _png(output, seed=9, size=(5, 5))
    old_bytes, old_inode = old.read_bytes(), os.stat(old).st_ino
    args = ["--content", content, "--style", style, "--output", output, *FAST, "--overwrite"]
    failed = run_inprocess([*args, "--style_weight", "-1"], capfd)
    assert failed.code == 1 and len(failed.lines) == 1
    assert output.read_bytes() == old_bytes  # a refused run leaves it alone
    done = run_inprocess(args, capfd)
    assert done.code == 0, done
    # Replaced by a rename of a new, complete file (a new inode), never rewritten in place.
    assert os.stat(output).st_ino != old_inode
    assert load_image(output).shape == (23, 32, 3)
    assert temporary_files(tmp_path) == []


@pytest.mark.parametrize("failing", ["out_step00001.png", "out.png", "out.json"])
def test_failed_save_leaves_the_previous_file_whole(tmp_path, capfd, images, monkeypatch, failing):
    content, style = images
    previous = {
        "out.png": _png(tmp_path / "out.png", seed=5).read_bytes(),
        "out.json": b'{"previous": true}\n',
        "out_step00001.png": _png(tmp_path / "out_step00001.png", seed=6).read_bytes(),
    }
    (tmp_path / "out.json").write_bytes(previous["out.json"])
    replace = os.replace

    def disk_full(source, target, *args, **kwargs):
        if os.path.basename(os.fsdecode(target)) == failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        return replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", disk_full)
    args = ["--content", content, "--style", style, "--output", "out.png", *FAST]
    result = run_inprocess([*args, "--overwrite", "--save_every", "1"], capfd)
    assert result.code == 1 and len(result.lines) == 1, result
    # A failed report comes after the image, which the line then says is saved.
    saved = f"; the image was saved to {tmp_path / 'out.png'}" if failing == "out.json" else ""
    assert result.lines[0] == (
        f"tfstyle: error: cannot write '{tmp_path / failing}': No space left on device{saved}"
    )
    assert (tmp_path / failing).read_bytes() == previous[failing]
    assert temporary_files(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Output folders: created as needed, once the run has passed every check


def test_batch_creates_its_output_dir(tmp_path, capfd, images):
    content, style = images
    result = run_inprocess(
        ["--content", content, "--style", style, "--output_dir", "out/deeper/", *FAST], capfd
    )
    assert result.code == 0, result
    assert sorted(os.listdir(tmp_path / "out" / "deeper")) == [
        "photo__paint.json",
        "photo__paint.png",
    ]


def test_output_and_history_folders_are_created(tmp_path, capfd, images):
    content, style = images
    output = tmp_path / "new" / "out.png"
    args = ["--content", content, "--style", style, "--output", output, *FAST]
    result = run_inprocess([*args, "--history", "logs/run/h.csv"], capfd)
    assert_success(result, output=output)
    assert (tmp_path / "new" / "out.json").is_file()
    assert (tmp_path / "logs" / "run" / "h.csv").is_file()


def test_a_refused_run_creates_no_folder(tmp_path, capfd, images):
    style = images[1]
    _png(tmp_path / "tiny.png", size=(1, 1))  # too small for the layers: refused by stylize
    output = tmp_path / "new" / "out.png"
    result = run_inprocess(
        ["--content", "tiny.png", "--style", style, "--output", output, *FAST,
         "--history", "logs/h.json"],
        capfd,
    )  # fmt: skip
    assert result.code == 1 and len(result.lines) == 1, result
    assert "too small" in result.lines[0]
    assert not (tmp_path / "new").exists() and not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--output", "photo.png/sub/out.png"),
        ("--output_dir", "photo.png/sub"),
        ("--history", "photo.png/h.json"),
    ],
)
def test_a_folder_that_cannot_be_created_is_one_line(tmp_path, capfd, images, flag, value):
    content, style = images
    output = ["--output", "out.png"] if flag != "--output" and flag != "--output_dir" else []
    result = run_inprocess(
        ["--content", content, "--style", style, flag, value, *output, *FAST], capfd
    )
    line = assert_clean_failure(result, output=tmp_path / "out.png", match="not a directory")
    assert "photo.png" in line
    assert sorted(os.listdir(tmp_path)) == ["paint.png", "photo.png", "sub"]


def test_odd_file_names_are_read_literally(tmp_path, capfd, images):
    content, style = images
    os.rename(content, tmp_path / "photo[1].png")
    os.rename(style, tmp_path / "paint, 2.png")
    result = run_inprocess(
        ["--content", "photo[1].png", "--style", "paint, 2.png", "--output", "out.png", *FAST],
        capfd,
    )
    assert_success(result, output=tmp_path / "out.png")
    # In a list, CSV quotes keep a comma in a name; unquoted, the comma separates.
    (tmp_path / "paint3.png").write_bytes((tmp_path / "paint, 2.png").read_bytes())
    args = ["--content", "photo[1].png", "--output", "out2.png", *FAST]
    result = run_inprocess([*args, "--style", '"paint, 2.png",paint3.png'], capfd)
    assert_success(result, output=tmp_path / "out2.png")
    result = run_inprocess([*args, "--style", "paint3.png,paint, 2.png", "--overwrite"], capfd)
    assert result.code == 1 and "image file 'paint' not found" in result.stderr, result


@pytest.mark.parametrize(
    ("stem", "mode"),
    [
        ("o" * 300, "single"),  # the image's own name
        ("o" * 250, "single"),  # out.png fits; <stem>.ckpt.npz (259 bytes) does not
        ("p" * 246, "batch"),  # <content>__<style>.png (257 bytes)
    ],
)
def test_a_name_too_long_for_the_file_system_is_refused_before_any_work(
    tmp_path, capfd, images, stem, mode
):
    content, style = images
    if mode == "batch":
        content = tmp_path / f"{stem}.png"
        os.rename(images[0], content)
        where = ["--output_dir", "out"]
    else:
        where = ["--output", f"{stem}.png"]
    result = run_inprocess(["--content", content, "--style", style, *where, *FAST], capfd)
    assert result.code == 1 and len(result.lines) == 1, result
    assert "too long" in result.lines[0] and "255" in result.lines[0], result.lines[0]
    assert temporary_files(tmp_path) == [] and not (tmp_path / "out").exists()
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(content), "paint.png", "sub"])


# ---------------------------------------------------------------------------------------------
# Interrupted reruns: a finished output is never replaced by an unfinished image


def _interrupt_at(monkeypatch, step):
    """Make the CLI's next `stylize` calls press Ctrl-C after `step` (a callback's
    KeyboardInterrupt is what a real Ctrl-C raises between steps)."""
    import tfstyle.optimize.stylize as loop

    real = loop.stylize

    def stop(progress):
        if progress.step == step:
            raise KeyboardInterrupt

    def stylize(*args, callbacks=(), **kwargs):
        return real(*args, callbacks=[*callbacks, stop], **kwargs)

    monkeypatch.setattr(loop, "stylize", stylize)


def test_an_interrupted_rerun_keeps_the_finished_output(tmp_path, capfd, images, monkeypatch):
    content, style = images
    args = ["--content", content, "--style", style, "--output", "out.png", *FAST]
    assert run_inprocess(args, capfd).code == 0
    finished, report = (tmp_path / "out.png").read_bytes(), (tmp_path / "out.json").read_bytes()

    # 30 steps: three compiled calls of 10, so that an interrupt lands between two of them.
    rerun = [*args, "--iterations", "30", "--seed", "3", "--overwrite"]
    _interrupt_at(monkeypatch, 10)
    first = run_inprocess(rerun, capfd)
    assert first.code == 130, first
    checkpoint = tmp_path / "out.ckpt.npz"
    assert first.lines == [
        f"tfstyle: interrupted after step 10 of 30; kept the finished {tmp_path / 'out.png'} and "
        f"saved the current image in a checkpoint to {checkpoint}; continue with the same "
        "command and --resume"
    ]
    # The finished image and the report that describes it are both untouched.
    assert (tmp_path / "out.png").read_bytes() == finished
    assert (tmp_path / "out.json").read_bytes() == report
    # Interrupted again while resuming: still kept (the checkpoint remembers it is finished).
    _interrupt_at(monkeypatch, 20)
    second = run_inprocess([*rerun, "--resume"], capfd)
    assert second.code == 130 and "kept the finished" in second.stderr, second
    assert (tmp_path / "out.png").read_bytes() == finished
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    done = run_inprocess([*rerun, "--resume"], capfd)
    assert done.code == 0, done
    assert (tmp_path / "out.png").read_bytes() != finished and not checkpoint.exists()
    assert b'"steps": 30' in (tmp_path / "out.json").read_bytes()


def test_an_interrupted_first_run_saves_its_image(tmp_path, capfd, images, monkeypatch):
    content, style = images
    args = ["--content", content, "--style", style, "--output", "out.png", *FAST, "--iterations=30"]
    _interrupt_at(monkeypatch, 10)
    assert run_inprocess(args, capfd).code == 130
    at_two = (tmp_path / "out.png").read_bytes()
    # Resumed and interrupted again: the image at OUTPUT is this run's own, so it moves on.
    _interrupt_at(monkeypatch, 20)
    again = run_inprocess([*args, "--resume"], capfd)
    assert again.code == 130 and "saved the current image to" in again.stderr, again
    assert (tmp_path / "out.png").read_bytes() != at_two


# ---------------------------------------------------------------------------------------------
# One policy for an existing output: one named output is refused unless --overwrite; a batch
# skips what exists, and with nothing left to do says so in one line and exits 0


@pytest.fixture
def tiny_model(tmp_path):
    from tfstyle import build_stylizer

    path = tmp_path / "tiny.keras"
    build_stylizer(width=4, residual_blocks=1).save(path)
    return path


@pytest.mark.parametrize("command", ["optimise", "model"])
def test_an_existing_output_is_refused_unless_overwrite(
    tmp_path, capfd, images, tiny_model, command
):
    content, style = images
    output = _png(tmp_path / "out.png", seed=9, size=(5, 5))
    before = output.read_bytes()
    paint = ["--style", style] if command == "optimise" else ["--model", tiny_model]
    args = ["--content", content, *paint, "--output", output, *FAST[:-1]]
    if command == "model":
        args = ["--content", content, "--model", tiny_model, "--output", output]
    refused = run_inprocess(args, capfd)
    assert refused.code == 1 and refused.lines == [
        f"tfstyle: error: {output} already exists; remove it or pass --overwrite"
    ], refused
    assert output.read_bytes() == before
    done = run_inprocess([*args, "--overwrite", "--quiet"], capfd)
    assert done.code == 0 and done.stderr == "", done
    # --model paints the photo at its own size; the optimisation at --max_size 32.
    assert load_image(output).shape == ((40, 56, 3) if command == "model" else (23, 32, 3))


@pytest.mark.parametrize("command", ["optimise", "model"])
def test_a_batch_with_every_output_there_has_nothing_to_do(
    tmp_path, capfd, images, tiny_model, command
):
    content, style = images
    other = _png(tmp_path / "other.png", seed=2)
    paint = ["--style", style] if command == "optimise" else ["--model", tiny_model]
    args = ["--content", f"{content},{other}", *paint, "--output_dir", "out"]
    args += [*FAST] if command == "optimise" else ["--quiet"]
    assert run_inprocess(args, capfd).code == 0
    stamps = {name: os.stat(tmp_path / "out" / name).st_mtime_ns for name in os.listdir("out")}
    again = run_inprocess(args, capfd)
    assert again.code == 0 and again.lines == [
        f"tfstyle: nothing to do: all 2 outputs in {tmp_path / 'out'} already exist; pass "
        "--overwrite to redo them"
    ], again
    assert {n: os.stat(tmp_path / "out" / n).st_mtime_ns for n in os.listdir("out")} == stamps


def test_model_batch_refuses_two_photos_with_one_output_name(tmp_path, capfd, images, tiny_model):
    content, _ = images
    (tmp_path / "two").mkdir()
    _png(tmp_path / "two" / "photo.jpg", seed=3)  # another photo, the same stem
    args = ["--model", tiny_model, "--content", f"{content},two", "--output_dir", "out"]
    result = run_inprocess(args, capfd)
    assert_clean_failure(
        result,
        output=tmp_path / "out",  # not even the folder
        match=f"{content} and two/photo.jpg would both be saved as photo__tiny.png; rename one",
    )


def test_an_interrupted_run_saves_its_checkpoint_even_if_the_image_fails(
    tmp_path, capfd, images, monkeypatch
):
    from tfstyle import Checkpoint
    from tfstyle.io import load_npz

    content, style = images
    replace = os.replace

    def disk_full(source, target, *args, **kwargs):
        if os.path.basename(os.fsdecode(target)) == "out.png":
            raise OSError(errno.ENOSPC, "No space left on device")
        return replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", disk_full)
    _interrupt_at(monkeypatch, 10)
    args = ["--content", content, "--style", style, "--output", "out.png", *FAST, "--iterations=30"]
    result = run_inprocess(args, capfd)
    checkpoint = tmp_path / "out.ckpt.npz"
    assert result.code == 1 and result.lines == [
        f"tfstyle: error: cannot write '{tmp_path / 'out.png'}': No space left on device; "
        f"interrupted after step 10 of 30, the checkpoint was saved to {checkpoint}: continue "
        "with the same command and --resume"
    ], result
    # The checkpoint, written first, holds the image the failed write would have saved.
    assert Checkpoint.from_arrays(load_npz(checkpoint)).step == 10
    assert not (tmp_path / "out.png").exists() and temporary_files(tmp_path) == []
