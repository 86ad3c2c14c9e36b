"""Interruption and resume in the library: runner state, `Interrupted`, `Checkpoint`, and a
resumed run equal to an uninterrupted one (CPU, fixed seed)."""

import dataclasses

import numpy as np
import pytest

from tfstyle import Checkpoint, CheckpointError, Interrupted, stylize
from tfstyle.io import load_npz, save_npz
from tfstyle.optimize import checkpoint as checkpoint_lib
from tfstyle.optimize import objective
from tfstyle.optimize import stylize as loop_lib
from tfstyle.settings.style import LOSS_NAMES


class _StopAt:
    """A callback that presses Ctrl-C after step `step`."""

    def __init__(self, step):
        self.step = step

    def __call__(self, progress):
        if progress.step == self.step:
            raise KeyboardInterrupt


def _interrupt(content, style, config, step):
    with pytest.raises(Interrupted) as info:
        stylize(content, style, config=config, callbacks=[_StopAt(step)])
    return info.value


@pytest.fixture
def config(tiny_config):
    # Adam and an EMA: the optimizer's moments, its step count and the averaged image must all
    # come back for the resumed run to match.
    # Shallow layers keep each run (and its tracing) quick; resuming does not depend on them.
    return tiny_config.replace(
        optimizer="adam",
        average="ema",
        init="noise",
        iterations=9,
        content_layers=("block2_conv2",),
        style_layers=("block1_conv1", "block2_conv1"),
    )


def test_loss_names_match_the_losses_module():
    assert checkpoint_lib.LOSS_NAMES == LOSS_NAMES


def test_runner_state_round_trip(content_image, style_image, config):
    from tfstyle.optimize.optimizers import make_optimizer
    from tfstyle.optimize.step import make_runner

    extractor = objective.feature_extractor_for(config)
    targets = objective.compute_targets(
        extractor, content_image, [style_image], blend=[1.0], config=config
    )

    def runner():
        return make_runner(
            extractor=extractor,
            loss_fn=objective.make_loss_fn(config),
            optimizer=make_optimizer(name="adam", learning_rate=0.02, total_steps=9),
            image=content_image,
            average="ema",
        )

    first = runner()
    first.run(targets, 3)
    state = first.state()
    assert int(state["steps"]) == 3 and state["image"].shape == content_image.shape
    # Adam: iteration, momentum, velocity, by name (TensorFlow names the image "image:0").
    slots = sorted(k for k in state if k.startswith("optimizer/image"))
    assert len(slots) == 2 and slots[0].endswith("_momentum") and slots[1].endswith("_velocity")
    assert int(state["optimizer/iteration"]) == 3
    assert state[slots[0]].shape == (1, *content_image.shape)
    second = runner()
    second.load_state(state)
    np.testing.assert_array_equal(first.run(targets, 3)["total"], second.run(targets, 3)["total"])
    np.testing.assert_array_equal(first.image(averaged=True), second.image(averaged=True))
    with pytest.raises(ValueError, match="shape"):
        second.load_state({**state, "image": state["image"][:-1]})
    # Variables are matched by name, not by position: a missing, an extra or a reshaped one
    # is named.
    missing = {k: v for k, v in state.items() if k != slots[1]}
    with pytest.raises(ValueError, match=f"missing {slots[1][len('optimizer/') :]}$"):
        second.load_state(missing)
    with pytest.raises(ValueError, match=r"unexpected image_rms$"):
        second.load_state({**state, "optimizer/image_rms": state[slots[0]]})
    with pytest.raises(ValueError, match=r"optimizer variable iteration has shape \(1,\)"):
        second.load_state({**state, "optimizer/iteration": np.zeros(1, np.int64)})


def test_resumed_run_equals_uninterrupted(content_image, style_image, config, tmp_path):
    full = stylize(content_image, style_image, config=config)
    stopped = _interrupt(content_image, style_image, config, step=3)
    checkpoint = stopped.checkpoint
    assert stopped.step == checkpoint.step == 3 and checkpoint.scale == 0
    np.testing.assert_array_equal(checkpoint.history["total"], full.history["total"][:3])
    np.testing.assert_array_equal(stopped.image, checkpoint.image)  # the EMA image
    # Through a file and back, and with another grouping of steps into compiled calls.
    path = save_npz(checkpoint.to_arrays(), tmp_path / "run.ckpt.npz")
    restored = Checkpoint.from_arrays(load_npz(path))
    records = []
    resumed = stylize(
        content_image,
        style_image,
        config=config.replace(steps_per_call=2),
        resume=restored,
        callbacks=[records.append],
    )
    assert [r.step for r in records] == list(range(4, 10))
    np.testing.assert_allclose(resumed.image, full.image, atol=1e-6)
    np.testing.assert_allclose(resumed.history["total"], full.history["total"], rtol=1e-6)
    assert resumed.evaluations == full.evaluations == 9


