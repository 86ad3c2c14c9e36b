"""The image pyramid: the size and steps of each scale, and the checks that every scale is
large enough for the network's deepest layer."""

from tfstyle.errors import ConfigError
from tfstyle.models.vgg import min_input_size
from tfstyle.ops import preprocessing as pp


def scale_plan(config, shape):
    """`[((height, width), steps), ...]` of each scale of a run on an image of `shape`, coarse
    to fine (`StyleConfig.scale_count` and `scale_iterations`).

    Args:
        config: the run's `StyleConfig`.
        shape: the content image's `(H, W, ...)`.

    Returns:
        A list of `((height, width), steps)`, one per scale.
    """
    longest = min(config.max_size, max(shape[:2]))
    sizes = scale_sizes(shape, max_size=config.max_size, scales=config.scale_count(longest))
    return list(zip(sizes, config.scale_iterations(len(sizes)), strict=True))


def scale_sizes(shape, *, max_size, scales):
    """(height, width) of each scale, coarse to fine, each twice the previous; the last fits
    `max_size` (never larger than the content). With `scales=1`, just the final size.

    Args:
        shape: the content image's `(H, W, ...)`.
        max_size: the longest side of the output.
        scales: the number of scales.

    Returns:
        A list of `scales` `(height, width)` tuples.
    """
    longest = min(max_size, max(shape[:2]))
    return [
        pp.scaled_shape(shape, max(1, round(longest / 2**k))) for k in range(scales - 1, -1, -1)
    ]


def check_sizes(config, sizes, content_shape, styles):
    """Refuse a run whose smallest scale, or a style image, is too small for the deepest layer.

    Args:
        config: the run's `StyleConfig`.
        sizes: `(height, width)` of each scale, coarse to fine (`scale_sizes`).
        content_shape: the content image's `(H, W, ...)`.
        styles: the style images, `[h, w, 3]` each.

    Raises:
        ConfigError: the first scale, a style image or a style image at `style_scale` is
            smaller than `min_input_size`; the message says which max_size or scales would do.
    """
    minimum = min_input_size(config.network, config.content_layers + config.style_layers)
    needs = f"{config.network} with layers up to {config.deepest_layer} needs at least {minimum} px"
    smallest = min(min(size) for size in sizes)
    if smallest < minimum:
        height, width = content_shape[:2]
        enough = _max_size_needed(config, content_shape, minimum)
        single = None
        if enough is None and config.scales == "auto":
            # A pyramid starts near 128 px whatever max_size is: one scale may still fit.
            single = _max_size_needed(config.replace(scales=1), content_shape, minimum)
        fewer = ", fewer scales" if len(sizes) > 1 else ""
        if enough is not None:
            fix = f"use max_size {enough} or more"
        elif single is not None:
            fix = f"use scales=1 and max_size {single} or more"
        else:
            fix = f"use a larger image{fewer} or shallower layers"
        raise ConfigError(
            f"the image is too small: {width}x{height} px gives a shorter side of {smallest} px "
            f"at the first scale (max_size {config.max_size}, {len(sizes)} scale(s)), and "
            f"{needs}; {fix}"
        )
    for style in styles:
        if min(style.shape[:2]) < minimum:
            # Upscaling a style image this small to the output's size would invent its texture.
            raise ConfigError(
                f"the style image is too small: {style.shape[1]}x{style.shape[0]} px, and {needs}"
            )
        style_size = pp.scaled_shape(style.shape, round(config.style_scale * max(sizes[0])))
        if min(style_size) < minimum:
            raise ConfigError(
                f"the style image is too small at style_scale {config.style_scale:g}: "
                f"{style_size[1]}x{style_size[0]} px at the first scale, and {needs}; use a "
                "larger style_scale or a larger style image"
            )


def _max_size_needed(config, shape, minimum):
    """The smallest max_size that makes every scale of `shape` big enough, or None (images are
    never upscaled, so a small image cannot be fixed with max_size)."""
    short, long = sorted(shape[:2])
    factor = 2 ** (config.scale_count(min(config.max_size, long)) - 1)
    # Sizes are rounded, so start a little below the exact bound and search upwards.
    estimate = int((minimum - 0.5) * factor * long / short) - factor - 1
    for max_size in range(max(config.max_size + 1, estimate), long + 1):
        scales = config.scale_count(min(max_size, long))
        sizes = scale_sizes(shape, max_size=max_size, scales=scales)
        if min(min(size) for size in sizes) >= minimum:
            return max_size
    return None
