"""Colab and Jupyter helpers: a live preview, side-by-side display, saving and downloading.

A thin shell like the CLI: IPython and matplotlib are imported only when a helper runs, so
`import tfstyle.integrations.colab` works anywhere.

Example (in a notebook cell):
    >>> from tfstyle import colab
    >>> result = tfstyle.stylize(content, style, callbacks=[colab.LivePreview(every=25)])
    >>> colab.show(content, style, result.image)
    >>> colab.save(result.image, "stylized.png")  # and downloads it in Colab
"""

import io

from PIL import Image

from tfstyle.integrations.callbacks import EveryKSteps
from tfstyle.io import save_image
from tfstyle.ops.preprocessing import as_float_image, to_uint8
from tfstyle.settings.style import PREVIEW_EVERY

TITLES = ("content", "style", "result")


class LivePreview:
    """A stylize() callback that shows the image as it forms, updating one output in place.

    The first image is shown with `IPython.display.display(..., display_id=True)`; later ones
    replace it through the returned handle's `update`, so the notebook keeps one picture rather
    than one per step.

    Args:
        every: steps between updates (images reach callbacks every `steps_per_call` steps, so
            the preview shows the first image on or after each multiple); the last step is
            always shown.
    """

    def __init__(self, *, every=PREVIEW_EVERY):
        self._due = EveryKSteps(every)
        self.handle = None

    def __call__(self, progress):
        if not self._due(progress):
            return
        from IPython import display

        picture = to_pil(progress.image)
        if self.handle is None:
            self.handle = display.display(picture, display_id=True)
        else:
            self.handle.update(picture)


def to_pil(image):
    """A float `[H, W, 3]` image in [0, 1] (or uint8) as a PIL image, which notebooks render.

    Args:
        image: the image (`[1, H, W, 3]` too).

    Returns:
        An RGB `PIL.Image.Image`.
    """
    return Image.fromarray(to_uint8(image))


def show(content, style, result, *, titles=TITLES):
    """Display content, style and result side by side in the notebook.

    Args:
        content, style, result: the three images.
        titles: their titles.

    Returns:
        The displayed picture's PNG bytes (also `side_by_side`'s result).
    """
    from IPython import display

    png = side_by_side([content, style, result], titles=titles)
    display.display(display.Image(data=png))
    return png


def side_by_side(images, *, titles=TITLES):
    """PNG bytes of `images` in one row with `titles` above them (matplotlib's Agg canvas).

    Args:
        images: RGB images (as `as_float_image` takes them).
        titles: one title per image.

    Returns:
        PNG bytes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4 * len(images), 4.4), dpi=100)
    FigureCanvasAgg(figure)
    for index, (image, title) in enumerate(zip(images, titles, strict=True), start=1):
        axes = figure.add_subplot(1, len(images), index)
        axes.imshow(as_float_image(image))
        axes.set_title(title)
        axes.axis("off")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def save(image, path, *, download=True):
    """Save an image (atomically, by `tfstyle.io.save_image`) and, in Colab, download it.

    Outside Colab (no `google.colab` module) the file is only saved.

    Args:
        image: the image.
        path: a .png or .jpg file.
        download: in Colab, offer the file for download too.

    Returns:
        The absolute path written.
    """
    path = save_image(image, path)
    if download:
        try:
            from google.colab import files
        except ImportError:
            return path
        files.download(path)
    return path
