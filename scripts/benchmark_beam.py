"""The batch on Beam's DirectRunner against the in-process batch, on the same pairs.

    python scripts/benchmark_beam.py --workers 2 --size 128 --iterations 20

Pairs: the 3 example photos and their mirror images x the 3 example paintings (18 pairs; the
first --pairs are kept), written at --size to a temporary folder. In-process: the
`tfstyle --output_dir` loop (`stylize` with one `RunnerCache`). Beam: `tfstyle.beam.run` with
`--direct_num_workers` worker processes (`multi_processing`), start-up included. Random weights
(timing only). Prints one JSON line per mode and the ratio.

    python scripts/benchmark_beam.py --model saved_models/starry_night/1 --photos 24 --size 512

With --model, a trained stylizer instead: --photos square crops of the example photos (turned
and mirrored) at --size, painted by the in-process `tfstyle --model --output_dir` loop, then by
`tfstyle.beam.run_stylizer` (RunInference) in this process with batches of 1 and of
--batch_size, then with --workers worker processes.
"""

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags
from absl import logging as absl_logging

FLAGS = flags.FLAGS
flags.DEFINE_integer("workers", 2, "DirectRunner worker processes.")
flags.DEFINE_integer("pairs", 12, "Pairs to stylize.")
flags.DEFINE_integer("size", 128, "Longest side of each output.")
flags.DEFINE_integer("iterations", 20, "Steps per pair.")
flags.DEFINE_enum("network", "vgg16", ["vgg19", "vgg16"], "Feature network.")
flags.DEFINE_string("model", None, "A trained stylizer: time RunInference instead.")
flags.DEFINE_integer("photos", 24, "With --model: photos to paint.")
flags.DEFINE_integer("batch_size", 8, "With --model: RunInference batch size.")

IMAGES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "images"
)


def make_pairs(folder):
    """Write the photos (and mirrored copies) and paintings into `folder`; the first
    --pairs of every photo x every painting."""
    from tfstyle import beam
    from tfstyle.io import load_image, save_image

    photos, paintings = [], []
    for name in sorted(os.listdir(IMAGES)):
        if not name.endswith((".png", ".jpg")):
            continue
        image = load_image(os.path.join(IMAGES, name), max_size=FLAGS.size)
        if name.startswith("content_"):
            for suffix, pixels in (("", image), ("_mirrored", image[:, ::-1])):
                photos.append(save_image(pixels, os.path.join(folder, f"{name[:-4]}{suffix}.png")))
        else:
            paintings.append(save_image(image, os.path.join(folder, f"{name[:-4]}.png")))
    return beam.pairs(photos, paintings)[: FLAGS.pairs]


def in_process(found, config, output_dir):
    from tfstyle.io import load_image, outputs
    from tfstyle.optimize.runners import RunnerCache
    from tfstyle.optimize.stylize import stylize

    runners = RunnerCache()
    for pair in found:
        output = os.path.join(output_dir, pair.name)
        result = stylize(
            load_image(pair.content), [load_image(pair.style)], config=config, runners=runners
        )
        outputs.save(result, output=output, content=pair.content, styles=[pair.style])


def on_beam(found, config, output_dir):
    from tfstyle import beam

    options = [
        "--runner=DirectRunner",
        f"--direct_num_workers={FLAGS.workers}",
        "--direct_running_mode=multi_processing",
    ]
    summary = beam.run(found, output_dir=output_dir, config=config, options=options)
    assert summary.written == len(found), summary


