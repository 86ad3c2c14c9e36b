"""Batch stylization as an Apache Beam pipeline: the same content x style batch as
`tfstyle --output_dir`, on the DirectRunner (one machine, every core) or on Dataflow, Flink or
Spark. Needs the `beam` extra: `pip install "tfstyle[beam]"`.

    pairs = tfstyle.beam.pairs(["photos/"], ["paintings/"])     # or read_manifest("jobs.csv")
    summary = tfstyle.beam.run(pairs, output_dir="out/", config=StyleConfig(max_size=512))

Each pair becomes `<content stem>__<style stem>.png` and its JSON report in `output_dir`
(any Beam filesystem: a local folder, `gs://`, `s3://`). How the work is done right on workers
that fail and retry:

- `StylizeFn.setup` builds the feature network once per worker and keeps a `RunnerCache`, so
  images of one size compile one step program per worker.
- The report is written first and the image last, each to a temporary name then renamed: an
  image that exists is a finished pair, and is skipped. A retried bundle, an element processed
  twice or a rerun job does no pair twice (unless `overwrite`).
- A pair that fails (an unreadable file, bad per-row settings, a failed run) goes to the dead
  letter output, `dead_letter.jsonl` in `output_dir` (one JSON object per line: content, style,
  output, reason), instead of failing the job.
"""

import csv
import dataclasses
import io
import json
import os

try:
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions
except ImportError as exc:  # the extra is not installed
    from tfstyle.io.filesystems import EXTRA_HINT

    raise ImportError(f"{EXTRA_HINT} ({exc})") from exc

from tfstyle.config import DEFAULTS, StyleConfig
from tfstyle.errors import ConfigError, TfstyleError
from tfstyle.io import filesystems as fs

DEAD_LETTER_FILE = "dead_letter.jsonl"
# Columns of a manifest that are not settings.
PAIR_COLUMNS = ("content", "style")
_NAMESPACE = "tfstyle"
_SETTINGS = {f.name for f in dataclasses.fields(StyleConfig)}


@dataclasses.dataclass(frozen=True)
class Pair:
    """One content x style job: the two files and the settings that differ for it.

    Attributes:
        content, style: paths on any Beam filesystem.
        settings: `((name, value), ...)` of `StyleConfig` fields for this pair only, sorted.
    """

    content: str
    style: str
    settings: tuple = ()

    @property
    def name(self):
        return f"{_stem(self.content)}__{_stem(self.style)}.png"


@dataclasses.dataclass(frozen=True)
class Summary:
    """What a pipeline run did: outputs `written`, `skipped` (they existed) and `failed` (rows
    in `dead_letter`, the dead letter file's path)."""

    written: int
    skipped: int
    failed: int
    dead_letter: str


def pairs(contents, styles):
    """Every content x every style. Each argument: files, folders or glob patterns.

    Raises:
        ConfigError: a list matches nothing, or two pairs would write the same output.
    """
    found = {}
    for role, patterns in (("content", contents), ("style", styles)):
        found[role] = fs.match(patterns)
        if not found[role]:
            raise ConfigError(f"no {role} files match {', '.join(map(str, patterns))}")
    return _unique([Pair(c, s) for c in found["content"] for s in found["style"]])


def read_manifest(path, *, config=DEFAULTS):
    """The pairs of a manifest: CSV with a header, or JSON Lines (`.jsonl`), with columns
    `content`, `style` and any `StyleConfig` field (e.g. `iterations`, `style_weight`) whose
    value applies to that row only (an empty CSV cell: the default). CSV values are read as
    JSON where they parse (`50`, `0.5`, `true`, `["block1_conv1"]`), else as text.

    Raises:
        ConfigError: a row lacks a column, names an unknown setting or one `config` refuses
            (the row's number says which).
    """
    text = fs.read_bytes(path).decode("utf-8-sig")
    name = os.fsdecode(path)
    if name.endswith(".jsonl"):
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        rows = [
            {k: _csv_value(v) for k, v in row.items() if v not in ("", None)}
            for row in csv.DictReader(io.StringIO(text))
        ]
    result = []
    for number, row in enumerate(rows, start=1):
        result.append(_manifest_pair(row, number=number, name=name, config=config))
    if not result:
        raise ConfigError(f"the manifest {name} has no rows")
    return _unique(result)


def _manifest_pair(row, *, number, name, config):
    where = f"{name} row {number}"
    missing = [k for k in PAIR_COLUMNS if not row.get(k)]
    if missing:
        raise ConfigError(f"{where} has no {' or '.join(missing)}")
    settings = {k: v for k, v in row.items() if k not in PAIR_COLUMNS}
    unknown = sorted(set(settings) - _SETTINGS)
    if unknown:
        raise ConfigError(f"{where}: unknown settings {', '.join(unknown)}")
    try:
        config.replace(**_as_fields(settings))
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return Pair(str(row["content"]), str(row["style"]), tuple(sorted(settings.items())))