def test_resume_in_the_second_scale_and_between_scales(
    content_image, style_image, config, monkeypatch
):
    # 12 steps at the first scale, 3 at the second.
    config = config.replace(scales=2, iterations=12, steps_per_call=2, average="best")
    full = stylize(content_image, style_image, config=config)

    def check(checkpoint, step, scale, state):
        assert (checkpoint.step, checkpoint.scale, bool(checkpoint.runner_state)) == (
            step,
            scale,
            state,
        )
        resumed = stylize(content_image, style_image, config=config, resume=checkpoint)
        np.testing.assert_allclose(resumed.image, full.image, atol=1e-6)
        assert len(resumed.history["total"]) == 15

    check(_interrupt(content_image, style_image, config, 14).checkpoint, 14, 1, True)
    # The last step of the first scale: its runner is done but still the current one.
    check(_interrupt(content_image, style_image, config, 12).checkpoint, 12, 0, True)
    # Between the scales, while the second scale's targets are computed.
    real_targets = loop_lib.compute_targets

    def targets_then_interrupt(*args, **kwargs):
        if args[1].shape[0] > 20:  # the second, full-size scale
            raise KeyboardInterrupt
        return real_targets(*args, **kwargs)

    monkeypatch.setattr(loop_lib, "compute_targets", targets_then_interrupt)
    with pytest.raises(Interrupted) as info:
        stylize(content_image, style_image, config=config)
    monkeypatch.undo()
    # The first scale's optimizer state comes along, to be carried into the second.
    check(info.value.checkpoint, 12, 1, True)


@pytest.mark.parametrize(("scales", "steps_per_call", "stop"), [(1, 3, 6), (2, 1, 11)])
def test_float16_resume_counts_the_skipped_steps(
    content_image, style_image, config, scales, steps_per_call, stop
):
    # A large style weight makes the first float16 gradients overflow at the loss-scale
    # optimizer's starting scale: it skips those steps (the image stays, the scale halves).
    # They are steps of the run all the same: the checkpoint must count them, or the resumed
    # run starts at the wrong step. (Fails if the step count is read from the optimizer: on
    # TensorFlow the inner optimizer counts only the applied steps, on JAX the wrapper's own
    # counter stays 0.)
    config = config.replace(
        precision="mixed_float16", style_weight=1e3, scales=scales, steps_per_call=steps_per_call
    )
    full = stylize(content_image, style_image, config=config)
    losses = full.history["total"]
    assert losses[0] == losses[1]  # a skipped first step: the image did not change
    stopped = _interrupt(content_image, style_image, config, step=stop)
    checkpoint = stopped.checkpoint
    assert checkpoint.step == stop == len(checkpoint.history["total"])
    assert int(checkpoint.runner_state["steps"]) == stop
    records = []
    resumed = stylize(
        content_image, style_image, config=config, resume=checkpoint, callbacks=[records.append]
    )
    assert [r.step for r in records] == list(range(stop + 1, len(losses) + 1))
    np.testing.assert_allclose(resumed.image, full.image, atol=1e-6)
    np.testing.assert_allclose(resumed.history["total"], losses, rtol=1e-6)


def test_interrupt_just_after_a_compiled_call(content_image, style_image, config, monkeypatch):
    # The interrupt can land after a compiled call updated the image but before its losses
    # were recorded: the runner's step count is the truth, the lost losses are NaN.
    full = stylize(content_image, style_image, config=config)
    runner_class = _runner_class()
    real_run, calls = runner_class.run, []

    def run_then_interrupt(self, targets, steps):
        result = real_run(self, targets, steps)
        calls.append(steps)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(runner_class, "run", run_then_interrupt)
    with pytest.raises(Interrupted) as info:
        stylize(content_image, style_image, config=config)
    monkeypatch.undo()
    checkpoint = info.value.checkpoint
    assert checkpoint.step == 6
    assert np.isnan(checkpoint.history["total"][3:]).all()
    np.testing.assert_array_equal(checkpoint.history["total"][:3], full.history["total"][:3])
    resumed = stylize(content_image, style_image, config=config, resume=checkpoint)
    np.testing.assert_allclose(resumed.image, full.image, atol=1e-6)


def test_interrupt_before_the_first_image(content_image, style_image, config, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop_lib, "compute_targets", interrupted)
    with pytest.raises(Interrupted) as info:
        stylize(content_image, style_image, config=config)
    assert info.value.checkpoint is None and info.value.image is None
    assert isinstance(info.value, KeyboardInterrupt)  # code unaware of tfstyle still stops


def test_luminance_mode_saves_a_finished_image(content_image, style_image, config):
    # The checkpoint keeps the optimised image the run continues from; the image to save has
    # the content's colours put back, like a result.
    from tfstyle.ops import preprocessing as pp

    stopped = _interrupt(content_image, style_image, config.replace(preserve_colors="luminance"), 3)
    raw = stopped.checkpoint.image
    np.testing.assert_allclose(stopped.image, pp.luminance_transfer(raw, content_image), atol=1e-6)
    assert np.abs(stopped.image - raw).mean() > 0.01


