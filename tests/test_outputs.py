"""Tests of `tfstyle.io.outputs`: the JSON report, side-file names and checks, snapshots and side
outputs, as a Python user gets them (the CLI tests check the same files through the command)."""

import json
import os

import keras
import numpy as np
import pytest

import tfstyle
from tfstyle import OutputError, StyleConfig, TfstyleError, stylize
from tfstyle.integrations.callbacks import SideOutput
from tfstyle.io import load_image, outputs, save_image

REPORT_KEYS = [
    "version",
    "backend",
    "content",
    "style",
    "output",
    "size",
    "settings",
    "steps",
    "evaluations",
    "elapsed_s",
    "final_losses",
    "tiles",
    "tiling",
    "peak_memory_mb",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 4-step run with snapshots every 2 steps, saved by `outputs.save`."""
    folder = tmp_path_factory.mktemp("run")
    y, x = np.mgrid[0:24, 0:32] / 32.0
    content = np.stack([x, y, 1 - x], axis=-1).astype(np.float32)
    style = np.tile(np.linspace(0, 1, 16, dtype=np.float32)[:, None, None], (1, 16, 3))
    save_image(content, folder / "photo.png")
    save_image(style, folder / "art.png")
    output = str(folder / "made" / "out.png")  # a folder still to be made
    config = StyleConfig(weights=None, max_size=32, iterations=4, steps_per_call=2, scales=1)
    result = stylize(content, style, config=config, callbacks=[outputs.Snapshots(output, 2)])
    report = outputs.save(
        result, output=output, content=folder / "photo.png", styles=[folder / "art.png"]
    )
    return folder, output, result, report


def test_report_has_the_documented_keys_and_values(run):
    folder, output, result, report = run
    assert list(report) == REPORT_KEYS
    assert report["tiles"] == 1 and report["tiling"] == "none"  # untiled
    # This process's peak: at least its TensorFlow and VGG, well under the machine.
    assert 100 < report["peak_memory_mb"] < 64 * 1024
    assert report["version"] == tfstyle.__version__
    assert report["backend"] == keras.backend.backend()
    assert report["content"] == str(folder / "photo.png")
    assert report["style"] == [str(folder / "art.png")]
    assert report["output"] == output and report["size"] == [24, 32]
    assert report["settings"]["iterations"] == 4 and report["settings"]["weights"] is None
    assert report["steps"] == 4 == len(result.history["total"])
    assert report["final_losses"] == result.final_losses()
    # What save() wrote is the same report, beside the image.
    with open(folder / "made" / "out.json", encoding="utf-8") as file:
        assert json.load(file) == report
    np.testing.assert_array_equal(
        load_image(output), np.rint(np.clip(result.image, 0, 1) * 255) / 255
    )


def test_report_of_arrays_names_no_files(run):
    _, output, result, _ = run
    report = outputs.report(result, output=output)
    assert report["content"] is None and report["style"] == []


def test_snapshots_are_named_by_step(run):
    folder, *_ = run
    names = sorted(n for n in os.listdir(folder / "made") if "_step" in n)
    assert names == ["out_step00002.png", "out_step00004.png"]


def test_side_file_names():
    assert outputs.report_path("/a/out.png") == "/a/out.json"
    assert outputs.checkpoint_path("/a/out.jpg") == "/a/out.ckpt.npz"
    assert outputs.plot_path("/a/out.png") == "/a/out_losses.png"
    assert outputs.snapshot_path("/a/out.jpg", 7) == "/a/out_step00007.jpg"
    assert outputs.history_path("/a/out.png", ".csv") == "/a/out_history.csv"
    files = outputs.side_files("/a/o.png", steps=123, plot=True, every=5)
    assert files == ["/a/o.json", "/a/o.ckpt.npz", "/a/o_losses.png", "/a/o_step00123.png"]
    batch = outputs.side_files("/a/o.png", steps=9, checkpoint=False, history_extension=".json")
    assert batch == ["/a/o.json", "/a/o_history.json"]


def test_side_files_never_overwrite_inputs(tmp_path):
    output = str(tmp_path / "out.png")
    for name in ("out.json", "out.ckpt.npz", "out_losses.png", "out_step00010.png"):
        source = tmp_path / name
        source.write_bytes(b"x")
        with pytest.raises(OutputError, match="refusing to overwrite input"):
            outputs.check_side_files(output, inputs=[source], plot=True, every=10)
        source.unlink()
    outputs.check_side_files(output, inputs=[], plot=True, every=10, history=tmp_path / "h.csv")
    with pytest.raises(OutputError, match="would overwrite the run's report"):
        outputs.check_side_files(output, inputs=[], history=tmp_path / "out.json")
    with pytest.raises(OutputError, match=r"\.json or \.csv"):
        outputs.check_side_files(output, inputs=[], history=tmp_path / "h.txt")


class _Result:
    """Enough of a StyleResult for `save`."""

    def __init__(self, image):
        self.image = image
        self.config = StyleConfig(weights=None)
        self.history = {"total": [1.0]}
        self.evaluations = 1
        self.elapsed_s = 0.5

    def final_losses(self):
        return {"total": 1.0}


def test_failing_side_output_keeps_the_image(tmp_path):
    def disk_full():
        raise OutputError("disk full")

    side = SideOutput(str(tmp_path / "logs"), disk_full)
    side(None)  # the run goes on
    assert isinstance(side.error, OutputError) and os.path.isdir(tmp_path / "logs")
    output = str(tmp_path / "out.png")
    with pytest.raises(TfstyleError, match=r"disk full; the image was saved to .*out\.png"):
        outputs.save(_Result(np.zeros((2, 3, 3), np.float32)), output=output, side_outputs=[side])
    assert load_image(output).shape == (2, 3, 3) and os.path.isfile(tmp_path / "out.json")


def test_save_removes_the_finished_runs_checkpoint(tmp_path):
    output = str(tmp_path / "out.png")
    (tmp_path / "out.ckpt.npz").write_bytes(b"old")
    outputs.save(_Result(np.zeros((2, 2, 3), np.float32)), output=output)
    assert os.path.exists(tmp_path / "out.ckpt.npz")
    outputs.save(_Result(np.zeros((2, 2, 3), np.float32)), output=output, remove_checkpoint=True)
    assert not os.path.exists(tmp_path / "out.ckpt.npz")
