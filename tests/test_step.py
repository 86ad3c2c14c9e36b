"""The step runners: one compiled program per image size whatever the step counts, a masked
tail that changes nothing, and the runner's own step counter."""

import numpy as np
import pytest

from tfstyle import RunnerCache, stylize
from tfstyle.optimize.objective import compute_targets, feature_extractor_for, make_loss_fn
from tfstyle.optimize.optimizers import make_optimizer
from tfstyle.optimize.step import chunk_counts, make_runner

LAYERS = {"content_layers": ("block2_conv2",), "style_layers": ("block1_conv1", "block2_conv1")}


@pytest.fixture
def setup(tiny_config, content_image, style_image):
    config = tiny_config.replace(**LAYERS)
    extractor = feature_extractor_for(config)
    targets = compute_targets(extractor, content_image, [style_image], blend=[1.0], config=config)

    def runner(chunk, average="ema"):
        return make_runner(
            extractor=extractor,
            loss_fn=make_loss_fn(config),
            optimizer=make_optimizer(name="adam", learning_rate=0.02, total_steps=20),
            image=content_image,
            average=average,
            chunk=chunk,
        )

    return runner, targets


def test_chunk_counts():
    assert chunk_counts(7, 3) == [3, 3, 1]
    assert chunk_counts(6, 3) == [3, 3]
    assert chunk_counts(2, 5) == [2]
    assert chunk_counts(0, 5) == []


def test_one_trace_for_every_step_count(setup):
    # Awkward counts (a resumed run, a scale's tail, snapshots at odd steps): each would be a
    # program of its own (a full XLA compile on a GPU) if the count were part of the shape.
    runner, targets = setup
    masked = runner(chunk=4)
    counts = [3, 1, 4, 2, 7]
    losses = [masked.run(targets, n)["total"] for n in counts]
    assert [len(h) for h in losses] == counts
    assert masked.trace_count() == 1
    assert int(masked.state()["steps"]) == sum(counts)


@pytest.mark.parametrize(("average", "ema_steps"), [("ema", 5), ("none", 0), ("best", 0)])
def test_ema_steps_count_only_with_ema(setup, average, ema_steps):
    # The JAX runner counted EMA steps whatever the averaging (TensorFlow's only with "ema"), so
    # the two backends' checkpoints of one run disagreed.
    runner, targets = setup
    steps = runner(chunk=4, average=average)
    steps.run(targets, 5)
    assert float(steps.state()["ema_steps"]) == ema_steps
    assert int(steps.state()["steps"]) == 5


def test_masked_tail_changes_nothing(setup):
    # Chunks of 5 run as 3 + 3 (two steps masked each time) against chunks of exactly 3: the
    # masked steps must leave the image, the optimizer's state, the averages and the step
    # counter as they were.
    runner, targets = setup
    masked, exact = runner(chunk=5), runner(chunk=3)
    masked_losses = np.concatenate([masked.run(targets, 3)["total"] for _ in range(2)])
    exact_losses = np.concatenate([exact.run(targets, 3)["total"] for _ in range(2)])
    np.testing.assert_array_equal(masked_losses, exact_losses)
    masked_state, exact_state = masked.state(), exact.state()
    assert sorted(masked_state) == sorted(exact_state)
    for key, value in exact_state.items():
        np.testing.assert_array_equal(masked_state[key], value, err_msg=key)
    assert int(masked_state["steps"]) == 6 and int(masked_state["optimizer/iteration"]) == 6


def test_a_pyramid_with_awkward_lengths_traces_once_per_size(
    content_image, style_image, tiny_config
):
    # Two scales of 7 and 2 steps in calls of 3 (calls of 3, 3, 1, then 2 after the boundary at
    # step 9), then a second content image of the same size: one trace per size.
    runners = RunnerCache()
    config = tiny_config.replace(scales=2, iterations=7, steps_per_call=3, **LAYERS)
    stylize(content_image, style_image, config=config, runners=runners)
    stylize(content_image[::-1], style_image, config=config, runners=runners)
    assert len(runners) == 2
    assert [r.trace_count() for r in runners.runners()] == [1, 1]
