"""The optimisation step: the only backend-specific code in tfstyle.

A runner holds the image being optimised and the optimizer state, and offers:

* `run(targets, steps)`: `steps` optimisation updates, in compiled calls of at most `chunk`
  steps; returns `{loss name: float32 array of shape [steps]}`, the losses of the image each
  update started from. The step count is an argument of the compiled call, not part of its
  shape, and its loss buffers always hold `chunk` steps: one compiled program per image size
  serves every count (several scales, resumed runs, snapshots at odd steps), where a program
  per count would mean a full XLA compile for each.
* `trace_count()`: how many times `run`'s step has been traced (compiled) so far; 1 once it
  has run, whatever the counts asked for.
* `image(averaged=False)`: the current image, float32 `[H, W, 3]` in [0, 1]; with
  `averaged=True`, the moving average or best image when averaging is on.
* `assign(image)`: replace the current image (keeps the optimizer state).
* `reset(image)`: start afresh from `image` (same shape): image, averages and optimizer state
  as new, compiled functions kept, so the next image of this size does not compile again.
* `value_and_grad(image, targets)`: `(losses, gradient)` of the objective at a NumPy image,
  for L-BFGS.
* `state()`: everything `run` depends on, as a dict of NumPy arrays (no tensors, nothing
  random), for checkpoints:

  - `"image"`: float32 `[H, W, 3]`, the current image;
  - `"averaged"`: float32 `[H, W, 3]`, the moving average or best image (the starting image
    until `run` updates it; kept even when `average="none"`);
  - `"best_loss"`: float32 `[]`, the lowest total loss `run` has seen (inf before any);
  - `"ema_steps"`: float32 `[]`, the updates folded into the moving average so far (for its
    bias correction; 0 unless `average="ema"`);
  - `"steps"`: int64 `[]`, the updates `run` has applied since the runner was built, counting
    those of a loaded state: the runner's own counter, not the optimizer's, which leaves out
    the float16 steps the loss-scale optimizer skips;
  - `"optimizer/<name>"`: each of the optimizer's variables under its name (see
    `optimizer_variable_names`: e.g. `iteration`, `image_momentum`, and `inner/...` for the
    optimizer inside a loss-scale optimizer), with the variable's own shape and dtype; the image
    variable the optimizer updates is `[1, H, W, 3]`, so that is the shape of its slots.
    Absent without an optimizer.
* `load_state(state)`: restore all of the above into a runner built with the same settings,
  image size and a fresh optimizer of the same kind, so that `run` continues exactly as the
  runner that produced `state` would have; raises ValueError, naming the variables, if the
  state does not fit (image shape, missing, extra or reshaped optimizer variables).

The objective the optimizer sees is `total * H * W`: the losses are means (see `losses.py`),
so without the factor each pixel's gradient would shrink as the image grows and SGD learning
rates would not carry across sizes. The recorded losses are the unscaled ones.

With `loss_scale` (float16 networks), the objective is multiplied by a loss scale before
differentiation and the gradient divided by it again, so that small float16 gradients do not
underflow to zero: dynamically by `keras.optimizers.LossScaleOptimizer` (non-finite steps are
skipped and the scale halved), and for `value_and_grad` by a scale that starts at
`STATIC_LOSS_SCALE` and is halved whenever the gradient overflows.

The backend is read once, from `keras.backend.backend()`.
"""

import functools

import keras
import numpy as np

from tfstyle.io.hardware import cpu_flags
from tfstyle.settings.style import (
    BFLOAT16_MIN_COMPUTE_CAPABILITY,
    DEFAULTS,
    cpu_computes_bfloat16,
    resolve_precision,
)

# Initial loss scale of `value_and_grad` under float16 (LossScaleOptimizer's default too).
STATIC_LOSS_SCALE = 2.0**15


