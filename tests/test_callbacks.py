"""Callbacks: TensorBoard event files read back, JSON/CSV histories, loss plots; their CLI flags."""

import csv
import glob
import json
import os
from pathlib import Path

import numpy as np
import pytest
from cli_runner import TINY, run_cli
from PIL import Image

from tfstyle import OutputError, stylize
from tfstyle.integrations.callbacks import HistoryLogger, LossPlot, TensorBoard, plot_losses
from tfstyle.io import load_image, save_image

pytest.importorskip("tensorboard", reason="TensorBoard logging needs the tensorboard package")


def _events(logdir):
    """`{tag: [(step, value or image tensor)]}` from the event files under `logdir`."""
    import tensorflow as tf

    found = {}
    for path in sorted(
        glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True)
    ):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, tf.make_ndarray(value.tensor)))
    return found


@pytest.fixture
def run(content_image, style_image, tiny_config):
    """Stylize 7 steps, 2 per call (images at steps 2, 4, 6, 7) with the given callbacks."""

    def go(*callbacks):
        config = tiny_config.replace(iterations=7, steps_per_call=2, init="noise")
        return stylize(content_image, style_image, config=config, callbacks=list(callbacks))

    return go


def test_tensorboard_scalars_and_images(run, tmp_path):
    logdir = tmp_path / "tb"
    board = TensorBoard(logdir, image_every=3)
    result = run(board)
    board.close()
    events = _events(str(logdir))
    for name in ("content", "style", "tv", "total"):
        steps, values = zip(*events[f"loss/{name}"], strict=True)
        assert steps == tuple(range(1, 8))
        np.testing.assert_allclose(values, result.history[name], rtol=1e-6)
    elapsed = [float(v) for _, v in events["time/elapsed_s"]]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    # First image on or after steps 3 and 6, then the last one.
    assert [step for step, _ in events["image"]] == [4, 6, 7]
    width, height, png = events["image"][-1][1]
    assert (int(width), int(height)) == (56, 40) and png.startswith(b"\x89PNG")


def test_history_loggers_and_loss_plot(run, tmp_path):
    as_json, as_csv = HistoryLogger(tmp_path / "h.json"), HistoryLogger(tmp_path / "h.csv")
    seen = []

    def look(progress):
        if progress.step == 5:
            seen.extend(json.loads((tmp_path / "h.json").read_text()))

    result = run(as_json, as_csv, LossPlot(tmp_path / "curve.png"), look)
    # The file is rewritten as the run goes: at step 5 it holds steps 1-4 (the last image).
    assert [row["step"] for row in seen] == [1, 2, 3, 4]
    rows = json.loads((tmp_path / "h.json").read_text())
    assert [row["step"] for row in rows] == list(range(1, 8))
    assert rows[0]["total_steps"] == 7 and (rows[0]["height"], rows[0]["width"]) == (40, 56)
    np.testing.assert_allclose([row["total"] for row in rows], result.history["total"], rtol=1e-6)
    with open(tmp_path / "h.csv", newline="") as file:
        table = list(csv.DictReader(file))
    assert list(table[0]) == [
        "step", "total_steps", "scale", "height", "width", "elapsed_s",
        "content", "style", "tv", "total",
    ]  # fmt: skip
    assert [int(row["step"]) for row in table] == list(range(1, 8))
    np.testing.assert_allclose(
        [float(row["style"]) for row in table], result.history["style"], rtol=1e-6
    )
    data = (tmp_path / "curve.png").read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000
    with Image.open(tmp_path / "curve.png") as im:
        assert im.size == (700, 400)
        # Not a blank canvas: the curves and labels put many colours on it.
        assert len(im.convert("RGB").getcolors(maxcolors=100_000)) > 20
    path = plot_losses({"total": [3.0, 2.0, 1.0], "content": [0.0, 0.5, 0.4]}, tmp_path / "p.png")
    assert os.path.getsize(path) > 1000


@pytest.mark.parametrize("name", ["h.txt", "h"])
def test_bad_history_extension(tmp_path, name):
    with pytest.raises(OutputError, match=r"\.json or \.csv"):
        HistoryLogger(tmp_path / name)
    with pytest.raises(OutputError, match="does not exist"):
        HistoryLogger(tmp_path / "missing" / "h.json")


@pytest.fixture
def files(tmp_path, content_image, style_image):
    save_image(content_image, tmp_path / "c.png")
    save_image(style_image, tmp_path / "s.png")
    return tmp_path


