"""Mixed precision: the network computes in bfloat16/float16, losses stay float32, float16
gradients are loss-scaled, and a bfloat16 run tracks the float32 one."""

import numpy as np
import pytest
from keras.backend import standardize_dtype

from tfstyle import StyleConfig, stylize
from tfstyle.optimize.objective import compute_targets, feature_extractor_for, make_loss_fn
from tfstyle.optimize.step import make_runner

LAYERS = {"content_layers": ("block2_conv2",), "style_layers": ("block1_conv1", "block2_conv1")}


@pytest.mark.parametrize(
    ("precision", "dtype"), [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")]
)
def test_network_computes_in_the_policy_dtype_and_losses_in_float32(
    precision, dtype, fixed_random_weights, content_image, style_image
):
    config = StyleConfig(weights=fixed_random_weights, precision=precision, max_size=32, **LAYERS)
    extractor = feature_extractor_for(config)
    image = content_image[:32, :32]
    features = extractor(image[None])
    assert {standardize_dtype(v.dtype) for v in features.values()} == {dtype}
    targets = compute_targets(extractor, image, [style_image], blend=[1.0], config=config)
    assert {standardize_dtype(v.dtype) for v in targets["style"].values()} == {"float32"}
    losses = make_loss_fn(config)(features, image[None], targets)
    assert {standardize_dtype(v.dtype) for v in losses.values()} == {"float32"}


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_half_precision_run_tracks_float32(content_image, style_image, tiny_config, precision):
    # float16 runs through the LossScaleOptimizer (SGD inside it).
    config = tiny_config.replace(iterations=6, init="noise", learning_rate=0.01, **LAYERS)
    full = stylize(content_image, style_image, config=config).history["total"]
    half = stylize(content_image, style_image, config=config.replace(precision=precision)).history[
        "total"
    ]
    np.testing.assert_allclose(half, full, rtol=0.03)
    assert half[-1] < 0.8 * half[0]


def test_float16_gradients_are_loss_scaled(fixed_random_weights, content_image, style_image):
    # Small loss weights make small gradients: in float16 some underflow to exactly zero
    # unless the loss is scaled up before differentiation.
    config = StyleConfig(
        weights=fixed_random_weights,
        max_size=32,
        content_weight=1e-3,
        style_weight=1e-3,
        tv_weight=0.0,
        **LAYERS,
    )
    image, style = content_image[:32, :32], style_image[:32, :32]
    point = np.random.default_rng(5).uniform(size=image.shape).astype(np.float32)
    grads = {}
    for precision, loss_scale in [
        ("float32", False),
        ("mixed_float16", False),
        ("mixed_float16", True),
    ]:
        settings = config.replace(precision=precision)
        extractor = feature_extractor_for(settings)
        targets = compute_targets(extractor, image, [style], blend=[1.0], config=settings)
        runner = make_runner(
            extractor=extractor,
            loss_fn=make_loss_fn(settings),
            optimizer=None,
            image=image,
            loss_scale=loss_scale,
        )
        grads[precision, loss_scale] = runner.value_and_grad(point, targets)[1]
    reference = grads["float32", False]

    def error(grad):
        return np.abs(grad - reference).mean() / np.abs(reference).mean()

    assert np.count_nonzero(reference == 0) == 0
    assert np.count_nonzero(grads["mixed_float16", False] == 0) > 0  # underflow
    assert np.count_nonzero(grads["mixed_float16", True] == 0) == 0
    assert error(grads["mixed_float16", True]) < 0.15
    assert error(grads["mixed_float16", True]) < error(grads["mixed_float16", False])


def test_float16_loop_steps_on_the_loss_scaled_gradient(
    fixed_random_weights, content_image, style_image
):
    # The optimisation loop's own step (not `value_and_grad`): with small loss weights the
    # float16 gradient underflows to zero for some pixels unless the loop scales the loss up
    # and the gradient down again. Plain SGD, one step: the update is `lr * gradient`, so it
    # shows both the underflow (pixels that do not move) and a missing unscaling (updates
    # 2**15 times too large).
    import keras

    config = StyleConfig(
        weights=fixed_random_weights,
        max_size=32,
        content_weight=1e-3,
        style_weight=1e-3,
        tv_weight=0.0,
        **LAYERS,
    )
    image, style = content_image[:32, :32], style_image[:32, :32]
    # Away from 0 and 1, so that clipping to the valid range moves no pixel.
    point = np.random.default_rng(5).uniform(0.3, 0.7, size=image.shape).astype(np.float32)
    updates, rate = {}, None
    for precision, loss_scale in [
        ("float32", False),
        ("mixed_float16", False),
        ("mixed_float16", True),
    ]:
        settings = config.replace(precision=precision)
        extractor = feature_extractor_for(settings)
        targets = compute_targets(extractor, image, [style], blend=[1.0], config=settings)
        if rate is None:  # steps of about 1e-3 per pixel at float32
            probe = make_runner(
                extractor=extractor, loss_fn=make_loss_fn(settings), optimizer=None, image=point
            )
            rate = 1e-3 / float(np.abs(probe.value_and_grad(point, targets)[1]).mean())
        runner = make_runner(
            extractor=extractor,
            loss_fn=make_loss_fn(settings),
            optimizer=keras.optimizers.SGD(learning_rate=rate),
            image=point,
            loss_scale=loss_scale,
        )
        runner.run(targets, 1)
        updates[precision, loss_scale] = runner.image() - point
    reference = updates["float32", False]

    def error(update):
        return np.abs(update - reference).mean() / np.abs(reference).mean()

    # (A pixel whose float32 update is below its rounding step stays put at any precision.)
    moved = reference != 0
    assert np.count_nonzero(moved) > 0.99 * moved.size
    assert np.count_nonzero(moved & (updates["mixed_float16", False] == 0)) > 10  # underflow
    scaled = updates["mixed_float16", True]
    assert np.count_nonzero(moved & (scaled == 0)) == 0
    assert error(scaled) < 0.15


# --- precision="auto": bfloat16 where the hardware computes it natively -----------------------


def test_auto_resolves_by_native_bfloat16_and_leaves_other_values():
    from tfstyle.settings.style import resolve_precision

    assert resolve_precision("auto", bfloat16_native=True) == "mixed_bfloat16"
    assert resolve_precision("auto", bfloat16_native=False) == "float32"
    for explicit in ("float32", "mixed_bfloat16", "mixed_float16"):
        for native in (True, False):
            assert resolve_precision(explicit, bfloat16_native=native) == explicit


def test_auto_is_the_default_and_validates():
    from tfstyle.errors import ConfigError
    from tfstyle.settings.train import TrainConfig

    assert StyleConfig().precision == "auto" and TrainConfig().precision == "auto"
    assert StyleConfig(precision="auto").to_dict()["precision"] == "auto"
    with pytest.raises(ConfigError, match="one of auto, float32, "):
        StyleConfig(precision="bfloat16")


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ("fpu sse avx2 avx512f avx512_bf16 avx512_fp16", True),  # Zen 4, Sapphire Rapids
        ("fpu sse avx2 avx512f amx_bf16 amx_tile", True),  # AMX alone
        ("fpu sse avx2 avx512f avx512_vnni", False),  # Skylake/Cascade Lake: emulated
        ("fpu sse avx2", False),
    ],
)
def test_cpu_flags_read_from_cpuinfo_decide_bfloat16(tmp_path, flags, native):
    from tfstyle.io.hardware import cpu_flags
    from tfstyle.settings.style import cpu_computes_bfloat16

    cpuinfo = tmp_path / "cpuinfo"
    core = f"processor\t: {{}}\nmodel name\t: Fake CPU\nflags\t\t: {flags}\n\n"
    cpuinfo.write_text(core.format(0) + core.format(1))
    read = cpu_flags(str(cpuinfo))
    assert "fpu" in read and "model" not in read
    assert cpu_computes_bfloat16(read) is native


