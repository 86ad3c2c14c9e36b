"""Colab helpers with a fake notebook display: in-place preview updates, side by side, download."""

import io
import sys
import types

import numpy as np
import pytest
from PIL import Image

from tfstyle import stylize
from tfstyle.integrations import colab

pytest.importorskip("IPython")


class FakeHandle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, obj):
        self.shown.append(("update", obj))


@pytest.fixture
def shown(monkeypatch):
    """Everything passed to IPython.display.display, as (kind, object) pairs."""
    calls = []

    def display(obj, display_id=None):
        calls.append(("display" if display_id else "plain", obj))
        return FakeHandle(calls) if display_id else None

    monkeypatch.setattr("IPython.display.display", display)
    return calls


def test_live_preview_updates_one_image_every_k_steps(
    shown, content_image, style_image, tiny_config
):
    config = tiny_config.replace(iterations=7, steps_per_call=2)
    images = {}  # the image each step handed to callbacks

    def record(progress):
        if progress.image is not None:
            images[progress.step] = np.array(progress.image)

    result = stylize(
        content_image,
        style_image,
        config=config,
        callbacks=[record, colab.LivePreview(every=2)],
    )
    # Images at steps 2, 4, 6 and the last, 7: one display, then updates of the same output.
    assert [kind for kind, _ in shown] == ["display", "update", "update", "update"]
    assert all(isinstance(obj, Image.Image) and obj.size == (56, 40) for _, obj in shown)
    # Each preview is that step's image, as 8 bits (not a stale or blank picture), and the
    # picture changes as the run goes on.
    previews = [np.asarray(obj, np.float32) / 255 for _, obj in shown]
    for preview, step in zip(previews, (2, 4, 6, 7), strict=True):
        np.testing.assert_allclose(preview, images[step], atol=0.5 / 255 + 1e-6)
    assert np.abs(previews[0] - previews[-1]).max() > 2 / 255
    np.testing.assert_allclose(previews[-1], result.image, atol=0.5 / 255 + 1e-6)


def test_live_preview_interval(shown, content_image, style_image, tiny_config):
    config = tiny_config.replace(iterations=7, steps_per_call=2)
    stylize(content_image, style_image, config=config, callbacks=[colab.LivePreview(every=5)])
    assert [kind for kind, _ in shown] == ["display", "update"]  # steps 6 and 7


def _solid(colour, height=40, width=56):
    return np.broadcast_to(np.float32(colour), (height, width, 3)).copy()


def test_show_side_by_side(shown, content_image, style_image):
    # Three solid pictures: each third of the figure must show its own colour, in order.
    colours = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)]
    png = colab.show(*(_solid(c) for c in colours))
    [(kind, obj)] = shown
    assert kind == "plain" and obj.data == png
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (1200, 440)
        pixels = np.asarray(im.convert("RGB"))
    for third, colour in zip(np.split(pixels, 3, axis=1), colours, strict=True):
        # The picture fills a good share of its panel (the rest is white margin and title).
        exact = np.all(third == np.uint8(colour) * 255, axis=-1)
        assert exact.mean() > 0.3, (colour, exact.mean())
        others = [c for c in colours if c != colour]
        assert not any(np.all(third == np.uint8(c) * 255, axis=-1).any() for c in others)


def test_save_downloads_in_colab(tmp_path, monkeypatch, content_image):
    downloaded = []
    files = types.SimpleNamespace(download=downloaded.append)
    monkeypatch.setitem(sys.modules, "google.colab", types.SimpleNamespace(files=files))
    path = colab.save(content_image, tmp_path / "out.png")
    assert downloaded == [path] and path == str(tmp_path / "out.png")
    # A round trip: the file holds the image, rounded to 8 bits.
    saved = np.asarray(Image.open(path), np.float32) / 255
    assert saved.shape == (40, 56, 3)
    np.testing.assert_allclose(saved, content_image, atol=0.5 / 255 + 1e-6)


def test_save_outside_colab_just_saves(tmp_path, monkeypatch, content_image):
    monkeypatch.setitem(sys.modules, "google.colab", None)  # import fails as outside Colab
    path = colab.save(content_image, tmp_path / "out.jpg")
    assert path == str(tmp_path / "out.jpg")
    # JPEG is lossy: the same picture on average (noise costs a few levels), not bit for bit.
    with Image.open(path) as im:
        assert im.format == "JPEG"
        saved = np.asarray(im, np.float32) / 255
    assert saved.shape == (40, 56, 3)
    assert np.abs(saved - content_image).mean() < 0.03


def test_preview_pixels_are_the_saved_files(tmp_path, content_image):
    # One float-to-uint8 conversion for files and previews: rounding, clipping, NaN as black.
    image = content_image.copy()
    image[0, 0] = [np.nan, 1.5, -0.2]
    image[0, 1] = [0.5 / 255, 1.5 / 255, 0.999]
    saved = np.asarray(Image.open(colab.save(image, tmp_path / "x.png", download=False)))
    np.testing.assert_array_equal(np.asarray(colab.to_pil(image)), saved)
    assert saved[0, 0].tolist() == [0, 255, 0]
