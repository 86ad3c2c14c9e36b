"""Array-to-array image operations on the host: sizes, colour spaces, initial images.

Everything here takes and returns float32 NumPy images `[H, W, 3]` in [0, 1] (`to_uint8`:
uint8, for saving and display) and never mutates its input. It imports nothing of tfstyle but
its errors, so `tfstyle.io` and `tfstyle.integrations.colab` use its resize and conversions rather
than their own. (The caffe preprocessing the network needs runs inside the feature extractor.)
"""

import numpy as np
from PIL import Image

from tfstyle.errors import ImageError

# ITU-R BT.601 RGB -> YUV (the YIQ-like space Gatys et al. 2016 use for luminance-only transfer).
_RGB_TO_YUV = np.array(
    [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]],
    dtype=np.float64,
)
_YUV_TO_RGB = np.linalg.inv(_RGB_TO_YUV)


def as_float_image(image):
    """Copy of `image` as float32 `[H, W, 3]` in [0, 1]; accepts uint8, `[1, H, W, 3]`, tensors.

    Args:
        image: uint8 (divided by 255) or float (clipped to [0, 1]) RGB, `[H, W, 3]` or
            `[1, H, W, 3]`.

    Returns:
        A new float32 `[H, W, 3]` array.

    Raises:
        ImageError: the wrong shape or dtype, or NaN or infinite values.
    """
    array = np.asarray(image)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ImageError(f"an image must be an [H, W, 3] RGB array; got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if not np.issubdtype(array.dtype, np.floating):
        raise ImageError(f"an image must be uint8 or float in [0, 1]; got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ImageError("the image array contains NaN or infinite values")
    return np.clip(array, 0.0, 1.0).astype(np.float32)


def to_uint8(image):
    """An RGB image (float in [0, 1] or uint8, `[H, W, 3]` or `[1, H, W, 3]`) as uint8, for
    saving and display: floats are clipped and rounded, NaN becomes 0 (a visible black rather
    than an arbitrary byte).

    Args:
        image: the image.

    Returns:
        A C-contiguous uint8 `[H, W, 3]` array.

    Raises:
        ValueError: the array does not have the shape or dtype of an RGB image (a bug of the
            caller, not a user's mistake).
    """
    pixels = np.asarray(image)
    if pixels.ndim == 4 and pixels.shape[0] == 1:
        pixels = pixels[0]
    if pixels.ndim != 3 or pixels.shape[-1] != 3 or 0 in pixels.shape:
        raise ValueError(
            f"expected an image of shape [H, W, 3] or [1, H, W, 3], got {pixels.shape}"
        )
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels)
    if not np.issubdtype(pixels.dtype, np.floating):
        raise ValueError(f"expected a float or uint8 image, got dtype {pixels.dtype}")
    pixels = np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)


def resize(image, height, width):
    """Resize to `height` x `width` with Lanczos filtering, channel by channel in float (so
    16-bit precision survives), clipped to [0, 1] (Lanczos overshoots at sharp edges).

    Args:
        image: an RGB image (as `as_float_image` accepts).
        height, width: the new size in pixels.

    Returns:
        A new float32 `[height, width, 3]` array (a copy when the size is unchanged).

    Raises:
        ImageError: as `as_float_image`.
    """
    image = as_float_image(image)
    if image.shape[:2] == (height, width):
        return image.copy()
    return np.clip(_resample(image, height, width, Image.Resampling.LANCZOS), 0.0, 1.0)


def resize_field(values, height, width):
    """Bilinear resize of a float array `[H, W, C]` of any range, without clipping: for
    per-pixel optimizer state (momentum, mean squares) carried from one scale to the next.

    Args:
        values: float `[H, W, C]`.
        height, width: the new size in pixels.

    Returns:
        A new float32 `[height, width, C]` array.
    """
    values = np.asarray(values, np.float32)
    if values.shape[:2] == (height, width):
        return values.copy()
    return _resample(values, height, width, Image.Resampling.BILINEAR)


