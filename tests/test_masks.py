"""Spatial control (issue 12, Gatys et al. 2017): style masks and a content mask, from the mask
arithmetic up to `stylize` (offline, 48 px, fixed random weights)."""

import numpy as np
import pytest

from tfstyle import CheckpointError, ConfigError, Interrupted, RunnerCache, stylize
from tfstyle.ops import masks as masks_lib
from tfstyle.ops import preprocessing as pp
from tfstyle.ops.losses import gram_matrix, masked_gram_matrices, relative_squared_error
from tfstyle.optimize.objective import compute_targets, feature_extractor_for, luminance_only

SIZE = 48
LAYERS = {
    "content_layers": ("block3_conv2",),
    "style_layers": ("block1_conv1", "block2_conv1", "block3_conv1"),
}


@pytest.fixture
def config(tiny_config):
    return tiny_config.replace(
        max_size=SIZE, iterations=30, optimizer="adam", scales=1, steps_per_call=10, **LAYERS
    )


@pytest.fixture
def images():
    """A smooth content image and two unlike styles: orange stripes and blue checks."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    content = np.stack([x, y, 1 - x], -1) * 0.6 + 0.2 + 0.05 * rng.standard_normal((SIZE, SIZE, 3))
    stripes = (np.sin(np.arange(SIZE) / 1.5)[None, :, None] + 1) / 2 * np.array([0.9, 0.4, 0.1])
    checks = np.zeros((SIZE, SIZE, 3))
    checks[(np.arange(SIZE)[:, None] // 4 + np.arange(SIZE)[None] // 4) % 2 == 1] = (0.1, 0.3, 0.9)
    noise = 0.05 * rng.uniform(size=(2, SIZE, SIZE, 3))
    return [
        np.clip(i, 0, 1).astype(np.float32)
        for i in (content, stripes + noise[0], checks + noise[1])
    ]


@pytest.fixture
def left():
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[:, : SIZE // 2] = 1.0
    return mask


def _style_distance(extractor, config, image, style, columns):
    """Mean relative Gram error over the style layers between a column band of `image` (cropped
    in pixels, so the measure does not use the masked code) and `style`."""
    ours, theirs = extractor(image[None, :, columns]), extractor(style[None])
    return np.mean(
        [
            float(relative_squared_error(gram_matrix(ours[k]), gram_matrix(theirs[k])))
            for k in config.style_layers
        ]
    )


def test_left_and_right_masks_split_two_styles(config, images, left):
    content, a, b = images
    extractor = feature_extractor_for(config)
    blended = stylize(content, [a, b], config=config, extractor=extractor).image
    split = stylize(
        content, [a, b], config=config, extractor=extractor, style_masks=[left, 1 - left]
    ).image
    halves = slice(0, SIZE // 2), slice(SIZE // 2, SIZE)

    def distances(image):
        return {
            (side, name): _style_distance(extractor, config, image, style, cols)
            for side, cols in zip("LR", halves, strict=True)
            for name, style in (("A", a), ("B", b))
        }

    before, after = distances(blended), distances(split)
    # Each half is closer to its own style than without masks, and than to the other style.
    assert after["L", "A"] < 0.5 * before["L", "A"], (before, after)
    assert after["R", "B"] < 0.8 * before["R", "B"], (before, after)
    assert after["L", "A"] < after["L", "B"] and after["R", "B"] < after["R", "A"], after


def test_content_mask_keeps_its_region(config, images, left):
    content, a, _ = images
    config = config.replace(optimizer="sgd")  # the default: Adam's steps shake every pixel
    extractor = feature_extractor_for(config)
    kept = stylize(content, a, config=config, extractor=extractor, content_mask=left).image
    free = stylize(content, a, config=config, extractor=extractor).image
    change = np.abs(kept - content)
    inside, outside = change[:, : SIZE // 2].mean(), change[:, SIZE // 2 :].mean()
    unmasked_inside = np.abs(free - content)[:, : SIZE // 2].mean()
    # Measured: inside 0.035, outside 0.125, the same half without a mask 0.095.
    assert inside < 0.05 and outside > 3 * inside, (inside, outside)
    assert unmasked_inside > 2 * inside, (inside, unmasked_inside)


def test_mask_content_weight_raises_the_contents_pull(config, images, left):
    content, a, _ = images
    config = config.replace(optimizer="sgd")
    extractor = feature_extractor_for(config)
    changes = []
    for weight in (1.0, 100.0):
        image = stylize(
            content,
            a,
            config=config.replace(mask_content_weight=weight),
            extractor=extractor,
            content_mask=left,
        ).image
        changes.append(np.abs(image - content)[:, : SIZE // 2].mean())
    assert changes[1] < 0.6 * changes[0], changes  # measured: 0.051 and 0.020


def test_masked_gram_of_a_binary_mask_is_the_gram_of_the_region():
    rng = np.random.default_rng(3)
    features = rng.standard_normal((1, 6, 8, 5)).astype(np.float32)
    mask = np.zeros((2, 6, 8, 1), np.float32)
    mask[0, :, :3] = 1.0
    mask[1] = 0.5  # a uniform grey mask: the whole image's Gram (the area normalises it away)
    grams = np.asarray(masked_gram_matrices(features, mask))
    np.testing.assert_allclose(grams[0], np.asarray(gram_matrix(features[:, :, :3]))[0], rtol=1e-5)
    np.testing.assert_allclose(grams[1], np.asarray(gram_matrix(features))[0], rtol=1e-5)


def test_masks_are_area_averaged_to_each_layer():
    mask = np.zeros((4, 4), np.float32)
    mask[:, :2] = 1.0
    # 4 columns into 3: the middle one covers 1/3 white, 1/3 black... half of each, a blend.
    np.testing.assert_allclose(pp.resize_mask(mask, 2, 3), [[1, 0.5, 0]] * 2, atol=1e-6)
    np.testing.assert_allclose(pp.resize_mask(mask, 1, 1), [[0.5]], atol=1e-6)


def test_every_scale_gets_masks_of_its_layers_shapes(config, images, left):
    content, a, b = images
    config = config.replace(max_size=SIZE, scales=2)
    extractor = feature_extractor_for(config)
    spatial = masks_lib.prepare(
        config,
        style_masks=[left, 1 - left],
        content_mask=None,
        styles=2,
        content_shape=content.shape,
        size=(SIZE, SIZE),
    )
    for size in (SIZE // 2, SIZE):
        scaled = pp.resize(content, size, size)
        targets = compute_targets(
            extractor, scaled, [a, b], blend=[0.5, 0.5], config=config, spatial=spatial
        )
        features = extractor(scaled[None])
        for layer in config.style_layers:
            masks = targets["masks"]["style"][layer]
            assert masks.shape == (2, *features[layer].shape[1:3], 1)
            # Left and right halves at every layer: half the area each, summing to 1.
            np.testing.assert_allclose(masks.mean(axis=(1, 2, 3)), [0.5, 0.5], atol=1e-6)
            np.testing.assert_allclose(masks.sum(axis=0), 1.0, atol=1e-6)
        assert targets["style"][config.style_layers[0]].shape[0] == 2


def test_new_masks_of_the_same_size_do_not_retrace(config, images, left):
    content, a, b = images
    runners = RunnerCache()
    config = config.replace(iterations=4, steps_per_call=2, scales=2, max_size=SIZE)
    for mask in (left, left.T):
        stylize(content, [a, b], config=config, runners=runners, style_masks=[mask, 1 - mask])
    assert [r.trace_count() for r in runners.runners()] == [1, 1]


def test_overlaps_are_shared_and_gaps_left_to_the_content():
    white, black = np.ones((2, 4), np.float32), np.zeros((2, 4), np.float32)
    half = np.array([[1, 1, 0, 0]] * 2, np.float32)
    regions = masks_lib.regions([white, half], None, count=2)
    np.testing.assert_allclose(regions[0], [[0.5, 0.5, 1, 1]] * 2)
    np.testing.assert_allclose(regions[1], [[0.5, 0.5, 0, 0]] * 2)
    gaps = masks_lib.regions([half, black + 0.25], None, count=2)
    np.testing.assert_allclose(gaps.sum(axis=0), [[1, 1, 0.25, 0.25]] * 2)
    cut = masks_lib.regions([white], half, count=1)
    np.testing.assert_allclose(cut[0], 1 - half)


def _prepare(config, style_masks=None, content_mask=None, styles=None):
    return masks_lib.prepare(
        config,
        style_masks=style_masks,
        content_mask=content_mask,
        styles=styles or max(1, len(style_masks or [])),
        content_shape=(SIZE, SIZE, 3),
        size=(SIZE, SIZE),
    )


@pytest.mark.parametrize(
    ("style_masks", "content_mask", "message"),
    [
        ("blank", None, "style mask 2 of 2 is blank"),
        (None, "blank", "the content mask is blank"),
        (None, "white", "the content mask is white everywhere"),
        ("inside", "left", "style mask 1 of 2 lies wholly inside the content mask"),
    ],
)
def test_blank_masks_are_errors(config, left, style_masks, content_mask, message):
    masks = {
        "blank": [left, np.zeros_like(left)],
        "inside": [left, 1 - left],
        None: None,
    }[style_masks]
    content = {"blank": np.zeros_like(left), "white": np.ones_like(left), "left": left, None: None}
    with pytest.raises(ConfigError, match=message):
        _prepare(config, masks, content[content_mask])


def test_mask_options_that_cannot_work_are_refused(config, left):
    with pytest.raises(ConfigError, match="1 style mask"):
        _prepare(config, [left], styles=2)
    with pytest.raises(ConfigError, match="style_loss 'gram' only"):
        _prepare(config.replace(style_loss="mean_cov"), content_mask=left)
    with pytest.raises(ConfigError, match="mask_content_weight must be"):
        config.replace(mask_content_weight=-1.0)


def test_a_mask_of_another_shape_is_stretched_with_a_warning(config, left):
    small = left[::4, ::2]  # 24x12: another size and aspect ratio
    with pytest.warns(UserWarning, match="style mask 1 of 1 is 24x12 px .*another aspect ratio"):
        spatial = _prepare(config, [small])
    # Stretched back to the content's 48x48: the same left half (the border blends over a pixel).
    regions = spatial["regions"][0]
    assert np.allclose(regions[:, : SIZE // 2 - 1], 1) and np.allclose(
        regions[:, SIZE // 2 + 1 :], 0
    )


def test_rgb_and_uint8_masks_read_as_grey():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0] = 255
    np.testing.assert_allclose(masks_lib.as_mask(rgb), [[1, 1], [0, 0]], atol=1e-6)
    np.testing.assert_allclose(masks_lib.as_mask(np.full((2, 2), 0.25)), 0.25)
    with pytest.raises(Exception, match="must be an"):
        masks_lib.as_mask(np.zeros((2, 2, 2)))


class _StopAt:
    def __init__(self, step):
        self.step = step

    def __call__(self, progress):
        if progress.step == self.step:
            raise KeyboardInterrupt


def test_a_masked_run_resumes_to_the_uninterrupted_result_and_only_with_its_masks(
    config, images, left
):
    content, a, b = images
    config = config.replace(iterations=6, steps_per_call=2)
    masked = {"style_masks": [left, 1 - left], "content_mask": np.eye(SIZE)}
    full = stylize(content, [a, b], config=config, **masked)
    with pytest.raises(Interrupted) as info:
        stylize(content, [a, b], config=config, callbacks=[_StopAt(3)], **masked)
    resumed = stylize(content, [a, b], config=config, resume=info.value.checkpoint, **masked)
    np.testing.assert_allclose(resumed.image, full.image, atol=1e-6)
    with pytest.raises(CheckpointError, match="mask images"):
        stylize(
            content,
            [a, b],
            config=config,
            resume=info.value.checkpoint,
            style_masks=[left, 1 - left],
        )


@pytest.mark.parametrize(
    "changes", [{"optimizer": "lbfgs", "iterations": 8}, {"preserve_colors": "luminance"}]
)
def test_masks_split_the_styles_with_lbfgs_and_luminance_transfer(config, images, left, changes):
    content, a, b = images
    config = config.replace(**changes)
    extractor = feature_extractor_for(config)
    masks = [left, 1 - left]
    split = stylize(content, [a, b], config=config, extractor=extractor, style_masks=masks)
    swapped = stylize(content, [a, b], config=config, extractor=extractor, style_masks=masks[::-1])
    grey = config.preserve_colors == "luminance"  # compare the luminance that was optimised
    style = luminance_only(a, reference=content) if grey else a

    def seen(image):
        return luminance_only(image, reference=content) if grey else image

    # The left half is nearer style a when a's mask is the left one than when it is the right.
    near = _style_distance(extractor, config, seen(split.image), style, slice(0, SIZE // 2))
    far = _style_distance(extractor, config, seen(swapped.image), style, slice(0, SIZE // 2))
    assert near < 0.8 * far, (near, far)


def test_a_style_image_mask_picks_the_texture_from_its_part_of_the_painting(config, images, left):
    content, a, b = images
    painting = np.where(left[..., None] > 0.5, a, b)  # stripes on the left, checks on the right
    extractor = feature_extractor_for(config)
    plain = stylize(content, painting, config=config, extractor=extractor).image
    picked = stylize(
        content, painting, config=config, extractor=extractor, style_image_masks=[left]
    ).image
    whole = slice(0, SIZE)
    before = _style_distance(extractor, config, plain, a, whole)
    after = _style_distance(extractor, config, picked, a, whole)
    # Nearer the stripes alone (and farther from the checks) than with the whole painting.
    assert after < 0.6 * before, (before, after)  # measured: 0.56 and 0.16
    far = _style_distance(extractor, config, picked, b, whole)
    assert far > _style_distance(extractor, config, plain, b, whole), far
    with pytest.raises(ConfigError, match="2 style image mask"):
        stylize(content, painting, config=config, style_image_masks=[left, left])
    with pytest.raises(ConfigError, match="style image mask 1 of 1 is blank"):
        stylize(content, painting, config=config, style_image_masks=[0 * left])


def test_load_mask_reads_a_file_as_its_luminance(tmp_path):
    from PIL import Image

    from tfstyle.io import load_mask

    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0] = (255, 0, 0, 255)  # red: luminance 0.299
    rgba[1, :, 3] = 0  # transparent: composited onto white
    Image.fromarray(rgba).save(tmp_path / "m.png")
    mask = load_mask(tmp_path / "m.png")
    assert mask.shape == (2, 3) and mask.dtype == np.float32
    np.testing.assert_allclose(mask, [[0.299] * 3, [1.0] * 3], atol=2e-3)
