"""Kill a real `tfstyle` process mid-run, resume it, and get the uninterrupted result.

Two processes start side by side: one gets SIGINT (Ctrl-C), one SIGTERM, each once its first
--save_every snapshot exists. Meanwhile the same command runs uninterrupted in this process, as
the reference. The SIGINT run is then resumed with --resume (in this process: the checkpoint
comes from disk either way) and must give the reference's image.
"""

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from cli_runner import finish, run_inprocess, start, temporary_files
from PIL import Image

from tfstyle import Checkpoint
from tfstyle.io import load_image, load_npz

ITERATIONS = 300
# Shallow layers and Adam with an EMA: quick steps, and optimizer state that must come back.
RUN = (
    # Subprocess and in-process runs are compared, and conftest's float32 for precision="auto"
    # reaches only this process: on a CPU with AVX-512 BF16 the subprocesses would run bfloat16.
    "--precision=float32",
    "--network=vgg16",
    "--max_size=32",
    f"--iterations={ITERATIONS}",
    "--save_every=10",
    "--optimizer=adam",
    "--average=ema",
    "--init=noise",
    "--content_layers=block2_conv2",
    "--style_layers=block1_conv1,block2_conv1",
    "--quiet",
)


def _signal_when_exists(process, path, signum, timeout=120):
    """Send `signum` to `process` as soon as `path` exists (from a thread)."""

    def watch():
        deadline = time.monotonic() + timeout
        while not os.path.exists(path) and process.poll() is None:
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        if process.poll() is None:
            process.send_signal(signum)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "c.png")
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(tmp_path / "s.png")

    # Random weights, but the same in every process (weights=None draws new ones in each).
    import keras

    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    base.save_weights(tmp_path / "random.weights.h5")

    def command(output, *extra):
        files = ["--content=c.png", "--style=s.png", f"--output={output}"]
        return [*files, "--weights=random.weights.h5", *RUN, *extra]

    runs = {}
    for name, signum in (("int", signal.SIGINT), ("term", signal.SIGTERM)):
        process = start(command(f"{name}.png"), cwd=tmp_path)
        watcher = _signal_when_exists(process, tmp_path / f"{name}_step00010.png", signum)
        runs[name] = (process, watcher)
    reference = run_inprocess(command(tmp_path / "reference.png"), capfd)
    assert reference.code == 0, reference
    results = {name: finish(process) for name, (process, _) in runs.items()}

    for name, status in (("int", 130), ("term", 143)):
        result = results[name]
        assert result.code == status, result
        checkpoint = Checkpoint.from_arrays(load_npz(tmp_path / f"{name}.ckpt.npz"))
        assert 10 <= checkpoint.step < ITERATIONS and checkpoint.step % 10 == 0
        assert result.lines == [
            f"tfstyle: interrupted after step {checkpoint.step} of {ITERATIONS}; saved the "
            f"current image to {tmp_path / name}.png and a checkpoint to "
            f"{tmp_path / name}.ckpt.npz; continue with the same command and --resume"
        ]
        # The saved image is the checkpoint's (the EMA image), as 8 bits.
        saved = load_image(tmp_path / f"{name}.png")
        assert np.abs(saved - checkpoint.image).max() <= 0.5 / 255 + 1e-6
        assert not (tmp_path / f"{name}.json").exists()  # the report is for finished runs
    assert temporary_files(tmp_path) == []
    # The SIGTERM run resumes in a fresh process, where `--resume` is what first imports
    # TensorFlow: its C++ start-up lines must be filtered there as on any other run.
    term_resumed = start(command("term.png", "--resume"), cwd=tmp_path)

    # Without --resume the checkpoint is not silently discarded; with other settings it is
    # refused before any work.
    refused = run_inprocess(command("int.png"), capfd)
    assert refused.code == 1 and refused.lines == [
        f"tfstyle: error: {tmp_path}/int.ckpt.npz holds an interrupted run of this output; "
        "continue it with --resume, or delete it to start again"
    ]
    other = run_inprocess(command("int.png", "--resume", "--seed=3"), capfd)
    assert other.code == 1 and len(other.lines) == 1
    assert (
        "cannot resume: the checkpoint was made with other settings (seed 0 there, 3 now)"
        in (other.lines[0])
    )

    resumed = run_inprocess(command("int.png", "--resume"), capfd)
    assert resumed.code == 0 and resumed.stderr == "", resumed
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "int.png")),
        np.asarray(Image.open(tmp_path / "reference.png")),
    )
    assert not (tmp_path / "int.ckpt.npz").exists()  # done: the checkpoint is removed
    report = json.loads((tmp_path / "int.json").read_text())
    assert report["steps"] == ITERATIONS
    reference_report = json.loads((tmp_path / "reference.json").read_text())
    assert report["final_losses"] == pytest.approx(reference_report["final_losses"], rel=1e-5)

    term_resumed = finish(term_resumed)
    assert term_resumed.code == 0 and term_resumed.stderr == "", term_resumed
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "term.png")),
        np.asarray(Image.open(tmp_path / "reference.png")),
    )
    assert temporary_files(tmp_path) == []
