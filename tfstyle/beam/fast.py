"""Painting photos with a trained fast stylizer on Beam, through Beam's `RunInference`.

    summary = tfstyle.beam.run_stylizer(["photos/"], model="saved_models/starry_night/1",
                                        output_dir="out/")

Each photo becomes `<content stem>__<model name>.png` (as `tfstyle --model --output_dir`) and
its JSON report. Stages:

1. `ReadPhotoFn`: skips a photo whose output exists; reads, decodes and fits it to `max_size`;
   an unreadable photo goes to the dead letters.
2. `RunInference` with `StylizerHandler`: Beam batches the photos (`batch_size`), loads the
   stylizer once per worker process, and the photos of one size in a batch share one forward
   pass. A forward pass that fails (out of memory, say) sends its photos to the dead letters;
   so does a batch that fails in Beam's own inference step.
3. `WritePaintedFn`: the colours (`preserve_colors`), then the report, then the image, each
   written atomically: the image's existence marks the photo done.

Why a handler of our own rather than Beam's `TFModelHandlerNumpy`: that one imports
`tensorflow_hub` (which needs the Keras 2 package `tf-keras`), loads with
`tf.keras.models.load_model` (which in Keras 3 reads `.keras` files, not SavedModel folders)
and `numpy.stack`s each batch (photos of different sizes cannot be stacked). `StylizerHandler`
loads the exported folder's `stylizer.keras` with `FastStylizer.load`, on any Keras backend,
and groups each batch by image size.
"""

import dataclasses
import os
import time

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import (
    KeyedModelHandler,
    ModelHandler,
    PredictionResult,
    RunInference,
)

from tfstyle.beam import common
from tfstyle.errors import ConfigError, TfstyleError
from tfstyle.io import filesystems as fs
from tfstyle.io.paths import file_stem, model_name, output_name
from tfstyle.settings.checks import check_choice, check_int
from tfstyle.settings.style import COLOR_MODES
from tfstyle.settings.train import BEAM_BATCH_SIZE, TILE_SIZE


@dataclasses.dataclass(frozen=True)
class Photo:
    """The key of a photo through `RunInference`: its file and its output's path."""

    content: str
    output: str


class StylizerHandler(ModelHandler):
    """Beam's model handler for a stylizer exported by `tfstyle train` or `export_stylizer`.

    Args:
        model: the exported folder (or `.keras` file), where every worker can read it.
        tile_size: as for `FastStylizer`.
        batch_size: photos per batch (the last of a bundle may have fewer).
    """

    def __init__(self, model, *, tile_size=TILE_SIZE, batch_size=BEAM_BATCH_SIZE, **kwargs):
        # Fixed batches: Beam's BatchElements would otherwise start at one element and grow
        # the batches as it times them, so a short job would never share a forward pass.
        super().__init__(min_batch_size=batch_size, max_batch_size=batch_size, **kwargs)
        self.model_path = os.fsdecode(model)
        self.tile_size = tile_size

    def __setstate__(self, state):
        # Unpickled on each worker, before RunInference first measures its memory.
        self.__dict__.update(state)
        common.drop_memory_warning()

    def load_model(self):
        from tfstyle.io import native_logs

        native_logs.set_tf_log_level()  # a worker process may import TensorFlow here first
        common.drop_memory_warning()
        with native_logs.quiet_native_logs():
            from tfstyle.fast.stylizer import FastStylizer

            return FastStylizer.load(self.model_path, tile_size=self.tile_size)

    def run_inference(self, batch, model, inference_args=None):
        """`PredictionResult`s whose `inference` is `{"image", "batch", "elapsed_s"}`: the
        painted image, and how many photos shared its forward pass, in how long; or
        `{"error"}` for the photos of a size whose forward pass failed."""
        by_shape = {}
        for index, image in enumerate(batch):
            by_shape.setdefault(np.shape(image), []).append(index)
        painted = [None] * len(batch)
        for indices in by_shape.values():
            began = time.perf_counter()
            try:
                images = model.paint_batch(np.stack([batch[i] for i in indices]))
            except Exception as exc:  # out of memory at one size, say
                # One size failing spares the batch's other sizes: its photos alone go to
                # the dead letters (WritePaintedFn), not the whole batch.
                for index in indices:
                    painted[index] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            info = {"batch": len(indices), "elapsed_s": time.perf_counter() - began}
            for index, image in zip(indices, images, strict=True):
                painted[index] = {"image": image, **info}
        return [
            PredictionResult(x, p, self.model_path) for x, p in zip(batch, painted, strict=True)
        ]

    def get_num_bytes(self, batch):
        return sum(np.asarray(image).nbytes for image in batch)

    def get_metrics_namespace(self):
        return "tfstyle_RunInference"


class ReadPhotoFn(beam.DoFn):
    """A content path to `(Photo, image)`; on "skipped" an output that exists, on
    "dead_letter" a photo that cannot be read."""

    def __init__(self, *, model, output_dir, max_size=None, overwrite=False):
        super().__init__()
        self.model = os.fsdecode(model)
        self.name = model_name(model)
        self.output_dir = os.fsdecode(output_dir)
        self.max_size = max_size
        self.overwrite = overwrite
        self.counters = common.counters()

    def process(self, content):
        output = fs.join(self.output_dir, output_name(content, self.name))
        if not self.overwrite and fs.exists(output):
            yield common.skipped(self.counters["skipped"], output)
            return
        try:
            image = fs.read_image(content)
        except TfstyleError as exc:
            row = {"content": content, "model": self.model, "output": output}
            yield common.dead_letter(self.counters["failed"], exc, **row)
            return
        if self.max_size:
            from tfstyle.ops import preprocessing as pp

            image = pp.fit_to_max_size(image, self.max_size)
        yield Photo(content, output), image


