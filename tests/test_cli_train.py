"""`tfstyle train` and `tfstyle --model`: train a tiny stylizer through the CLI, apply it, and
the one-line refusals of bad command lines (in-process runs, random VGG weights)."""

import json
import os
import signal
import threading
import time

import keras
import numpy as np
import pytest
from cli_runner import ROOT, assert_clean_failure, finish, run_inprocess, start

from tfstyle import io as image_io

# `train` exports a SavedModel, a TensorFlow graph: under KERAS_BACKEND=jax it is refused before
# any work (test_train_and_export_model_refuse_the_jax_backend_before_any_work, which runs on
# both), so the tests that train run on TensorFlow only.
TRAINS = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="train runs on the TensorFlow backend only (its model is a SavedModel)",
)

STYLE = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "examples", "images", "style_the_scream.jpg"
)
# Random VGG16 weights, shallow loss layers, a 4-channel network on 32 px crops.
TINY = (
    # Subprocess and in-process trainings are compared, and conftest's float32 for
    # precision="auto" reaches only this process: on a CPU with AVX-512 BF16 the subprocesses
    # would train in bfloat16.
    "--precision=float32",
    "--network=vgg16",
    "--weights=none",
    "--size=32",
    "--style_size=32",
    "--width=4",
    "--residual_blocks=1",
    "--batch_size=2",
    "--content_layers=block2_conv2",
    "--style_layers=block1_conv2,block2_conv2",
    "--quiet",
)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        image_io.save_image(rng.random((40, 48, 3)).astype("float32"), folder / f"p{i}.png")
    return folder


def _train(tmp_path, photos, capfd, *extra):
    output = tmp_path / "models" / "tiny" / "1"
    args = ["train", f"--style={STYLE}", f"--content_dir={photos}", f"--output={output}", *TINY]
    return output, run_inprocess([*args, *extra], capfd)


@TRAINS
def test_train_writes_the_model_and_report_then_paints(tmp_path, photos, capfd):
    (photos / "broken.jpg").write_bytes(b"junk")
    output, result = _train(tmp_path, photos, capfd, "--steps=3", "--preview_every=2")
    assert result.code == 0, result.stderr
    assert sorted(os.listdir(output)) == [
        "assets",
        "fingerprint.pb",
        "saved_model.pb",
        "stylizer.keras",
        "training.json",
        "variables",
    ]
    report = json.loads((output / "training.json").read_text())
    assert report["steps"] == 3 and len(report["losses"]["history"]) == 3
    assert report["settings"]["width"] == 4
    assert [os.path.basename(s["path"]) for s in report["skipped"]] == ["broken.jpg"]
    assert os.listdir(f"{output}.previews") == ["step_000002.png"]
    assert not os.path.exists(f"{output}.ckpt.npz")  # removed once the model is written
    painted = tmp_path / "painted"
    result = run_inprocess(
        ["--model", output, "--content", photos, "--output_dir", painted, "--quiet"], capfd
    )
    # broken.jpg is reported and the others painted, each at its own size.
    assert result.code == 1 and "1 of 4 photos could not be read" in result.stderr
    assert sorted(os.listdir(painted)) == ["p0__tiny.png", "p1__tiny.png", "p2__tiny.png"]
    assert image_io.load_image(painted / "p0__tiny.png").shape == (40, 48, 3)


@TRAINS
@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--steps=0"], "steps"),
        (["--width=0"], "width"),
        (["--iterations=5"], "train takes no --iterations"),
        (["--style_layers=block9_conv1"], "unknown vgg16 layer"),
        (["--resume"], "no checkpoint"),
    ],
)
def test_bad_train_command_lines_get_one_line(tmp_path, photos, capfd, args, match):
    output, result = _train(tmp_path, photos, capfd, *args)
    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.lines[-1].startswith("tfstyle: error: ") and match in result.lines[-1]
    assert not os.path.exists(output)


@TRAINS
def test_bad_training_folders_get_one_line(tmp_path, capfd):
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, match in ((tmp_path / "missing", "does not exist"), (empty, "no image files")):
        output, result = _train(tmp_path, folder, capfd)
        assert result.code == 1 and "Traceback" not in result.stderr
        assert result.lines == [result.lines[0]] and match in result.lines[0], result.stderr
        assert not os.path.exists(output.parent)  # nothing made before the refusal