def make_runner(
    *,
    extractor,
    loss_fn,
    optimizer,
    image,
    average=DEFAULTS.average,
    ema_decay=DEFAULTS.ema_decay,
    jit_compile=None,
    loss_scale=False,
    chunk=DEFAULTS.steps_per_call,
    tiles=None,
    tile_weights=None,
):
    """Build the runner for the active Keras backend.

    Args:
        extractor: frozen dict-output feature model.
        loss_fn: `loss_fn(features, image, targets) -> {"content", "style", "tv", "total"}`.
        optimizer: a Keras optimizer (unbuilt; the runner builds it for the image), or None
            when only `value_and_grad` is used (L-BFGS).
        image: initial float32 `[H, W, 3]` image in [0, 1].
        average: "none", "ema" or "best": what `image(averaged=True)` returns (the moving
            average with `ema_decay`, or the lowest-loss image seen by `run`).
        ema_decay: decay of the moving average per step.
        jit_compile: compile with XLA; None chooses per backend (see each backend's module).
        loss_scale: scale the loss for float16 networks (see above).
        chunk: the most steps one compiled call runs (`StyleConfig.steps_per_call`).
        tiles: None, or the `tfstyle.ops.tiles.Tile`s of a tiled step (TensorFlow only; see
            `tfstyle.optimize.step.tiled`), which computes the losses from `tile_weights`
            (`{"style_layers", "style_layer_weights", "content_weight", "style_weight",
            "tv_weight"}`) instead of `loss_fn`.

    Returns:
        A `TensorFlowRunner` or a `JaxRunner`, with the interface above.

    Raises:
        NotImplementedError: another Keras backend.
    """
    backend = keras.backend.backend()
    common = {
        "extractor": extractor,
        "loss_fn": loss_fn,
        "optimizer": optimizer,
        "image": image,
        "average": average,
        "ema_decay": ema_decay,
        "jit_compile": jit_compile,
        "loss_scale": loss_scale,
        "chunk": chunk,
    }
    if tiles is not None:
        if backend != "tensorflow":
            raise NotImplementedError(f"tiled steps run on the tensorflow backend, not {backend}")
        from tfstyle.optimize.step.tiled import TiledRunner

        return TiledRunner(tiles=tiles, weights=tile_weights, **common)
    if backend == "tensorflow":
        from tfstyle.optimize.step.tensorflow import TensorFlowRunner as runner_class
    elif backend == "jax":
        from tfstyle.optimize.step.jax import JaxRunner as runner_class
    else:
        raise NotImplementedError(f"tfstyle runs on the tensorflow and jax backends, not {backend}")
    return runner_class(**common)


