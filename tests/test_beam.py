"""tfstyle.beam: the batch as an Apache Beam pipeline on the DirectRunner (in this process),
with dead letters, skipped finished outputs and per-row manifest settings."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from cli_runner import ROOT, run_inprocess, subprocess_env

from tfstyle.errors import ConfigError, TfstyleError
from tfstyle.io import filesystems, save_image

beam_module = pytest.importorskip("tfstyle.beam", reason="the beam extra is not installed")
# One worker thread in this process: the pipeline's own behaviour, without worker start-up.
IN_PROCESS = ("--direct_num_workers=1", "--direct_running_mode=in_memory")


@pytest.fixture
def config(tiny_config):
    return tiny_config.replace(max_size=32, iterations=2, steps_per_call=1)


@pytest.fixture
def files(tmp_path):
    """3 photos (one of them not an image) and 2 paintings."""
    rng = np.random.default_rng(0)
    contents, styles = tmp_path / "contents", tmp_path / "styles"
    contents.mkdir()
    styles.mkdir()
    for name in ("a", "b"):
        save_image(rng.random((24, 32, 3)).astype("float32"), contents / f"{name}.png")
    (contents / "broken.png").write_bytes(b"not a png")
    for name in ("s1", "s2"):
        save_image(rng.random((32, 32, 3)).astype("float32"), styles / f"{name}.png")
    return contents, styles


def _outputs(folder):
    return {
        name: (os.stat(folder / name).st_mtime_ns, (folder / name).read_bytes())
        for name in sorted(os.listdir(folder))
        if name.endswith((".png", ".json"))
    }


def test_pairs_stylize_with_dead_letters_and_a_rerun_does_nothing(tmp_path, files, config):
    contents, styles = files
    found = beam_module.pairs([contents], [styles])
    assert len(found) == 6
    out = tmp_path / "out"
    summary = beam_module.run(found, output_dir=out, config=config, options=IN_PROCESS)
    assert (summary.written, summary.skipped, summary.failed) == (4, 0, 2)
    done = _outputs(out)
    assert sorted(n for n in done if n.endswith(".png")) == [
        "a__s1.png",
        "a__s2.png",
        "b__s1.png",
        "b__s2.png",
    ]
    report = json.loads(done["a__s1.json"][1])
    assert report["size"] == [24, 32] and report["steps"] == 2
    with open(summary.dead_letter) as file:
        rows = [json.loads(line) for line in file]
    failed = sorted(os.path.basename(r["output"]) for r in rows)
    assert failed == ["broken__s1.png", "broken__s2.png"]
    assert all("broken.png" in r["reason"] for r in rows)
    # Rerun: every finished pair is skipped, no output is touched; the failures are retried.
    again = beam_module.run(found, output_dir=out, config=config, options=IN_PROCESS)
    assert (again.written, again.skipped, again.failed) == (0, 4, 2)
    assert _outputs(out) == done
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


def test_an_element_processed_twice_is_written_once(tmp_path, files, config, monkeypatch):
    contents, styles = files
    pair = beam_module.Pair(str(contents / "a.png"), str(styles / "s1.png"))
    fn = beam_module.StylizeFn(config=config, output_dir=tmp_path / "out")
    fn.setup()
    writes = []
    real = filesystems.write_image
    monkeypatch.setattr(filesystems, "write_image", lambda *a: writes.append(a[1]) or real(*a))
    first = list(fn.process(pair))
    second = list(fn.process(pair))  # a retried bundle meets the element again
    assert first == [os.path.join(tmp_path, "out", "a__s1.png")]
    assert [o.tag for o in second] == ["skipped"]
    assert len(writes) == 1


def test_manifest_settings_reach_their_row_only(tmp_path, files, config):
    contents, styles = files
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "content,style,iterations,style_weight\n"
        f"{contents / 'a.png'},{styles / 's1.png'},3,\n"
        f"{contents / 'b.png'},{styles / 's2.png'},,0.5\n"
    )
    found = beam_module.read_manifest(manifest, config=config)
    assert [dict(p.settings) for p in found] == [{"iterations": 3}, {"style_weight": 0.5}]
    out = tmp_path / "out"
    beam_module.run(found, output_dir=out, config=config, options=IN_PROCESS)
    first = json.loads((out / "a__s1.json").read_text())
    second = json.loads((out / "b__s2.json").read_text())
    assert first["settings"]["iterations"] == 3 and first["steps"] == 3
    assert first["settings"]["style_weight"] == config.effective_style_weight
    assert second["settings"]["style_weight"] == 0.5 and second["steps"] == 2
    jsonl = tmp_path / "jobs.jsonl"
    row = {"content": "contents/a.png", "style": "styles/s1.png", "tv_weight": 2}
    jsonl.write_text(json.dumps(row) + "\n")
    assert dict(beam_module.read_manifest(jsonl)[0].settings) == {"tv_weight": 2}


def test_manifest_paths_start_from_its_folder_and_must_exist(tmp_path, files, monkeypatch):
    contents, styles = files
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(f"content,style\ncontents/a.png,{styles / 's1.png'}\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # not the manifest's folder
    (pair,) = beam_module.read_manifest(manifest)
    assert pair.content == str(contents / "a.png") and pair.style == str(styles / "s1.png")
    # A missing file is found now, before any work, not by every worker.
    manifest.write_text("content,style\ncontents/a.png,styles/s1.png\nnope.png,styles/gone.png\n")
    with pytest.raises(ConfigError) as caught:
        beam_module.read_manifest(manifest)
    assert str(caught.value) == (
        f"{manifest} row 2: content file {tmp_path / 'nope.png'} not found (and 1 more "
        "missing); relative paths start from the manifest's folder"
    )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("content,style,iterations\nc.png,s.png,0\n", "row 1: iterations"),
        ("content,style,colour\nc.png,s.png,red\n", "row 1: unknown settings colour"),
        ("content,style\nc.png,\n", "row 1 has no style"),
        ("content,style\n", "has no rows"),
    ],
)
def test_bad_manifests_name_the_row(tmp_path, text, match):
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(text)
    with pytest.raises(ConfigError, match=match):
        beam_module.read_manifest(manifest)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        # Were a JSONDecodeError, an AttributeError and a TypeError traceback.
        (
            "jobs.jsonl",
            '{"content": "c.png", "style": "s.png"}\n\n{"content": "c.png",\n',
            "row 2 is not valid JSON",
        ),
        ("jobs.jsonl", '["c.png", "s.png"]\n', "row 1 is not a JSON object"),
        (
            "jobs.csv",
            "content,style\nc.png,s.png\nc.png,s.png,7,8\n",
            "row 2 has 2 more cell(s) than the header's 2 columns",
        ),
    ],
)
def test_malformed_manifest_rows_are_named(tmp_path, name, text, match):
    manifest = tmp_path / name
    manifest.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(f"{manifest} {match}")):
        beam_module.read_manifest(manifest)


def test_the_cli_runs_the_batch_on_beam(tmp_path, files, capfd):
    contents, styles = files
    out = tmp_path / "out"
    args = ["--content", contents, "--style", styles, "--output_dir", out]
    tiny = ["--weights", "none", "--network", "vgg16", "--max_size", "32", "--iterations", "1"]
    result = run_inprocess([*args, *tiny, "--runner", "direct", "--", *IN_PROCESS], capfd)
    assert result.code == 1
    assert "4 written, 0 skipped, 2 failed" in result.stderr
    assert len([n for n in os.listdir(out) if n.endswith(".png")]) == 4
    # Pipeline options without --runner are a mistake, said in one line.
    result = run_inprocess([*args, *tiny, "--", "--direct_num_workers=2"], capfd)
    assert result.code == 1 and result.stderr.count("\n") == 1
    assert "unexpected arguments" in result.stderr


def test_beam_worker_start_up_lines_are_dropped_and_the_rest_kept(capfd):
    # Each --runner direct worker process printed about eight lines of Beam's own start-up
    # warnings into the command's output. Written here by a child process, as workers do.
    from tfstyle.io import native_logs

    noise = (
        "WARNING:root:apitools not found, and bigquery client libraries are not available "
        "despite the import not raising an ImportError.\n"
        "INFO:__main__:Logging handler created.\n"
        "WARNING:__main__:No semi_persistent_directory found:  User registered objects\n"
        "WARNING:apache_beam.options.pipeline_options:Discarding unparseable args: "
        "['--pipeline_type_check', '--direct_runner_use_stacked_bundle']\n"
        # The same two flags in the other order (Beam lists a set: both orders were seen).
        "WARNING:apache_beam.options.pipeline_options:Discarding unparseable args: "
        "['--direct_runner_use_stacked_bundle', '--pipeline_type_check']\n"
    )
    keep = (
        "tfstyle: error: kept\n"
        "WARNING:apache_beam.options.pipeline_options:Discarding unparseable args: ['--mine']\n"
    )
    code = f"import sys; sys.stderr.write({noise + keep!r})"
    capfd.readouterr()
    with native_logs.dropped_lines(native_logs.BEAM_WORKER_NOISE):
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
        os.write(2, b"parent line\n")
    assert capfd.readouterr().err == keep + "parent line\n"


def test_without_beam_the_import_names_the_extra():
    code = "import sys; sys.modules['apache_beam'] = None\nimport tfstyle.beam"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 1
    assert 'pip install "tfstyle[beam]"' in result.stderr.splitlines()[-1]


def test_direct_runner_defaults_use_every_core_quietly_unless_overridden():
    from tfstyle.cli.beam_batch import pipeline_options

    options = pipeline_options("direct", ["--direct_num_workers=1"])
    assert options[0] == "--runner=DirectRunner"
    assert "--direct_num_workers=1" in options and "--direct_num_workers=0" not in options
    assert "--direct_running_mode=multi_processing" in options
    assert "--default_sdk_harness_log_level=WARNING" in options
    assert pipeline_options("DataflowRunner", ["--project=p"]) == [
        "--runner=DataflowRunner",
        "--project=p",
    ]


def test_bad_pipeline_options_and_unknown_filesystems_are_one_line(tmp_path, files, capfd):
    from tfstyle.beam import common

    with pytest.raises(ConfigError, match="bad Beam pipeline option: argument --direct_num_work"):
        common.new_pipeline(["--direct_num_workers=abc"])
    with pytest.raises(ConfigError, match=r"^Unexpected pipeline runner: bogus$"):
        common.new_pipeline(["--runner=bogus"])
    with pytest.raises(TfstyleError, match="no filesystem for nosuch://"):
        filesystems.exists("nosuch://bucket/out")
    contents, styles = files
    args = ["--content", contents, "--style", styles, "--weights", "none", "--runner", "direct"]
    for extra, match in (
        (["--output_dir", tmp_path / "out", "--", "--direct_num_workers=abc"], "invalid int"),
        (["--output_dir", "nosuch://bucket/out"], "no filesystem for nosuch://"),
    ):
        result = run_inprocess([*args, *extra], capfd)
        assert result.code == 1 and result.stderr.count("\n") == 1, result.stderr
        assert match in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_interrupted_pipeline_says_its_finished_outputs_are_kept(
    tmp_path, files, capfd, monkeypatch
):
    from tfstyle.cli import beam_batch as scale

    def interrupted(pipeline_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(scale, "command", interrupted)
    contents, styles = files
    args = ["--content", contents, "--style", styles, "--output_dir", tmp_path / "out"]
    result = run_inprocess([*args, "--runner", "direct"], capfd)
    assert result.code == 130
    assert "what finished is kept: run the same command to go on" in result.stderr
