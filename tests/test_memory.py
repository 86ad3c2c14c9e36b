"""Memory: the step-memory estimator, the fit check, and recomputed activations (remat)."""

import numpy as np
import pytest

from tfstyle import ConfigError, StyleConfig, stylize
from tfstyle.models.vgg import build_feature_extractor
from tfstyle.optimize.memory import compiled_refusal, estimate_step_bytes, largest_fitting_size
from tfstyle.optimize.objective import compute_targets, make_loss_fn
from tfstyle.optimize.step import make_runner

LAYERS = ("block1_conv1", "block2_conv1")


def test_estimate_by_hand_for_two_layers():
    # VGG19 to block2_conv1 at 8x8, float32, no remat. Activations (elements): block1_conv1 and
    # block1_conv2 8*8*64 = 4096 each, block1_pool 4*4*64 = 1024, block2_conv1 4*4*128 = 2048.
    # Kept, with ACTIVATION_COPIES = 2: 2 * (4096 + 4096 + 2048 + 1024) = 22528; gradients: the
    # two largest, 8192. Weights: (9*3*64 + 64) + (9*64*64 + 64) + (9*64*128 + 128) = 112576
    # floats. Content target block2_conv1: 2048 floats. Image buffers: 6 * 8*8*3 floats.
    expected = 4 * (22528 + 8192) + 4 * 112576 + 4 * 2048 + 4 * 6 * 192
    assert (
        estimate_step_bytes(
            network="vgg19",
            layers=LAYERS,
            height=8,
            width=8,
            content_layers=("block2_conv1",),
        )
        == expected
    )


def test_estimate_scales_with_pixels_precision_and_remat():
    def estimate(size, **kwargs):
        return estimate_step_bytes(
            network="vgg19", layers=LAYERS, height=size, width=size, **kwargs
        )

    # Weights are a constant part; the activations grow with the pixel count.
    assert 3.9 < (estimate(1024) - estimate(512)) / (estimate(512) - estimate(256)) < 4.1
    assert estimate(1024, precision="mixed_bfloat16") < 0.6 * estimate(1024)
    # Recomputing saves memory when the network is deeper than its first block.
    deep = ("block4_conv2", "block1_conv1", "block3_conv1", "block5_conv1")
    plain, remat = (
        estimate_step_bytes(network="vgg19", layers=deep, height=1024, width=1024, remat=remat)
        for remat in (False, True)
    )
    assert remat < 0.75 * plain


def test_largest_fitting_size_is_the_boundary():
    kwargs = {"network": "vgg19", "layers": LAYERS, "aspect": 0.75}
    budget = 2**30
    longest = largest_fitting_size(available_bytes=budget, **kwargs)
    assert 500 < longest < 1000

    def needed(side):
        return 1.25 * estimate_step_bytes(
            network="vgg19", layers=LAYERS, height=round(side * 0.75), width=side
        )

    assert needed(longest) <= budget < needed(longest + 1)
    half = largest_fitting_size(available_bytes=budget, precision="mixed_bfloat16", **kwargs)
    assert half > longest
    assert largest_fitting_size(available_bytes=1000, **kwargs) == 0


class _Started(Exception):
    pass


