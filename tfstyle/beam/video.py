"""One video as a pipeline: the frames cut into fixed segments that stylize in parallel
(`SegmentFn`), then one stitch that cross-fades the overlaps, encodes the video and writes the
report (`stitch`); `run_video` is the whole job.

Temporal consistency is sequential (each frame starts from the previous output), so a video
cannot be split frame by frame. Each segment runs as `stylize_video` runs a whole clip: its
first frame stylized in full, the later ones temporally from it. Segment k > 0 also makes the
`overlap` frames before its start, which segment k - 1 makes too; the stitch blends the two
versions of frame `start_k - overlap + j` with weight t = (j + 1) / (overlap + 1) on segment
k's, so the picture drifts from one segment's solution to the next instead of jumping.
Deviation from Ruder et al. (2016), who run the whole sequence in one pass: the segments, and
the cross-fade between them, are tfstyle's.

How the work is done right on workers that fail and retry:

- `SegmentFn.setup` builds the feature network once per worker and keeps a `RunnerCache` (or
  loads the `FastStylizer` of `model`).
- Each frame of a segment is written, atomically, as soon as it is done, to the work folder
  beside the output (`out.segments/0003/frame_000123.png`); the segment's JSON record
  (`0003/segment.json`) is written last and marks it done. A segment whose record exists is
  skipped, so a retried bundle or a rerun does no segment twice; a segment stopped midway is
  redone from its first frame.
- A segment that fails goes to the dead letter output instead of failing the job; the stitch
  then writes `dead_letter.jsonl` in the work folder, encodes nothing and keeps the finished
  segments for a rerun.

Input and output are local paths (PyAV decodes and encodes local files): on the DirectRunner,
this machine's disk; on a cluster, a filesystem every worker mounts. `gs://` and `s3://` are
refused.
"""

import dataclasses
import json
import os
import time
from fractions import Fraction

import apache_beam as beam
import numpy as np

from tfstyle.beam import common
from tfstyle.errors import ConfigError, TfstyleError
from tfstyle.io import filesystems as fs
from tfstyle.io import video as vio
from tfstyle.settings.style import DEFAULTS
from tfstyle.settings.video import (
    DEFAULT_FRAME_RATE,
    SEGMENT_DEFAULTS,
    VIDEO_DEFAULTS,
    VideoConfig,
    as_frame_rate,
)

RECORD_FILE = "segment.json"
RUN_FILE = "run.json"
BLEND_FOLDER = "blend"


@dataclasses.dataclass(frozen=True)
class Segment:
    """Frames `[start, stop)` of a video, kept from this segment, made from frame `first`
    (`start - overlap` for a later segment: the frames it shares with the previous one)."""

    index: int
    start: int
    stop: int
    first: int

    @property
    def name(self):
        return f"{self.index:04d}"


def segments(frame_count, *, segment_frames, overlap):
    """Fixed segments of `segment_frames` frames (the last one keeps the rest); each one after
    the first also makes the `overlap` frames before its start.

    Raises:
        ConfigError: a bad segment size or overlap (`SegmentConfig`), or no frames.
    """
    from tfstyle.settings.video import SegmentConfig

    SegmentConfig(frames=segment_frames, overlap=overlap)
    if isinstance(frame_count, bool) or not isinstance(frame_count, int) or frame_count < 1:
        raise ConfigError(f"a video needs at least one frame; got {frame_count!r}")
    starts = range(0, frame_count, segment_frames)
    return [
        Segment(k, start, min(start + segment_frames, frame_count), max(0, start - overlap))
        for k, start in enumerate(starts)
    ]


def frame_sources(found):
    """Where each final frame comes from: `(index, segment, other, weight)`, the frame being
    `(1 - weight) * segment's + weight * other's` (other None and weight 0 outside overlaps)."""
    plan = []
    for k, segment in enumerate(found):
        following = found[k + 1] if k + 1 < len(found) else None
        for index in range(segment.start, segment.stop):
            if following is not None and index >= following.first:
                weight = (index - following.first + 1) / (following.start - following.first + 1)
                plan.append((index, segment.index, following.index, weight))
            else:
                plan.append((index, segment.index, None, 0.0))
    return plan


