"""The TensorFlow and JAX runners agree: same weights, config and seed give the same run.

The test stylizes in this process (whichever backend KERAS_BACKEND chose) and in a subprocess on
the other backend, with one weights file (random initialisation differs between backends), and
compares the loss histories and images.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfstyle import StyleConfig, stylize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OTHER_BACKEND = {"tensorflow": "jax", "jax": "tensorflow"}

_CHILD = """
import json, sys
import numpy as np
from tfstyle import StyleConfig, stylize
inputs = np.load(sys.argv[1])
out = {}
for i, settings in enumerate(json.loads(sys.argv[2])):
    result = stylize(inputs["content"], inputs["style"], config=StyleConfig(**settings))
    out[f"image{i}"] = result.image
    out.update({f"{name}{i}": values for name, values in result.history.items()})
np.savez(sys.argv[3], **out)
"""


@pytest.fixture(scope="module")
def shared_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "vgg16_random.weights.h5"
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    # Fixed He-normal weights: the same network on every run, not a fresh random draw.
    rng = np.random.default_rng(0)
    for layer in base.layers:
        if layer.weights:
            kernel, bias = layer.get_weights()
            scale = np.sqrt(2.0 / np.prod(kernel.shape[:3]))
            layer.set_weights([rng.standard_normal(kernel.shape) * scale, np.zeros_like(bias)])
    base.save_weights(str(path))
    return str(path)


# In every run and in CI (about 30 s on 2 busy cores: a second process on the other backend and
# four compiles), kept cheap by a 32 px image and the first two blocks only.
def test_other_backend_gives_same_result(tmp_path, shared_weights, content_image, style_image):
    pytest.importorskip("jax")
    base = StyleConfig(
        network="vgg16",
        weights=shared_weights,
        content_layers=("block2_conv2",),
        style_layers=("block1_conv1", "block2_conv1"),
        max_size=32,
        init="noise",
        seed=3,
    )
    configs = [
        # Adam with the moving average: optimizer state and averaging in the compiled loop.
        base.replace(optimizer="adam", iterations=4, steps_per_call=2, average="ema"),
        # L-BFGS: value_and_grad only.
        base.replace(optimizer="lbfgs", iterations=3),
    ]
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, content=content_image, style=style_image)
    output = tmp_path / "other.npz"
    backend = OTHER_BACKEND[keras.backend.backend()]
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    settings = json.dumps([config.to_dict() for config in configs])
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(inputs), settings, str(output)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    other = np.load(output)
    for i, config in enumerate(configs):
        result = stylize(content_image, style_image, config=config)
        assert len(result.history["total"]) == config.iterations
        # L-BFGS's curvature estimate amplifies float32 rounding differences, most in the
        # directions the loss barely sees: its losses agree to about 1e-4, single pixels to 1e-2.
        lbfgs = config.optimizer == "lbfgs"
        for name, values in result.history.items():
            rtol = 1e-3 if lbfgs else 1e-5
            np.testing.assert_allclose(other[f"{name}{i}"], values, rtol=rtol, atol=1e-6)
        diff = np.abs(other[f"image{i}"] - result.image)
        assert diff.mean() < 1e-3 if lbfgs else diff.max() < 1e-5
        # Not a comparison of two idle runs: the loss fell.
        assert result.history["total"][-1] < result.history["total"][0]
