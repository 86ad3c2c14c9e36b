"""Shared fixtures: tiny random images and a cached random-weight extractor (offline)."""

import os
import signal

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The Ctrl-C tests press Ctrl-C as a user would. A suite started in the background of a script
# (`cmd &`, nohup) inherits SIGINT ignored, and so would every command it starts (an ignored
# signal stays ignored across exec): Python then installs no KeyboardInterrupt handler and those
# tests fail though the commands are right. Give the suite, and so its commands, the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# The CLI on JAX keeps compiled steps in ~/.cache/tfstyle/jax; the tests leave the home folder
# alone (JAX's empty setting: no cache; test_shell checks the cache in a folder of its own).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", "")

import numpy as np
import pytest

from tfstyle import StyleConfig

WEIGHTS_ENV = "TFSTYLE_TEST_WEIGHTS"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def content_image(rng):
    """A 40x56 smooth-ish RGB image (a gradient plus noise), float32 in [0, 1]."""
    y, x = np.mgrid[0:40, 0:56] / 56.0
    base = np.stack([x, y, 1 - x], axis=-1)
    return np.clip(base + 0.1 * rng.standard_normal(base.shape), 0, 1).astype(np.float32)


@pytest.fixture
def style_image(rng):
    """A 48x48 striped RGB image, float32 in [0, 1]."""
    stripes = (np.sin(np.arange(48) / 2.0)[None, :, None] + 1) / 2
    colours = np.array([0.9, 0.4, 0.1])[None, None, :]
    return (stripes * colours + 0.05 * rng.uniform(size=(48, 48, 3))).astype(np.float32)


@pytest.fixture(scope="session")
def fixed_random_weights(tmp_path_factory):
    """A VGG19 weights file with He-normal kernels from a fixed seed and zero biases.

    Keras' own random initialisation (weights=None) draws new weights in every process, and
    from a different generator on each backend; some draws make SGD diverge in the few steps
    the tests take. A fixed file gives both backends the same network on every run.
    """
    import keras

    path = tmp_path_factory.mktemp("weights") / "vgg19_fixed_random.weights.h5"
    base = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    rng = np.random.default_rng(0)
    for layer in base.layers:
        if layer.weights:
            kernel, bias = layer.get_weights()
            scale = np.sqrt(2.0 / np.prod(kernel.shape[:3]))
            layer.set_weights([rng.standard_normal(kernel.shape) * scale, np.zeros_like(bias)])
    base.save_weights(str(path))
    return str(path)


@pytest.fixture
def tiny_config(fixed_random_weights):
    """Fixed random weights, 56 px (the content fixture's width), few steps: fast on 2 cores."""
    return StyleConfig(weights=fixed_random_weights, max_size=56, iterations=6, steps_per_call=3)


@pytest.fixture(scope="session", autouse=True)
def float32_for_auto():
    """precision="auto" (the default) runs float32 in every in-process test, on every machine:
    tests assert numbers, and whether "auto" means bfloat16 depends on the CPU or GPU under
    them. Tests of "auto" itself set `native_bfloat16` as they need it. For the whole session,
    so that module-scoped fixtures see it too, with its own MonkeyPatch, so that a test's
    `monkeypatch.undo()` leaves it in place."""
    from tfstyle.optimize import step

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(step, "native_bfloat16", lambda: False)
        yield


@pytest.fixture
def built_runners(monkeypatch):
    """The keyword arguments of every runner a run builds (`runners.make_runner` calls), in
    order; the runners are built as usual."""
    from tfstyle.optimize import runners

    build, built = runners.make_runner, []

    def spy(**kwargs):
        built.append(kwargs)
        return build(**kwargs)

    monkeypatch.setattr(runners, "make_runner", spy)
    return built


@pytest.fixture(scope="session")
def real_weights():
    path = os.environ.get(WEIGHTS_ENV)
    if not path or not os.path.isfile(path):
        pytest.skip(f"set {WEIGHTS_ENV} to a VGG16 include_top=False weights file")
    return path


def pytest_collection_modifyitems(config, items):
    """The real-weights tests first: their files take the longest (minutes), and started last
    on one worker they would keep it busy after the others finish. Tests marked `slow` run only
    with TFSTYLE_SLOW=1 (the default run stays short)."""
    items.sort(key=lambda item: "weights" not in item.keywords)  # stable: the rest in order
    if os.environ.get("TFSTYLE_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set TFSTYLE_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
