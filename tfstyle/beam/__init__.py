"""Stylization as Apache Beam pipelines: the same work as the in-process commands, on the
DirectRunner (one machine, every core) or on Dataflow, Flink or Spark. Needs the `beam` extra:
`pip install "tfstyle[beam]"`.

    pairs = tfstyle.beam.pairs(["photos/"], ["paintings/"])     # or read_manifest("jobs.csv")
    summary = tfstyle.beam.run(pairs, output_dir="out/", config=StyleConfig(max_size=512))

Each job writes `<content stem>__<style stem>.png` and its JSON report in `output_dir` (any Beam
filesystem: a local folder, `gs://`, `s3://`); an output that exists is skipped, so a rerun or a
retried bundle does no job twice; a job that fails goes to `dead_letter.jsonl` instead of
failing the pipeline.

- `batch`: content x style pairs, each optimised (`run`, `stylize_pairs`, `StylizeFn`).
- `fast`: photos painted by a trained stylizer through Beam's `RunInference`, batched
  (`run_stylizer`, `stylize_with_model`, `StylizerHandler`).
- `video`: one video in fixed segments with cross-faded overlaps (`run_video`, `segments`,
  `SegmentFn`).
"""

try:
    import apache_beam  # noqa: F401
except ImportError as exc:  # the extra is not installed
    from tfstyle.io.filesystems import EXTRA_HINT

    raise ImportError(f"{EXTRA_HINT} ({exc})") from exc

from tfstyle.beam.batch import StylizeFn, run, stylize_pairs
from tfstyle.beam.common import DEAD_LETTER_FILE, Summary
from tfstyle.beam.fast import StylizerHandler, run_stylizer, stylize_with_model
from tfstyle.beam.pairs import PAIR_COLUMNS, Pair, pairs, read_manifest
from tfstyle.beam.video import Segment, SegmentFn, VideoSummary, run_video, segments

__all__ = [
    "DEAD_LETTER_FILE",
    "PAIR_COLUMNS",
    "Pair",
    "Segment",
    "SegmentFn",
    "StylizeFn",
    "StylizerHandler",
    "Summary",
    "VideoSummary",
    "pairs",
    "read_manifest",
    "run",
    "run_stylizer",
    "run_video",
    "segments",
    "stylize_pairs",
    "stylize_with_model",
]
