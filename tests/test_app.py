"""The web app (tfstyle.app) without a browser: its job logic, the page through gradio_client
(the same calls the page makes), and `tfstyle app`'s command line."""

import json
import os
import socket
import sys

import numpy as np
import pytest
from cli_runner import ROOT, run_inprocess

from tfstyle.app import jobs
from tfstyle.errors import ConfigError, ImageError, TfstyleError
from tfstyle.io import load_image
from tfstyle.io.atomic import scratch_directory
from tfstyle.io.paths import find_stylizers
from tfstyle.settings import app as app_settings
from tfstyle.settings.style import StyleConfig

try:
    import gradio  # noqa: F401
    from gradio_client import Client, handle_file
except ImportError:  # the tests of the command line and of jobs (no Gradio in them) still run
    Client = handle_file = None
needs_gradio = pytest.mark.skipif(Client is None, reason="the app extra is not installed")

IMAGES = os.path.join(ROOT, "examples", "images")
PHOTO = os.path.join(IMAGES, "content_coffee.png")
PAINTING = os.path.join(IMAGES, "style_the_scream.jpg")
MODELS = os.path.join(ROOT, "saved_models")
# One 8-bit level, plus rounding: the page's PNG and the CLI's come from the same library call.
ONE_LEVEL = 1.01 / 255


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_presets_scale_the_command_lines_iterations():
    assert app_settings.preset_settings("draft", iterations=200, scales="auto") == {
        "iterations": 50,
        "scales": 1,
    }
    assert app_settings.preset_settings("standard", iterations=30, scales=2) == {
        "iterations": 30,
        "scales": 2,
    }
    assert app_settings.preset_settings("fine", iterations=30, scales="auto") == {
        "iterations": 60,
        "scales": "auto",
    }
    assert app_settings.preset_settings("draft", iterations=2, scales=1)["iterations"] == 1
    with pytest.raises(ConfigError, match="preset must be one of draft, standard, fine"):
        app_settings.preset_settings("best", iterations=10, scales=1)


def test_find_stylizers_takes_the_highest_version(tmp_path):
    for folder in ("a/1", "a/2", "b", "c/1"):
        (tmp_path / folder).mkdir(parents=True)
    for folder in ("a/1", "a/2", "b"):
        (tmp_path / folder / "stylizer.keras").write_bytes(b"x")
    assert find_stylizers(tmp_path, marker="stylizer.keras") == {
        "a": str(tmp_path / "a" / "2"),
        "b": str(tmp_path / "b"),
    }
    assert find_stylizers(tmp_path / "missing", marker="stylizer.keras") == {}


def test_an_upload_error_names_the_file_not_the_servers_folder(tmp_path):
    secret = tmp_path / "server-folder"
    secret.mkdir()
    (secret / "notes.png").write_text("not a picture")
    with pytest.raises(ImageError) as info:
        jobs.load_upload(str(secret / "notes.png"))
    message = str(info.value)
    assert message.startswith("'notes.png' is not an image"), message
    assert str(tmp_path) not in message and "\n" not in message
    with pytest.raises(ImageError, match="no photo given"):
        jobs.load_upload(None, what="photo")


def test_too_many_pixels_is_refused_as_by_the_cli():
    with pytest.raises(ImageError) as info:
        jobs.load_upload(PHOTO, max_pixels=1000)
    assert str(info.value) == (
        "'content_coffee.png' is 600x400 = 240,000 pixels, more than the limit of 1,000 that "
        "guards against decompression bombs; if you trust the file, raise it with --max_pixels"
    )


def test_the_scratch_folder_goes_however_the_job_ends():
    with scratch_directory() as folder, open(os.path.join(folder, "a.png"), "wb") as file:
        file.write(b"x")
    assert not os.path.exists(folder)
    with pytest.raises(RuntimeError), scratch_directory() as folder:
        raise RuntimeError
    assert not os.path.exists(folder)


def test_stop_ends_at_a_step_boundary_and_keeps_the_picture(tmp_path, fixed_random_weights):
    config = StyleConfig(
        weights=fixed_random_weights, max_size=48, iterations=60, scales=1, steps_per_call=5
    )
    stop = jobs.Stop()
    updates = []
    for update in jobs.paint(PHOTO, [PAINTING], config=config, stop=stop, folder=str(tmp_path)):
        updates.append(update)
        if update.image is not None:
            stop.set()  # at the first preview: step 5
    last = updates[-1]
    assert last.done and last.stopped
    # Stop was seen while step 6 was reported, after the compiled call of steps 6-10 ran.
    assert last.step == 10 and last.total_steps == 60
    png, report = last.files
    kept = load_image(png)
    assert kept.shape == (32, 48, 3)
    np.testing.assert_allclose(kept, last.image, atol=ONE_LEVEL)
    with open(report, encoding="utf-8") as file:
        data = json.load(file)
    assert data["stopped"] is True and data["steps"] == 10
    assert data["content"] == "content_coffee.png" and data["style"] == ["style_the_scream.jpg"]


