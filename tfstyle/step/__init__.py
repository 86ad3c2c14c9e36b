"""The optimisation step: the only backend-specific code in tfstyle.

A runner holds the image being optimised and the optimizer state, and offers:

* `run(targets, steps)`: `steps` optimisation updates in one compiled call; returns
  `{loss name: float32 array of shape [steps]}`, the losses of the image each update started from.
* `image(averaged=False)`: the current image, float32 `[H, W, 3]` in [0, 1]; with
  `averaged=True`, the moving average or best image when averaging is on.
* `assign(image)`: replace the current image (keeps the optimizer state).
* `reset(image)`: start afresh from `image` (same shape): image, averages and optimizer state
  as new, compiled functions kept, so the next image of this size does not compile again.
* `value_and_grad(image, targets)`: `(losses, gradient)` of the objective at a NumPy image,
  for L-BFGS.

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

import keras

# Initial loss scale of `value_and_grad` under float16 (LossScaleOptimizer's default too).
STATIC_LOSS_SCALE = 2.0**15


def make_runner(
    *,
    extractor,
    loss_fn,
    optimizer,
    image,
    average="none",
    ema_decay=0.9,
    jit_compile=None,
    loss_scale=False,
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
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from tfstyle.step.tensorflow import TensorFlowRunner as runner_class
    elif backend == "jax":
        from tfstyle.step.jax import JaxRunner as runner_class
    else:
        raise NotImplementedError(f"tfstyle runs on the tensorflow and jax backends, not {backend}")
    return runner_class(
        extractor=extractor,
        loss_fn=loss_fn,
        optimizer=optimizer,
        image=image,
        average=average,
        ema_decay=ema_decay,
        jit_compile=jit_compile,
        loss_scale=loss_scale,
    )


def free_device_memory():
    """Free bytes on the accelerator the active backend computes on, or None on a CPU (or when
    it cannot be told)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        if not stats or "bytes_limit" not in stats:
            return None
        return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            return None
        total = _nvidia_total_bytes()
        if total is None:
            return None
        # TensorFlow reserves most of the GPU for its own allocator up front; what it has not
        # handed out yet is free for this run.
        return total - tf.config.experimental.get_memory_info("GPU:0")["current"]
    return None


def _nvidia_total_bytes():
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return int(out.strip().splitlines()[0]) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
