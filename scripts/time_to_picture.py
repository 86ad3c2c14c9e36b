"""Time to picture: a CLI run from the command to the saved file, in full-size step equivalents.

    python scripts/time_to_picture.py --network vgg16 --weights WEIGHTS_FILE -- --max_size 512
    python scripts/time_to_picture.py ... -- --max_size 512 --scales 1 --iterations 300

Runs `python -m tfstyle.cli --content C --style S --output OUT ARGS...` as a subprocess and
times it whole (TensorFlow's import, weights, compilation and the writes included). Then, in
this process, times one optimisation step at the output's full size with the same settings
(after a compiling call, fastest of 3 calls of 3 steps) and prints the run's wall time divided
by that step time: the run's cost in full-resolution steps, which holds across machines better
than seconds do. One JSON line.

The seconds are only the machine's when nothing else ran: on a shared VM other processes (other
jobs, other sessions) slow the run and the step alike, so the equivalents stay right while the
seconds do not. That is how BENCHMARKS.md came to say 246 s and 2.26 s per step for a run that
takes 97 s and about 0.9 s per step on the same kind of machine alone (109 and 108 equivalents:
the ratio agreed). So the line also says how busy the machine was (Linux only, from /proc): for
the run and for the step, `others_cores` is the mean number of cores other processes kept busy
(all busy time less this process's and its children's), `steal_cores` what the hypervisor took,
and `cores` how many there are. Take the seconds as the machine's only when both are near 0.
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
        with Load() as run_load:
            start = time.perf_counter()
            subprocess.run(command, check=True, cwd=ROOT)
            wall = time.perf_counter() - start
        with open(os.path.join(folder, "out.json")) as fp:
            report = json.load(fp)
    with Load() as step_load:
        step = full_size_step_seconds(report, tuple(report["size"]))
    print(
        json.dumps(
            {
                "args": extra,
                "size": report["size"],
                "precision": report["settings"]["precision"],  # the one that ran ("auto" resolved)
                "wall_s": round(wall, 1),
                "steps": report.get("steps"),
                "full_size_step_s": round(step, 3),
                "full_size_step_equivalents": round(wall / step, 1),
                "cores": os.cpu_count(),
                "run_load": run_load.summary(),
                "step_load": step_load.summary(),
            }
        )
    )


class Load:
    """What else the CPU did during a `with` block: mean cores busy with other processes'
    work and stolen by the hypervisor (None where /proc/stat is missing)."""

    def __enter__(self):
        self._start = self._sample()
        return self

    def __exit__(self, *exc):
        self._end = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as fp:
                fields = [int(v) for v in fp.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        # user nice system idle iowait irq softirq steal: busy is all but idle, iowait, steal.
        busy = (sum(fields[:8]) - fields[3] - fields[4] - fields[7]) / ticks
        own = os.times()  # this process and its waited-for children, in seconds
        mine = own.user + own.system + own.children_user + own.children_system
        return time.perf_counter(), busy, fields[7] / ticks, mine

    def summary(self):
        if self._start is None or self._end is None:
            return None
        (t0, busy0, steal0, mine0), (t1, busy1, steal1, mine1) = self._start, self._end
        seconds = t1 - t0
        return {
            "others_cores": round(max(0.0, (busy1 - busy0) - (mine1 - mine0)) / seconds, 2),
            "steal_cores": round((steal1 - steal0) / seconds, 2),
        }


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
