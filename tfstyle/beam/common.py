"""What every tfstyle pipeline shares: its counters, its dead letter file, how a finished output
is written (report first, image last, each atomically) and how a run is summed up."""

import contextlib
import dataclasses
import io
import json
import logging

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from tfstyle.errors import ConfigError
from tfstyle.io import filesystems as fs

DEAD_LETTER_FILE = "dead_letter.jsonl"
NAMESPACE = "tfstyle"
COUNTERS = ("written", "skipped", "failed")
# Tags of the outputs a tfstyle DoFn yields besides its main one (the written paths).
DEAD_LETTER = "dead_letter"
SKIPPED = "skipped"


@dataclasses.dataclass(frozen=True)
class Summary:
    """What a pipeline run did: outputs `written`, `skipped` (they existed) and `failed` (rows
    in `dead_letter`, the dead letter file's path)."""

    written: int
    skipped: int
    failed: int
    dead_letter: str


def counters():
    """The run's `written`, `skipped` and `failed` Beam counters, by name."""
    return {k: beam.metrics.Metrics.counter(NAMESPACE, k) for k in COUNTERS}


def dead_letter(counter, reason, **row):
    """Count a failure and return its dead letter output (`dead_letter_line`)."""
    return beam.pvalue.TaggedOutput(DEAD_LETTER, dead_letter_line(counter, reason, **row))


def dead_letter_line(counter, reason, **row):
    """Count a failure and return its line of the dead letter file: `row` and `reason`."""
    counter.inc()
    return json.dumps({**row, "reason": str(reason)})


def skipped(counter, output):
    counter.inc()
    return beam.pvalue.TaggedOutput(SKIPPED, output)


def write_finished(report, image, output):
    """The report beside `output`, then the image: the image's existence marks the job done,
    so a job stopped between the two writes is redone, never half-kept."""
    from tfstyle.io import outputs

    fs.write_bytes(json.dumps(report, indent=1).encode(), outputs.report_path(output))
    fs.write_image(image, output)


def write_dead_letters(failures, output_dir, *, label="DeadLetter"):
    """Write a PCollection of dead letter lines to `dead_letter.jsonl` in `output_dir`."""
    return failures | label >> beam.io.WriteToText(
        fs.join(output_dir, DEAD_LETTER_FILE), shard_name_template=""
    )


def new_pipeline(options):
    """A pipeline with Beam `options` (command-line strings).

    Raises:
        ConfigError: an option Beam cannot parse, or an unknown runner (before any work: Beam
            itself would print its whole usage and exit, or raise deep in its setup).
    """
    parsed = PipelineOptions(list(options))
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):
            parsed.get_all_options()  # argparse: a bad value exits the process
    except SystemExit:
        lines = usage.getvalue().strip().splitlines() or ["a bad option"]
        reason = lines[-1].split("error: ", 1)[-1]
        raise ConfigError(f"bad Beam pipeline option: {reason}") from None
    try:
        return beam.Pipeline(options=parsed)
    except ValueError as exc:  # "Unexpected pipeline runner: ..."
        raise ConfigError(str(exc).split(". Valid values", 1)[0]) from None


def execute(pipeline, output_dir):
    """Run `pipeline`, wait for it, and sum up its counters."""
    result = pipeline.run()
    result.wait_until_finish()
    counts = {k: _counter(result, k) for k in COUNTERS}
    return Summary(**counts, dead_letter=fs.join(output_dir, DEAD_LETTER_FILE))


def _counter(result, name):
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE).with_name(name))
    return int(sum(c.committed or 0 for c in found["counters"]))


class _NoMemoryWarning(logging.Filter):
    # RunInference logs "Resource module is not available..." for every batch when PyTorch
    # is not installed: Beam imports `resource` in the same try block as its torch-based model
    # manager (apache_beam/ml/inference/base.py, 2.77), so the import fails on Linux too.
    def filter(self, record):
        return "Resource module is not available" not in record.getMessage()


def drop_memory_warning():
    """Keep RunInference's spurious per-batch memory warning out of this process's logs."""
    root = logging.getLogger()
    if not any(isinstance(f, _NoMemoryWarning) for f in root.filters):
        root.addFilter(_NoMemoryWarning())
