"""Steps per second, compile time and peak memory: tfstyle's step against the Keras example's.

python scripts/benchmark.py --sizes 256,512,1024 --steps 50
KERAS_BACKEND=jax python scripts/benchmark.py --sizes 512,1024 --precision mixed_bfloat16

For each size (square images) and implementation, in this one process: build, run one call to
compile, run `--warmup` more calls, then time `--steps` steps `--repeats` times and keep the
fastest (other processes on a shared machine only ever slow a run down). Prints one JSON line
per measurement, then the ratio of tfstyle's steps per second to the Keras example's per size.

* tfstyle: the library's own path, `make_runner(...).run(targets, steps_per_call)` with the
  default settings (VGG19 to block5_conv1, targets computed once, SGD); with `--tile_size`,
  the tiled step (`tfstyle.optimize.step.tiled`), one step per Python loop turn.
* keras_example: `keras_example_baseline.KerasExampleStep`, the Keras example's step
  (3 images through the whole VGG19 every step, the optimizer update outside the compiled
  function), on the same backend and device.
* stylizer, stylizer_xla: one image through a fast stylizer (`FastStylizer`, --model or a fresh
  network of --width), without and with `jit_compile`; a "step" is one image.
* stylizer_train: one training step of a fast stylizer (`tfstyle train`'s compiled model:
  --batch_size crops of the size through the network and the VGG loss, Adam update).

    python scripts/benchmark.py --impls stylizer,stylizer_xla --model saved_models/NAME/1 \
        --sizes 512 --steps 5
    python scripts/benchmark.py --impls stylizer_train --network vgg16 --sizes 128 --steps 5

Random weights (timing only). `compile_s` is the first call's time minus a steady call's.
`peak_memory_mb`: on a GPU, TensorFlow's allocator peak (reset before each measurement) or, on
JAX, XLA's memory analysis of the compiled step (arguments + outputs + temporaries - aliased);
on a CPU, the process's peak resident memory above its level before the measurement, sampled
every 5 ms from /proc/self/statm (build, compile and steps included).
"""

import contextlib
import ctypes
import gc
import json
import math
import os
import platform
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["256", "512", "1024"], "Image sizes (square, pixels).")
flags.DEFINE_integer("steps", 20, "Timed steps per measurement.")
flags.DEFINE_integer("warmup", 1, "Untimed calls after the compiling one.")
flags.DEFINE_integer(
    "repeats", 3, "Time --steps this many times and keep the fastest (a busy machine's noise)."
)
flags.DEFINE_enum("network", "vgg19", ["vgg19", "vgg16"], "Feature network.")
flags.DEFINE_enum(
    "precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"], "Dtype policy."
)
flags.DEFINE_list("impls", ["tfstyle", "keras_example"], "Implementations to time.")
flags.DEFINE_integer("steps_per_call", None, "tfstyle steps per compiled call (default: config).")
flags.DEFINE_enum("jit_compile", "auto", ["auto", "true", "false"], "tfstyle's XLA setting.")
flags.DEFINE_boolean("remat", False, "tfstyle: recompute activations in the backward pass.")
flags.DEFINE_integer(
    "tile_size", None, "tfstyle: the tiled step with tiles of this side (TensorFlow only)."
)
flags.DEFINE_string("output", None, "Also write all records to this JSON file.")
flags.DEFINE_string("label", None, "Add this label to every record (scripts/gpu_check.sh).")
flags.DEFINE_string("model", None, "stylizer impls: a trained stylizer (default: a fresh one).")
flags.DEFINE_integer("width", 16, "stylizer impls: the fresh network's width.")
flags.DEFINE_integer("batch_size", 4, "stylizer_train: crops per step.")

_IMPLS = ("tfstyle", "keras_example", "stylizer", "stylizer_xla", "stylizer_train")


