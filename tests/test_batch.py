"""Batch runs: compiled steps reused across images (RunnerCache), and the CLI's batch mode."""

import json
import os

import keras
import numpy as np
import pytest
from cli_runner import TINY, run_cli

from tfstyle import RunnerCache, stylize
from tfstyle.io import save_image


# Adam: its moments and step count must start afresh; L-BFGS: a different compiled function.
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_runner_reused_for_images_of_one_size(
    content_image, style_image, tiny_config, optimizer, monkeypatch
):
    if keras.backend.backend() == "jax":
        from tfstyle.optimize.step import jax as jax_step

        monkeypatch.setattr(jax_step, "_CACHE", {})  # no steps compiled by earlier tests
    config = tiny_config.replace(optimizer=optimizer, iterations=4, steps_per_call=2)
    other_content = np.ascontiguousarray(content_image[::-1, ::-1])
    other_style = np.ascontiguousarray(style_image[:, ::-1, ::-1])
    cache = RunnerCache()
    stylize(content_image, style_image, config=config, runners=cache)
    [runner] = cache.runners()
    traces = _compilations(runner, optimizer)
    assert traces == 1  # four steps in two calls of two: one compiled shape
    second = stylize(other_content, other_style, config=config, runners=cache)
    assert cache.runners() == [runner]
    assert _compilations(runner, optimizer) == traces  # no new trace
    # The reset runner gives exactly what a fresh one does: optimizer state starts afresh.
    fresh = stylize(other_content, other_style, config=config)
    np.testing.assert_allclose(second.image, fresh.image, atol=1e-6)
    np.testing.assert_allclose(second.history["total"], fresh.history["total"], rtol=1e-5)


def _compilations(runner, optimizer):
    """How many programs the runner's compiled step holds (L-BFGS: its loss-and-gradient
    function): tf.function traces, jax.jit entries."""
    if optimizer != "lbfgs":
        return runner.trace_count()
    if keras.backend.backend() == "jax":
        return runner._compiled.value_and_grad._cache_size()
    return runner._value_and_grad.experimental_get_tracing_count()


def test_runner_cache_keys_on_size_and_settings(content_image, style_image, tiny_config):
    config = tiny_config.replace(iterations=1, steps_per_call=1)
    cache = RunnerCache(maxsize=2)
    stylize(content_image, style_image, config=config, runners=cache)
    stylize(content_image[:32], style_image, config=config, runners=cache)  # another size
    assert len(cache) == 2
    stylize(content_image, style_image, config=config.replace(style_weight=3.0), runners=cache)
    assert len(cache) == 2  # a third key; the least recently used runner went
    first = cache.runners()[-1]
    stylize(content_image, style_image, config=config.replace(style_weight=3.0), runners=cache)
    assert cache.runners()[-1] is first


def test_runner_cache_keys_on_the_style_loss(content_image, style_image, tiny_config):
    # The compiled step closes over the style loss: a cached gram runner must not serve it.
    config = tiny_config.replace(iterations=1, steps_per_call=1, max_size=32)
    cache = RunnerCache()
    stylize(content_image, style_image, config=config, runners=cache)
    result = stylize(
        content_image, style_image, config=config.replace(style_loss="mean_cov"), runners=cache
    )
    assert len(cache) == 2
    fresh = stylize(content_image, style_image, config=config.replace(style_loss="mean_cov"))
    np.testing.assert_allclose(result.history["style"], fresh.history["style"], rtol=1e-5)


