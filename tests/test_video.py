"""tfstyle.video.stylize: the frame loop in temporal, per-frame and fast modes, on a synthetic clip
of a texture sliding 2 px per frame (offline, random weights, tiny frames, few steps)."""

import keras
import numpy as np
import pytest
from video_helpers import shifting_frames

from tfstyle import StyleConfig, stylize
from tfstyle.errors import ConfigError
from tfstyle.ops import losses
from tfstyle.ops import preprocessing as pp
from tfstyle.optimize.runners import RunnerCache
from tfstyle.settings.video import VideoConfig
from tfstyle.video.stylize import frame_size, mean_warping_error, stylize_video

FRAMES = 4


@pytest.fixture
def config(fixed_random_weights):
    # Shallow layers and Adam: a few steps change the picture visibly, in well under a second.
    return StyleConfig(
        weights=fixed_random_weights,
        content_layers=("block2_conv1",),
        style_layers=("block1_conv1", "block2_conv1"),
        max_size=48,
        iterations=8,
        optimizer="adam",
        learning_rate=0.05,
        scales=1,
        steps_per_call=4,
    )


@pytest.fixture(scope="module")
def frames():
    return shifting_frames(FRAMES, shift=2)


def run(frames, style, config, **video):
    delivered = []
    result = stylize_video(
        frames,
        style,
        config=config,
        video=VideoConfig(frame_iterations=4, **video),
        on_frame=delivered.append,
    )
    return result, delivered


def test_temporal_loss_by_hand():
    image = np.zeros((1, 2, 2, 3), np.float32)
    warped = np.full((1, 2, 2, 3), 0.5, np.float32)
    mask = np.array([1.0, 1.0, 0.0, 0.0], np.float32).reshape(1, 2, 2, 1)
    # Two of four pixels count, each value off by 0.5; divided by all 12 values (Ruder's D).
    assert float(losses.temporal_loss(image, warped, mask)) == pytest.approx(6 * 0.25 / 12)


def test_temporal_term_is_in_the_total_without_retracing(config, content_image, style_image):
    runners = RunnerCache()
    warped = np.clip(content_image + 0.2, 0, 1)
    mask = np.ones(content_image.shape[:2], np.float32)
    totals = []
    for weight in (0.0, 100.0):
        temporal = {"image": warped, "mask": mask, "weight": weight}
        result = stylize(
            content_image,
            style_image,
            config=config.replace(iterations=1, max_size=56),
            runners=runners,
            temporal=temporal,
        )
        totals.append(result.history["total"][0])
    # Step 1's loss is the starting image's (the content's): 100 times its temporal loss.
    expected = 100.0 * np.mean(np.square(content_image - warped))
    assert expected > 2.0
    assert totals[1] - totals[0] == pytest.approx(expected, rel=1e-3)
    # The weight is a tensor argument: a new weight does not trace the step again.
    assert [r.trace_count() for r in runners.runners()] == [1]


def test_temporal_mode_is_steadier_than_per_frame(frames, style_image, config):
    per_frame, _ = run(frames, style_image, config, mode="per_frame")
    temporal, delivered = run(frames, style_image, config, mode="temporal")
    assert [r.index for r in delivered] == list(range(FRAMES))
    assert [r.steps for r in temporal.frames] == [8, 4, 4, 4]
    assert temporal.frames[0].warping_error is None
    assert all(0.8 < r.reliable < 1.0 for r in temporal.frames[1:])
    print(per_frame.mean_warping_error, temporal.mean_warping_error)
    assert temporal.mean_warping_error < 0.3 * per_frame.mean_warping_error
    # Each output still moved away from its content: temporal mode is not just a copy.
    assert all(np.abs(r.image - f).mean() > 0.01 for r, f in zip(delivered, frames, strict=True))


def test_later_frames_share_one_compiled_step(frames, style_image, config, monkeypatch):
    if keras.backend.backend() == "jax":
        from tfstyle.optimize.step import jax as jax_step

        monkeypatch.setattr(jax_step, "_CACHE", {})  # no steps compiled by earlier tests
    runners = RunnerCache()
    stylize_video(
        frames,
        style_image,
        config=config,
        video=VideoConfig(frame_iterations=4),
        runners=runners,
    )
    # Frame 1's runner (8 steps) and the later frames' (4 steps), each traced once.
    assert [r.trace_count() for r in runners.runners()] == [1, 1]


