"""Tiled steps (`StyleConfig.tile_size`): the geometry, exactness against the untiled step, the
refusals, and the host-memory check that names a tile size that fits."""

import numpy as np
import pytest

import tfstyle
from tfstyle import ConfigError, StyleConfig, stylize
from tfstyle.io import host
from tfstyle.ops.tiles import alignment, halo, receptive_margin, tile_plan
from tfstyle.optimize import memory
from tfstyle.optimize.memory import (
    CPU_ACTIVATION_COPIES,
    HEADROOM,
    estimate_step_bytes,
    largest_fitting_tile,
)
from tfstyle.optimize.objective import compute_targets, feature_extractor_for, make_loss_fn
from tfstyle.optimize.runners import tiling
from tfstyle.optimize.step import make_runner

SHALLOW = {"content_layers": ("block3_conv2",), "style_layers": ("block1_conv1", "block2_conv1")}


def test_halo_by_hand():
    # A 3x3 conv reads one feature either side: 1 px in block1, 2 in block2, 4 in block3...
    # VGG19 to block5_conv1: 2*1 + 2*2 + 4*4 + 4*8 + 1*16 = 70 px, on a grid of 16: 80.
    assert receptive_margin("vgg19", ("block5_conv1",)) == 70
    assert halo("vgg19", ("block1_conv1", "block5_conv1")) == 80
    # VGG16 (3 convs in blocks 3 and 4): 2 + 4 + 12 + 24 + 16 = 58 -> 64.
    assert receptive_margin("vgg16", ("block5_conv1",)) == 58
    assert halo("vgg16", ("block5_conv1",)) == 64
    # block3_conv2: 1 + 1 + 2 + 2 + 4 + 4 = 14, on block3's grid of 4: 16.
    assert (
        receptive_margin("vgg19", SHALLOW["content_layers"]),
        alignment("vgg19", ("block3_conv2",)),
    ) == (14, 4)
    assert halo("vgg19", ("block3_conv2", "block1_conv1")) == 16


def test_cores_partition_the_image_and_halos_stop_at_its_edges():
    tiles = tile_plan(100, 70, tile_size=32, network="vgg19", layers=("block3_conv2",))
    covered = np.zeros((100, 70), int)
    for t in tiles:
        covered[t.core_top : t.core_bottom, t.core_left : t.core_right] += 1
        assert t.top == max(0, t.core_top - 16) and t.bottom == min(100, t.core_bottom + 16)
        assert t.left == max(0, t.core_left - 16) and t.right == min(70, t.core_right + 16)
    assert (covered == 1).all()
    assert len(tiles) == 4 * 3


def _runners(config, height, width, tile_size):
    rng = np.random.default_rng(0)
    content, style, image = (rng.uniform(size=(height, width, 3)).astype(np.float32) for _ in "csi")
    extractor = feature_extractor_for(config)
    targets = compute_targets(extractor, content, [style], blend=[1.0], config=config)
    common = {"extractor": extractor, "loss_fn": make_loss_fn(config), "optimizer": None}
    plain = make_runner(image=image, **common)
    tiled_config = config.replace(tile_size=tile_size)
    tiles = tiling(tiled_config, (height, width))
    assert len(tiles["tiles"]) > 2
    return plain, make_runner(image=image, **common, **tiles), image, targets


@pytest.mark.parametrize(
    "settings, shape",
    [
        (SHALLOW, (96, 128)),  # halo 16: interior tiles with halos on all sides
        ({}, (64, 224)),  # the default layers (halo 80): interior tiles along the width
    ],
)
def test_tiled_step_has_the_untiled_losses_and_gradient(settings, shape):
    config = StyleConfig(weights=None, max_size=max(shape), **settings)
    plain, tiled, image, targets = _runners(config, *shape, tile_size=32)
    plain_losses, plain_grad = plain.value_and_grad(image, targets)
    tiled_losses, tiled_grad = tiled.value_and_grad(image, targets)
    assert tiled_losses == pytest.approx(plain_losses, rel=1e-5)
    scale = np.abs(plain_grad).max()
    np.testing.assert_allclose(tiled_grad, plain_grad, rtol=0, atol=1e-5 * scale)