def resize_mask(mask, height, width):
    """Resize a float `[H, W]` mask in [0, 1] to `height` x `width` by area averaging (Pillow's
    box filter: each output value is the mean of the input it covers, so a border between two
    masks becomes a blend, never a nearest-pixel staircase); bilinear where it is enlarged.

    Args:
        mask: float `[H, W]` in [0, 1].
        height, width: the new size in pixels.

    Returns:
        A new float32 `[height, width]` array in [0, 1].
    """
    mask = np.asarray(mask, np.float32)
    if mask.shape == (height, width):
        return mask.copy()
    shrinks = height <= mask.shape[0] and width <= mask.shape[1]
    method = Image.Resampling.BOX if shrinks else Image.Resampling.BILINEAR
    return np.clip(_resample(mask[..., None], height, width, method)[..., 0], 0.0, 1.0)


def _resample(values, height, width, method):
    """Each channel of a float32 `[H, W, C]` array resized as a Pillow "F" image."""
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(values[..., c])).resize((width, height), method)
        )
        for c in range(values.shape[-1])
    ]
    return np.stack(channels, axis=-1).astype(np.float32)


def crop_to_aspect(image, *, height, width):
    """The largest centred crop of `image` with the aspect ratio of a `height` x `width` image
    (an initial image of another shape is cropped to the content's, not stretched).

    Args:
        image: an RGB image (as `as_float_image` accepts).
        height, width: the size whose aspect ratio is wanted.

    Returns:
        float32 `[h, w, 3]`, at least 1 px each way.

    Raises:
        ImageError: as `as_float_image`.
    """
    image = as_float_image(image)
    rows, cols = image.shape[:2]
    if cols * height > rows * width:  # too wide: crop the sides
        keep = max(1, round(rows * width / height))
        start = (cols - keep) // 2
        return image[:, start : start + keep].copy()
    if cols * height < rows * width:  # too tall: crop top and bottom
        keep = max(1, round(cols * height / width))
        start = (rows - keep) // 2
        return image[start : start + keep].copy()
    return image


def scaled_shape(shape, longest):
    """(height, width) with the longer side equal to `longest`, aspect ratio kept.

    Args:
        shape: `(H, W, ...)`.
        longest: the longer side wanted, in pixels (larger than the image's enlarges).

    Returns:
        `(height, width)`, each rounded and at least 1.
    """
    height, width = shape[:2]
    scale = longest / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def fit_to_max_size(image, max_size):
    """Downscale so the longer side is at most `max_size` (never upscales).

    Args:
        image: an RGB image (as `as_float_image` accepts).
        max_size: the longest side allowed, in pixels.

    Returns:
        float32 `[h, w, 3]`.

    Raises:
        ImageError: as `as_float_image`.
    """
    image = as_float_image(image)
    if max(image.shape[:2]) <= max_size:
        return image
    return resize(image, *scaled_shape(image.shape, max_size))


def scale_style(style, content_shape, style_scale=1.0):
    """Resize a style image so its longer side is `style_scale` times the content's longer side.

    Unlike the Keras example, which squashes the style image to the content's height and width,
    the style's own aspect ratio is kept: Gram matrices do not need matching shapes.

    Args:
        style: the style image.
        content_shape: `(H, W, ...)` of the content at this scale.
        style_scale: the style's longer side relative to the content's (at least 16 px).

    Returns:
        float32 `[h, w, 3]`.
    """
    longest = max(16, round(style_scale * max(content_shape[:2])))
    return resize(style, *scaled_shape(np.shape(style), longest))


def rgb_to_yuv(image):
    """RGB in [0, 1] to YUV (BT.601): Y in [0, 1], U and V centred on 0.

    Args:
        image: float `[..., 3]` RGB.

    Returns:
        float32 `[..., 3]` YUV.
    """
    return (np.asarray(image, np.float64) @ _RGB_TO_YUV.T).astype(np.float32)