def crossfade(previous, current, weight):
    """`(1 - weight) * previous + weight * current`, rounded to 8 bits as every written frame is."""
    blended = (1.0 - weight) * np.asarray(previous, np.float32) + weight * np.asarray(
        current, np.float32
    )
    return np.rint(np.clip(blended, 0.0, 1.0) * 255.0).astype(np.float32) / 255.0


@dataclasses.dataclass(frozen=True)
class VideoJob:
    """Everything a worker needs to know of the job (picklable, sent with the DoFn).

    Attributes:
        content: the input video's path, or the tuple of a folder's frame files.
        output: the video file or frames folder to write; work: the segments' folder.
        found: the `Segment`s; size: (height, width) of the frames.
        frame_rate: a string ("12", "30000/1001"); audio: the input to copy audio from, or None.
        video: the `VideoConfig`; settings: the run's settings, for `run.json` and the report.
    """

    content: str | tuple
    output: str
    work: str
    found: tuple
    size: tuple
    frame_rate: str
    audio: str | None
    video: VideoConfig
    settings: dict

    @property
    def to_video(self):
        return vio.is_video_path(self.output)

    def folder(self, index):
        return fs.join(self.work, f"{index:04d}")

    def frame(self, index, frame):
        return vio.frame_path(self.folder(index), frame)

    def record(self, index):
        return fs.join(self.folder(index), RECORD_FILE)

    @property
    def report(self):
        from tfstyle.io import outputs

        return outputs.report_path(self.output.rstrip(os.sep))

    @property
    def dead_letter(self):
        return fs.join(self.work, common.DEAD_LETTER_FILE)


class SegmentFn(beam.DoFn):
    """Stylizes a `Segment` into the work folder: yields its record (a dict), or on the
    "dead_letter" output a JSON line."""

    def __init__(self, *, job, config, styles=(), model=None, tile_size=None):
        super().__init__()
        self.job, self.config, self.styles = job, config, tuple(styles)
        self.model, self.tile_size = model, tile_size
        self.counters = common.counters()

    def setup(self):
        from tfstyle.io import native_logs

        native_logs.set_tf_log_level()
        with native_logs.quiet_native_logs():
            from tfstyle.optimize.objective import feature_extractor_for
            from tfstyle.optimize.runners import RunnerCache

        self.runners = RunnerCache()
        self.stylizer = None
        self.style_images = None
        if self.model:
            from tfstyle.fast.stylizer import FastStylizer

            options = {} if self.tile_size is None else {"tile_size": self.tile_size}
            self.stylizer = FastStylizer.load(self.model, jit_compile=True, **options)
        else:
            feature_extractor_for(self.config)  # cached: built once per worker process

    def process(self, segment):
        done = _read_record(self.job.record(segment.index))
        if done is not None:
            self.counters["skipped"].inc()
            yield done
            return
        try:
            record = self._stylize(segment)
        except TfstyleError as exc:
            row = {"segment": segment.index, "frames": [segment.first, segment.stop]}
            yield common.dead_letter(self.counters["failed"], exc, **row)
            return
        self.counters["written"].inc()
        yield record

    def _stylize(self, segment):
        from tfstyle.video.stylize import stylize_video

        if self.style_images is None and not self.model:
            self.style_images = [fs.read_image(path) for path in self.styles]
        job, frames = self.job, []
        began = time.perf_counter()

        def on_frame(record):
            index = segment.first + record.index
            fs.write_image(record.image, job.frame(segment.index, index))
            frames.append({**record.to_dict(), "index": index})

        stylize_video(
            vio.read_frame_range(job.content, segment.first, segment.stop),
            self.style_images,
            config=self.config,
            video=job.video,
            stylizer=self.stylizer,
            size=job.size,
            on_frame=on_frame,
            runners=self.runners,
        )
        record = {
            **dataclasses.asdict(segment),
            "seconds": round(time.perf_counter() - began, 3),
            "per_frame": frames,
        }
        # Written last: its existence says every frame of the segment is on disk.
        fs.write_bytes(json.dumps(record, indent=1).encode(), job.record(segment.index))
        return record