def test_tiled_targets_equal_the_untiled_ones():
    rng = np.random.default_rng(1)
    content, style = (rng.uniform(size=(96, 128, 3)).astype(np.float32) for _ in "cs")
    config = StyleConfig(weights=None, max_size=128, **SHALLOW)
    tiled = StyleConfig(weights=None, max_size=128, tile_size=32, **SHALLOW)
    extractor = feature_extractor_for(config)
    a, b = (
        compute_targets(extractor, content, [style], blend=[1.0], config=c) for c in (config, tiled)
    )
    for kind in ("content", "style"):
        for name, value in a[kind].items():
            value, other = np.asarray(value), np.asarray(b[kind][name])
            np.testing.assert_allclose(other, value, rtol=0, atol=1e-5 * np.abs(value).max())


def test_tiled_stylize_follows_the_untiled_run():
    rng = np.random.default_rng(2)
    content, style = (rng.uniform(size=(96, 128, 3)).astype(np.float32) for _ in "cs")
    settings = {"weights": None, "max_size": 128, "iterations": 4, "scales": 1, **SHALLOW}
    plain = stylize(content, style, config=StyleConfig(**settings))
    seen = []
    tiled = stylize(
        content, style, config=StyleConfig(**settings, tile_size=32), callbacks=[seen.append]
    )
    assert tiled.image.shape == plain.image.shape == (96, 128, 3)
    # Each tiled step is reported as it ends, with its image (untiled: every steps_per_call).
    assert [p.step for p in seen if p.image is not None] == [1, 2, 3, 4]
    np.testing.assert_allclose(tiled.history["total"], plain.history["total"], rtol=1e-4)
    change = np.abs(plain.image - content).max()
    assert change > 5e-3  # the run did change the image...
    assert np.abs(tiled.image - plain.image).max() < 0.01 * change  # ...and the tiled one alike


def test_an_interrupted_untiled_run_resumes_tiled():
    """tile_size is result-neutral for checkpoints: a run stopped (say, for memory) resumes with
    tiles, one step per call, and ends where the uninterrupted untiled run does."""
    rng = np.random.default_rng(3)
    content, style = (rng.uniform(size=(96, 128, 3)).astype(np.float32) for _ in "cs")
    settings = {"weights": None, "max_size": 128, "iterations": 4, "scales": 1, **SHALLOW}
    whole = stylize(content, style, config=StyleConfig(**settings))

    def stop_at_two(progress):
        if progress.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(tfstyle.Interrupted) as caught:
        # One step per compiled call, so the interruption comes after step 2.
        first = StyleConfig(**settings, steps_per_call=1)
        stylize(content, style, config=first, callbacks=[stop_at_two])
    checkpoint = caught.value.checkpoint
    assert checkpoint.step == 2
    seen = []
    tiled = StyleConfig(**settings, tile_size=32)
    resumed = stylize(content, style, config=tiled, resume=checkpoint, callbacks=[seen.append])
    assert [p.step for p in seen] == [3, 4]
    np.testing.assert_allclose(resumed.history["total"], whole.history["total"], rtol=1e-4)
    change = np.abs(whole.image - content).max()
    assert np.abs(resumed.image - whole.image).max() < 0.01 * change


def test_tile_size_is_validated_and_refused_where_it_cannot_work():
    with pytest.raises(ConfigError, match="tile_size must be a multiple of 16"):
        StyleConfig(tile_size=100)
    with pytest.raises(ConfigError, match="tile_size must be at least 16"):
        StyleConfig(tile_size=0)
    with pytest.raises(ConfigError, match="style_loss='gram' only"):
        StyleConfig(tile_size=64, style_loss="mean_cov")
    with pytest.raises(ConfigError, match="mixed_float16"):
        StyleConfig(tile_size=64, precision="mixed_float16")
    image = np.zeros((32, 32, 3), np.float32)
    config = StyleConfig(weights=None, max_size=32, iterations=1, tile_size=16, **SHALLOW)
    with pytest.raises(ConfigError, match="tile_size does not work with masks"):
        stylize(image, image, config=config, content_mask=np.ones((32, 32), np.float32))