def main(argv):
    del argv
    import keras

    unknown = [impl for impl in FLAGS.impls if impl not in _IMPLS]
    if unknown:
        raise app.UsageError(f"unknown --impls {unknown}; choose from {_IMPLS}")
    backend, device = keras.backend.backend(), describe_device()
    print(f"# backend {backend}, device {device}, memory: {_memory_method()}", file=sys.stderr)
    records, ratios = [], []
    for size in (int(s) for s in FLAGS.sizes):
        by_impl = {}
        for impl in FLAGS.impls:
            record = measure(impl, size, backend=backend, device=device)
            print(json.dumps(record), flush=True)
            records.append(record)
            by_impl[impl] = record
        if set(_IMPLS) <= set(by_impl):
            ratio = by_impl["tfstyle"]["steps_per_s"] / by_impl["keras_example"]["steps_per_s"]
            line = {"size": size, "ratio_tfstyle_to_keras_example": round(ratio, 2)}
            print(json.dumps(line), flush=True)
            ratios.append(line)
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump({"records": records, "ratios": ratios}, f, indent=1)


def measure(impl, size, *, backend, device):
    import numpy as np

    rng = np.random.default_rng(size)
    content = rng.uniform(size=(size, size, 3)).astype(np.float32)
    style = rng.uniform(size=(size, size, 3)).astype(np.float32)
    build = _BUILDERS[impl]
    with _PeakMemory() as memory:
        call, steps_per_call, analyse = build(content, style)
        start = time.perf_counter()
        call()
        first_s = time.perf_counter() - start
        for _ in range(FLAGS.warmup):
            call()
        calls = max(1, math.ceil(FLAGS.steps / steps_per_call))
        elapsed = math.inf
        for _ in range(max(1, FLAGS.repeats)):
            start = time.perf_counter()
            for _ in range(calls):
                call()
            elapsed = min(elapsed, time.perf_counter() - start)
        memory.analysis = analyse
    steady_call_s = elapsed / calls
    label = {"label": FLAGS.label} if FLAGS.label else {}
    return {
        **label,
        "impl": impl,
        "backend": backend,
        "device": device,
        "network": FLAGS.network,
        "size": size,
        "precision": FLAGS.precision,
        "remat": FLAGS.remat if impl == "tfstyle" else False,
        "tile_size": FLAGS.tile_size if impl == "tfstyle" else None,
        "steps_per_s": round(calls * steps_per_call / elapsed, 4),
        "s_per_step": round(elapsed / (calls * steps_per_call), 4),
        "compile_s": round(max(0.0, first_s - steady_call_s), 3),
        "peak_memory_mb": memory.peak_mb,
    }


def _build_tfstyle(content, style):
    """(call, steps per call, memory analysis or None) for tfstyle's own runner."""
    from tfstyle.optimize.objective import compute_targets, feature_extractor_for, make_loss_fn
    from tfstyle.optimize.optimizers import make_optimizer
    from tfstyle.optimize.runners import tiling
    from tfstyle.optimize.step import make_runner
    from tfstyle.settings.style import StyleConfig

    settings = {"remat": True} if FLAGS.remat else {}
    config = StyleConfig(
        network=FLAGS.network,
        weights=None,
        precision=FLAGS.precision,
        max_size=content.shape[0],
        tile_size=FLAGS.tile_size,
        **settings,
    )
    if FLAGS.steps_per_call:
        config = config.replace(steps_per_call=FLAGS.steps_per_call)
    extractor = feature_extractor_for(config)
    targets = compute_targets(extractor, content, [style], blend=[1.0], config=config)
    jit = {"auto": None, "true": True, "false": False}[FLAGS.jit_compile]
    runner = make_runner(
        extractor=extractor,
        loss_fn=make_loss_fn(config),
        optimizer=make_optimizer(
            name=config.optimizer,
            learning_rate=config.lr,
            schedule=config.schedule,
            total_steps=config.iterations,
        ),
        image=content,
        average=config.average,
        ema_decay=config.ema_decay,
        jit_compile=jit,
        loss_scale=config.precision == "mixed_float16",
        chunk=config.steps_per_call,
        **tiling(config, content.shape[:2]),
    )
    k = config.steps_per_call

    def analyse():
        # JAX only: XLA's own account of the compiled k-step program's memory.
        return runner.memory_analysis(targets)

    return (lambda: runner.run(targets, k)), k, analyse