def _read_record(path):
    """A finished segment's record, or None (not finished, or a record that does not parse)."""
    if not fs.exists(path):
        return None
    try:
        return json.loads(fs.read_bytes(path))
    except (TfstyleError, ValueError):
        return None


def stitch(records, failures, *, job):
    """After every segment: with all of them done, write the final frames (overlaps blended),
    encode the video, write the report and remove the work folder; returns the output path.
    With failures, write them to the work folder's dead letter file and return None."""
    if failures or len(records) != len(job.found):
        lines = "".join(f"{line}\n" for line in failures)
        fs.write_bytes(lines.encode(), job.dead_letter)
        return None
    if fs.exists(job.report) and not all(fs.exists(job.record(s.index)) for s in job.found):
        # A retried stitch after its report was written: the work folder is (being) removed.
        return job.output
    by_segment = {r["index"]: r for r in records}
    paths, finals, blended = _final_frames(job)
    per_frame = _frame_records(job, by_segment, blended, finals)
    if job.to_video:
        vio.write_video(
            paths, job.output, frame_rate=Fraction(job.frame_rate), audio_from=job.audio
        )
    report = _report(job, by_segment, per_frame)
    fs.write_bytes(json.dumps(report, indent=1).encode(), job.report)
    remove_work(job)
    return job.output


def _final_frames(job):
    """(the final frames' files, in order; {index: final image} of the frames around each
    boundary, for their warping errors; {index: (other segment, weight)} of blended frames)."""
    boundary = _boundary_frames(job.found)
    near = boundary | {i - 1 for i in boundary}
    paths, finals, blended = [], {}, {}
    for index, segment, other, weight in frame_sources(job.found):
        source = job.frame(segment, index)
        if other is None:
            paths.append(_keep(job, index, source))
            if index in near:
                finals[index] = fs.read_image(source)
            continue
        image = crossfade(fs.read_image(source), fs.read_image(job.frame(other, index)), weight)
        folder = fs.join(job.work, BLEND_FOLDER) if job.to_video else job.output
        paths.append(fs.write_image(image, vio.frame_path(folder, index)))
        finals[index], blended[index] = image, (other, weight)
    return paths, finals, blended


def _keep(job, index, source):
    """An unblended frame's final file: a video is encoded from the segment's own file; a
    frames folder gets a copy."""
    if job.to_video:
        return source
    return fs.write_bytes(fs.read_bytes(source), vio.frame_path(job.output, index))


def _boundary_frames(found):
    """The frames whose warping error a stitch changes: each later segment's shared frames and
    its start (the first frame its own version alone)."""
    return {i for s in found[1:] for i in range(s.first, s.start + 1)}


def _frame_records(job, by_segment, blended, finals):
    """Each final frame's record: the keeping segment's, with the warping error measured again
    on the final frames around each boundary (as `stylize_video` measures it)."""
    from tfstyle.ops import preprocessing as pp
    from tfstyle.ops.flow import frame_motion, warping_error

    boundary = _boundary_frames(job.found)
    inputs = {}
    if boundary:
        first, last = min(boundary) - 1, max(boundary)
        frames = vio.read_frame_range(job.content, first, last + 1)
        for index, frame in enumerate(frames, start=first):
            if index in boundary or index + 1 in boundary:
                inputs[index] = pp.resize(pp.as_float_image(frame), *job.size)
    records = []
    for index, segment, _, _ in frame_sources(job.found):
        kept = by_segment[segment]["per_frame"][index - by_segment[segment]["first"]]
        record = {**kept, "segment": segment}
        if index in blended:
            other, weight = blended[index]
            record["blend"] = {"segment": other, "weight": weight}
        if index in boundary:
            motion = frame_motion(inputs[index - 1], inputs[index], method=job.video.flow)
            record["warping_error"] = warping_error(finals[index], finals[index - 1], motion)
            record["reliable"] = motion.reliable_fraction
            record["boundary"] = True
        records.append(record)
    return records