def test_an_optimised_video_refuses_tiles_before_its_first_frame():
    frames = [np.zeros((32, 32, 3), np.float32)] * 2
    config = StyleConfig(weights=None, max_size=32, iterations=1, tile_size=16, **SHALLOW)
    painted = []
    with pytest.raises(ConfigError, match="tile_size does not work with the temporal loss"):
        tfstyle.stylize_video(frames, frames[0], config=config, on_frame=painted.append)
    assert painted == []


def test_largest_fitting_tile_fits_and_the_next_does_not():
    settings = {
        "network": "vgg19",
        "layers": StyleConfig().content_layers + StyleConfig().style_layers,
        "content_layers": StyleConfig().content_layers,
        "copies": CPU_ACTIVATION_COPIES,
    }
    available = 5 * 2**30
    tile = largest_fitting_tile(
        height=3072, width=4096, available_bytes=available, grid=16, **settings
    )
    assert tile > 0 and tile % 16 == 0

    def needed(tile_size):
        return HEADROOM * estimate_step_bytes(
            height=3072, width=4096, tile_size=tile_size, **settings
        )

    assert needed(tile) <= available < needed(tile + 16)
    assert needed(None) > 5 * available  # untiled, the 4096 px step is far bigger


def test_automatic_tile_size_is_none_when_untiled_fits_else_the_largest_tile_that_fits():
    settings = {
        "network": "vgg19",
        "layers": StyleConfig().content_layers + StyleConfig().style_layers,
        "content_layers": StyleConfig().content_layers,
        "precision": "float32",
        "remat": False,
        "grid": 16,
    }
    size = (3072, 4096)
    # Untiled, the 4096x3072 float32 step is about 29.8 GiB (37.2 GiB with headroom).
    untiled = estimate_step_bytes(
        height=3072,
        width=4096,
        copies=CPU_ACTIVATION_COPIES,
        **{k: v for k, v in settings.items() if k != "grid"},
    )
    assert 29.7 * 2**30 < untiled < 29.8 * 2**30
    assert memory.automatic_tile_size(size=size, available=38 * 2**30, **settings) is None
    # Otherwise the largest tile that fits half of the memory (AUTOMATIC_TILE_SHARE): at 22 GiB
    # 1488 px (2560 would fit all of it), at 8 GiB 336 px.
    assert memory.AUTOMATIC_TILE_SHARE == 0.5
    assert memory.automatic_tile_size(size=size, available=22 * 2**30, **settings) == 1488
    assert (
        largest_fitting_tile(
            height=3072,
            width=4096,
            available_bytes=11 * 2**30,
            **{k: v for k, v in settings.items() if k != "precision"},
            precision="float32",
            copies=CPU_ACTIVATION_COPIES,
        )
        == 1488
    )
    assert memory.automatic_tile_size(size=size, available=8 * 2**30, **settings) == 336
    # Not even one 16 px tile: the whole-image buffers alone are too many.
    assert memory.automatic_tile_size(size=size, available=2**30, **settings) is None
    # 8192x6144 (VGG16) in 22 GiB: the whole-image arrays alone take more than half, so the
    # largest tile that fits all of it (with headroom).
    vgg16 = StyleConfig(network="vgg16")
    settings.update(
        network="vgg16",
        layers=vgg16.content_layers + vgg16.style_layers,
        content_layers=vgg16.content_layers,
    )
    fitting = settings | {"copies": CPU_ACTIVATION_COPIES}
    half = largest_fitting_tile(height=6144, width=8192, available_bytes=11 * 2**30, **fitting)
    full = largest_fitting_tile(height=6144, width=8192, available_bytes=22 * 2**30, **fitting)
    assert half == 0 and full == 1792
    assert memory.automatic_tile_size(size=(6144, 8192), available=22 * 2**30, **settings) == full