def test_estimate_only_warns_before_the_run_starts(monkeypatch, style_image, tiny_config):
    import warnings

    import tfstyle.optimize.runners
    import tfstyle.optimize.stylize

    # Pretend an accelerator with 256 MiB free; stop any run that gets as far as its runner.
    monkeypatch.setattr(tfstyle.optimize.stylize, "free_device_memory", lambda: 256 * 2**20)

    def started(*args, **kwargs):
        raise _Started

    monkeypatch.setattr(tfstyle.optimize.runners, "new_runner", started)
    big = np.zeros((600, 800, 3), np.float32)
    # The estimate has never been measured on a GPU: a warning, one line, and the run starts.
    warned = pytest.warns(UserWarning, match=r"may need about .* is free, so about \d+ px")
    with warned as info, pytest.raises(_Started):
        stylize(big, style_image, config=tiny_config.replace(max_size=800))
    (warning,) = [w for w in info.list if "may need" in str(w.message)]
    message = str(warning.message)
    assert "\n" not in message and "800x600" in message and "memory_check=False" in message
    longest = int(message.split("so about ")[1].split(" px")[0])
    assert 200 < longest < 800
    # The size it names fits the estimate: no warning then; nor with the check off.
    for config in (tiny_config.replace(max_size=longest), tiny_config.replace(memory_check=False)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(_Started):
                stylize(big, style_image, config=config)
    with pytest.warns(UserWarning, match="may need about"), pytest.raises(_Started):
        stylize(big, style_image, config=tiny_config.replace(max_size=longest + 1))


class _Stats:
    """What `CompiledMemoryStats` has that the check reads."""

    def __init__(self, temp, output, alias):
        self.temp_size_in_bytes = temp
        self.output_size_in_bytes = output
        self.alias_size_in_bytes = alias


def test_compiled_figures_refuse_a_step_that_does_not_fit():
    # Temporaries plus the outputs that do not reuse an argument's buffer.
    stats = _Stats(temp=900 * 2**20, output=300 * 2**20, alias=250 * 2**20)
    assert compiled_refusal(stats=stats, free=950 * 2**20, size=(30, 40)) is None
    message = compiled_refusal(stats=stats, free=949 * 2**20, size=(30, 40))
    assert message.startswith("the compiled step for a 40x30 image needs 950 MiB")
    assert "949 MiB is free" in message and "\n" not in message


def test_a_scale_whose_compiled_step_does_not_fit_is_refused(
    monkeypatch, content_image, style_image, tiny_config
):
    # JAX's runner offers XLA's figures (`memory_analysis`); here a fake one on either backend.
    import tfstyle.optimize.runners

    runner_class = _runner_class()
    needs = _Stats(temp=2**30, output=0, alias=0)
    monkeypatch.setattr(runner_class, "memory_analysis", lambda self, t: needs, raising=False)
    monkeypatch.setattr(tfstyle.optimize.runners, "free_device_memory", lambda: 2**30 - 1)
    config = tiny_config.replace(iterations=1)
    records = []
    refused = r"compiled step for a 56x40 image needs 1.0 GiB .* but 1024 MiB is free"
    with pytest.raises(ConfigError, match=refused):
        stylize(content_image, style_image, config=config, callbacks=[records.append])
    assert records == []  # refused before its first step
    stylize(content_image, style_image, config=config.replace(memory_check=False))
    monkeypatch.setattr(tfstyle.optimize.runners, "free_device_memory", lambda: 2**30)
    assert len(stylize(content_image, style_image, config=config).history["total"]) == 1


def test_tensorflow_free_memory_is_the_visible_gpus_free_memory(monkeypatch):
    # nvidia-smi ignores CUDA_VISIBLE_DEVICES and counts other processes' memory as used: the
    # query names the visible GPU, and what this process holds comes back, less what
    # TensorFlow has handed out.
    import os
    import shutil
    import subprocess

    from tfstyle.optimize import step

    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        if "--query-gpu=memory.free" in command:
            out = "1000\n"
        else:
            out = f"12345, 300\n{os.getpid()}, 4000\n"
        return subprocess.CompletedProcess(command, 0, stdout=out, stderr="")

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert step._visible_gpu() == "2"
    free = step._nvidia_free_bytes(step._visible_gpu(), in_use=100 * 2**20)
    assert free == (1000 + 4000 - 100) * 2**20
    assert all(command[command.index("-i") + 1] == "2" for command in calls)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8f6e0c1a")
    assert step._visible_gpu() == "GPU-8f6e0c1a"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert step._visible_gpu() == "0"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert step._nvidia_free_bytes("0", in_use=0) is None


def test_memory_check_setting_is_validated():
    assert StyleConfig().memory_check is True
    with pytest.raises(ConfigError, match="memory_check must be True or False"):
        StyleConfig(memory_check="no")


def _runner_class():
    import keras

    if keras.backend.backend() == "jax":
        from tfstyle.optimize.step.jax import JaxRunner

        return JaxRunner
    from tfstyle.optimize.step.tensorflow import TensorFlowRunner

    return TensorFlowRunner


def test_remat_setting_is_validated():
    assert StyleConfig(remat=True).remat is True
    with pytest.raises(ConfigError, match="remat must be True or False"):
        StyleConfig(remat="yes")


@pytest.fixture(scope="module")
def remat_pair(fixed_random_weights):
    layers = ("block2_conv2", "block1_conv1", "block2_conv1", "block3_conv1")
    return layers, [
        build_feature_extractor(layers=layers, weights=fixed_random_weights, remat=remat)
        for remat in (False, True)
    ]


def test_remat_gives_the_same_gradient(remat_pair, content_image, style_image):
    layers, extractors = remat_pair
    config = StyleConfig(weights=None, content_layers=layers[:1], style_layers=layers[1:])
    image = content_image[:32, :40]
    point = np.clip(image + 0.2 * np.random.default_rng(2).standard_normal(image.shape), 0, 1)
    results = []
    for extractor in extractors:
        targets = compute_targets(extractor, image, [style_image], blend=[1.0], config=config)
        runner = make_runner(
            extractor=extractor, loss_fn=make_loss_fn(config), optimizer=None, image=image
        )
        results.append(runner.value_and_grad(point.astype(np.float32), targets))
    (plain_losses, plain_grad), (remat_losses, remat_grad) = results
    assert remat_losses == pytest.approx(plain_losses, rel=1e-6)
    assert np.abs(plain_grad).mean() > 0
    atol = 1e-6 * np.abs(plain_grad).max()
    np.testing.assert_allclose(remat_grad, plain_grad, rtol=1e-4, atol=atol)


def test_remat_recomputes_the_blocks(remat_pair):
    """The gradient program of the remat model runs each block's convolutions twice."""
    import keras

    _, extractors = remat_pair
    counts = [_forward_conv_count(extractor) for extractor in extractors]
    # Five convolutions (block1_conv1 to block3_conv1). Without remat: 5 forward + 5 input
    # gradients; with remat: the 5 forward ones again, recomputed in the backward pass.
    assert counts == [10, 15], (keras.backend.backend(), counts)


def _forward_conv_count(extractor):
    import keras

    x = np.zeros((1, 16, 16, 3), np.float32)
    if keras.backend.backend() == "jax":
        import jax
        import jax.numpy as jnp

        weights = (
            [v.value for v in extractor.trainable_variables],
            [v.value for v in extractor.non_trainable_variables],
        )

        def loss(image):
            features, _ = extractor.stateless_call(*weights, image)
            return sum(jnp.sum(jnp.square(v.astype("float32"))) for v in features.values())

        return str(jax.make_jaxpr(jax.grad(loss))(x)).count("conv_general_dilated")
    import tensorflow as tf

    @tf.function
    def grad(image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            features = extractor(image)
            loss = tf.add_n([tf.reduce_sum(tf.square(v)) for v in features.values()])
        return tape.gradient(loss, image)

    graph = grad.get_concrete_function(tf.constant(x)).graph
    ops = [op for fn in [graph, *_functions(graph)] for op in fn.get_operations()]
    return sum(op.type in ("Conv2D", "Conv2DBackpropInput") for op in ops)


def _functions(graph):
    return [f.graph for f in getattr(graph, "_functions", {}).values() if hasattr(f, "graph")]


def test_cli_remat_and_precision_flags_change_what_runs(tmp_path, built_runners):
    """The flags reach the step that runs, not only the JSON: the network the CLI optimises
    through computes in the policy's dtype, recomputes its blocks under --remat (half as many
    forward convolutions again in its gradient program), and float16 takes the loss-scaling
    path."""
    import json

    from cli_runner import TINY, run_cli
    from keras.backend import standardize_dtype
    from PIL import Image

    rng = np.random.default_rng(0)
    content, style, output = tmp_path / "c.png", tmp_path / "s.png", tmp_path / "out.png"
    Image.fromarray(rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)).save(content)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(style)
    args = ("--content", content, "--style", style, "--output", output, *TINY, "--quiet")
    assert run_cli(*args, "--remat", "--precision", "mixed_bfloat16") == 0
    settings = json.loads((tmp_path / "out.json").read_text())["settings"]
    assert settings["remat"] is True and settings["precision"] == "mixed_bfloat16"
    assert Image.open(output).size == (32, 26)
    assert run_cli(*args, "--precision", "mixed_float16", "--overwrite") == 0
    runs = {}
    for kwargs in built_runners:  # one runner per scale
        features = kwargs["extractor"](np.zeros((1, 16, 16, 3), np.float32))
        dtypes = {standardize_dtype(v.dtype) for v in features.values()}
        runs.setdefault((*sorted(dtypes), kwargs["loss_scale"]), set()).add(kwargs["extractor"])
    assert sorted(runs) == [("bfloat16", False), ("float16", True)], runs
    [remat], [plain] = runs["bfloat16", False], runs["float16", True]
    # Without remat the gradient program has each forward convolution and its input gradient
    # (2n); with remat the forward ones again (3n).
    remat_convs, plain_convs = _forward_conv_count(remat), _forward_conv_count(plain)
    assert 2 * remat_convs == 3 * plain_convs, (remat_convs, plain_convs)