def _build_keras_example(content, style):
    import keras
    from keras import ops
    from keras_example_baseline import KerasExampleStep

    keras.config.set_dtype_policy(FLAGS.precision)
    try:
        baseline = KerasExampleStep(content, style, network=FLAGS.network, weights=None)
    finally:
        keras.config.set_dtype_policy("float32")

    def call():
        ops.convert_to_numpy(baseline.step())  # waits for the step (GPUs run asynchronously)

    def analyse():
        return baseline.lower().compile().memory_analysis()

    return call, 1, analyse


def _stylizer(jit_compile):
    from tfstyle.fast.stylizer import FastStylizer
    from tfstyle.models.transformer import build_stylizer

    if FLAGS.model:
        return FastStylizer.load(FLAGS.model, jit_compile=jit_compile)
    return FastStylizer(build_stylizer(width=FLAGS.width), jit_compile=jit_compile)


def _build_stylizer(content, style, *, jit_compile=False):
    stylizer = _stylizer(jit_compile)
    return (lambda: stylizer(content)), 1, None


def _build_stylizer_train(content, style):
    import numpy as np

    from tfstyle.fast import train
    from tfstyle.settings.train import TrainConfig

    size = content.shape[0]
    config = TrainConfig(
        width=FLAGS.width,
        network=FLAGS.network,
        weights=None,
        size=size,
        batch_size=FLAGS.batch_size,
        style_size=size,
        precision=FLAGS.precision,
    )
    # The training command's own compiled model (a private helper: the benchmark times one
    # step of it, without the data pipeline, which runs ahead in parallel when training).
    model = train._compiled_model(style, config)
    batch = np.broadcast_to(content, (FLAGS.batch_size, *content.shape)).copy()
    return (lambda: model.train_on_batch(batch, batch)), 1, None


_BUILDERS = {
    "tfstyle": _build_tfstyle,
    "keras_example": _build_keras_example,
    "stylizer": _build_stylizer,
    "stylizer_xla": lambda content, style: _build_stylizer(content, style, jit_compile=True),
    "stylizer_train": _build_stylizer_train,
}


def describe_device():
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return f"{device.device_kind} ({device.platform})"
    else:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return f"{details.get('device_name', 'GPU')} (gpu)"
    return f"{_cpu_model()}, {os.cpu_count()} cores (cpu)"


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def _gpu_kind():
    """ "tensorflow" or "jax" when the active backend runs on a GPU, else None."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return "jax" if jax.devices()[0].platform != "cpu" else None
    import tensorflow as tf

    return "tensorflow" if tf.config.list_physical_devices("GPU") else None


def _memory_method():
    return {
        "tensorflow": "TensorFlow GPU allocator peak",
        "jax": "XLA memory analysis of the compiled step",
        None: "peak RSS above the starting level, sampled every 5 ms",
    }[_gpu_kind()]


class _PeakMemory:
    """Peak memory of what runs inside the `with` block, in MB (see the module docstring)."""

    def __init__(self):
        self.kind = _gpu_kind()
        self.analysis = None
        self.peak_mb = None

    def __enter__(self):
        gc.collect()
        _release_free_memory()
        if self.kind == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
            self._start = tf.config.experimental.get_memory_info("GPU:0")["current"]
        elif self.kind is None:
            self._start = self._peak = _rss_bytes()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, _rss_bytes())

    def __exit__(self, *exc):
        if self.kind == "tensorflow":
            import tensorflow as tf

            peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] - self._start
        elif self.kind == "jax" and self.analysis is None:
            peak = None  # the stylizer impls have no XLA analysis to report
        elif self.kind == "jax":
            stats = self.analysis()
            peak = (
                stats.argument_size_in_bytes
                + stats.output_size_in_bytes
                + stats.temp_size_in_bytes
                - stats.alias_size_in_bytes
            )
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, _rss_bytes()) - self._start
        self.peak_mb = None if peak is None else round(peak / 2**20, 1)
        return False


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_free_memory():
    # glibc keeps freed memory in the process; hand it back so the next measurement starts low.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


if __name__ == "__main__":
    app.run(main)