def test_cpu_flags_of_a_machine_without_cpuinfo_are_empty(tmp_path):
    from tfstyle.io.hardware import cpu_flags
    from tfstyle.settings.style import cpu_computes_bfloat16

    assert cpu_flags(str(tmp_path / "absent")) == frozenset()
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")
    assert cpu_flags(str(tmp_path / "arm")) == frozenset()
    assert cpu_computes_bfloat16(frozenset()) is False


def test_native_bfloat16_on_a_tensorflow_cpu_follows_flags_and_onednn(monkeypatch):
    import keras

    from tfstyle.optimize import step

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the CPU-flag rule is TensorFlow's (JAX's CPU stays float32)")
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU decides by its compute capability")
    detect = step.detect_native_bfloat16  # uncached (conftest replaces native_bfloat16)
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setattr(step, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert detect() is True
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert detect() is False
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    monkeypatch.setattr(step, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert detect() is False


def test_compute_capability_threshold_is_ampere():
    from tfstyle.optimize.step import _capability

    assert _capability("9.0") and _capability("8.0") and _capability((8, 6))
    assert not _capability("7.5") and not _capability((7, 0))
    assert not _capability(None) and not _capability("gfx90a")


@pytest.mark.parametrize(("native", "ran"), [(True, "mixed_bfloat16"), (False, "float32")])
def test_auto_run_reports_the_precision_that_ran(
    monkeypatch, tmp_path, content_image, style_image, tiny_config, native, ran
):
    from tfstyle.io import outputs
    from tfstyle.optimize import step

    monkeypatch.setattr(step, "native_bfloat16", lambda: native)
    config = tiny_config.replace(iterations=2, precision="auto", **LAYERS)
    result = stylize(content_image, style_image, config=config)
    assert result.config.precision == ran
    report = outputs.report(result, output=str(tmp_path / "out.png"))
    assert report["settings"]["precision"] == ran
    dtype = "bfloat16" if native else "float32"
    features = feature_extractor_for(config)(content_image[None])
    assert {standardize_dtype(v.dtype) for v in features.values()} == {dtype}


def test_resume_with_auto_matches_the_resolved_checkpoint(tiny_config):
    from tfstyle.errors import CheckpointError
    from tfstyle.optimize.checkpoint import Checkpoint

    made = tiny_config.replace(precision="mixed_bfloat16")
    checkpoint = Checkpoint(
        config=made,
        inputs="x",
        step=1,
        scale=0,
        image=np.zeros((4, 4, 3), np.float32),
        runner_state={},
        history={},
        evaluations=1,
    )
    checkpoint.check_settings(tiny_config.replace(precision="auto"))  # decided by stylize()
    with pytest.raises(CheckpointError, match="precision mixed_bfloat16 there, float32 now"):
        checkpoint.check_settings(tiny_config.replace(precision="float32"))
