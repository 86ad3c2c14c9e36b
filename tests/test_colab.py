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
    result = stylize(
        content_image,
        style_image,
        config=config,
        callbacks=[colab.LivePreview(every=2)],
    )
    # Images at steps 2, 4, 6 and the last, 7: one display, then updates of the same output.
    assert [kind for kind, _ in shown] == ["display", "update", "update", "update"]
    assert all(isinstance(obj, Image.Image) and obj.size == (56, 40) for _, obj in shown)
    final = np.asarray(shown[-1][1], np.float32) / 255
    np.testing.assert_allclose(final, result.image, atol=0.5 / 255 + 1e-6)


def test_live_preview_interval(shown, content_image, style_image, tiny_config):
    config = tiny_config.replace(iterations=7, steps_per_call=2)
    stylize(content_image, style_image, config=config, callbacks=[colab.LivePreview(every=5)])
    assert [kind for kind, _ in shown] == ["display", "update"]  # steps 6 and 7


def test_show_side_by_side(shown, content_image, style_image):
    png = colab.show(content_image, style_image, content_image[::-1])
    [(kind, obj)] = shown
    assert kind == "plain" and obj.data == png
    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (1200, 440)


def test_save_downloads_in_colab(tmp_path, monkeypatch, content_image):
    downloaded = []
    files = types.SimpleNamespace(download=downloaded.append)
    monkeypatch.setitem(sys.modules, "google.colab", types.SimpleNamespace(files=files))
    path = colab.save(content_image, tmp_path / "out.png")
    assert downloaded == [path] and path == str(tmp_path / "out.png")
    with Image.open(path) as im:
        assert im.size == (56, 40)


def test_save_outside_colab_just_saves(tmp_path, monkeypatch, content_image):
    monkeypatch.setitem(sys.modules, "google.colab", None)  # import fails as outside Colab
    path = colab.save(content_image, tmp_path / "out.jpg")
    assert path.endswith("out.jpg") and (tmp_path / "out.jpg").stat().st_size > 0


def test_preview_pixels_are_the_saved_files(tmp_path, content_image):
    # One float-to-uint8 conversion for files and previews: rounding, clipping, NaN as black.
    image = content_image.copy()
    image[0, 0] = [np.nan, 1.5, -0.2]
    image[0, 1] = [0.5 / 255, 1.5 / 255, 0.999]
    saved = np.asarray(Image.open(colab.save(image, tmp_path / "x.png", download=False)))
    np.testing.assert_array_equal(np.asarray(colab.to_pil(image)), saved)
    assert saved[0, 0].tolist() == [0, 255, 0]
