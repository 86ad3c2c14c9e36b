"""stylize(): convergence per optimizer, determinism, callbacks, inits, scales, colours, errors."""

import numpy as np
import pytest

from tfstyle import ConfigError, NonFiniteLossError, RunnerCache, StyleConfig, stylize
from tfstyle.ops import preprocessing as pp
from tfstyle.optimize.objective import compute_targets, feature_extractor_for, make_loss_fn
from tfstyle.optimize.pyramid import scale_plan, scale_sizes
from tfstyle.optimize.run_state import carried_state


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
def test_loss_falls_for_each_optimizer(content_image, style_image, tiny_config, optimizer):
    # From noise in 8 steps: SGD at a rate above its default (its momentum needs steps to build).
    rate = {"sgd": 0.01}.get(optimizer)
    config = tiny_config.replace(
        optimizer=optimizer, iterations=8, init="noise", learning_rate=rate
    )
    result = stylize(content_image, style_image, config=config)
    total = result.history["total"]
    assert len(total) == 8
    assert total[-1] < 0.7 * total[0]
    assert result.image.shape == (40, 56, 3)
    assert result.image.dtype == np.float32
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0


def test_lbfgs_counts_evaluations(content_image, style_image, tiny_config, monkeypatch):
    # scipy's own counts of the run, to compare with what stylize reports.
    from scipy import optimize

    counts, minimize = [], optimize.minimize

    def counting_minimize(*args, **kwargs):
        result = minimize(*args, **kwargs)
        counts.append((result.nit, result.nfev))
        return result

    monkeypatch.setattr(optimize, "minimize", counting_minimize)
    result = stylize(
        content_image, style_image, config=tiny_config.replace(optimizer="lbfgs", iterations=5)
    )
    [(iterations, evaluations)] = counts  # one scale at 56 px
    assert iterations == 5 and len(result.history["total"]) == 5
    # The line search evaluates more than once in some iterations (8 evaluations here).
    assert result.evaluations == evaluations > 5


def test_same_seed_same_result_on_cpu(content_image, style_image, tiny_config):
    config = tiny_config.replace(init="noise", seed=7, iterations=4)
    first = stylize(content_image, style_image, config=config).image
    second = stylize(content_image, style_image, config=config).image
    np.testing.assert_array_equal(first, second)
    other = stylize(content_image, style_image, config=config.replace(seed=8)).image
    assert np.abs(first - other).mean() > 1e-3


def test_callbacks_get_one_record_per_step(content_image, style_image, tiny_config):
    records = []
    stylize(
        content_image,
        style_image,
        config=tiny_config.replace(iterations=7),
        callbacks=[records.append],
    )
    assert [r.step for r in records] == list(range(1, 8))
    assert all(r.total_steps == 7 for r in records)
    # steps_per_call=3: images come with steps 3, 6 and the last one, 7.
    assert [r.step for r in records if r.image is not None] == [3, 6, 7]
    assert records[-1].is_last and records[-1].image.shape == (40, 56, 3)
    assert set(records[0].losses) == {"content", "style", "tv", "total"}


def test_content_init_starts_with_zero_content_loss(content_image, style_image, tiny_config):
    result = stylize(content_image, style_image, config=tiny_config.replace(iterations=2))
    assert result.history["content"][0] == pytest.approx(0.0, abs=1e-6)
    noise = stylize(
        content_image, style_image, config=tiny_config.replace(iterations=2, init="noise")
    )
    assert noise.history["content"][0] > 0.05


def test_init_image_and_noise_ratio(content_image, style_image, tiny_config):
    from tfstyle.optimize.objective import initial_image

    grey = np.full_like(content_image, 0.5)
    config = tiny_config.replace(init="image", init_noise_ratio=0.0)
    np.testing.assert_allclose(initial_image(config, content_image, [style_image], grey), 0.5)
    mixed = initial_image(config.replace(init_noise_ratio=0.5), content_image, [style_image], grey)
    assert 0.05 < np.abs(mixed - 0.5).mean() < 0.2
    with pytest.raises(ConfigError, match="needs an init_image"):
        stylize(content_image, style_image, config=config)