def yuv_to_rgb(image):
    """Inverse of `rgb_to_yuv`, clipped to [0, 1].

    Args:
        image: float `[..., 3]` YUV.

    Returns:
        float32 `[..., 3]` RGB in [0, 1].
    """
    return np.clip(np.asarray(image, np.float64) @ _YUV_TO_RGB.T, 0.0, 1.0).astype(np.float32)


def luminance_transfer(stylized, content):
    """Keep the luminance of `stylized` and the chroma (U, V) of `content`.

    Gatys et al. (2016) "Preserving Color in Neural Artistic Style Transfer", luminance-only
    transfer: the output's colours are the content photo's. `content` is resized to match.

    Args:
        stylized: the painted image.
        content: the photo whose colours are kept.

    Returns:
        float32 `[H, W, 3]` at `stylized`'s size.
    """
    stylized = as_float_image(stylized)
    content = resize(content, *stylized.shape[:2])
    yuv = rgb_to_yuv(content)
    yuv[..., 0] = rgb_to_yuv(stylized)[..., 0]
    return yuv_to_rgb(yuv)


def match_color(source, reference, *, eps=1e-5):
    """Linear colour transfer: give `source` the mean and covariance of `reference`'s pixels.

    Gatys et al. (2016), colour histogram matching, with the symmetric matrix square root
    (the "Image Analogies" variant they found best) rather than the Cholesky factor.

    Args:
        source: the image recoloured.
        reference: the image whose colour statistics it takes (any size).
        eps: ridge added to both covariances, so a flat image still inverts.

    Returns:
        float32 `[H, W, 3]` at `source`'s size, clipped to [0, 1].
    """
    source = as_float_image(source)
    src = source.reshape(-1, 3).astype(np.float64)
    ref = as_float_image(reference).reshape(-1, 3).astype(np.float64)
    src_mean, ref_mean = src.mean(0), ref.mean(0)
    src_cov = np.cov(src, rowvar=False) + eps * np.eye(3)
    ref_cov = np.cov(ref, rowvar=False) + eps * np.eye(3)
    transform = _sqrtm(ref_cov) @ np.linalg.inv(_sqrtm(src_cov))
    out = (src - src_mean) @ transform.T + ref_mean
    return np.clip(out, 0.0, 1.0).reshape(source.shape).astype(np.float32)


def keep_content_colors(painted, content, *, mode):
    """A trained stylizer's `painted` output with `content`'s colours, as `preserve_colors`
    does for optimisation: "luminance" keeps the photo's chroma under the painted luminance,
    "histogram" recolours the painting with the photo's colour statistics, "none" (or None)
    leaves it as it is.

    Args:
        painted: the stylizer's output.
        content: the photo it painted.
        mode: "luminance", "histogram", "none" or None.

    Returns:
        float32 `[H, W, 3]` (`painted` itself for "none").
    """
    if mode == "luminance":
        return luminance_transfer(painted, content)
    if mode == "histogram":
        return match_color(painted, content)
    return painted


def _sqrtm(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return vectors @ np.diag(np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def noise_image(shape, *, seed, blur_sigma=0.0):
    """Uniform noise in [0, 1] of `shape` (H, W); Gaussian-blurred and re-stretched if asked.

    Blurred noise starts optimisation from low-frequency blobs rather than pixel noise, which
    converges to smoother results (an init offered by crowsonkb's style-transfer-pytorch).

    Args:
        shape: `(H, W, ...)`.
        seed: the NumPy generator's seed.
        blur_sigma: the Gaussian blur's sigma in pixels; 0 for none.

    Returns:
        float32 `[H, W, 3]` in [0, 1].
    """
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0.0, 1.0, size=(*shape[:2], 3))
    if blur_sigma > 0:
        from scipy import ndimage  # local: scipy is only needed for this init and for L-BFGS

        noise = ndimage.gaussian_filter(noise, sigma=(blur_sigma, blur_sigma, 0), mode="reflect")
        low, high = noise.min(), noise.max()
        noise = (noise - low) / max(high - low, 1e-8)
    return noise.astype(np.float32)