def test_a_job_left_early_stops_its_run(tmp_path, fixed_random_weights):
    import threading

    config = StyleConfig(
        weights=fixed_random_weights, max_size=48, iterations=400, scales=1, steps_per_call=5
    )
    updates = jobs.paint(PHOTO, [PAINTING], config=config, folder=str(tmp_path))
    first = next(updates)
    assert first.step < 400
    updates.close()  # what Gradio does when the page goes away
    assert [t for t in threading.enumerate() if t.name == "tfstyle-paint"] == []


def test_a_loss_that_became_nan_keeps_the_last_finite_picture(tmp_path, monkeypatch):
    from tfstyle.errors import NonFiniteLossError
    from tfstyle.optimize import stylize as engine

    last = np.full((8, 12, 3), 0.25, np.float32)

    def diverging(*args, **kwargs):
        raise NonFiniteLossError("the loss became NaN at step 7", image=last, step=6)

    monkeypatch.setattr(engine, "stylize", diverging)
    config = StyleConfig(weights=None, max_size=32, iterations=10, scales=1)
    *_, update = jobs.paint(PHOTO, [PAINTING], config=config, folder=str(tmp_path))
    assert update.done and update.step == 6
    assert update.note == (
        "the loss became NaN at step 7; the last finite image (after step 6) was kept"
    )
    (png,) = update.files
    np.testing.assert_allclose(load_image(png), last, atol=ONE_LEVEL)


@pytest.fixture(scope="module")
def served(fixed_random_weights):
    """The page on a free port of 127.0.0.1 and a gradio_client for it."""
    import tfstyle.app

    config = StyleConfig(weights=fixed_random_weights, iterations=10, scales=1)
    page = tfstyle.app.build(config=config, examples_dir=IMAGES, models_dir=MODELS)
    port = free_port()
    tfstyle.app.launch(page, port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False), config
    finally:
        page.close()


def paint_args(photo, painting, *, size=64, preset="standard"):
    return (handle_file(photo), [handle_file(painting)], [], size, 10, 1, 1.0, "none", preset)


@needs_gradio
def test_a_run_from_the_page_gives_the_clis_picture(served, fixed_random_weights, tmp_path, capfd):
    import tempfile

    client, _ = served
    scratch = set(os.listdir(tempfile.gettempdir()))
    _, progress, files = client.predict(*paint_args(PHOTO, PAINTING), api_name="/run_paint")
    # The run's own folder is gone once Gradio has copied its files into its cache.
    new = {n for n in set(os.listdir(tempfile.gettempdir())) - scratch if n.startswith("tfstyle-")}
    assert new == set() and os.path.isfile(files[0])
    assert "done after step 10 of 10" in progress
    png, report = sorted(files, key=lambda p: p.endswith(".json"))
    assert os.path.basename(png) == "content_coffee__style_the_scream.png"
    with open(report, encoding="utf-8") as file:
        data = json.load(file)
    # The report names files as the user named them, never by the server's folders.
    assert (data["content"], data["style"]) == ("content_coffee.png", ["style_the_scream.jpg"])
    assert data["output"] == "content_coffee__style_the_scream.png"
    assert data["settings"]["max_size"] == 64 and data["steps"] == 10

    output = tmp_path / "cli.png"
    result = run_inprocess(
        [
            "--content", PHOTO, "--style", PAINTING, "--output", output,
            "--weights", fixed_random_weights, "--max_size", "64", "--iterations", "10",
            "--scales", "1", "--style_weight", "10", "--content_weight", "1", "--quiet",
        ],
        capfd,
    )  # fmt: skip
    assert result.code == 0, result
    cli, page = load_image(output), load_image(png)
    assert cli.shape == page.shape == (43, 64, 3)
    np.testing.assert_allclose(page, cli, atol=ONE_LEVEL)
    # And the run did paint: the picture moved away from the photo.
    assert np.abs(page - load_image(PHOTO, max_size=64)).mean() > 0.003


@needs_gradio
def test_a_bad_upload_gets_one_line_and_the_server_keeps_serving(served, tmp_path):
    from gradio_client.exceptions import AppError

    client, _ = served
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(AppError) as info:
        client.predict(*paint_args(str(notes), PAINTING), api_name="/run_paint")
    assert str(info.value) == (
        "'notes.txt' is not an image Pillow can read (expected PNG, JPEG, BMP, GIF, TIFF, WebP...)"
    )
    with pytest.raises(AppError, match=r"^'notes.txt' is not an image"):
        client.predict(*paint_args(PHOTO, str(notes)), api_name="/run_paint")
    args = list(paint_args(PHOTO, PAINTING))
    args[2] = ["nope"]  # the bundled paintings: the_scream, shipwreck, starry_night
    with pytest.raises(AppError, match=r"^Value: 'nope' .* is not in the list of choices"):
        client.predict(*args, api_name="/run_paint")
    # Still serving: the fast stylizer paints the photo.
    painted = client.predict(handle_file(PHOTO), "starry_night", "none", 64, api_name="/run_fast")
    assert load_image(painted).shape == (43, 64, 3)