def test_init_image_of_another_aspect_ratio_is_cropped_not_stretched(tiny_config):
    from tfstyle.optimize.objective import initial_image

    content = np.zeros((8, 8, 3), np.float32)
    # A 8x24 init: red, green and blue thirds; a square crop keeps the green middle only.
    init = np.zeros((8, 24, 3), np.float32)
    for third in range(3):
        init[:, 8 * third : 8 * (third + 1), third] = 1.0
    start = initial_image(tiny_config.replace(init="image"), content, [content], init)
    np.testing.assert_allclose(start.mean((0, 1)), [0.0, 1.0, 0.0], atol=1e-6)


def test_style_and_blurred_noise_inits(content_image, style_image, tiny_config):
    from tfstyle.optimize.objective import initial_image

    style_init = initial_image(tiny_config.replace(init="style"), content_image, [style_image])
    np.testing.assert_allclose(style_init, pp.resize(style_image, 40, 56))
    blurred = initial_image(tiny_config.replace(init="blurred_noise"), content_image, [style_image])
    noise = initial_image(tiny_config.replace(init="noise"), content_image, [style_image])
    # Blurring removes high frequencies: neighbouring pixels are much closer.
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.3 * np.abs(np.diff(noise, axis=1)).mean()


def test_texture_synthesis_and_reconstruction(content_image, style_image, tiny_config):
    texture = stylize(
        content_image,
        style_image,
        config=tiny_config.replace(
            content_weight=0.0, init="noise", iterations=8, learning_rate=0.01
        ),
    )
    assert texture.history["style"][-1] < 0.7 * texture.history["style"][0]
    reconstruction = stylize(
        content_image,
        style_image,
        config=tiny_config.replace(style_weight=0.0, init="noise", iterations=8, optimizer="adam"),
    )
    assert reconstruction.history["content"][-1] < 0.9 * reconstruction.history["content"][0]


def test_multi_scale_sizes_and_history(content_image, style_image, tiny_config):
    assert scale_sizes((400, 600), max_size=512, scales=3) == [(85, 128), (171, 256), (341, 512)]
    assert scale_sizes((40, 56), max_size=512, scales=1) == [(40, 56)]
    # 5 steps at the first scale, then a quarter as many (rounded up).
    config = tiny_config.replace(scales=2, iterations=5, max_size=56, steps_per_call=3)
    records = []
    result = stylize(content_image, style_image, config=config, callbacks=[records.append])
    assert len(result.history["total"]) == 7
    assert [r.size for r in records] == [(20, 28)] * 5 + [(40, 56)] * 2
    assert [r.total_steps for r in records] == [7] * 7
    assert result.image.shape == (40, 56, 3)


def test_auto_scales_plan_a_pyramid_from_about_128_px():
    config = StyleConfig(weights=None)
    assert scale_plan(config, (400, 600)) == [((85, 128), 200), ((171, 256), 50), ((341, 512), 13)]
    assert scale_plan(config.replace(max_size=384), (600, 600)) == [
        ((192, 192), 200),
        ((384, 384), 50),
    ]
    # Images are never upscaled: a 200 px photo is one scale, whatever max_size says.
    assert scale_plan(config, (150, 200)) == [((150, 200), 200)]
    assert scale_plan(config.replace(scales=1), (400, 600)) == [((341, 512), 200)]
    assert config.most_steps() == 263


def test_every_scale_runs_at_least_a_twentieth_of_the_first_scales_steps():
    # Print sizes: the ratio alone gave the finest scales 4, 1 and 1 steps (the enlarged coarser
    # result); the floor is ceil(200 * 0.05) = 10.
    config = StyleConfig(weights=None, max_size=4096)
    assert scale_plan(config, (3072, 4096)) == [
        ((96, 128), 200),
        ((192, 256), 50),
        ((384, 512), 13),
        ((768, 1024), 10),
        ((1536, 2048), 10),
        ((3072, 4096), 10),
    ]
    assert config.replace(max_size=8192).most_steps() == 200 + 50 + 13 + 4 * 10
    # It scales with iterations (ceil(400 * 0.05) = 20), and leaves small runs alone:
    assert config.replace(iterations=400).scale_iterations(5) == [400, 100, 25, 20, 20]
    assert config.replace(iterations=2).scale_iterations(3) == [2, 1, 1]
    assert config.replace(iterations=21).scale_iterations(4) == [21, 6, 2, 2]
    assert config.replace(max_size=512).most_steps() == 263  # 13 at 512 px is above the floor


