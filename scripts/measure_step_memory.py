"""Peak resident memory of optimisation steps against `tfstyle.optimize.memory`'s CPU estimate.

python scripts/measure_step_memory.py 1536 2048          # untiled
python scripts/measure_step_memory.py 1536 2048 512      # --tile_size 512
python scripts/measure_step_memory.py 1536 2048 0 mixed_bfloat16   # untiled, bfloat16

One measurement per process (memory a process has freed is not always returned to the system,
so a second measurement in the same process would start from a higher level): VGG19 with the
default layers and random weights, the targets, a runner, then two SGD steps, the first of them
compiling. Prints one JSON line: the peak resident memory above the level before the network
was built (sampled every 5 ms from /proc/self/statm), the estimate, and the step times.
"""

import json
import os
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(height, width, tile=None, precision="float32"):
    from tfstyle.optimize.memory import CPU_ACTIVATION_COPIES, estimate_step_bytes
    from tfstyle.optimize.objective import compute_targets, feature_extractor_for
    from tfstyle.optimize.runners import new_runner
    from tfstyle.settings.style import StyleConfig

    config = StyleConfig(
        weights=None, max_size=max(height, width), tile_size=tile, precision=precision
    )
    rng = np.random.default_rng(0)
    content, style = (rng.uniform(size=(height, width, 3)).astype(np.float32) for _ in "cs")
    start = peak = _rss_bytes()
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.wait(0.005):
            peak = max(peak, _rss_bytes())

    threading.Thread(target=sample, daemon=True).start()
    began = time.perf_counter()
    extractor = feature_extractor_for(config)
    targets = compute_targets(extractor, content, [style], blend=[1.0], config=config)
    runner = new_runner(config, extractor, content, total_steps=2)
    runner.run(targets, 1)
    first = time.perf_counter()
    runner.run(targets, 1)
    second = time.perf_counter()
    stop.set()
    peak = max(peak, _rss_bytes())
    estimate = estimate_step_bytes(
        network=config.network,
        layers=config.content_layers + config.style_layers,
        height=height,
        width=width,
        content_layers=config.content_layers,
        tile_size=tile,
        precision=precision,
        copies=CPU_ACTIVATION_COPIES,
    )
    record = {
        "height": height,
        "width": width,
        "tile_size": tile,
        "precision": precision,
        "peak_mb": round((peak - start) / 2**20),
        "estimate_mb": round(estimate / 2**20),
        "first_step_s": round(first - began, 1),
        "step_s": round(second - first, 1),
    }
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:4]]
    main(
        *sizes[:2],
        tile=sizes[2] if len(sizes) > 2 and sizes[2] else None,
        precision=sys.argv[4] if len(sys.argv) > 4 else "float32",
    )