@needs_gradio
def test_the_fast_tab_paints_as_tfstyle_model_does(served):
    from tfstyle.fast.stylizer import FastStylizer
    from tfstyle.ops import preprocessing as pp

    client, _ = served
    painted = client.predict(handle_file(PHOTO), "starry_night", "none", 64, api_name="/run_fast")
    stylizer = FastStylizer.load(os.path.join(MODELS, "starry_night", "1"))
    expected = stylizer(pp.fit_to_max_size(load_image(PHOTO), 64))
    np.testing.assert_allclose(load_image(painted), expected, atol=ONE_LEVEL)


def test_a_webcam_frame_is_painted(tmp_path):
    painter = jobs.FastPainter(MODELS)
    assert list(painter.models) == ["starry_night"]
    frame = np.full((120, 160, 3), 128, np.uint8)
    painted = painter.paint(frame, "starry_night", max_size=64)
    assert painted.shape == (48, 64, 3) and painted.dtype == np.float32
    with pytest.raises(TfstyleError, match="no trained stylizer called 'nope'"):
        painter.paint(frame, "nope")


@pytest.mark.parametrize("stand_in", ["missing", "folder"])
def test_without_gradio_the_error_names_the_extra(stand_in, monkeypatch, capfd):
    import types

    import tfstyle.app

    # None: `import gradio` fails; an empty module: what a folder named gradio in the working
    # directory imports as (Gradio's own cache folder is /tmp/gradio).
    module = None if stand_in == "missing" else types.ModuleType("gradio")
    monkeypatch.setitem(sys.modules, "gradio", module)
    with pytest.raises(TfstyleError, match=r'pip install "tfstyle\[app\]"'):
        tfstyle.app.build()
    result = run_inprocess(["app", "--weights", "none"], capfd)
    assert result.code == 1
    assert result.lines == [
        "tfstyle: error: the web app needs the app extra, which is not installed: "
        'pip install "tfstyle[app]"'
    ]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["app", "--content", PHOTO],
            "app takes no --content: the page takes its images from the browser",
        ),
        (["app", "--init", PHOTO], "app takes --init as one of content, noise, blurred_noise"),
        (["--port", "8000"], "--port is for the web app: tfstyle app --port ..."),
        (["app", "--port", "70000"], "--port must be at most 65535; got 70000"),
    ],
)
def test_flags_the_app_cannot_honour_are_refused(args, line, capfd):
    result = run_inprocess(args, capfd)
    assert result.code == 1
    assert len(result.lines) == 1 and result.lines[0].startswith(f"tfstyle: error: {line}")


@needs_gradio
def test_a_taken_port_is_one_line(capfd):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_inprocess(["app", "--weights", "none", "--port", port, "--quiet"], capfd)
    assert result.code == 1
    assert len(result.lines) == 1, result.stderr
    assert result.lines[0].startswith(f"tfstyle: error: cannot serve on 127.0.0.1:{port}: ")


@needs_gradio
def test_an_upload_over_the_size_limit_is_refused(served, tmp_path):
    from gradio_client.exceptions import AppError

    client, _ = served
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (20 * 1024 * 1024 + 1))  # MAX_UPLOAD is 20 MB
    # gradio_client refuses it from the limit the page announces (the server refuses a
    # browser's upload over it with HTTP 413).
    with pytest.raises((AppError, ValueError), match="maximum file size of 20971520 bytes"):
        client.predict(*paint_args(str(big), PAINTING), api_name="/run_paint")


@needs_gradio
def test_tfstyle_app_serves_until_sigterm():
    import signal
    import urllib.request

    from cli_runner import start

    port = free_port()
    process = start(["app", "--weights", "none", "--port", port, "--models_dir", MODELS])
    try:
        line = process.stderr.readline()  # blocks until the page is up (or the command failed)
        assert line == f"serving on http://127.0.0.1:{port}/ (Ctrl-C stops)\n", (
            line + process.stderr.read()
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200 and b"tfstyle" in response.read()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@needs_gradio
def test_jobs_share_one_queue_slot_and_stop_waits_for_none():
    import tfstyle.app
    from tfstyle.app.page import JOB

    page = tfstyle.app.build(config=StyleConfig(weights=None), models_dir=MODELS)
    slots = {f.name: (f.concurrency_id, f.concurrency_limit, f.queue) for f in page.fns.values()}
    assert slots.pop("stop_paint")[2] is False  # outside the queue: never behind a run
    assert slots == {name: (JOB, 1, True) for name in ("run_paint", "run_fast", "run_webcam")}