def test_second_scale_starts_from_the_upsampled_first_result(
    content_image, style_image, tiny_config
):
    config = tiny_config.replace(scales=2, iterations=2, steps_per_call=1)
    records = []
    stylize(content_image, style_image, config=config, callbacks=[records.append])
    assert [r.size for r in records] == [(20, 28)] * 2 + [(40, 56)]
    start = pp.resize(records[1].image, 40, 56)
    extractor = feature_extractor_for(config)
    targets = compute_targets(extractor, content_image, [style_image], blend=[1.0], config=config)
    losses = make_loss_fn(config)(extractor(start[None]), start[None], targets)
    # The first loss of scale 2 is the loss of the image it started from.
    assert records[2].losses["total"] == pytest.approx(float(losses["total"]), rel=1e-4)
    assert records[2].losses["content"] > 1e-3  # not the content image again


def test_optimizer_state_is_carried_between_scales(content_image, style_image, tiny_config):
    runners = RunnerCache()
    config = tiny_config.replace(scales=2, iterations=8)
    stylize(content_image, style_image, config=config, runners=runners)
    last = [r for r in runners.runners() if r.image().shape == (40, 56, 3)]
    state = last[0].state()
    # The step count runs on (8 + 2 steps) and the momentum came along, resized.
    assert int(state["steps"]) == 10
    slots = [v for k, v in state.items() if k.startswith("optimizer/") and np.ndim(v) == 4]
    assert slots and all(v.shape == (1, 40, 56, 3) for v in slots)


def test_carried_state_resizes_per_pixel_slots():
    pending = {
        "image": np.zeros((4, 6, 3), np.float32),
        "steps": np.int64(7),
        "optimizer/000": np.int64(7),
        "optimizer/001": np.full((1, 4, 6, 3), -2.0, np.float32),
    }
    fresh = {
        "image": np.ones((8, 12, 3), np.float32),
        "steps": np.int64(0),
        "optimizer/000": np.int64(0),
        "optimizer/001": np.zeros((1, 8, 12, 3), np.float32),
    }
    carried = carried_state(pending, fresh)
    assert carried["steps"] == 7 and carried["optimizer/000"] == 7
    np.testing.assert_allclose(carried["optimizer/001"], -2.0, rtol=1e-6)
    assert carried["optimizer/001"].shape == (1, 8, 12, 3)
    np.testing.assert_array_equal(carried["image"], fresh["image"])
    assert carried_state(pending, pending) is pending


def test_too_small_image_names_the_minimum(style_image, tiny_config):
    tiny = np.zeros((8, 30, 3), np.float32)
    with pytest.raises(ConfigError, match="needs at least 16 px"):
        stylize(tiny, style_image, config=tiny_config)


def test_blend_weights_select_styles(content_image, style_image, tiny_config):
    other = np.ascontiguousarray(style_image[::-1, ::-1, ::-1])
    config = tiny_config.replace(iterations=3)
    only_first = stylize(
        content_image, [style_image, other], config=config.replace(style_blend_weights=(1.0, 0.0))
    ).image
    single = stylize(content_image, style_image, config=config).image
    np.testing.assert_allclose(only_first, single, atol=1e-5)
    blended = stylize(content_image, [style_image, other], config=config).image
    assert np.abs(blended - single).mean() > 1e-4
    with pytest.raises(ConfigError, match="2 values for 1 style image"):
        stylize(content_image, style_image, config=config.replace(style_blend_weights=(1, 2)))


