"""The tfstyle command end to end, and every user error of issue 2 as one line with exit 1."""

import json
import os
import re
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from absl import flags
from cli_runner import run_inprocess, subprocess_env
from PIL import Image

import tfstyle
from tfstyle import cli
from tfstyle.settings import style as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--weights", "none", "--max_size", "32", "--iterations", "2", "--quiet"]


def run_cli(args, capsys):
    """Run the CLI in-process (as absl would) and return (exit status, stderr lines)."""
    flags.FLAGS.unparse_flags()
    argv = flags.FLAGS(["tfstyle", *args])
    status = cli.main(argv)
    err = capsys.readouterr().err
    return status, [line for line in err.splitlines() if line.strip()]


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    content = tmp_path / "content.png"
    style = tmp_path / "style.jpg"
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(content)
    Image.fromarray(rng.integers(0, 255, (36, 36, 3), dtype=np.uint8)).save(style)
    return str(content), str(style)


def test_end_to_end_writes_image_and_json(images, tmp_path, capsys):
    content, style = images
    output = tmp_path / "out.png"
    status, err = run_cli(
        ["--content", content, "--style", style, "--output", str(output), *FAST], capsys
    )
    assert status == 0, err
    assert Image.open(output).size == (32, 27)
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["settings"]["iterations"] == 2 and report["settings"]["weights"] is None
    assert report["steps"] == 2
    assert set(report["final_losses"]) == {"content", "style", "tv", "total"}
    assert report["content"] == os.path.abspath(content)
    assert report["version"] == tfstyle.__version__


def test_save_every_writes_snapshots(images, tmp_path, capsys):
    content, style = images
    output = tmp_path / "out.jpg"
    args = ["--content", content, "--style", style, "--output", str(output), *FAST]
    status, err = run_cli([*args, "--iterations", "4", "--save_every", "2"], capsys)
    assert status == 0, err
    assert (tmp_path / "out_step00002.jpg").exists() and (tmp_path / "out_step00004.jpg").exists()


def test_save_every_that_slows_the_run_says_so(images, tmp_path, capsys):
    # --save_every 13 forced one compiled call per step without a word.
    content, style = images
    output = tmp_path / "out.png"
    args = ["--content", content, "--style", style, "--output", str(output), *FAST]
    status, err = run_cli([*args, "--iterations", "2", "--save_every", "13"], capsys)
    assert status == 0, err
    assert err == [
        "tfstyle: warning: --save_every 13 runs 1 step(s) per compiled call instead of 10 "
        "(calls end on the snapshots), which is slower: a multiple of 10 keeps full speed"
    ]
    for every in ("20", "5"):  # calls of 10, and of 5: no warning
        status, err = run_cli([*args, "--save_every", every, "--overwrite"], capsys)
        assert status == 0 and err == [], err


def _bad_file(tmp_path, kind):
    path = tmp_path / f"bad_{kind}.png"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path = tmp_path / "notes.jpg"
        path.write_text("this is not an image\n")
    elif kind == "truncated":
        Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "tiny":
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "not found"),
        ("empty", "empty"),
        ("text", "not an image"),
        ("truncated", "truncated|corrupt"),
        ("tiny", "too small.*at least 16 px"),
    ],
)
@pytest.mark.parametrize("role", ["content", "style"])
def test_bad_input_images(images, tmp_path, capsys, kind, message, role):
    content, style = images
    bad = str(tmp_path / "missing.png") if kind == "missing" else _bad_file(tmp_path, kind)
    paths = {"content": content, "style": style, role: bad}
    output = tmp_path / "out.png"
    args = ["--content", paths["content"], "--style", paths["style"], "--output", str(output)]
    status, err = run_cli([*args, *FAST], capsys)
    assert status == 1
    assert len(err) == 1 and err[0].startswith("tfstyle: error:"), err
    assert __import__("re").search(message, err[0]), err[0]
    assert not output.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--iterations", "0"], "iterations must be at least 1"),
        (["--max_size", "-5"], "max_size must be at least 1"),
        (["--style_weight", "-1"], "style_weight must be in"),
        (["--content_layers", "block9_conv1"], "unknown vgg19 layer"),
        (["--style_blend_weights", "1,2"], "2 values for 1 style image"),
        (["--weights", "/nonexistent/vgg.weights.h5"], "weights file not found"),
    ],
)
def test_bad_settings(images, tmp_path, capsys, extra, message):
    content, style = images
    output = tmp_path / "out.png"
    args = ["--content", content, "--style", style, "--output", str(output), *FAST, *extra]
    status, err = run_cli(args, capsys)
    assert status == 1
    assert len(err) == 1 and message in err[0], err
    assert not output.exists()