def _report(job, by_segment, per_frame):
    from tfstyle import __version__

    def mean(records):  # `video.mean_warping_error`, over records read back as dicts
        errors = [r["warping_error"] for r in records if r["warping_error"] is not None]
        return float(np.mean(errors)) if errors else None

    segments_done = [by_segment[s.index] for s in job.found]
    return {
        "version": __version__,
        **job.settings,
        "output": job.output,
        "frame_rate": job.frame_rate,
        "size": [job.size[1], job.size[0]],
        "audio": job.to_video and job.audio is not None,
        "mean_warping_error": mean(per_frame),
        "boundary_warping_error": mean([r for r in per_frame if r.get("boundary")]),
        "seconds": round(sum(r["seconds"] for r in segments_done), 1),
        "per_segment": [
            {k: v for k, v in r.items() if k != "per_frame"}
            | {"mean_warping_error": mean(r["per_frame"])}
            for r in segments_done
        ],
        "per_frame": per_frame,
    }


def remove_work(job):
    """Delete the work folder's frames, records and files of ours; anything else stays. The
    records go first: a segment without one is unfinished, never a finished one missing
    frames."""
    from tfstyle.io import remove_file

    for segment in job.found:
        remove_file(job.record(segment.index))
    for segment in job.found:
        vio.remove_frame_folder(job.folder(segment.index))
    vio.remove_frame_folder(fs.join(job.work, BLEND_FOLDER))
    vio.remove_frame_folder(job.work, extra=(RUN_FILE, common.DEAD_LETTER_FILE))


@dataclasses.dataclass(frozen=True)
class VideoSummary(common.Summary):
    """`Summary` of segments, and `output`: the path written, or None when segments failed
    (the finished ones are kept in `work` for a rerun); `finished_before`: the output was
    already finished, and nothing ran."""

    output: str | None
    work: str
    segments: int
    finished_before: bool


def run_video(
    content,
    *,
    output,
    styles=(),
    model=None,
    config=DEFAULTS,
    video=VIDEO_DEFAULTS,
    segmenting=SEGMENT_DEFAULTS,
    frame_rate=None,
    tile_size=None,
    overwrite=False,
    options=(),
):
    """Stylize a video in segments on Beam and wait for it; returns a `VideoSummary`.

    Args:
        content: a local video file or folder of frames.
        output: a video file (.mp4, .mov, .mkv: H.264, the input's frame rate, its audio
            copied) or a folder for the frames; its report is `outputs.report_path(output)`.
        styles: style image paths (optimised frames), or `model`: a trained stylizer's path.
        config, video: as for `stylize_video`; `config.max_size` bounds the frames.
        segmenting: a `SegmentConfig` (frames per segment, overlap).
        frame_rate: for a folder of frames (default 25).
        tile_size: the `FastStylizer`'s, with `model`.
        overwrite: redo every segment, and the output if it is finished.
        options: Beam pipeline options, as command-line strings; none: the DirectRunner here.

    A finished output (its report exists) is not redone unless `overwrite`: the summary then
    counts every segment skipped and no pipeline runs.

    Raises:
        ConfigError: remote paths, a frame rate for a video file, or segments made with other
            settings in the work folder. VideoError: an unreadable input.
    """
    job = _job(content, output, styles, model, config, video, segmenting, frame_rate)
    if overwrite:
        remove_work(job)
        if not job.to_video:  # a longer earlier run's frames would stay after the new ones
            vio.remove_frame_folder(job.output)
    elif fs.exists(job.report):
        count = len(job.found)
        return VideoSummary(
            0,
            count,
            0,
            job.dead_letter,
            output=job.output,
            work=job.work,
            segments=count,
            finished_before=True,
        )
    pipeline = common.new_pipeline(options)  # bad options refused before the work folder
    _claim_work(job)
    fn = SegmentFn(job=job, config=config, styles=styles, model=model, tile_size=tile_size)
    results = (
        pipeline
        | "Segments" >> beam.Create(list(job.found))
        # Create makes one bundle; spread the segments over the workers.
        | "Spread" >> beam.Reshuffle()
        | "Stylize" >> beam.ParDo(fn).with_outputs(common.DEAD_LETTER, main="records")
    )
    failures = beam.pvalue.AsList(results[common.DEAD_LETTER])
    # ToList is the barrier: the stitch sees every segment's record (and every failure) at once.
    _ = (
        results["records"]
        | "AllSegments" >> beam.combiners.ToList()
        | "Stitch" >> beam.Map(stitch, failures, job=job)
    )
    summary = common.execute(pipeline, job.work)
    return VideoSummary(
        **dataclasses.asdict(summary),
        output=None if summary.failed else job.output,
        work=job.work,
        segments=len(job.found),
        finished_before=False,
    )


