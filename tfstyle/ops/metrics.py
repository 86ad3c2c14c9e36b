"""How well a stylized image matches its content and its style, measured on a VGG network.

Used to choose defaults (`scripts/quality.py`) and by the real-weights quality test. Distances
are relative squared errors (`losses.relative_squared_error`): 0 for a perfect match, about 1
for an image that shares nothing with the target.

The optimiser can lower the style loss on the layers the loss uses without the picture reading
as the painting (it can game those layers), so the verdict is the style distance on *held-out*
layers: conv layers that no default loss uses, one in each block. And it is measured twice:
at the image's size, and with the image and the painting both at half size
("coarse_held_out_style"). At full size a fine texture over the unchanged photo can score as
well as a painting (tfstyle 0.1's default at 384 px did: 0.047 against 0.046); at half size
the VGG layers see twice the area per unit, the scale of the painting's colour fields and
large strokes, and the photo under a texture scores three times worse (0.40 against 0.14).
"""

import numpy as np

from tfstyle.ops import preprocessing as pp
from tfstyle.ops.losses import gram_matrix, relative_squared_error

CONTENT_LAYER = "block4_conv2"
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
# In VGG16 and VGG19 alike; none is a default content or style layer.
HELD_OUT_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")


SCORER_LAYERS = (CONTENT_LAYER, *STYLE_LAYERS, *HELD_OUT_LAYERS)


def distances(extractor, image, *, content, style, style_scale=1.0):
    """`{"content", "style", "held_out_style", "coarse_held_out_style"}` of `image` (float
    `[H, W, 3]` in [0, 1]).

    Args:
        extractor: a VGG16 or VGG19 feature extractor with `SCORER_LAYERS`.
        image: the stylized image; `content` is resized to its size, and `style` as `stylize`
            scales it (longest side `style_scale` times the image's).
        content, style: the images the stylization started from.

    "content" is the relative feature error at `CONTENT_LAYER`; "style" and "held_out_style"
    are the mean relative Gram errors over `STYLE_LAYERS` and `HELD_OUT_LAYERS`;
    "coarse_held_out_style" is "held_out_style" with `image` and the painting at half size.
    """
    image = pp.as_float_image(image)
    content = pp.resize(pp.as_float_image(content), *image.shape[:2])
    style = pp.as_float_image(style)
    ours, theirs = (extractor(x[None], training=False) for x in (image, content))
    painting = _features(extractor, pp.scale_style(style, image.shape, style_scale))
    half = pp.resize(image, max(1, image.shape[0] // 2), max(1, image.shape[1] // 2))
    return {
        "content": float(relative_squared_error(ours[CONTENT_LAYER], theirs[CONTENT_LAYER])),
        "style": _gram_error(ours, painting, STYLE_LAYERS),
        "held_out_style": _gram_error(ours, painting, HELD_OUT_LAYERS),
        "coarse_held_out_style": _gram_error(
            _features(extractor, half),
            _features(extractor, pp.scale_style(style, half.shape, style_scale)),
            HELD_OUT_LAYERS,
        ),
    }


def _features(extractor, image):
    return extractor(image[None], training=False)


def _gram_error(ours, painting, layers):
    errors = [
        relative_squared_error(gram_matrix(ours[k]), gram_matrix(painting[k])) for k in layers
    ]
    return float(np.mean([float(e) for e in errors]))