def test_output_directory_missing_or_bad_extension(images, tmp_path, capsys):
    content, style = images
    for output, message in [
        # A missing folder is created; one under a file cannot be.
        (os.path.join(content, "sub", "out.png"), "is not a directory"),
        (tmp_path / "out.gif", ".png"),
        (content, "input"),
    ]:
        args = ["--content", content, "--style", style, "--output", str(output), *FAST]
        status, err = run_cli(args, capsys)
        assert status == 1 and len(err) == 1 and message in err[0], err


def test_weights_not_downloadable_says_how_to_pass_a_file(images, tmp_path, capsys, monkeypatch):
    import keras.src.utils.file_utils as file_utils

    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: network unreachable")

    # keras.applications fetches through this module attribute at call time.
    monkeypatch.setattr(file_utils, "get_file", offline)
    content, style = images
    output = tmp_path / "out.png"
    args = ["--content", content, "--style", style, "--output", str(output), *FAST[2:]]
    status, err = run_cli([*args, "--weights", "imagenet"], capsys)
    assert status == 1 and len(err) == 1
    assert "ImageNet VGG19 weights" in err[0] and "--weights PATH" in err[0]
    assert not output.exists()


def test_script_runs_as_a_subprocess_with_one_error_line(tmp_path):
    """The real entry point: no traceback, one line, exit 1, for a missing content file."""
    script = os.path.join(ROOT, "scripts", "stylize.py")
    result = subprocess.run(
        [
            sys.executable,
            script,
            "--content",
            str(tmp_path / "nope.png"),
            "--style",
            str(tmp_path / "nope2.png"),
            "--output",
            str(tmp_path / "o.png"),
            *FAST,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tfstyle: error:") and "nope.png" in lines[0]
    assert "not found" in lines[0] and "Traceback" not in result.stderr


def test_save_every_across_scales(images, tmp_path, capsys):
    content, style = images
    output = tmp_path / "out.png"
    args = ["--content", content, "--style", style, "--output", str(output), *FAST]
    extra = ["--iterations", "8", "--scales", "2", "--save_every", "5", "--max_size", "48"]
    status, err = run_cli([*args, *extra], capsys)
    assert status == 0, err
    # 8 + 2 steps over two scales: snapshots at global steps 5 and 10 (the second in scale 2).
    assert sorted(p.name for p in tmp_path.glob("out_step*.png")) == [
        "out_step00005.png",
        "out_step00010.png",
    ]


def test_loss_plot_may_not_overwrite_an_input(tmp_path, capsys):
    content = tmp_path / "x_losses.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8) + 100).save(content)
    before = content.read_bytes()
    args = ["--content", str(content), "--style", str(content), "--output", str(tmp_path / "x.png")]
    status, err = run_cli([*args, *FAST, "--plot_losses"], capsys)
    assert status == 1 and "refusing to overwrite input file" in err[0], err
    assert content.read_bytes() == before


def test_batch_refuses_blend_weights_and_export_refuses_image_flags(images, tmp_path, capsys):
    content, style = images
    batch = ["--content", content, "--style", style, "--output_dir", str(tmp_path), *FAST]
    status, err = run_cli([*batch, "--style_blend_weights", "1"], capsys)
    assert status == 1 and "a batch applies each style on its own" in err[0], err
    export = ["export", "--output", str(tmp_path / "model"), "--content", content]
    flags.FLAGS.unparse_flags()
    argv = flags.FLAGS(["tfstyle", *export])
    assert cli.main(argv) == 1
    assert "export takes no --content" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("arg", ["--help", "-h"])
def test_help_lists_the_flags(arg):
    script = os.path.join(ROOT, "scripts", "stylize.py")
    result = subprocess.run(
        [sys.executable, script, arg], capture_output=True, text=True, timeout=120
    )
    # A help request is not an error (absl's own --help exits with status 1).
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for flag in ("--content", "--style", "--output", "--optimizer", "--[no]resume", "--output_dir"):
        assert flag in result.stdout
    # And those of the other commands (train, video, export), which live in their modules.
    for flag in ("--steps", "--video_mode", "--segment_frames", "--tflite_size"):
        assert f"  {flag}:" in result.stdout


@pytest.mark.parametrize("module", ["tfstyle", "tfstyle.cli"])
def test_python_dash_m_runs_the_command(module):
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=subprocess_env(),
    )
    assert result.returncode == 0, result.stderr
    for flag in ("--content", "--style", "--output", "--output_dir", "--[no]resume"):
        assert flag in result.stdout


def test_help_into_a_closed_pipe_is_quiet():
    # `tfstyle --help | head -1`: the reader may be gone before the help is written.
    read_end, write_end = os.pipe()
    os.close(read_end)
    script = os.path.join(ROOT, "scripts", "stylize.py")
    try:
        result = subprocess.run(
            [sys.executable, script, "--help"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.parametrize("arg", ["-h", "--help", "--helpshort", "--helpfull", "-?"])
def test_help_exits_with_status_0(capfd, arg):
    result = run_inprocess([arg], capfd)
    assert result.code == 0, result
    # In-process, absl describes pytest's main module; test_help_lists_the_flags checks
    # what is listed.
    assert "--helpfull" in result.stdout and "Traceback" not in result.stderr


def test_a_fresh_process_prints_no_native_start_up_lines():
    # In a fresh process the first import of TensorFlow writes C++ lines to stderr that only
    # the CLI's filter removes; anything that imports Keras before the commands' filter (the
    # JAX cache check did) brings them back. --version runs main() and nothing else.
    result = subprocess.run(
        [sys.executable, "-m", "tfstyle", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=subprocess_env(),
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_version_prints_the_package_version(capfd):
    result = run_inprocess(["--version"], capfd)
    assert result.code == 0, result
    assert result.stdout == f"tfstyle {tfstyle.__version__}\n" and result.stderr == ""
    assert re.fullmatch(r"\d+\.\d+\.\d+", tfstyle.__version__)


def test_version_has_one_home():
    # pyproject.toml reads the version from tfstyle.__version__ instead of repeating it.
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as file:
        project = tomllib.load(file)
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "tfstyle.__version__"}


@pytest.mark.parametrize("kind", ["mean_cov", "sliced_wasserstein"])
def test_style_loss_flag(images, tmp_path, capsys, kind):
    content, style = images
    output = tmp_path / "out.png"
    args = ["--content", content, "--style", style, "--output", str(output), *FAST]
    status, err = run_cli([*args, "--style_loss", kind], capsys)
    assert status == 0, err
    settings = json.loads((tmp_path / "out.json").read_text())["settings"]
    # The report names the loss's own default weight, the one that ran.
    assert settings["style_loss"] == kind
    assert settings["style_weight"] == config_lib.DEFAULT_STYLE_WEIGHTS[kind]
    flags.FLAGS.unparse_flags()
    with pytest.raises(flags.IllegalFlagValueError):
        flags.FLAGS(["tfstyle", *args, "--style_loss", "gatys"])
