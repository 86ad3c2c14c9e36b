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
    # Another process compiled the resumed steps than the reference's: one level of 255, not
    # bit equality (two runs of the same path are not promised the same bits).
    levels = np.abs(
        np.asarray(Image.open(tmp_path / "term.png")).astype(int)
        - np.asarray(Image.open(tmp_path / "reference.png"))
    )
    assert levels.max() <= 1, levels.max()
    assert temporary_files(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# A signal at a known point, in this process: the handler only sets a flag, and the command
# stops where it is safe (Ctrl-C raised from a handler lands wherever Python is, inside
# TensorFlow's or the writer's code too).


def _two_images(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("c", "d", "s"):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(
            tmp_path / f"{name}.png"
        )


def _ctrl_c_then(real):
    """`real`, called after a SIGINT to this process has been handled (the handler runs at
    the next bytecode, here inside the sleep)."""

    def wrapper(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        return real(*args, **kwargs)

    return wrapper


def test_ctrl_c_while_the_result_is_written_lets_it_finish(tmp_path, capfd, monkeypatch):
    """Ctrl-C after the last step, while the image and report are written: it was raised
    inside the write, the finished run was lost ("interrupted; nothing was saved", no image,
    no checkpoint). Now both are written whole, and one line says so, with status 0."""
    from tfstyle.io import outputs

    _two_images(tmp_path)
    monkeypatch.setattr(outputs, "save", _ctrl_c_then(outputs.save))
    output = tmp_path / "out.png"
    args = ["--content", tmp_path / "c.png", "--style", tmp_path / "s.png", "--output", output]
    result = run_inprocess(
        [*args, "--weights=none", "--max_size=32", "--iterations=3", "--quiet"], capfd
    )
    assert result.code == 0, result.stderr
    assert result.lines == [f"tfstyle: interrupted while writing {output}: it was written whole"]
    assert load_image(output).shape == (26, 32, 3)  # 32x40 at --max_size 32
    assert json.loads((tmp_path / "out.json").read_text())["steps"] == 3
    assert not (tmp_path / "out.ckpt.npz").exists()
    assert temporary_files(tmp_path) == []


def test_ctrl_c_during_a_step_stops_at_the_end_of_its_compiled_call(tmp_path, capfd, monkeypatch):
    """Ctrl-C while step 3's callbacks run (two steps a compiled call): the run goes on to the
    end of that call (step 4, its snapshot written: raised at once, the interrupt skipped the
    rest of the call's callbacks) and stops there, with the image and a checkpoint of step 4."""
    from tfstyle.io import outputs

    real = outputs.Snapshots.__call__

    def snapshots(self, progress):
        if progress.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        return real(self, progress)

    monkeypatch.setattr(outputs.Snapshots, "__call__", snapshots)
    _two_images(tmp_path)
    output = tmp_path / "out.png"
    args = ["--content", tmp_path / "c.png", "--style", tmp_path / "s.png", "--output", output]
    # --save_every 2: compiled calls of two steps, ending on the snapshots.
    settings = ["--weights=none", "--max_size=32", "--iterations=8", "--save_every=2"]
    result = run_inprocess([*args, *settings, "--quiet"], capfd)
    assert result.code == 130, result.stderr
    checkpoint = Checkpoint.from_arrays(load_npz(tmp_path / "out.ckpt.npz"))
    assert checkpoint.step == 4
    assert result.lines == [
        f"tfstyle: interrupted after step 4 of 8; saved the current image to {output} and a "
        f"checkpoint to {tmp_path / 'out.ckpt.npz'}; continue with the same command and --resume"
    ]
    assert sorted(p.name for p in tmp_path.glob("out_step*.png")) == [
        "out_step00002.png",
        "out_step00004.png",
    ]
    saved = load_image(output)
    assert np.abs(saved - checkpoint.image).max() <= 0.5 / 255 + 1e-6


def test_ctrl_c_while_a_batch_output_is_written_keeps_it_and_stops(tmp_path, capfd, monkeypatch):
    """Ctrl-C while the first of two outputs is written: it was raised inside the write (the
    finished output lost, "nothing was saved"). Now that output and its report are written
    whole, the batch stops before the next one, and the same command goes on from there."""
    from tfstyle.io import outputs

    _two_images(tmp_path)
    real = outputs.save
    monkeypatch.setattr(outputs, "save", _ctrl_c_then(real))
    folder = tmp_path / "out"
    contents = f"{tmp_path / 'c.png'},{tmp_path / 'd.png'}"
    args = ["--content", contents, "--style", tmp_path / "s.png"]
    command = [*args, "--output_dir", folder, "--weights=none", "--max_size=32", "--iterations=2"]
    result = run_inprocess([*command, "--quiet"], capfd)
    assert result.code == 130, result.stderr
    assert result.lines == [
        "tfstyle: interrupted after c__s.png; the 1 finished outputs are kept: rerun the same "
        "command to continue"
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["c__s.json", "c__s.png"]
    monkeypatch.setattr(outputs, "save", real)
    again = run_inprocess([*command, "--quiet"], capfd)
    assert again.code == 0, again.stderr
    assert sorted(p.name for p in folder.iterdir()) == [
        "c__s.json", "c__s.png", "d__s.json", "d__s.png"
    ]  # fmt: skip


def test_ctrl_c_while_a_model_output_is_written_keeps_it_and_stops(tmp_path, capfd, monkeypatch):
    """`--model --output_dir`: Ctrl-C while the first of two photos is written. It was raised
    inside the write or the network's call, and the command said "nothing was saved" over the
    outputs it had written. Now that output is written whole and the command stops before the
    next; with one photo left to write, it finishes and says so."""
    import tfstyle.io
    from tfstyle.models.transformer import build_stylizer

    _two_images(tmp_path)
    build_stylizer(width=4, residual_blocks=1).save(tmp_path / "tiny.keras")
    real = tfstyle.io.save_image
    monkeypatch.setattr(tfstyle.io, "save_image", _ctrl_c_then(real))
    folder = tmp_path / "out"
    contents = f"{tmp_path / 'c.png'},{tmp_path / 'd.png'}"
    command = ["--model", tmp_path / "tiny.keras", "--content", contents, "--output_dir", folder]
    result = run_inprocess([*command, "--quiet"], capfd)
    assert result.code == 130, result.stderr
    assert result.lines == [
        "tfstyle: interrupted after c__tiny.png; the 1 finished outputs are kept: rerun the "
        "same command to continue"
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["c__tiny.png"]
    again = run_inprocess([*command, "--quiet"], capfd)  # only d.png is left: written whole
    assert again.code == 0, again.stderr
    assert again.lines == [
        f"tfstyle: interrupted while writing {folder / 'd__tiny.png'}: it was written whole"
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["c__tiny.png", "d__tiny.png"]