def make_photos(folder):
    """--photos square crops of the example photos, turned and mirrored, at --size."""
    import numpy as np

    from tfstyle.io import load_image, save_image
    from tfstyle.ops import preprocessing as pp

    sources = []
    for name in sorted(os.listdir(IMAGES)):
        if name.startswith("content_"):
            image = load_image(os.path.join(IMAGES, name))
            side = min(image.shape[:2])
            top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
            sources.append(
                pp.resize(image[top : top + side, left : left + side], FLAGS.size, FLAGS.size)
            )
    paths = []
    for index in range(FLAGS.photos):
        image = np.rot90(sources[index % len(sources)], k=(index // len(sources)) % 4)
        if (index // (4 * len(sources))) % 2:
            image = image[:, ::-1]
        paths.append(save_image(np.ascontiguousarray(image), os.path.join(folder, f"p{index}.png")))
    return paths


def paint_in_process(photos, output_dir):
    from tfstyle.fast.stylizer import FastStylizer
    from tfstyle.io import load_image, model_name, output_name, save_image

    stylizer = FastStylizer.load(FLAGS.model)
    name = model_name(FLAGS.model)
    for path in photos:
        save_image(stylizer(load_image(path)), os.path.join(output_dir, output_name(path, name)))


def paint_on_beam(photos, output_dir, *, batch_size, workers):
    from tfstyle import beam

    mode = "multi_processing" if workers > 1 else "in_memory"
    options = [f"--direct_num_workers={workers}", f"--direct_running_mode={mode}"]
    summary = beam.run_stylizer(
        photos, model=FLAGS.model, output_dir=output_dir, batch_size=batch_size, options=options
    )
    assert summary.written == len(photos), summary


def main_model():
    import functools

    modes = {
        "in_process": paint_in_process,
        "beam_batch_1": functools.partial(paint_on_beam, batch_size=1, workers=1),
        f"beam_batch_{FLAGS.batch_size}": functools.partial(
            paint_on_beam, batch_size=FLAGS.batch_size, workers=1
        ),
        f"beam_batch_{FLAGS.batch_size}_workers_{FLAGS.workers}": functools.partial(
            paint_on_beam, batch_size=FLAGS.batch_size, workers=FLAGS.workers
        ),
    }
    import tfstyle.fast.stylizer  # noqa: F401 (TensorFlow's import, outside the timings)

    seconds = {}
    with tempfile.TemporaryDirectory() as folder:
        photos = make_photos(folder)
        for mode, run in modes.items():
            output_dir = os.path.join(folder, mode)
            os.makedirs(output_dir)
            start = time.perf_counter()
            run(photos, output_dir)
            seconds[mode] = time.perf_counter() - start
            record = {
                "mode": mode,
                "photos": len(photos),
                "size": FLAGS.size,
                "seconds": round(seconds[mode], 1),
                "per_photo_s": round(seconds[mode] / len(photos), 3),
                "cpus": os.cpu_count(),
            }
            print(json.dumps(record), flush=True)
    base = seconds["in_process"]
    print(
        json.dumps(
            {
                f"speedup_{m}_over_in_process": round(base / t, 2)
                for m, t in seconds.items()
                if m != "in_process"
            }
        )
    )


def main(argv):
    del argv
    absl_logging.set_verbosity(absl_logging.WARNING)  # Beam's workers log every bundle
    if FLAGS.model:
        return main_model()
    from tfstyle import StyleConfig

    config = StyleConfig(
        network=FLAGS.network,
        weights=None,
        max_size=FLAGS.size,
        iterations=FLAGS.iterations,
        scales=1,
    )
    with tempfile.TemporaryDirectory() as folder:
        found = make_pairs(folder)
        seconds = {}
        for mode, run in (("in_process", in_process), ("beam_direct", on_beam)):
            output_dir = os.path.join(folder, mode)
            os.makedirs(output_dir)
            start = time.perf_counter()
            run(found, config, output_dir)
            seconds[mode] = time.perf_counter() - start
            record = {
                "mode": mode,
                "pairs": len(found),
                "size": FLAGS.size,
                "iterations": FLAGS.iterations,
                "workers": FLAGS.workers if mode == "beam_direct" else 1,
                "seconds": round(seconds[mode], 1),
                "cpus": os.cpu_count(),
            }
            print(json.dumps(record), flush=True)
    ratio = seconds["in_process"] / seconds["beam_direct"]
    print(json.dumps({"speedup_beam_over_in_process": round(ratio, 2)}))


if __name__ == "__main__":
    app.run(main)