def test_cli_logging_flags(files, capsys):
    out = files / "out.png"
    status = run_cli(
        "--content", files / "c.png", "--style", files / "s.png", "--output", out, *TINY,
        "--history", files / "h.csv", "--tensorboard_dir", files / "tb", "--plot_losses",
        "--quiet",
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    with open(files / "h.csv", newline="") as file:
        assert [int(row["step"]) for row in csv.DictReader(file)] == [1, 2]
    report = json.loads((files / "out.json").read_text())
    events = _events(str(files / "tb"))
    assert [step for step, _ in events["loss/total"]] == [1, 2]
    assert float(events["loss/total"][-1][1]) == pytest.approx(
        report["final_losses"]["total"], rel=1e-6
    )
    assert [step for step, _ in events["image"]] == [2]
    assert (files / "out_losses.png").read_bytes().startswith(b"\x89PNG")


def test_cli_bad_history_is_one_line_before_any_work(files, capsys):
    status = run_cli(
        "--content", files / "c.png", "--style", files / "s.png", "--output", files / "o.png",
        *TINY, "--history", files / "h.txt", "--quiet",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and err.startswith("tfstyle: error: ")
    assert ".json or .csv" in err and not (files / "o.png").exists()


def test_history_logger_starts_with_a_resumed_runs_earlier_steps(tmp_path):
    import json

    from tfstyle.integrations.callbacks import HistoryLogger
    from tfstyle.optimize.progress import Progress

    previous = {"content": [0.5, 0.4], "style": [2.0, 1.0], "tv": [0.1, 0.1], "total": [3, 2]}
    logger = HistoryLogger(tmp_path / "h.json", previous=previous)
    losses = {"content": 0.3, "style": 0.5, "tv": 0.1, "total": 1.5}
    logger(Progress(step=3, total_steps=3, scale=0, size=(8, 8), losses=losses, elapsed_s=1.0))
    rows = json.loads((tmp_path / "h.json").read_text())
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert [row["style"] for row in rows] == [2.0, 1.0, 0.5]


def test_cli_refused_run_leaves_no_tensorboard_dir(files, capsys):
    # A 1x1 content image is refused by stylize() (too small for the layers), in one run and
    # in a batch: the log folders must not exist afterwards.
    save_image(np.zeros((1, 1, 3), np.float32), files / "dot.png")
    common = ["--content", files / "dot.png", "--style", files / "s.png", *TINY, "--quiet"]
    status = run_cli(*common, "--output", files / "o.png", "--tensorboard_dir", files / "tb")
    assert status == 1 and "too small" in capsys.readouterr().err
    status = run_cli(*common, "--output_dir", files / "out", "--tensorboard_dir", files / "tb2")
    assert status == 1 and "too small" in capsys.readouterr().err
    assert not (files / "tb").exists() and not (files / "tb2").exists()


def test_cli_tensorboard_dir_that_cannot_be_made_is_one_line_before_any_work(files, capsys):
    status = run_cli(
        "--content", files / "c.png", "--style", files / "s.png", "--output", files / "o.png",
        *TINY, "--tensorboard_dir", files / "c.png" / "tb", "--quiet",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and "c.png' is not a directory" in err, err
    assert not (files / "o.png").exists()


def test_cli_missing_tensorboard_is_one_line_before_any_work(files, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` fails
    status = run_cli(
        "--content", files / "missing.png", "--style", files / "s.png", "--output",
        files / "o.png", *TINY, "--tensorboard_dir", files / "tb", "--quiet",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1, err
    assert "--tensorboard_dir needs the tensorboard package" in err and "pip install" in err


def test_cli_missing_matplotlib_is_one_line_before_any_work(files, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    status = run_cli(
        "--content", files / "missing.png", "--style", files / "s.png", "--output",
        files / "o.png", *TINY, "--plot_losses", "--quiet",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1, err
    assert "--plot_losses needs the matplotlib package" in err and "pip install" in err


@pytest.mark.parametrize("batch", [False, True])
def test_cli_failing_side_output_keeps_the_image(files, capsys, monkeypatch, batch):
    import tfstyle.integrations.callbacks

    def disk_full(history, *, steps=None):
        raise OutputError("cannot write 'out_losses.png': No space left on device")

    monkeypatch.setattr(tfstyle.integrations.callbacks, "render_loss_plot", disk_full)
    where = ("--output_dir", files / "out") if batch else ("--output", files / "out" / "c.png")
    status = run_cli(
        "--content", files / "c.png", "--style", files / "s.png", *where, *TINY,
        "--plot_losses", "--history", files / "h.json", "--quiet",
    )  # fmt: skip
    lines = capsys.readouterr().err.splitlines()
    assert status == 1 and "No space left on device" in lines[0], lines
    stem = files / "out" / ("c__s" if batch else "c")
    assert load_image(f"{stem}.png").shape[2] == 3
    assert json.loads(Path(f"{stem}.json").read_text())["steps"] == 2
    history = Path(f"{stem}_history.json") if batch else files / "h.json"
    assert len(json.loads(history.read_text())) == 2  # the other side output is complete
    if not batch:
        assert lines == [
            "tfstyle: error: cannot write 'out_losses.png': No space left on device; the image "
            f"was saved to {stem}.png"
        ]


def test_cli_side_output_bug_still_saves_the_image_first(files, capsys, monkeypatch):
    import tfstyle.integrations.callbacks

    def bug(history, *, steps=None):
        raise RuntimeError("a bug in the plot")

    monkeypatch.setattr(tfstyle.integrations.callbacks, "render_loss_plot", bug)
    with pytest.raises(RuntimeError, match="a bug in the plot"):  # a bug keeps its traceback
        run_cli(
            "--content", files / "c.png", "--style", files / "s.png", "--output", files / "o.png",
            *TINY, "--plot_losses", "--quiet",
        )  # fmt: skip
    assert (files / "o.png").is_file() and (files / "o.json").is_file()