def _job(content, output, styles, model, config, video, segmenting, frame_rate):
    from tfstyle.io import load_image
    from tfstyle.video.stylize import frame_size

    paths = [os.fsdecode(p) for p in (content, output, *styles, *([model] if model else []))]
    remote = [p for p in paths if "://" in p]
    if remote:
        raise ConfigError(
            f"a video pipeline reads and writes local paths (a disk every worker sees); got "
            f"{remote[0]}"
        )
    content, output = os.path.abspath(paths[0]), os.path.abspath(paths[1]).rstrip(os.sep)
    if vio.is_frame_folder(content):
        source = tuple(vio.frame_folder_paths(content))
        shape, count, audio = load_image(source[0]).shape, len(source), None
        rate = as_frame_rate(DEFAULT_FRAME_RATE if frame_rate is None else frame_rate)
    else:
        if frame_rate is not None:
            raise ConfigError("frame_rate is for a folder of frames; a video keeps its own rate")
        info = vio.probe_video(content)
        source, shape, count = content, (info.height, info.width, 3), info.frame_count
        audio, rate = (content if info.has_audio else None), info.frame_rate
    found = segments(count, segment_frames=segmenting.frames, overlap=segmenting.overlap)
    size = frame_size(shape, config.max_size, even=vio.is_video_path(output))
    settings = {
        "content": content,
        "frames": count,
        "model": os.path.abspath(model) if model else None,
        "style": [os.path.abspath(os.fsdecode(p)) for p in styles],
        "settings": config.to_dict(),
        "video": video.to_dict(),
        "segments": segmenting.to_dict(),
    }
    return VideoJob(
        content=source,
        output=output,
        work=vio.segments_folder(output),
        found=tuple(found),
        size=tuple(size),
        frame_rate=str(rate),
        audio=audio,
        video=video,
        settings=settings,
    )


def _claim_work(job):
    """Write the run's settings to the work folder, or check them against a rerun's: finished
    segments of other settings must not end up in this video."""
    path = fs.join(job.work, RUN_FILE)
    if not fs.exists(path):
        fs.write_bytes(json.dumps(job.settings, indent=1).encode(), path)
        return
    saved = json.loads(fs.read_bytes(path))
    changed = _differences(saved, job.settings)
    if changed:
        raise ConfigError(
            f"{job.work} holds segments made with other settings ({', '.join(changed)}); use "
            "the same ones, or delete it or pass --overwrite to start again"
        )


def _differences(saved, settings):
    """The names of the settings that differ, one level down into groups (`settings.iterations`,
    `segments.overlap`)."""
    changed = []
    for key in sorted(settings):
        old, new = saved.get(key), settings[key]
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changed += [f"{key}.{k}" for k in sorted({*old, *new}) if old.get(k) != new.get(k)]
        else:
            changed.append(key)
    return changed
