"""Time to picture: a CLI run from the command to the saved file, in full-size step equivalents.

    python scripts/time_to_picture.py --network vgg16 --weights WEIGHTS_FILE -- --max_size 512
    python scripts/time_to_picture.py ... -- --max_size 512 --scales 1 --iterations 300

Runs `python -m tfstyle.cli --content C --style S --output OUT ARGS...` as a subprocess and
times it whole (TensorFlow's import, weights, compilation and the writes included). Then, in
this process, times one optimisation step at the output's full size with the same settings
(after a compiling call, fastest of 3 calls of 3 steps) and prints the run's wall time divided
by that step time: the run's cost in full-resolution steps, which holds across machines better
than seconds do. One JSON line.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FLAGS = flags.FLAGS
flags.DEFINE_string("content", "examples/images/content_chelsea.png", "Content image.")
flags.DEFINE_string("style", "examples/images/style_starry_night.jpg", "Style image.")
flags.DEFINE_string("network", "vgg19", "Feature network.")
flags.DEFINE_string("weights", "imagenet", "Weights: imagenet, none or a file.")


def main(argv):
    extra = argv[1:]
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, "out.png")
        command = [sys.executable, "-m", "tfstyle.cli", "--content", FLAGS.content]
        command += ["--style", FLAGS.style, "--output", output, "--quiet"]
        command += ["--network", FLAGS.network, "--weights", FLAGS.weights, *extra]
        start = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT)
        wall = time.perf_counter() - start
        with open(os.path.join(folder, "out.json")) as fp:
            report = json.load(fp)
    step = full_size_step_seconds(report, tuple(report["size"]))
    print(
        json.dumps(
            {
                "args": extra,
                "wall_s": round(wall, 1),
                "steps": report.get("steps"),
                "full_size_step_s": round(step, 3),
                "full_size_step_equivalents": round(wall / step, 1),
            }
        )
    )


def full_size_step_seconds(report, size):
    """Seconds of one step at `size` with the run's settings (fastest of 3)."""
    from tfstyle import StyleConfig
    from tfstyle.io import load_image
    from tfstyle.ops import preprocessing as pp
    from tfstyle.optimize.objective import compute_targets, feature_extractor_for
    from tfstyle.optimize.runners import new_runner

    settings = {k: v for k, v in report["settings"].items() if k in StyleConfig.__annotations__}
    config = StyleConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
    content = load_image(FLAGS.content)
    style = load_image(FLAGS.style)
    content = pp.resize(content, *size)
    extractor = feature_extractor_for(config)
    targets = compute_targets(extractor, content, [style], blend=[1.0], config=config)
    runner = new_runner(config, extractor, content, total_steps=100)
    runner.run(targets, 3)  # compiles
    times = []
    for _ in range(3):
        start = time.perf_counter()
        runner.run(targets, 3)
        times.append((time.perf_counter() - start) / 3)
    return min(times)


if __name__ == "__main__":
    app.run(main)