def test_resumed_run_continues_exactly(frames, style_image, config):
    """Ctrl-C after frame 2, then `--resume` from frame 3, against the uninterrupted run."""
    whole, delivered = run(frames, style_image, config)
    # The interrupted run made (and the video command wrote) frames 1 and 2 only.
    _, written = run(frames[:2], style_image, config)

    def resume(previous):
        resumed = []
        stylize_video(
            frames,
            style_image,
            config=config,
            video=VideoConfig(frame_iterations=4),
            start=2,
            previous_output=previous,  # as the video command reads it: the 8-bit file
            on_frame=resumed.append,
        )
        return resumed

    resumed = resume(pp.to_uint8(written[1].image))

    # Exact, by construction: the frame sequence and each frame's step count, and the frames
    # written before the interrupt hold 8-bit values (each output is rounded before it is
    # warped into the next), so the file hands the resumed run the very numbers the
    # uninterrupted run warped. The same steps on the same inputs in one process made those
    # frames, so they are byte-identical to the uninterrupted run's.
    assert [(r.index, r.steps) for r in resumed] == [(2, 4), (3, 4)]
    for before, reference in zip(written, delivered[:2], strict=True):
        np.testing.assert_array_equal(pp.to_uint8(before.image) / np.float32(255), before.image)
        np.testing.assert_array_equal(pp.to_uint8(before.image), pp.to_uint8(reference.image))
    # The continued frames are made again by a step compiled afresh in another run: promised
    # within one level of 255 (never bit equality between two runs), though here they agree.
    for after, reference in zip(resumed, delivered[2:], strict=True):
        levels = np.abs(pp.to_uint8(after.image).astype(int) - pp.to_uint8(reference.image))
        assert levels.max() <= 1
        assert after.losses == pytest.approx(reference.losses, rel=1e-4, abs=1e-7)
    assert mean_warping_error(resumed) == pytest.approx(
        mean_warping_error(whole.frames[2:]), abs=1e-5
    )
    # One level is a test that can fail: handed the wrong frame (frame 1), the continuation
    # is many levels away.
    wrong = resume(pp.to_uint8(written[0].image))
    assert np.abs(wrong[0].image - delivered[2].image).max() > 10 / 255


def test_fast_mode_blending_lowers_the_warping_error(frames):
    rng = np.random.default_rng(0)

    def flicker(image):  # a stylizer whose output jitters from frame to frame
        return np.clip(image + 0.1 * rng.standard_normal(image.shape), 0, 1).astype(np.float32)

    plain = stylize_video(frames, None, stylizer=flicker, video=VideoConfig(flow_blend=0.0))
    blended = stylize_video(frames, None, stylizer=flicker, video=VideoConfig(flow_blend=0.7))
    assert len(blended.frames) == FRAMES and blended.frames[1].steps == 0
    assert blended.mean_warping_error < 0.5 * plain.mean_warping_error


def test_fast_mode_with_a_real_stylizer_network(frames):
    from tfstyle import FastStylizer, build_stylizer
    from tfstyle.ops.flow import frame_motion

    keras.utils.set_random_seed(0)
    stylizer = FastStylizer(build_stylizer(width=4, residual_blocks=1))
    delivered = []
    result = stylize_video(
        frames,
        None,
        stylizer=stylizer,
        video=VideoConfig(flow_blend=0.5),
        on_frame=delivered.append,
    )
    assert [r.index for r in result.frames] == list(range(FRAMES))
    assert all(r.steps == 0 and r.losses == {} for r in result.frames)

    def levels(a, b):
        return np.abs(pp.to_uint8(a).astype(int) - pp.to_uint8(b).astype(int)).max()

    # Every frame is the network's painting of that frame (FastStylizer on it alone), with
    # half of the previous output moved along the flow where the flow is trusted, by hand:
    painted = [stylizer(frame) for frame in frames]
    assert levels(delivered[0].image, painted[0]) <= 1  # frame 1: the network's output alone
    for i in range(1, FRAMES):
        motion = frame_motion(frames[i - 1], frames[i])
        assert 0.5 < motion.reliable_fraction < 1.0  # both terms matter
        weight = 0.5 * motion.mask[..., None]
        expected = weight * motion.warp(delivered[i - 1].image) + (1 - weight) * painted[i]
        assert levels(delivered[i].image, expected) <= 1
        # Not the network's output alone, nor the previous frame: the blend is visible.
        assert levels(delivered[i].image, painted[i]) > 1
    assert result.mean_warping_error is not None


def test_frame_size_and_settings():
    assert frame_size((720, 1280, 3), 512) == (288, 512)
    assert frame_size((33, 47, 3), 512, even=True) == (32, 46)
    with pytest.raises(ConfigError, match="frame_iterations"):
        VideoConfig(frame_iterations=0)
    with pytest.raises(ConfigError, match="mode"):
        VideoConfig(mode="sometimes")
    with pytest.raises(ConfigError, match="previous output"):
        stylize_video([], None, start=1, stylizer=lambda x: x)