def test_lbfgs_resumes_from_the_saved_image(content_image, style_image, config):
    # scipy's L-BFGS memory is not saved: the resumed run restarts it, so it is close to, not
    # equal to, an uninterrupted run; it still does the remaining iterations from the image.
    config = config.replace(optimizer="lbfgs", iterations=6, average="none")
    stopped = _interrupt(content_image, style_image, config, step=3)
    assert stopped.checkpoint.runner_state == {} and stopped.checkpoint.step == 3
    records = []
    resumed = stylize(
        content_image,
        style_image,
        config=config,
        resume=stopped.checkpoint,
        callbacks=[records.append],
    )
    assert (
        records[0].step == 4 and records[0].losses["total"] < stopped.checkpoint.history["total"][0]
    )
    assert len(resumed.history["total"]) == 6


def test_other_settings_or_images_are_refused(content_image, style_image, config):
    checkpoint = _interrupt(content_image, style_image, config, step=3).checkpoint
    with pytest.raises(
        CheckpointError,
        match=r"other settings \(style_weight 10.0 there, 2.0 now; iterations 9 there, 12 now\)",
    ):
        stylize(
            content_image,
            style_image,
            config=config.replace(iterations=12, style_weight=2.0),
            resume=checkpoint,
        )
    with pytest.raises(CheckpointError, match="other content, style, init or mask images"):
        stylize(content_image[::-1], style_image, config=config, resume=checkpoint)
    checkpoint.check_settings(config.replace(steps_per_call=1))  # does not change the result


def test_damaged_checkpoints_are_refused(tmp_path, content_image, style_image, config):
    checkpoint = _interrupt(content_image, style_image, config, step=3).checkpoint
    arrays = checkpoint.to_arrays()
    path = save_npz(arrays, tmp_path / "a.ckpt.npz")
    with open(path, "rb") as file:
        data = file.read()
    (tmp_path / "cut.ckpt.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.ckpt\.npz' is damaged or not a checkpoint"):
        load_npz(tmp_path / "cut.ckpt.npz")
    with pytest.raises(CheckpointError, match=r"none\.ckpt\.npz' not found"):
        load_npz(tmp_path / "none.ckpt.npz")
    with pytest.raises(CheckpointError, match=r"not a valid tfstyle checkpoint \(missing 'step'"):
        Checkpoint.from_arrays({k: v for k, v in arrays.items() if k != "step"})
    with pytest.raises(CheckpointError, match="format 7 is not supported"):
        Checkpoint.from_arrays({**arrays, "format": np.int64(7)})
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def _runner_class():
    import keras

    if keras.backend.backend() == "jax":
        from tfstyle.optimize.step.jax import JaxRunner

        return JaxRunner
    from tfstyle.optimize.step.tensorflow import TensorFlowRunner

    return TensorFlowRunner


def test_checkpoints_record_where_they_were_made(content_image, style_image, config, recwarn):
    import keras

    import tfstyle

    checkpoint = _interrupt(content_image, style_image, config, step=3).checkpoint
    here = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "tfstyle": tfstyle.__version__,
    }
    arrays = checkpoint.to_arrays()
    assert {k: str(arrays[f"environment/{k}"]) for k in here} == here
    assert Checkpoint.from_arrays(arrays).environment == here

    def made(**environment):
        return Checkpoint.from_arrays(
            {**arrays, **{f"environment/{k}": np.str_(v) for k, v in environment.items()}}
        )

    other = "jax" if here["backend"] == "tensorflow" else "tensorflow"
    with pytest.raises(
        CheckpointError, match=f"made on the {other} backend .*KERAS_BACKEND={other}"
    ):
        made(backend=other).check_settings(config)
    major, minor, *_ = here["keras"].split(".")
    older = f"{major}.{int(minor) - 1}.0"
    with pytest.raises(CheckpointError, match=rf"made with Keras {older} and this is Keras"):
        stylize(content_image, style_image, config=config, resume=made(keras=older))
    assert not recwarn.list
    # A patch release, or another tfstyle version, only warns: the run resumes.
    patched = f"{major}.{minor}.999"
    with pytest.warns(UserWarning, match=f"made with Keras {patched} and this is Keras"):
        made(keras=patched).check_settings(config)
    with pytest.warns(UserWarning, match="made with tfstyle 0.0.1 and this is tfstyle"):
        made(tfstyle="0.0.1").check_settings(config)


def test_optimizer_variables_that_do_not_fit_are_refused(content_image, style_image, config):
    checkpoint = _interrupt(content_image, style_image, config, step=3).checkpoint
    state = dict(checkpoint.runner_state)
    velocity = next(k for k in state if k.endswith("_velocity"))
    del state[velocity]
    damaged = dataclasses.replace(checkpoint, runner_state=state)
    name = velocity[len("optimizer/") :]
    with pytest.raises(
        CheckpointError, match=rf"optimizer state does not fit this run \(.*missing {name}\)"
    ):
        stylize(content_image, style_image, config=config, resume=damaged)
