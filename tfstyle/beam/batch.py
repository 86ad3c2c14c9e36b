"""The content x style batch as a pipeline: `StylizeFn` optimises each `Pair` (as `tfstyle
--output_dir` does in one process), `stylize_pairs` is the transform, `run` the whole job.

How the work is done right on workers that fail and retry:

- `StylizeFn.setup` builds the feature network once per worker and keeps a `RunnerCache`, so
  images of one size compile one step program per worker.
- The report is written first and the image last, each to a temporary name then renamed: an
  image that exists is a finished pair, and is skipped. A retried bundle, an element processed
  twice or a rerun job does no pair twice (unless `overwrite`).
- A pair that fails (an unreadable file, bad per-row settings, a failed run) goes to the dead
  letter output, `dead_letter.jsonl` in `output_dir` (one JSON object per line: content, style,
  output, reason), instead of failing the job.
"""

import os

import apache_beam as beam

from tfstyle.beam import common
from tfstyle.beam.pairs import as_fields
from tfstyle.errors import TfstyleError
from tfstyle.io import filesystems as fs
from tfstyle.settings.style import DEFAULTS


class StylizeFn(beam.DoFn):
    """Stylizes a `Pair` into `output_dir`: yields the output's path, or on the "skipped"
    output the path of one that existed, or on the "dead_letter" output a JSON line."""

    DEAD_LETTER = common.DEAD_LETTER
    SKIPPED = common.SKIPPED

    def __init__(self, *, config, output_dir, overwrite=False):
        super().__init__()
        self.config = config
        self.output_dir = os.fsdecode(output_dir)
        self.overwrite = overwrite
        self.counters = common.counters()

    def setup(self):
        from tfstyle.io import native_logs

        # A worker process imports TensorFlow here first: without its start-up log lines,
        # as in the command's own process.
        native_logs.set_tf_log_level()
        with native_logs.quiet_native_logs():
            from tfstyle.optimize.objective import feature_extractor_for
            from tfstyle.optimize.runners import RunnerCache

        feature_extractor_for(self.config)  # cached: built once per worker process
        self.runners = RunnerCache()

    def process(self, pair):
        output = fs.join(self.output_dir, pair.name)
        if not self.overwrite and fs.exists(output):
            yield common.skipped(self.counters["skipped"], output)
            return
        try:
            self._stylize(pair, output)
        except TfstyleError as exc:
            row = {"content": pair.content, "style": pair.style, "output": output}
            yield common.dead_letter(self.counters["failed"], exc, **row)
            return
        self.counters["written"].inc()
        yield output

    def _stylize(self, pair, output):
        from tfstyle.io import outputs
        from tfstyle.optimize.stylize import stylize

        config = self.config.replace(**as_fields(dict(pair.settings)))
        content, style = fs.read_image(pair.content), fs.read_image(pair.style)
        result = stylize(content, [style], config=config, runners=self.runners)
        report = outputs.report(result, output=output, content=pair.content, styles=[pair.style])
        common.write_finished(report, result.image, output)


def stylize_pairs(found, *, config, output_dir, overwrite=False):
    """The transform: a PCollection of `Pair`s to the tagged outputs of `StylizeFn` (main:
    written paths; "skipped"; "dead_letter"); writes the dead letter file."""
    results = found | "Stylize" >> beam.ParDo(
        StylizeFn(config=config, output_dir=output_dir, overwrite=overwrite)
    ).with_outputs(common.DEAD_LETTER, common.SKIPPED, main="written")
    common.write_dead_letters(results[common.DEAD_LETTER], output_dir)
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
    pipeline = common.new_pipeline(options)
    elements = pipeline | "Pairs" >> beam.Create(list(found))
    # Reshuffle: Create makes one bundle; spread the pairs over the workers.
    stylize_pairs(
        elements | "Spread" >> beam.Reshuffle(),
        config=config,
        output_dir=output_dir,
        overwrite=overwrite,
    )
    return common.execute(pipeline, output_dir)