def test_style_scale_changes_result(content_image, style_image, tiny_config, monkeypatch):
    """The style targets come from the painting resized to `style_scale` times the output's
    longest side at every scale (its aspect kept), and so the picture changes."""
    from tfstyle.ops import preprocessing

    seen = []  # (content's longest side at this scale, the style's shape fed to VGG)
    real = preprocessing.scale_style

    def spy(style, content_shape, style_scale=1.0):
        scaled = real(style, content_shape, style_scale)
        seen.append((max(content_shape[:2]), scaled.shape))
        return scaled

    monkeypatch.setattr(preprocessing, "scale_style", spy)
    config = tiny_config.replace(iterations=3, init="noise")
    base = stylize(content_image, style_image, config=config).image
    unscaled, seen[:] = list(seen), []
    scaled = stylize(content_image, style_image, config=config.replace(style_scale=2.0)).image
    assert seen and len(seen) == len(unscaled)
    aspect = style_image.shape[1] / style_image.shape[0]
    for (longest, shape), (_, plain) in zip(seen, unscaled, strict=True):
        assert max(shape[:2]) == max(16, round(2.0 * longest))
        assert max(plain[:2]) == max(16, longest)
        assert shape[1] / shape[0] == pytest.approx(aspect, rel=0.1)
    assert np.abs(base - scaled).mean() > 1e-4  # 3 steps from noise: small, not zero


def test_luminance_preservation_keeps_content_chroma(content_image, style_image, tiny_config):
    config = tiny_config.replace(preserve_colors="luminance", iterations=4, optimizer="adam")
    result = stylize(content_image, style_image, config=config)
    out_uv = pp.rgb_to_yuv(result.image)[..., 1:]
    content_uv = pp.rgb_to_yuv(content_image)[..., 1:]
    # Clipping to [0, 1] after recombining is the only source of chroma change.
    assert np.abs(out_uv - content_uv).mean() < 0.02
    plain = stylize(content_image, style_image, config=config.replace(preserve_colors="none"))
    assert (
        np.abs(pp.rgb_to_yuv(plain.image)[..., 1:] - content_uv).mean()
        > np.abs(out_uv - content_uv).mean()
    )


def test_histogram_preservation_matches_style_colours_to_content(content_image, style_image):
    matched = pp.match_color(style_image, content_image)
    content = content_image.reshape(-1, 3)
    np.testing.assert_allclose(matched.reshape(-1, 3).mean(0), content.mean(0), atol=0.03)
    np.testing.assert_allclose(
        np.cov(matched.reshape(-1, 3), rowvar=False), np.cov(content, rowvar=False), atol=0.01
    )


def _iterates(content_image, style_image, config):
    records = []
    result = stylize(content_image, style_image, config=config, callbacks=[records.append])
    return result, [r.image for r in records], [r.losses["total"] for r in records]


def test_ema_is_the_bias_corrected_moving_average_of_iterates(
    content_image, style_image, tiny_config
):
    config = tiny_config.replace(iterations=5, init="noise", optimizer="adam", steps_per_call=1)
    plain, iterates, _ = _iterates(content_image, style_image, config)
    averaged = stylize(content_image, style_image, config=config.replace(average="ema")).image
    decay, ema = config.ema_decay, np.zeros_like(iterates[0])
    for image in iterates:
        ema = decay * ema + (1 - decay) * image
    expected = ema / (1 - decay ** len(iterates))
    np.testing.assert_allclose(averaged, expected, atol=1e-5)
    assert np.abs(averaged - plain.image).mean() > 1e-4


def test_best_returns_the_lowest_loss_iterate(content_image, style_image, tiny_config):
    # Raw-gradient SGD at a large constant rate oscillates, so the last iterate is not the best
    # one (with the fixed test weights the lowest loss comes at step 4 of 6).
    config = tiny_config.replace(
        iterations=6,
        init="noise",
        learning_rate=4.5e-3,
        schedule="constant",
        steps_per_call=1,
        precondition="none",
        momentum=0.0,
    )
    plain, iterates, losses = _iterates(content_image, style_image, config)
    assert int(np.argmin(losses)) < len(losses) - 1  # otherwise "best" would equal "last"
    best = stylize(content_image, style_image, config=config.replace(average="best")).image
    # losses[i] belongs to the image step i+1 started from: the initial image, then iterates.
    starts = [_initial(config, content_image, style_image), *iterates[:-1]]
    np.testing.assert_allclose(best, starts[int(np.argmin(losses))], atol=1e-6)
    assert np.abs(best - plain.image).mean() > 1e-4


