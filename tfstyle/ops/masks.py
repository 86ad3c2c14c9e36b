"""Spatial control (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style
Transfer", section 4): style masks say where each style image applies, a content mask where the
content is kept. Host-side NumPy: checking the masks, combining them into regions, and resizing
them to each feature layer; the masked losses themselves are in `losses.py`.

How masks combine (docs/masks.md):

* A mask is greyscale in [0, 1], white where it applies. It is stretched to the content image's
  shape (a mask of another size or aspect ratio is resized, with a warning), and to each layer's
  feature map by area averaging (`preprocessing.resize_mask`), so a border blends over the
  positions it crosses instead of snapping to the nearest one.
* Style masks that overlap are divided by their sum where it exceeds 1: two white masks share a
  pixel half and half. Where they sum to less than 1 (or to nothing: a pixel no mask covers),
  the style pulls less (or not at all), and the content loss alone holds the image there.
* The content mask removes the style from where it is white: every region is multiplied by
  `1 - content_mask`, and the content loss there is weighted by `mask_content_weight`.
* A style image mask (optional, one per style image) says which part of the painting supplies
  the texture: the style's target Gram is that of its masked features, as the image's regions
  are (see `losses.masked_gram_matrices`). It is stretched to its own style image.
* A mask that is black everywhere (at or below `BLANK_MASK_LEVEL`), a style mask that lies
  wholly inside the content mask, and a content mask that is white everywhere are errors: each
  would silently drop a style, or all of them.
"""

import warnings

import numpy as np

from tfstyle.errors import ConfigError, ImageError
from tfstyle.ops import preprocessing as pp
from tfstyle.settings.style import BLANK_MASK_LEVEL

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601, as preprocessing.rgb_to_yuv


def prepare(config, *, style_masks, content_mask, styles, content_shape, size):
    """The spatial control of a run, or None without masks: `{"regions": [R, H, W],
    "content": [H, W] or None, "per_style": whether there are style masks}` at `size` (the
    finest scale's height and width; each scale's layers average them down from there).

    Args:
        config: the run's `StyleConfig` (style_loss and style layers are checked).
        style_masks: None or one mask per style image (each as `as_mask` takes it).
        content_mask: None or a mask, white where the photo is kept.
        styles: the number of style images.
        content_shape: the content image's `(H, W, ...)` (a mask of another size is
            stretched to it, with a warning).
        size: `(height, width)` of the finest scale.

    Returns:
        The dict above, or None.

    Raises:
        ConfigError: counts that do not match, a style loss other than "gram", a blank mask,
            or a content mask that leaves nothing to stylize.
        ImageError: an array that is no mask.
    """
    style_masks = list(style_masks or [])
    check_options(
        config, style_masks=len(style_masks), content_mask=content_mask is not None, styles=styles
    )
    if not style_masks and content_mask is None:
        return None
    shape = tuple(content_shape[:2])
    fitted = []
    for index, mask in enumerate(style_masks):
        what = f"style mask {index + 1} of {len(style_masks)}"
        fitted.append(_checked(mask, shape, size, what=what))
    content = None
    if content_mask is not None:
        content = _checked(content_mask, shape, size, what="the content mask")
    return {
        "regions": regions(fitted, content, count=len(fitted)),
        "content": content,
        "per_style": bool(fitted),
    }


def prepare_style_image_masks(config, masks, styles):
    """Each style image's mask (`--style_image_masks`: the part of the painting whose texture
    is matched) at the style image's own size, or None without them.

    Args:
        config: the run's `StyleConfig`.
        masks: None or one mask per style image, white where its texture is taken from.
        styles: the style images, float32 `[h, w, 3]` each (the masks are fitted to them).

    Returns:
        A list of float32 `[h, w]` masks, or None.

    Raises:
        ConfigError: counts, style_loss, a blank mask.
        ImageError: not a mask array.
    """
    if not masks:
        return None
    check_options(
        config, style_masks=0, content_mask=False, styles=len(styles), style_image_masks=len(masks)
    )
    return [
        _checked(
            mask,
            style.shape[:2],
            style.shape[:2],
            what=f"style image mask {i + 1} of {len(masks)}",
            against="its style image",
        )
        for i, (mask, style) in enumerate(zip(masks, styles, strict=True))
    ]


def _checked(mask, shape, size, *, what, against="the content image"):
    mask = as_mask(mask, what=what)
    check_not_blank(mask, what=what)
    return pp.resize_mask(warn_if_resized(mask, shape, what=what, against=against), *size)


def as_mask(mask, *, what="mask"):
    """A copy of `mask` as float32 `[H, W]` in [0, 1]: uint8 or float, `[H, W]`, `[H, W, 1]` or
    RGB `[H, W, 3]` (its luminance).

    Args:
        mask: the array.
        what: the mask's name in messages ("style mask 1 of 2").

    Returns:
        A new float32 `[H, W]` array.

    Raises:
        ImageError: not an array of one of those shapes and types, or not finite.
    """
    array = np.asarray(mask)
    if array.ndim == 3 and array.shape[-1] in (1, 3):
        array = array[..., 0] if array.shape[-1] == 1 else array.astype(np.float32) @ _LUMA
        array = array if np.asarray(mask).dtype != np.uint8 else array / 255.0
    elif array.ndim == 2 and array.dtype == np.uint8:
        array = array / 255.0
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise ImageError(f"{what} must be an [H, W] or [H, W, 1 or 3] uint8 or float array")
    if not np.all(np.isfinite(array)):
        raise ImageError(f"{what} contains NaN or infinite values")
    return np.clip(array, 0.0, 1.0).astype(np.float32)