def _as_fields(settings):
    # JSON has lists where StyleConfig keeps tuples.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}


def _csv_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _unique(found):
    names = {}
    for pair in found:
        if pair.name in names:
            other = names[pair.name]
            raise ConfigError(
                f"{other.content} + {other.style} and {pair.content} + {pair.style} would both "
                f"be saved as {pair.name}; rename one of the files"
            )
        names[pair.name] = pair
    return found


def _stem(path):
    return os.path.splitext(os.fsdecode(path).rstrip("/").rsplit("/", 1)[-1])[0]


class StylizeFn(beam.DoFn):
    """Stylizes a `Pair` into `output_dir`: yields the output's path, or on the "skipped"
    output the path of one that existed, or on the "dead_letter" output a JSON line."""

    DEAD_LETTER = "dead_letter"
    SKIPPED = "skipped"

    def __init__(self, *, config, output_dir, overwrite=False):
        super().__init__()
        self.config = config
        self.output_dir = os.fsdecode(output_dir)
        self.overwrite = overwrite
        self.counters = {
            k: beam.metrics.Metrics.counter(_NAMESPACE, k) for k in ("written", "skipped", "failed")
        }

    def setup(self):
        from tfstyle import shell

        # A worker process imports TensorFlow here first: without its start-up log lines,
        # as in the command's own process.
        shell.set_tf_log_level()
        with shell.quiet_native_logs():
            from tfstyle.loop import RunnerCache
            from tfstyle.objective import feature_extractor_for

        feature_extractor_for(self.config)  # cached: built once per worker process
        self.runners = RunnerCache()

    def process(self, pair):
        output = fs.join(self.output_dir, pair.name)
        if not self.overwrite and fs.exists(output):
            self.counters["skipped"].inc()
            yield beam.pvalue.TaggedOutput(self.SKIPPED, output)
            return
        try:
            self._stylize(pair, output)
        except TfstyleError as exc:
            self.counters["failed"].inc()
            row = {"content": pair.content, "style": pair.style, "output": output}
            yield beam.pvalue.TaggedOutput(
                self.DEAD_LETTER, json.dumps({**row, "reason": str(exc)})
            )
            return
        self.counters["written"].inc()
        yield output

    def _stylize(self, pair, output):
        from tfstyle import outputs
        from tfstyle.loop import stylize

        config = self.config.replace(**_as_fields(dict(pair.settings)))
        content, style = fs.read_image(pair.content), fs.read_image(pair.style)
        result = stylize(content, [style], config=config, runners=self.runners)
        report = outputs.report(result, output=output, content=pair.content, styles=[pair.style])
        fs.write_bytes(json.dumps(report, indent=1).encode(), outputs.report_path(output))
        fs.write_image(result.image, output)  # last: its existence marks the pair done


def stylize_pairs(found, *, config, output_dir, overwrite=False):
    """The transform: a PCollection of `Pair`s to the tagged outputs of `StylizeFn` (main:
    written paths; "skipped"; "dead_letter"); writes the dead letter file."""
    results = found | "Stylize" >> beam.ParDo(
        StylizeFn(config=config, output_dir=output_dir, overwrite=overwrite)
    ).with_outputs(StylizeFn.DEAD_LETTER, StylizeFn.SKIPPED, main="written")
    _ = results[StylizeFn.DEAD_LETTER] | "DeadLetter" >> beam.io.WriteToText(
        fs.join(output_dir, DEAD_LETTER_FILE), shard_name_template=""
    )
    return results


def run(found, *, output_dir, config=DEFAULTS, overwrite=False, options=()):
    """Run the pipeline on `found` pairs and wait for it; returns a `Summary`.

    Args:
        found: `Pair`s (`pairs`, `read_manifest`).
        output_dir: where the outputs go (any Beam filesystem).
        config: the `StyleConfig` of every pair (a manifest row's settings override it).
        overwrite: redo pairs whose output exists.
        options: Beam pipeline options, as command-line strings (`--runner=DataflowRunner`,
            `--direct_num_workers=2`...); none: the DirectRunner in this process.
    """
    pipeline = beam.Pipeline(options=PipelineOptions(list(options)))
    elements = pipeline | "Pairs" >> beam.Create(list(found))
    # Reshuffle: Create makes one bundle; spread the pairs over the workers.
    stylize_pairs(
        elements | "Spread" >> beam.Reshuffle(),
        config=config,
        output_dir=output_dir,
        overwrite=overwrite,
    )
    result = pipeline.run()
    result.wait_until_finish()
    counts = {k: _counter(result, k) for k in ("written", "skipped", "failed")}
    return Summary(**counts, dead_letter=fs.join(output_dir, DEAD_LETTER_FILE))


def _counter(result, name):
    found = result.metrics().query(MetricsFilter().with_namespace(_NAMESPACE).with_name(name))
    return int(sum(c.committed or 0 for c in found["counters"]))