def test_a_size_that_does_not_fit_the_host_is_tiled_or_refused_before_any_work(monkeypatch):
    # Shallow layers (halo 16) keep the tiled run below small: the estimate at 192x256 is about
    # 104 MiB, and 50 MiB leaves room for about 153 px untiled or 80 px tiles (55 MiB: 96 px),
    # without the tiled step's constant (256 MiB, which only pays off for pictures of 1000 px
    # and more).
    monkeypatch.setattr(memory, "_TILED_OVERHEAD", 0)
    monkeypatch.setattr(host, "available_memory", lambda: 110 * 2**20)
    image = np.zeros((192, 256, 3), np.float32)
    settings = {"weights": None, "iterations": 1, "scales": 1, **SHALLOW}
    # Untiled, it does not fit 110 MiB: the run is tiled by itself, with the largest tile that
    # fits half of it.
    seen = []
    result = stylize(
        image, image, config=StyleConfig(max_size=256, **settings), callbacks=[seen.append]
    )
    assert result.automatic_tiles and result.config.tile_size == 96
    assert result.image.shape == (192, 256, 3)
    assert [record.tiles for record in seen] == [6]  # 2 x 3 cores of 96 px
    # In mixed_bfloat16 a 2-byte model says 60 MiB untiled (75 with headroom: it would fit), but
    # TensorFlow's CPU step holds as much as in float32, and the check counts it so.
    config = StyleConfig(max_size=256, precision="mixed_bfloat16", **settings)
    result = stylize(image, image, config=config)
    assert result.automatic_tiles and result.config.tile_size == 96
    monkeypatch.setattr(host, "available_memory", lambda: 50 * 2**20)
    # Settings that cannot run tiled are refused, in one line naming a max_size that fits.
    seen = []
    config = StyleConfig(max_size=256, style_loss="mean_cov", **settings)
    with pytest.raises(ConfigError) as caught:
        stylize(image, image, config=config, callbacks=[seen.append])
    message = str(caught.value)
    assert "a 256x192 image needs about" in message and "50 MiB is available" in message
    assert "max_size=" in message and "tile_size=" not in message
    assert "\n" not in message and seen == []
    longest = int(message.split("max_size=")[1].split()[0].rstrip(","))
    assert longest == 153
    small = np.zeros((longest * 3 // 4, longest, 3), np.float32)
    stylize(small, small, config=config.replace(max_size=longest))
    # A tile_size asked for that does not fit is refused, naming one that does.
    with pytest.raises(ConfigError) as caught:
        stylize(image, image, config=StyleConfig(max_size=256, tile_size=160, **settings))
    tile = int(str(caught.value).split("tile_size=")[-1].split()[0])
    assert tile == 80
    tiled = StyleConfig(max_size=256, tile_size=tile, **settings)
    result = stylize(image, image, config=tiled)
    assert result.image.shape == (192, 256, 3) and not result.automatic_tiles
    # memory_check=False runs anyway.
    monkeypatch.setattr(host, "available_memory", lambda: 1)
    unchecked = StyleConfig(max_size=64, memory_check=False, **settings)
    stylize(image[:48, :64], image[:48, :64], config=unchecked)


def test_automatic_tiles_cut_only_the_scales_whose_untiled_step_does_not_fit(
    monkeypatch, built_runners
):
    # As above: 192x256 untiled needs about 104 MiB (130 with headroom), more than 110; 96x128
    # about a quarter.
    monkeypatch.setattr(memory, "_TILED_OVERHEAD", 0)
    monkeypatch.setattr(host, "available_memory", lambda: 110 * 2**20)
    image = np.zeros((192, 256, 3), np.float32)
    config = StyleConfig(max_size=256, weights=None, iterations=2, scales=2, **SHALLOW)
    seen = []
    result = stylize(image, image, config=config, callbacks=[seen.append])
    assert result.automatic_tiles and result.config.tile_size == 96
    # The coarse scale runs untiled (one tile), the fine one in 2 x 3 tiles of 96 px.
    sizes = [tuple(record.size) for record in seen]
    assert sizes[0] == (96, 128) and sizes[-1] == (192, 256)
    assert [(tuple(r.size), r.tiles) for r in (seen[0], seen[-1])] == [
        ((96, 128), 1),
        ((192, 256), 6),
    ]
    assert ["tiles" in kwargs for kwargs in built_runners] == [False, True]


def test_cli_refuses_a_size_that_does_not_fit_in_one_line(tmp_path, capfd, monkeypatch):
    from cli_runner import TINY, assert_clean_failure, run_inprocess
    from PIL import Image

    monkeypatch.setattr(host, "available_memory", lambda: 100 * 2**20)
    content, style, output = tmp_path / "c.png", tmp_path / "s.png", tmp_path / "out.png"
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(content)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(style)
    args = ["--content", content, "--style", style, "--output", output, *TINY, "--quiet"]
    result = run_inprocess([*args, "--max_size", "400"], capfd)
    assert_clean_failure(result, output=output, match="a 400x300 image needs about")
    result = run_inprocess([*args, "--max_size", "400", "--tile_size", "40"], capfd)
    assert_clean_failure(result, output=output, match="tile_size must be a multiple of 16")


def test_cli_tiles_a_size_that_does_not_fit_by_itself_and_says_so(tmp_path, capfd, monkeypatch):
    import json

    from cli_runner import TINY, run_inprocess
    from PIL import Image

    monkeypatch.setattr(memory, "_TILED_OVERHEAD", 0)
    layers = SHALLOW["content_layers"] + SHALLOW["style_layers"]
    settings = {
        "network": "vgg19",
        "layers": layers,
        "content_layers": SHALLOW["content_layers"],
        "precision": "float32",
        "remat": False,
    }
    # Room for a tiled step of 96 px tiles in half of it, not for the untiled 256x192 one.
    tiled = estimate_step_bytes(
        height=192, width=256, tile_size=96, copies=CPU_ACTIVATION_COPIES, **settings
    )
    available = int(2 * HEADROOM * tiled)
    monkeypatch.setattr(host, "available_memory", lambda: available)
    expected = memory.automatic_tile_size(size=(192, 256), available=available, grid=16, **settings)
    assert expected is not None and 96 <= expected < 256
    rng = np.random.default_rng(0)
    content, style, output = tmp_path / "c.png", tmp_path / "s.png", tmp_path / "out.png"
    Image.fromarray(rng.integers(0, 255, (192, 256, 3), dtype=np.uint8)).save(content)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(style)
    args = ["--content", content, "--style", style, "--output", output, *TINY]
    args += ["--max_size", "256", "--scales", "1", "--precision", "float32"]
    args += ["--content_layers", "block3_conv2", "--style_layers", "block1_conv1,block2_conv1"]
    result = run_inprocess(args, capfd)
    assert result.code == 0, result.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["tiling"] == "automatic" and report["settings"]["tile_size"] == expected
    count = len(tile_plan(192, 256, tile_size=expected, network="vgg19", layers=layers))
    assert count > 1 and report["tiles"] == count
    assert f"{count} tiles" in result.stderr  # the progress line says so


def test_cli_tile_size_reaches_the_step(tmp_path, capfd, built_runners):
    import json

    from cli_runner import TINY, run_inprocess
    from PIL import Image

    rng = np.random.default_rng(0)
    content, style, output = tmp_path / "c.png", tmp_path / "s.png", tmp_path / "out.png"
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(content)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(style)
    args = ["--content", content, "--style", style, "--output", output, *TINY, "--quiet"]
    result = run_inprocess([*args, "--max_size", "64", "--tile_size", "32"], capfd)
    assert result.code == 0, result.stderr
    settings = json.loads((tmp_path / "out.json").read_text())["settings"]
    assert settings["tile_size"] == 32
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["tiles"] == 4 and report["peak_memory_mb"] > 0  # 2 x 2 cores of 32 px
    assert report["tiling"] == "asked"
    largest = [kw for kw in built_runners if kw["image"].shape[:2] == (48, 64)]
    assert largest and all(len(kw["tiles"]) == 4 for kw in largest)
    assert tfstyle.StyleConfig().tile_size is None


def test_cli_video_refuses_tile_size_without_model(tmp_path, capfd):
    from cli_runner import assert_clean_failure, run_inprocess

    output = tmp_path / "out.mp4"
    args = ["video", "--content", tmp_path / "clip.mp4", "--style", tmp_path / "s.png"]
    result = run_inprocess([*args, "--output", output, "--tile_size", "32"], capfd)
    assert_clean_failure(result, output=output, match="--tile_size is for --model videos")