class WritePaintedFn(beam.DoFn):
    """`(Photo, PredictionResult)` to the written output's path (report first, image last);
    on "dead_letter" a photo whose output could not be written."""

    def __init__(self, *, model, preserve_colors="none"):
        super().__init__()
        self.model = os.fsdecode(model)
        self.preserve_colors = preserve_colors
        self.counters = common.counters()

    def process(self, keyed):
        from tfstyle.io import outputs
        from tfstyle.ops import preprocessing as pp

        photo, result = keyed
        painted = result.inference
        row = {"content": photo.content, "model": self.model, "output": photo.output}
        if "error" in painted:
            yield common.dead_letter(
                self.counters["failed"], f"inference failed: {painted['error']}", **row
            )
            return
        image = pp.keep_content_colors(painted["image"], result.example, mode=self.preserve_colors)
        report = outputs.painted_report(
            content=photo.content,
            model=self.model,
            output=photo.output,
            size=image.shape[:2],
            preserve_colors=self.preserve_colors,
            batch=painted["batch"],
            elapsed_s=painted["elapsed_s"],
        )
        try:
            common.write_finished(report, image, photo.output)
        except TfstyleError as exc:
            yield common.dead_letter(self.counters["failed"], exc, **row)
            return
        self.counters["written"].inc()
        yield photo.output


class FailedBatchFn(beam.DoFn):
    """A batch that `RunInference` could not paint, `(batch, error)`, to one dead letter
    line per photo in it."""

    def __init__(self, *, model):
        super().__init__()
        self.model = os.fsdecode(model)
        self.counters = common.counters()

    def process(self, failure):
        batch, error = failure
        # Beam gives the error as (type, repr, traceback lines) or as the exception itself.
        reason = error[1] if isinstance(error, tuple) else error
        for photo, _ in batch:
            row = {"content": photo.content, "model": self.model, "output": photo.output}
            yield common.dead_letter_line(
                self.counters["failed"], f"inference failed: {reason}", **row
            )


def stylize_with_model(
    contents,
    *,
    model,
    output_dir,
    max_size=None,
    preserve_colors="none",
    tile_size=TILE_SIZE,
    batch_size=BEAM_BATCH_SIZE,
    overwrite=False,
):
    """The transform: a PCollection of content paths to the written outputs' paths; writes
    the dead letter file. Settings as for `run_stylizer`."""
    read = contents | "Read" >> beam.ParDo(
        ReadPhotoFn(model=model, output_dir=output_dir, max_size=max_size, overwrite=overwrite)
    ).with_outputs(common.DEAD_LETTER, common.SKIPPED, main="photos")
    handler = KeyedModelHandler(StylizerHandler(model, tile_size=tile_size, batch_size=batch_size))
    painted, failed = read["photos"] | "Paint" >> RunInference(handler).with_exception_handling()
    written = painted | "Write" >> beam.ParDo(
        WritePaintedFn(model=model, preserve_colors=preserve_colors)
    ).with_outputs(common.DEAD_LETTER, main="written")
    bad_batches = failed.failed_inferences | "FailedBatches" >> beam.ParDo(
        FailedBatchFn(model=model)
    )
    letters = (
        read[common.DEAD_LETTER],
        written[common.DEAD_LETTER],
        bad_batches,
    ) | "AllDeadLetters" >> beam.Flatten()
    common.write_dead_letters(letters, output_dir)
    return written["written"]


def run_stylizer(contents, *, model, output_dir, options=(), **settings):
    """Paint every photo of `contents` with the trained stylizer `model`; returns a `Summary`.

    Args:
        contents: files, folders or glob patterns (any Beam filesystem).
        model: an exported stylizer folder (or `.keras` file) that every worker can read: on a
            fleet, baked into the workers' container.
        output_dir: where the outputs go (any Beam filesystem).
        options: Beam pipeline options, as for `run`.
        **settings: `max_size` (fit each photo to it; None: its own size), `preserve_colors`
            ("none", "luminance", "histogram"), `tile_size`, `batch_size` (photos per batch),
            `overwrite` (redo photos whose output exists).

    Raises:
        ConfigError: bad settings, no photos, or two photos with one output name.
        WeightsError: nothing loadable at `model` (checked here, before any worker starts).
    """
    _check_settings(**settings)
    found = fs.match(contents)
    if not found:
        raise ConfigError(f"no content files match {', '.join(map(str, contents))}")
    _check_unique(found)
    from tfstyle.fast.stylizer import FastStylizer

    # A bad model or tile size fails here in one line, not in every worker's setup.
    FastStylizer.load(model, tile_size=settings.get("tile_size", TILE_SIZE))
    pipeline = common.new_pipeline(options)
    paths = pipeline | "Contents" >> beam.Create(found) | "Spread" >> beam.Reshuffle()
    stylize_with_model(paths, model=model, output_dir=output_dir, **settings)
    return common.execute(pipeline, output_dir)


def _check_settings(
    *,
    max_size=None,
    preserve_colors="none",
    tile_size=TILE_SIZE,
    batch_size=BEAM_BATCH_SIZE,
    overwrite=False,
):
    if max_size is not None:
        check_int("max_size", max_size, low=1)
    check_choice("preserve_colors", preserve_colors, COLOR_MODES)
    check_int("tile_size", tile_size, low=0)
    check_int("batch_size", batch_size, low=1)


def _check_unique(paths):
    seen = {}
    for path in paths:
        stem = file_stem(path)
        if stem in seen:
            raise ConfigError(
                f"{seen[stem]} and {path} would both be saved as {stem}__...png; rename one"
            )
        seen[stem] = path