@pytest.fixture
def batch_files(tmp_path, content_image, style_image):
    """contents/: bad.png (corrupt), c1.png, c2.png (same size); styles/: s1.png, s2.jpg."""
    (tmp_path / "contents").mkdir()
    (tmp_path / "styles").mkdir()
    (tmp_path / "out").mkdir()
    save_image(content_image, tmp_path / "contents" / "c1.png")
    save_image(content_image[::-1], tmp_path / "contents" / "c2.png")
    (tmp_path / "contents" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (tmp_path / "contents" / "notes.txt").write_text("not an image")
    save_image(style_image, tmp_path / "styles" / "s1.png")
    save_image(style_image[:, ::-1], tmp_path / "styles" / "s2.jpg")
    return tmp_path


GOOD = ["c1__s1.png", "c1__s2.png", "c2__s1.png", "c2__s2.png"]


def _batch(files, *extra):
    return run_cli(
        "--content", files / "contents", "--style", str(files / "styles" / "s*"),
        "--output_dir", files / "out", *TINY, *extra,
    )  # fmt: skip


def test_cli_batch_every_pair_bad_file_skipped_and_one_runner(batch_files, capsys, monkeypatch):
    import tfstyle.optimize.runners

    made = []
    real = tfstyle.optimize.runners.new_runner
    monkeypatch.setattr(
        tfstyle.optimize.runners, "new_runner", lambda *a, **k: made.append(1) or real(*a, **k)
    )
    assert _batch(batch_files) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("tfstyle: error:")]
    # The corrupt file is reported once (though it is in two pairs), then the summary.
    assert len(errors) == 2, err
    assert "bad__s1.png" in errors[0] and "bad.png" in errors[0] and "corrupt" in errors[0]
    assert errors[1] == "tfstyle: error: 2 of 6 outputs failed; rerun to retry them"
    # One progress bar over the whole batch: 6 pairs x 2 steps.
    assert "12/12" in err and "/2 " not in err
    names = sorted(n for n in os.listdir(batch_files / "out") if n.endswith(".png"))
    assert names == GOOD
    report = json.loads((batch_files / "out" / "c2__s1.json").read_text())
    assert report["content"].endswith("c2.png") and report["style"][0].endswith("s1.png")
    assert len(made) == 1  # four images of one size: one compiled runner


def test_cli_batch_resumes_and_overwrites(batch_files, capsys):
    (batch_files / "contents" / "bad.png").unlink()
    assert _batch(batch_files, "--quiet") == 0
    out = batch_files / "out"
    stamps = {name: os.stat(out / name).st_mtime_ns for name in GOOD}
    (out / "c2__s2.png").unlink()
    capsys.readouterr()
    assert _batch(batch_files) == 0
    err = capsys.readouterr().err
    assert "skipping 3 of 4 outputs that already exist" in err and "2/2" in err
    assert sorted(n for n in os.listdir(out) if n.endswith(".png")) == GOOD
    assert all(os.stat(out / n).st_mtime_ns == stamps[n] for n in GOOD if n != "c2__s2.png")
    assert _batch(batch_files, "--overwrite", "--quiet") == 0
    assert all(os.stat(out / n).st_mtime_ns != stamps[n] for n in GOOD if n != "c2__s2.png")


def test_cli_single_output_mode_still_blends(batch_files, capsys):
    styles = f"{batch_files / 'styles' / 's1.png'},{batch_files / 'styles' / 's2.jpg'}"
    c1 = batch_files / "contents" / "c1.png"
    out = batch_files / "single.png"
    assert run_cli("--content", c1, "--style", styles, "--output", out, *TINY, "--quiet") == 0
    assert len(json.loads((batch_files / "single.json").read_text())["style"]) == 2
    # Several contents need --output_dir; --output and --output_dir together are refused.
    for extra in (
        ("--content", batch_files / "contents", "--output", out),
        ("--content", c1, "--output", out, "--output_dir", batch_files / "out"),
    ):
        capsys.readouterr()
        assert run_cli(*extra, "--style", styles, *TINY) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("tfstyle: error: ")


def test_cli_batch_name_clash_and_empty_glob(batch_files, capsys):
    (batch_files / "more").mkdir()
    save_image(np.zeros((32, 32, 3)), batch_files / "more" / "c1.jpg")
    args = ("--style", batch_files / "styles" / "s1.png", "--output_dir", batch_files / "out")
    content = f"{batch_files / 'contents' / 'c1.png'},{batch_files / 'more' / 'c1.jpg'}"
    assert run_cli("--content", content, *args, *TINY) == 1
    assert "would both be saved as c1__s1.png" in capsys.readouterr().err
    assert run_cli("--content", str(batch_files / "nothing*.png"), *args, *TINY) == 1
    assert "no files match" in capsys.readouterr().err
    assert os.listdir(batch_files / "out") == []