def check_options(config, *, style_masks, content_mask, styles, style_image_masks=0):
    """Refuse mask options that cannot work, before any image is read: `style_masks` and
    `style_image_masks` are their numbers (0 for none), `content_mask` whether there is one,
    `styles` the number of style images.

    Args:
        config: the run's `StyleConfig`.
        style_masks: how many style masks.
        content_mask: whether there is a content mask.
        styles: how many style images.
        style_image_masks: how many style image masks.

    Raises:
        ConfigError: counts that do not match the style images, masks with a style loss
            other than "gram", or masks without style layers.
    """
    if style_image_masks and style_image_masks != styles:
        raise ConfigError(
            f"{style_image_masks} style image mask(s) for {styles} style image(s); give one "
            "mask per style image"
        )
    if not style_masks and not content_mask and not style_image_masks:
        return
    if config.style_loss != "gram":
        raise ConfigError(
            f"masks work with style_loss 'gram' only, not {config.style_loss!r}: a masked "
            "mean/covariance or sliced distribution is not implemented"
        )
    if style_masks and style_masks != styles:
        raise ConfigError(
            f"{style_masks} style mask(s) for {styles} style image(s); give one mask per style"
        )
    if not config.style_layers:
        raise ConfigError("masks need at least one style layer")


def check_not_blank(mask, *, what):
    """Raise ConfigError if `mask` (from `as_mask`) is black everywhere.

    Args:
        mask: float32 `[H, W]` in [0, 1].
        what: the mask's name in the message.

    Raises:
        ConfigError: no value above `BLANK_MASK_LEVEL`.
    """
    if float(mask.max(initial=0.0)) <= BLANK_MASK_LEVEL:
        raise ConfigError(f"{what} is blank (black everywhere); white marks where it applies")


def warn_if_resized(mask, shape, *, what, against="the content image"):
    """`mask`, with a warning if its size differs from `shape` (height, width): it is then
    stretched to the content image by the resize that follows.

    Args:
        mask: float32 `[H, W]`.
        shape: `(height, width)` of the image it belongs to.
        what: the mask's name in the warning.
        against: that image's name in the warning.

    Returns:
        `mask` itself, unchanged.
    """
    if mask.shape != tuple(shape):
        aspect = "aspect ratio" if mask.shape[0] * shape[1] != mask.shape[1] * shape[0] else "size"
        warnings.warn(
            f"{what} is {mask.shape[1]}x{mask.shape[0]} px and {against} "
            f"{shape[1]}x{shape[0]} px (another {aspect}): the mask is stretched to fit",
            stacklevel=4,
        )
    return mask


def regions(style_masks, content_mask, *, count):
    """The `[R, H, W]` regions where each style applies (R = `count` style masks, or 1 region
    for the blended styles when there are none): overlaps normalised, the content mask cut out.

    Args:
        style_masks: float32 `[H, W]` masks, one per style (may be empty).
        content_mask: float32 `[H, W]`, or None.
        count: the number of style masks, for messages.

    Returns:
        float32 `[R, H, W]`.

    Raises:
        ConfigError: the content mask is white everywhere, or cuts a style out entirely.
    """
    if style_masks:
        stack = np.stack(style_masks)
        stack = stack / np.maximum(stack.sum(axis=0), 1.0)
    else:
        stack = np.ones((1, *content_mask.shape), np.float32)
    if content_mask is not None:
        stack = stack * (1.0 - content_mask)
    for index, region in enumerate(stack):
        if region.max() <= BLANK_MASK_LEVEL:
            which = f"style mask {index + 1} of {count}" if style_masks else "the content mask"
            fix = "lies wholly inside the content mask" if style_masks else "is white everywhere"
            raise ConfigError(f"{which} {fix}: nothing would be stylized there")
    return stack.astype(np.float32)


def layer_masks(masks, shape):
    """`[R, H, W]` masks area-averaged to a layer's `shape` (h, w): `[R, h, w, 1]` float32.

    Args:
        masks: `[R, H, W]` in [0, 1].
        shape: `(h, w)` of the layer's activations.

    Returns:
        float32 `[R, h, w, 1]`.
    """
    return np.stack([pp.resize_mask(m, *shape) for m in masks])[..., None].astype(np.float32)


def content_weights(content_mask, shape, *, weight):
    """Per-position content-loss weights `[1, h, w, 1]` of a layer of `shape`: 1 where the
    content mask is black, `weight` where it is white, linear between.

    Args:
        content_mask: float32 `[H, W]` in [0, 1].
        shape: `(h, w)` of the layer's activations.
        weight: the weight where the mask is white (`mask_content_weight`).

    Returns:
        float32 `[1, h, w, 1]`.
    """
    mask = layer_masks(content_mask[None], shape)
    return (1.0 + (weight - 1.0) * mask).astype(np.float32)