@TRAINS
def test_a_truncated_first_photo_is_skipped_before_training(tmp_path, photos, capfd):
    # A JPEG cut after its header: PIL's verify() accepts it, tf.io.decode_image does not (it
    # was a 35-line TensorFlow traceback from inside tf.data, and an empty previews folder).
    rng = np.random.default_rng(1)
    whole = tmp_path / "whole.jpg"
    image_io.save_image(rng.random((40, 48, 3)).astype("float32"), whole)
    data = whole.read_bytes()
    (photos / "a_truncated.jpg").write_bytes(data[: len(data) // 2])
    output, result = _train(tmp_path, photos, capfd, "--steps=2", "--preview_every=0")
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads((output / "training.json").read_text())
    assert [(os.path.basename(s["path"]), s["reason"]) for s in report["skipped"]] == [
        ("a_truncated.jpg", "truncated (a JPEG without its end marker)")
    ]
    assert report["steps"] == 2
    assert not os.path.exists(f"{output}.previews")


def test_a_missing_model_gets_one_line(tmp_path, photos, capfd):
    output = tmp_path / "out.png"
    result = run_inprocess(
        ["--model", tmp_path / "nothing", "--content", photos / "p0.png", "--output", output],
        capfd,
    )
    assert_clean_failure(result, output=output, match="no stylizer at")
    result = run_inprocess(
        ["--model", tmp_path, "--style", STYLE, "--content", photos / "p0.png", "--output", output],
        capfd,
    )
    assert_clean_failure(result, output=output, match="takes no --style")
    result = run_inprocess(
        ["--style", STYLE, "--content", photos / "p0.png", "--output", output, "--tile_size=40"],
        capfd,
    )
    # Without --model, --tile_size tiles the optimisation's step: on VGG's pooling grid.
    assert_clean_failure(result, output=output, match="tile_size must be a multiple of 16")


@TRAINS
def test_a_killed_training_resumes_to_the_uninterrupted_losses(tmp_path, photos, capfd):
    """SIGTERM once the first checkpoint exists; --resume then finishes with the same losses
    as an uninterrupted run of the same command."""
    steps = ["--steps=40", "--checkpoint_every=2"]
    output = tmp_path / "killed" / "1"
    args = ["train", f"--style={STYLE}", f"--content_dir={photos}", f"--output={output}", *TINY]
    process = start([*args, *steps])
    checkpoint = f"{output}.ckpt.npz"

    def kill_when_checkpointed():
        deadline = time.monotonic() + 240
        while not os.path.exists(checkpoint) and process.poll() is None:
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)

    threading.Thread(target=kill_when_checkpointed, daemon=True).start()
    killed = finish(process)
    assert killed.code == 128 + signal.SIGTERM, killed.stderr
    assert "continue with --resume" in killed.stderr
    # Only tfstyle's own lines: TensorFlow's start-up logging is filtered out.
    assert all(line.startswith("tfstyle: ") for line in killed.lines), killed.stderr
    assert os.path.exists(checkpoint) and not os.path.exists(output)
    resumed = run_inprocess([*args, *steps, "--resume"], capfd)
    assert resumed.code == 0, resumed.stderr
    reference, result = _train(tmp_path, photos, capfd, *steps)
    assert result.code == 0, result.stderr
    ours = json.loads((output / "training.json").read_text())["losses"]["history"]
    theirs = json.loads((reference / "training.json").read_text())["losses"]["history"]
    done = [i for i, v in enumerate(ours) if not np.isnan(v)]
    assert len(ours) == 40 and len(done) >= 38  # at most the interrupted step's loss is unknown
    np.testing.assert_allclose(np.array(ours)[done], np.array(theirs)[done], rtol=1e-4)


@TRAINS
def test_a_training_whose_export_failed_is_exported_by_resume(tmp_path, photos, capfd, monkeypatch):
    """Every step done, then the export failed (a full disk): the checkpoint of the last step
    stays, and --resume writes the model from it without training again."""
    from tfstyle.errors import OutputError
    from tfstyle.export import stylizer

    def full_disk(*args, **kwargs):
        raise OutputError("cannot write the model: no space left on device")

    real = stylizer.export_stylizer
    monkeypatch.setattr(stylizer, "export_stylizer", full_disk)
    output, result = _train(tmp_path, photos, capfd, "--steps=3", "--checkpoint_every=2")
    assert result.code == 1 and "no space left" in result.stderr
    assert os.path.exists(f"{output}.ckpt.npz") and not os.path.exists(output)
    monkeypatch.setattr(stylizer, "export_stylizer", real)
    output, result = _train(
        tmp_path, photos, capfd, "--steps=3", "--checkpoint_every=2", "--resume"
    )
    assert result.code == 0, result.stderr
    report = json.loads((output / "training.json").read_text())
    assert report["steps"] == 3 and len(report["losses"]["history"]) == 3
    assert not os.path.exists(f"{output}.ckpt.npz")
    # The training time is the first run's (its three steps), not only the export's.
    assert report["seconds"] > report["this_run_seconds"] + 0.5


@TRAINS
def test_an_interrupt_while_the_model_is_written_waits_for_it(tmp_path, photos, capfd, monkeypatch):
    """Ctrl-C landing in the export: it was raised inside TensorFlow's saving code ("Exception
    ignored ... SignalInterrupt", exit 0, or the export lost). Now the model is written whole,
    the checkpoint removed, and one line says what happened."""
    import signal

    from tfstyle.export import stylizer

    real = stylizer.export_stylizer

    def interrupted_export(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)  # the handler runs here, in the middle of the export
        return real(*args, **kwargs)

    monkeypatch.setattr(stylizer, "export_stylizer", interrupted_export)
    output, result = _train(tmp_path, photos, capfd, "--steps=1")
    assert result.code == 0, result.stderr
    assert result.lines == [f"tfstyle: interrupted while writing {output}: it was written whole"]
    assert json.loads((output / "training.json").read_text())["steps"] == 1
    assert not os.path.exists(f"{output}.ckpt.npz")


def test_a_photo_too_small_for_the_stylizer_gets_one_line(tmp_path, capfd):
    # The shipped stylizer (the network's padding is the same at any width): a 1x1 photo was a
    # 36-line MirrorPad traceback; 4 px is the largest side the network cannot take.
    model = os.path.join(
        os.path.dirname(os.path.dirname(__file__)), "saved_models", "starry_night", "1"
    )
    photos = tmp_path / "photos"
    photos.mkdir()
    image_io.save_image(np.full((1, 1, 3), 0.5, "float32"), photos / "dot.png")
    image_io.save_image(np.full((4, 9, 3), 0.5, "float32"), photos / "thin.png")
    image_io.save_image(np.full((5, 9, 3), 0.5, "float32"), photos / "fine.png")
    output = tmp_path / "dot_out.png"
    result = run_inprocess(
        ["--model", model, "--content", photos / "dot.png", "--output", output], capfd
    )
    assert_clean_failure(result, output=output, match="1x1 px image is too small for a stylizer")
    painted = tmp_path / "painted"
    result = run_inprocess(
        ["--model", model, "--content", photos, "--output_dir", painted, "--quiet"], capfd
    )
    assert result.code == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.lines == [
        "tfstyle: error: a 1x1 px image is too small for a stylizer: it needs at least 5 px on "
        "each side",
        "tfstyle: error: a 9x4 px image is too small for a stylizer: it needs at least 5 px on "
        "each side",
        "tfstyle: error: 2 of 3 photos could not be read or painted",
    ]
    assert os.listdir(painted) == ["fine__starry_night.png"]


def test_train_and_export_model_refuse_the_jax_backend_before_any_work(tmp_path, photos):
    # A SavedModel is a TensorFlow graph: on JAX, training ran to its end and then failed to
    # export with a traceback (and --resume repeated it).
    pytest.importorskip("jax")
    output = tmp_path / "models" / "tiny" / "1"
    model = os.path.join(ROOT, "saved_models", "starry_night", "1")
    tflite = tmp_path / "small.tflite"
    train = ["train", f"--style={STYLE}", f"--content_dir={photos}", f"--output={output}", *TINY]
    export = ["export", "--model", model, "--tflite_size=32", "--output", tflite]
    processes = [start(args, env={"KERAS_BACKEND": "jax"}) for args in (train, export)]
    whats = ("train (its model is exported as a SavedModel)", "export --model")
    for process, what in zip(processes, whats, strict=True):
        result = finish(process)
        assert result.code == 1, result.stderr
        assert result.lines == [
            f"tfstyle: error: {what} needs the TensorFlow backend (a SavedModel is a TensorFlow "
            "graph); this is KERAS_BACKEND=jax: run it with KERAS_BACKEND=tensorflow"
        ], result.stderr
    assert os.listdir(tmp_path) == ["photos"]  # no folder, checkpoint, previews or file


def test_image_runs_refuse_training_flags(tmp_path, photos, capfd):
    output = tmp_path / "out.png"
    image = ["--style", STYLE, "--content", photos / "p0.png", "--output", output]
    for extra in (["--steps=5"], ["--content_dir", photos]):
        result = run_inprocess([*image, *extra], capfd)
        name = extra[0].split("=")[0]
        assert_clean_failure(result, output=output, match=f"{name} is for training a stylizer")
    # --model paints one by one without --runner: --batch_size is for its Beam batches only.
    painted = ["--model", tmp_path, "--content", photos / "p0.png", "--output", output]
    result = run_inprocess([*painted, "--batch_size=2"], capfd)
    assert_clean_failure(result, output=output, match="--batch_size is for training a stylizer")
    assert "or for the batches of --model --runner" in result.stderr


def test_other_commands_refuse_training_flags_and_tflite_size(tmp_path, photos, capfd):
    output = tmp_path / "out.mp4"
    video = ["video", "--content", photos, "--style", STYLE, "--output", output]
    result = run_inprocess([*video, "--steps=5"], capfd)
    assert_clean_failure(result, output=output, match="--steps is for training a stylizer")
    result = run_inprocess([*video, "--tflite_size=64"], capfd)
    assert_clean_failure(result, output=output, match="--tflite_size is for tfstyle export")
    painted = ["--model", tmp_path, "--content", photos / "p0.png", "--output", output]
    result = run_inprocess([*painted, "--tflite_size=64"], capfd)
    assert_clean_failure(result, output=output, match="--tflite_size is for tfstyle export")


@TRAINS
def test_resume_with_another_style_or_photos_is_one_line(tmp_path, photos, capfd, monkeypatch):
    """The checkpoint records digests of the style image and the photos: the same flags naming
    other files are refused, before any work, with the checkpoint kept."""
    from tfstyle.errors import OutputError
    from tfstyle.export import stylizer

    def full_disk(*args, **kwargs):
        raise OutputError("cannot write the model: no space left on device")

    monkeypatch.setattr(stylizer, "export_stylizer", full_disk)
    output, result = _train(tmp_path, photos, capfd, "--steps=2")
    assert result.code == 1 and os.path.exists(f"{output}.ckpt.npz")
    other_style = tmp_path / "other.png"
    image_io.save_image(np.full((32, 32, 3), 0.3, np.float32), other_style)
    output, result = _train(
        tmp_path, photos, capfd, "--steps=2", "--resume", f"--style={other_style}"
    )
    assert_clean_failure(result, output=output, match="trained on another style image; resume")
    image_io.save_image(np.zeros((40, 48, 3), np.float32), photos / "p3.png")
    output, result = _train(tmp_path, photos, capfd, "--steps=2", "--resume")
    assert_clean_failure(result, output=output, match="trained on other training photos; resume")
    # A photo that broke after the checkpoint (a copy cut short) is skipped: other photos too.
    (photos / "p3.png").unlink()
    good = (photos / "p1.png").read_bytes()
    (photos / "p1.png").write_bytes(good[: len(good) // 2])
    output, result = _train(tmp_path, photos, capfd, "--steps=2", "--resume")
    assert_clean_failure(result, output=output, match="trained on other training photos; resume")
    assert os.path.exists(f"{output}.ckpt.npz")