def _initial(config, content_image, style_image):
    from tfstyle.optimize.objective import initial_image

    return initial_image(config, content_image, [style_image])


def test_non_finite_loss_stops_with_last_good_image(content_image, style_image, tiny_config):
    # Clipping to [0, 1] keeps even absurd learning rates finite; an absurd loss weight makes
    # the first gradient overflow, so the second step's loss is NaN.
    config = tiny_config.replace(style_weight=1e38, iterations=6, learning_rate=3e-4)
    pattern = (
        r"non-finite at step 2; lower the learning_rate \(now 0.0003\) or the loss weights "
        r"\(content_weight 1, style_weight 1e\+38, tv_weight 1\)"
    )
    with pytest.raises(NonFiniteLossError, match=pattern) as e:
        stylize(content_image, style_image, config=config)
    assert e.value.step == 0  # the starting image: the content, at the run's size
    np.testing.assert_allclose(e.value.image, content_image, atol=1e-6)
    with pytest.raises(NonFiniteLossError, match="the loss of the starting image is not finite"):
        stylize(content_image, style_image, config=config.replace(style_weight=1e39))


def test_does_not_mutate_inputs(content_image, style_image, tiny_config):
    content_copy, style_copy = content_image.copy(), style_image.copy()
    stylize(content_image, style_image, config=tiny_config.replace(iterations=2))
    np.testing.assert_array_equal(content_image, content_copy)
    np.testing.assert_array_equal(style_image, style_copy)


def test_uint8_inputs_mean_values_over_255(content_image, style_image, tiny_config):
    content, style = (np.rint(x * 255).astype(np.uint8) for x in (content_image, style_image))
    config = tiny_config.replace(iterations=2)
    from_uint8 = stylize(content, style, config=config)
    from_float = stylize(content / np.float32(255), style / np.float32(255), config=config)
    assert from_uint8.image.shape == (40, 56, 3) and from_uint8.image.dtype == np.float32
    np.testing.assert_allclose(from_uint8.image, from_float.image, atol=1e-6)
    np.testing.assert_allclose(from_uint8.history["total"], from_float.history["total"], rtol=1e-6)


def test_style_layer_weights_select_layers(content_image, style_image, tiny_config):
    layers = ("block1_conv1", "block2_conv1", "block3_conv1")
    config = tiny_config.replace(iterations=3, style_layers=layers)
    only_first = stylize(
        content_image, style_image, config=config.replace(style_layer_weights=(1.0, 0.0, 0.0))
    )
    single = stylize(content_image, style_image, config=config.replace(style_layers=layers[:1]))
    np.testing.assert_allclose(only_first.history["style"], single.history["style"], rtol=1e-4)
    decreasing = stylize(
        content_image, style_image, config=config.replace(style_layer_weights="decreasing")
    )
    equal = stylize(content_image, style_image, config=config)
    assert abs(decreasing.history["style"][0] - equal.history["style"][0]) > 1e-4


def test_lbfgs_stopping_early_still_ends_the_run(content_image, style_image, tiny_config):
    # Nothing to optimise from the content image: L-BFGS stops early (see below).
    config = tiny_config.replace(optimizer="lbfgs", style_weight=0.0, tv_weight=0.0, iterations=5)
    records = []
    result = stylize(content_image, style_image, config=config, callbacks=[records.append])
    assert records[-1].is_last and records[-1].image is not None
    # TensorFlow's gradient is exactly zero here and L-BFGS stops at once; JAX's is ~1e-12 and
    # it may iterate on. Either way the run ends with a last record carrying the image.
    assert 1 <= len(result.history["total"]) <= 5
    assert result.final_losses()["content"] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(result.image, content_image, atol=1e-6)


def test_nan_image_is_never_returned(content_image, style_image, tiny_config):
    # One step: the loss of the starting image is finite, the updated image is not.
    config = tiny_config.replace(style_weight=1e38, iterations=1)
    with pytest.raises(NonFiniteLossError) as info:
        stylize(content_image, style_image, config=config)
    assert np.all(np.isfinite(info.value.image))