def chunk_counts(steps, chunk):
    """The step counts of the compiled calls that run `steps` steps: `chunk`s, then the rest.

    Args:
        steps: the steps to run.
        chunk: the most steps one call runs.

    Returns:
        A list of ints summing to `steps` (empty for 0).
    """
    steps = int(steps)
    return [chunk] * (steps // chunk) + ([steps % chunk] if steps % chunk else [])


def join_histories(parts):
    """One `{loss name: array}` from the per-call ones, in order.

    Args:
        parts: `[{loss name: array}, ...]`, one per compiled call.

    Returns:
        `{loss name: float32 [total steps]}`; `{}` for no parts.
    """
    return {
        k: np.concatenate([part[k] for part in parts]).astype(np.float32)
        if parts
        else np.zeros(0, np.float32)
        for k in (parts[0] if parts else ())
    }


def optimizer_variable_names(optimizer):
    """Stable names of `optimizer.variables`, in order: each variable's name (`iteration`,
    `image_momentum`, ...), with `inner/` before those of the optimizer a loss-scale optimizer
    wraps. Keras' own paths (`adam_3/iteration`) number optimizers by creation order, so they
    differ from run to run; these do not.

    Args:
        optimizer: a Keras optimizer, or None.

    Returns:
        A list of names, one per variable (empty for None).

    Raises:
        ValueError: two variables would have the same name.
    """
    if optimizer is None:
        return []
    inner = getattr(optimizer, "inner_optimizer", None)
    inner_ids = {id(v) for v in inner.variables} if inner is not None else set()
    names = [("inner/" if id(v) in inner_ids else "") + v.name for v in optimizer.variables]
    if len(set(names)) != len(names):
        raise ValueError(f"optimizer variable names are not unique: {names}")
    return names


def check_optimizer_state(state, shapes):
    """Raise ValueError unless `state`'s `optimizer/...` entries are exactly the variables
    named in `shapes` (`{name: shape}`), each of its shape.

    Args:
        state: a runner state (`runner.state()`).
        shapes: `{variable name: shape}` of the runner's optimizer.

    Raises:
        ValueError: missing, unexpected or reshaped variables, named.
    """
    saved = {k[len("optimizer/") :] for k in state if k.startswith("optimizer/")}
    missing, extra = sorted(set(shapes) - saved), sorted(saved - set(shapes))
    if missing or extra:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unexpected {', '.join(extra)}"] if extra else []
        raise ValueError(f"optimizer variables: {'; '.join(parts)}")
    for name, shape in shapes.items():
        if np.shape(state[f"optimizer/{name}"]) != tuple(shape):
            raise ValueError(
                f"optimizer variable {name} has shape {np.shape(state[f'optimizer/{name}'])}, "
                f"not {tuple(shape)}"
            )


def with_precision(config):
    """`config` (a `StyleConfig` or `TrainConfig`) with precision "auto" replaced by the policy
    that runs here (`resolve_precision` with `native_bfloat16()`); other values unchanged."""
    if config.precision != "auto":
        return config
    return config.replace(
        precision=resolve_precision(config.precision, bfloat16_native=native_bfloat16())
    )


@functools.cache
def native_bfloat16():
    """Whether the device the active backend computes on does bfloat16 arithmetic natively,
    decided once per process by `detect_native_bfloat16`."""
    return detect_native_bfloat16()


def detect_native_bfloat16():
    """Whether the active backend's device does bfloat16 arithmetic natively: a TPU; an
    NVIDIA GPU of compute capability 8.0 or more; on TensorFlow, a CPU with AVX-512 BF16 or
    AMX (`BFLOAT16_CPU_FLAGS`) and oneDNN on. Not a JAX CPU (XLA:CPU measured no faster in
    bfloat16), nor an older GPU (emulated: slower)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "tpu":
            return True
        if device.platform == "gpu":
            return _capability(getattr(device, "compute_capability", None))
        return False
    if backend == "tensorflow":
        import os

        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return _capability(details.get("compute_capability"))
        # TF_ENABLE_ONEDNN_OPTS=0 turns oneDNN off; Eigen then emulates bfloat16.
        if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() in ("0", "false"):
            return False
        return cpu_computes_bfloat16(cpu_flags())
    return False


def _capability(value):
    """Whether a CUDA compute capability ("8.6" from JAX, (8, 6) from TensorFlow; None when
    unknown, e.g. a ROCm GPU) reaches `BFLOAT16_MIN_COMPUTE_CAPABILITY`."""
    if value is None:
        return False
    try:
        parts = tuple(int(p) for p in (value.split(".") if isinstance(value, str) else value))
    except (TypeError, ValueError):
        return False
    return parts >= BFLOAT16_MIN_COMPUTE_CAPABILITY


def free_device_memory():
    """Free bytes on the accelerator the active backend computes on, or None on a CPU (or when
    it cannot be told).

    Returns:
        An int, or None.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        # JAX's first device is the first of CUDA_VISIBLE_DEVICES; its allocator's own account
        # (its limit less what is in use) is what this process can still allocate.
        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        if not stats or "bytes_limit" not in stats:
            return None
        return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            return None
        in_use = tf.config.experimental.get_memory_info("GPU:0")["current"]
        return _nvidia_free_bytes(_visible_gpu(), in_use=in_use)
    return None


def _visible_gpu():
    """nvidia-smi's name for TensorFlow's GPU:0: the first entry of CUDA_VISIBLE_DEVICES (an
    index or a UUID, both of which `nvidia-smi -i` takes), else 0. (nvidia-smi numbers GPUs in
    PCI order; CUDA does too with CUDA_DEVICE_ORDER=PCI_BUS_ID, and when one GPU is visible.)"""
    import os

    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return visible or "0"


def _nvidia_free_bytes(device, *, in_use):
    """Free bytes of nvidia-smi's `device` for this process: what nvidia-smi says is free (other
    processes' use left out), plus what this process holds (TensorFlow's allocator reserves most
    of the GPU up front) less what TensorFlow has handed out (`in_use`); None without
    nvidia-smi."""
    import os

    free = _nvidia_query(["--query-gpu=memory.free", "-i", device])
    apps = _nvidia_query(["--query-compute-apps=pid,used_memory", "-i", device])
    if free is None or apps is None:
        return None
    try:
        mine = sum(
            int(used) for pid, used in (row.split(",") for row in apps) if int(pid) == os.getpid()
        )
        return (int(free[0]) + mine) * 2**20 - in_use
    except (ValueError, IndexError):
        return None


def _nvidia_query(arguments):
    """nvidia-smi's CSV rows (no header, no units) for `arguments`, or None."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", *arguments, "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [line.strip() for line in out.splitlines() if line.strip()]
