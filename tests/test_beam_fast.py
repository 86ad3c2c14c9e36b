"""tfstyle.beam.run_stylizer: photos painted by a trained stylizer through Beam's RunInference
(DirectRunner in this process), batched by size, with dead letters and skipped outputs."""

import json
import os

import numpy as np
import pytest
from cli_runner import run_inprocess

from tfstyle.errors import ConfigError, WeightsError
from tfstyle.io import load_image, save_image

beam_module = pytest.importorskip("tfstyle.beam", reason="the beam extra is not installed")
IN_PROCESS = ("--direct_num_workers=1", "--direct_running_mode=in_memory")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from tfstyle.models.transformer import build_stylizer

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    build_stylizer(width=4, residual_blocks=1).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    """Two 24x32 photos, one 40x24, and a file that is not an image."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, shape in (("a", (24, 32, 3)), ("b", (24, 32, 3)), ("c", (40, 24, 3))):
        save_image(rng.random(shape).astype("float32"), folder / f"{name}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def _outputs(folder):
    return {
        name: (os.stat(folder / name).st_mtime_ns, (folder / name).read_bytes())
        for name in sorted(os.listdir(folder))
        if name.endswith((".png", ".json"))
    }


def test_photos_are_painted_in_batches_by_size_and_a_rerun_does_nothing(
    tmp_path, photos, model_file
):
    from tfstyle.fast.stylizer import FastStylizer

    out = tmp_path / "out"
    summary = beam_module.run_stylizer(
        [photos], model=model_file, output_dir=out, options=IN_PROCESS
    )
    assert (summary.written, summary.skipped, summary.failed) == (3, 0, 1)
    done = _outputs(out)
    assert sorted(n for n in done if n.endswith(".png")) == [
        "a__tiny.png",
        "b__tiny.png",
        "c__tiny.png",
    ]
    stylizer = FastStylizer.load(model_file)
    for name in ("a", "b", "c"):
        expected = stylizer(load_image(photos / f"{name}.png"))
        painted = load_image(out / f"{name}__tiny.png")
        assert painted.shape == expected.shape
        np.testing.assert_allclose(painted, expected, atol=0.5 / 255 + 1e-6)
    reports = {n: json.loads(done[f"{n}__tiny.json"][1]) for n in ("a", "b", "c")}
    # The two 24x32 photos shared one forward pass; the 40x24 one had its own.
    assert [reports[n]["batch"] for n in ("a", "b", "c")] == [2, 2, 1]
    assert reports["c"]["size"] == [40, 24] and reports["c"]["model"] == str(model_file)
    with open(summary.dead_letter) as file:
        rows = [json.loads(line) for line in file]
    assert [os.path.basename(r["output"]) for r in rows] == ["broken__tiny.png"]
    assert "broken.png" in rows[0]["reason"]
    again = beam_module.run_stylizer([photos], model=model_file, output_dir=out, options=IN_PROCESS)
    assert (again.written, again.skipped, again.failed) == (0, 3, 1)
    assert _outputs(out) == done


def test_a_batch_that_fails_sends_its_photos_to_the_dead_letters(
    tmp_path, photos, model_file, monkeypatch
):
    from tfstyle.fast.stylizer import FastStylizer

    real = FastStylizer.paint_batch

    def fail_tall(self, images):
        if images.shape[1] == 40:
            raise ValueError("out of memory, say")
        return real(self, images)

    monkeypatch.setattr(FastStylizer, "paint_batch", fail_tall)
    (photos / "broken.png").unlink()
    summary = beam_module.run_stylizer(
        [photos], model=model_file, output_dir=tmp_path / "out", options=IN_PROCESS
    )
    assert (summary.written, summary.skipped, summary.failed) == (2, 0, 1)
    with open(summary.dead_letter) as file:
        rows = [json.loads(line) for line in file]
    assert [os.path.basename(r["content"]) for r in rows] == ["c.png"]
    assert "inference failed" in rows[0]["reason"] and "out of memory" in rows[0]["reason"]
    assert not (tmp_path / "out" / "c__tiny.png").exists()


def test_the_handler_groups_a_mixed_batch_by_size_and_keeps_its_order(model_file):
    from tfstyle.fast.stylizer import FastStylizer

    handler = beam_module.StylizerHandler(model_file, batch_size=4)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 4, "max_batch_size": 4}
    stylizer = handler.load_model()
    rng = np.random.default_rng(1)
    batch = [rng.random(s).astype("float32") for s in ((8, 8, 3), (8, 12, 3), (8, 8, 3))]
    results = handler.run_inference(batch, stylizer)
    assert [r.example is x for r, x in zip(results, batch, strict=True)] == [True] * 3
    assert [r.inference["batch"] for r in results] == [2, 1, 2]
    alone = FastStylizer.load(model_file)
    for result, image in zip(results, batch, strict=True):
        np.testing.assert_allclose(result.inference["image"], alone(image), atol=1e-5)


def test_bad_models_and_clashing_names_are_refused_before_any_work(tmp_path, photos, model_file):
    with pytest.raises(WeightsError, match="no stylizer at"):
        beam_module.run_stylizer([photos], model=tmp_path / "nothing", output_dir=tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.jpg").write_bytes((photos / "a.png").read_bytes())
    with pytest.raises(ConfigError, match="would both be saved as a__"):
        beam_module.run_stylizer([photos, other], model=model_file, output_dir=tmp_path)
    with pytest.raises(ConfigError, match="preserve_colors"):
        beam_module.run_stylizer(
            [photos], model=model_file, output_dir=tmp_path, preserve_colors="sepia"
        )
    with pytest.raises(ConfigError, match="tile_size must be 0 or over"):
        beam_module.run_stylizer([photos], model=model_file, output_dir=tmp_path, tile_size=128)
    assert not (tmp_path / "a__tiny.png").exists()


def test_the_cli_paints_with_a_model_on_beam(tmp_path, photos, model_file, capfd):
    out = tmp_path / "out"
    args = ["--model", model_file, "--content", photos, "--output_dir", out, "--runner", "direct"]
    result = run_inprocess(
        [*args, "--max_size", "16", "--batch_size", "1", "--", *IN_PROCESS], capfd
    )
    assert result.code == 1
    assert "3 written, 0 skipped, 1 failed" in result.stderr
    assert result.stderr.count("\n") == 1
    report = json.loads((out / "a__tiny.json").read_text())
    assert report["size"] == [12, 16] and report["batch"] == 1
    for extra, message in (
        (["--style", photos / "a.png"], "takes no --style"),
        (["--manifest", tmp_path / "jobs.csv"], "takes no --manifest"),
    ):
        result = run_inprocess([*args, *extra], capfd)
        assert result.code == 1 and message in result.stderr
        assert result.stderr.count("\n") == 1


def test_the_cli_on_beam_with_every_output_there_has_nothing_to_do(
    tmp_path, photos, model_file, capfd
):
    (photos / "broken.png").unlink()
    out = tmp_path / "out"
    args = ["--model", model_file, "--content", photos, "--output_dir", out, "--runner", "direct"]
    args += ["--max_size", "16", "--quiet", "--", *IN_PROCESS]
    assert run_inprocess(args, capfd).code == 0
    before = _outputs(out)
    again = run_inprocess(args, capfd)
    assert again.code == 0 and again.lines == [
        f"tfstyle: nothing to do: all 3 outputs in {out} already exist; pass --overwrite to "
        "redo them"
    ], again
    assert _outputs(out) == before
