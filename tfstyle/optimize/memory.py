"""How much accelerator memory one optimisation step needs, from the layer shapes alone.

A pure function of the network, the layers used, the image size, the precision and whether
activations are recomputed (`remat`), so a run that may not fit is flagged before it starts and
the message can name the largest size that would fit.

What `stylize` does with it (`StyleConfig.memory_check`, on by default; nothing on a CPU):

* Before any work, the estimate against the accelerator's free memory: a warning
  (`estimate_warning`), never a refusal, since the model below has not been measured on a GPU.
* On JAX, when a scale's step is compiled and before it runs, XLA's own account of the compiled
  program (`jax.jit(...).lower(...).compile().memory_analysis()`, exact for that program): a
  refusal (`compiled_refusal`) when its temporaries and outputs do not fit what is free, where
  the run would otherwise stop with XLA's out-of-memory error. (The compiled program is the one
  the run then uses: this compiles nothing extra.)

The model of a step (forward through VGG to the deepest layer used, then the gradient with
respect to the image):

* Saved for the backward pass: every conv output (the ReLU and max-pool gradients need them) and
  every pool output, in the compute dtype, `ACTIVATION_COPIES` times. With `remat`, each block's
  input and the layers the losses read are kept once, and during the backward pass one block's
  activations are recomputed at a time: the largest block's, `ACTIVATION_COPIES` times, on top.
  (For a network that is mostly its first block, remat saves nothing.)
* Live gradients in the backward pass: the two largest activations (a layer's output gradient
  and its input gradient), in the compute dtype.
* Network weights: float32, plus a compute-dtype copy under mixed precision.
* Content targets and the image-sized buffers (image, gradient, optimizer state, averages): float32.

Calibrated against XLA's memory analysis of the compiled JAX step on the CPU (BENCHMARKS.md):
there the step keeps about two arrays per conv output (the pre-activation for the ReLU gradient
and the activation itself), hence `ACTIVATION_COPIES`. Not yet measured on a GPU, where fused
conv-bias-ReLU kernels may keep one; convolution workspaces and fragmentation come on top, which
`HEADROOM` covers.
"""

import math

from tfstyle.models.vgg import layer_names
from tfstyle.ops.tiles import largest_tile

# The estimate times this must fit: convolution workspaces and fragmentation come on top.
HEADROOM = 1.25
# A tile chosen by `automatic_tile_size` fits this share of the available memory (with
# `HEADROOM`), not all of it: the user did not ask for the memory, the machine may be shared,
# and a smaller tile costs little (more halo overlap: at 4096x3072 with VGG16, 6 tiles instead
# of 4).
AUTOMATIC_TILE_SHARE = 0.5
# Arrays kept per activation for the backward pass (measured with XLA on the CPU).
ACTIVATION_COPIES = 2
# The same for TensorFlow's own (not XLA's) CPU step, fitted to peak resident memory measured
# with scripts/benchmark.py at 512, 1024 and 2048 px (docs/recipes.md).
CPU_ACTIVATION_COPIES = 1.5
# Image-sized float32 [H, W, 3] buffers of a step: image, updated image, gradient, up to two
# optimizer moments, averaged image.
_IMAGE_BUFFERS = 6
# A tiled run's further image-sized float32 arrays: the gradient it assembles on the host and
# its copy as a tensor, the NumPy image the tiles are cut from, total variation's difference,
# the optimizer update's temporaries, and the run's own (the photo, its resized copy, the
# scale's starting image). Fitted to an 8192 x 6144 run with 880 px tiles (VGG16, 18044 MiB
# peak, about 2100 MiB of it before the first scale: estimate / measured 0.98), where these
# arrays are most of the step; a count of them would be 10-12. The same count overestimates
# smaller tiled runs: 1.4x at 4096 x 3072, 1.9x at 2048 x 1536 (one step, 880 px tiles).
_TILED_IMAGE_BUFFERS = 8
# What a tiled step holds beyond that model, whatever the sizes (a compiled function per tile
# shape for each pass, their kernels' caches): measured 207 and 250 MiB above it at 1024x768
# with 256 px tiles and 2048x1536 with 512 px tiles (scripts/measure_step_memory.py).
_TILED_OVERHEAD = 256 * 2**20
_BYTES = {"float32": 4, "mixed_bfloat16": 2, "mixed_float16": 2}


def estimate_step_bytes(
    *,
    network,
    layers,
    height,
    width,
    precision="float32",
    remat=False,
    content_layers=(),
    tile_size=None,
    copies=ACTIVATION_COPIES,
):
    """Bytes of memory one step needs (see the module docstring for the model).

    Args:
        network: "vgg19" or "vgg16".
        layers: the content and style layers the losses read (the network stops at the deepest).
        height, width: image size in pixels.
        precision: "float32", "mixed_bfloat16" or "mixed_float16".
        remat: whether activations are recomputed per VGG block in the backward pass.
        content_layers: those of `layers` with a stored target activation (float32).
        tile_size: a tiled step's `StyleConfig.tile_size`: VGG's activations are then those of
            the largest tile, the image-sized buffers and content targets the whole image's.
        copies: arrays kept per activation for the backward pass (`ACTIVATION_COPIES`, or
            `CPU_ACTIVATION_COPIES` for TensorFlow's CPU step).
    """
    compute = _BYTES[precision]
    tile_h, tile_w = height, width
    buffers, overhead = _IMAGE_BUFFERS, 0
    if tile_size is not None and max(height, width) > tile_size:
        tile_h, tile_w = largest_tile(
            height, width, tile_size=tile_size, network=network, layers=layers
        )
        buffers += _TILED_IMAGE_BUFFERS
        overhead = _TILED_OVERHEAD
    blocks = _block_shapes(network, layers, tile_h, tile_w)
    read = set(layers)
    activations = [size for block in blocks for _, size in block["convs"]]
    pools = [block["pool"] for block in blocks if block["pool"]]
    if remat:
        boundaries = [tile_h * tile_w * 3, *pools]
        taps = [size for block in blocks for name, size in block["convs"] if name in read]
        largest_block = max(sum(size for _, size in block["convs"]) for block in blocks)
        saved = sum(boundaries) + sum(taps) + copies * largest_block
    else:
        saved = copies * (sum(activations) + sum(pools))
    two_largest = sum(sorted(activations)[-2:])
    params = _parameter_count(blocks)
    weights = params * (4 + (compute if precision != "float32" else 0))
    whole = _block_shapes(network, layers, height, width)
    content = sum(
        size for block in whole for name, size in block["convs"] if name in content_layers
    )
    image = buffers * height * width * 3 * 4
    return int(compute * (saved + two_largest) + weights + 4 * content + image + overhead)


def largest_fitting_size(*, aspect, available_bytes, **settings):
    """The longest image side (pixels) whose step fits `available_bytes` with `HEADROOM`.

    Args:
        aspect: height / width of the image (the longer side is the one returned).
        available_bytes: free memory.
        settings: `estimate_step_bytes`'s other arguments (network, layers, ...).
    Returns:
        The largest longest side, or 0 if not even a 16-pixel image fits.
    """

    def fits(longest):
        height, width = _shape(longest, aspect)
        needed = estimate_step_bytes(height=height, width=width, **settings)
        return needed * HEADROOM <= available_bytes

    low, high = 16, 16
    if not fits(low):
        return 0
    while fits(high * 2):
        high *= 2
        if high > 2**20:
            return high
    high *= 2  # fits(high // 2) holds, fits(high) does not
    low = high // 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def largest_fitting_tile(*, height, width, available_bytes, grid, **settings):
    """The largest `tile_size` (a multiple of `grid`, below the image's longest side) whose
    tiled step of a `height` x `width` image fits `available_bytes` with `HEADROOM`, or 0 when
    none does (the whole-image buffers alone are too many)."""

    def fits(tile):
        needed = estimate_step_bytes(height=height, width=width, tile_size=tile, **settings)
        return needed * HEADROOM <= available_bytes

    candidates = range(grid, max(height, width), grid)
    low, high = 0, len(candidates)  # fits(candidates[i]) holds for i < low, fails from high
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if fits(candidates[middle]) else (low, middle)
    return candidates[low - 1] if low else 0


def automatic_tile_size(*, size, available, grid, copies=CPU_ACTIVATION_COPIES, **settings):
    """The `tile_size` a run left untiled (`tile_size=None`) takes on a CPU so as not to die
    of memory: None when the untiled step of an image of `size` (height, width) fits
    `available` bytes with `HEADROOM`, else the largest tile whose step fits
    `AUTOMATIC_TILE_SHARE` of them (`largest_fitting_tile`: the fewest tiles that leave the
    rest of the machine room); where the whole-image arrays alone take more than that share
    (8192 px on 24 GiB), the largest tile that fits all of them with `HEADROOM`; None when not
    even a `grid`-sized tile fits (the caller then refuses or runs untiled as the check says).

    A tiled step computes the same loss and gradient as the untiled one (`tfstyle.ops.tiles`),
    so choosing it changes the run's time and memory, not its result. `settings`:
    `estimate_step_bytes`'s other arguments (network, layers, precision, remat,
    content_layers)."""
    settings["copies"] = copies
    height, width = size
    if estimate_step_bytes(height=height, width=width, **settings) * HEADROOM <= available:
        return None
    for share in (AUTOMATIC_TILE_SHARE, 1.0):
        tile = largest_fitting_tile(
            height=height, width=width, available_bytes=available * share, grid=grid, **settings
        )
        if tile:
            return tile
    return None


def host_refusal(
    *,
    copies=CPU_ACTIVATION_COPIES,
    size,
    available,
    network,
    layers,
    precision,
    remat,
    content_layers,
    tile_size,
    grid,
    tiles_possible,
):
    """The one-line refusal for a CPU step of an image of `size` (height, width) whose estimate
    (with `HEADROOM`) exceeds `available` bytes of host memory, naming what would fit; None
    when it fits. `tiles_possible`: whether these settings could run tiled (to suggest a
    tile_size)."""
    settings = {
        "network": network,
        "layers": layers,
        "precision": precision,
        "content_layers": content_layers,
        "copies": copies,
    }
    height, width = size
    needed = estimate_step_bytes(
        height=height, width=width, remat=remat, tile_size=tile_size, **settings
    )
    if needed * HEADROOM <= available:
        return None
    ways = []
    if tile_size is None:
        longest = largest_fitting_size(
            aspect=height / width, available_bytes=available, remat=remat, **settings
        )
        ways.append(f"max_size={longest}" if longest else "a smaller image")
    if tiles_possible:
        tile = largest_fitting_tile(
            height=height,
            width=width,
            available_bytes=available,
            grid=grid,
            remat=remat,
            **settings,
        )
        if tile:
            ways.append(f"tile_size={tile} (or smaller)")
    if not remat and (
        estimate_step_bytes(height=height, width=width, remat=True, tile_size=tile_size, **settings)
        * HEADROOM
        <= available
    ):
        ways.append("remat=True")
    what = f"tile_size={tile_size}" if tile_size is not None else "these settings"
    return (
        f"a {width}x{height} image needs about {describe_bytes(needed)} of memory per step with "
        f"{what} (an estimate, with {HEADROOM:g}x headroom: {describe_bytes(needed * HEADROOM)}) "
        f"but {describe_bytes(available)} is available; try {' or '.join(ways)}, or "
        "memory_check=False to run anyway"
    )


def _shape(longest, aspect):
    if aspect >= 1:
        return longest, max(1, round(longest / aspect))
    return max(1, round(longest * aspect)), longest


def _block_shapes(network, layers, height, width):
    """Per block up to the deepest layer: conv names with output sizes, and the pool size."""
    names = layer_names(network)
    used = names[: max(names.index(name) for name in layers) + 1]
    blocks, h, w = [], height, width
    for block in sorted({int(name[5]) for name in used}):
        channels = min(64 * 2 ** (block - 1), 512)
        convs = [(name, h * w * channels) for name in used if int(name[5]) == block]
        h, w = h // 2, w // 2
        last = convs[-1][0] == used[-1]
        blocks.append({"convs": convs, "pool": 0 if last else h * w * channels})
    return blocks


def _parameter_count(blocks):
    count, channels_in = 0, 3
    for block_index, block in enumerate(blocks, start=1):
        channels = min(64 * 2 ** (block_index - 1), 512)
        for _ in block["convs"]:
            count += 9 * channels_in * channels + channels
            channels_in = channels
    return count


def estimate_warning(
    *, size, free, network, layers, precision, remat, content_layers, tile_size=None
):
    """The one-line warning for a step of an image of `size` (height, width) whose estimate
    (with `HEADROOM`) exceeds `free` bytes, or None when it fits.

    Args:
        size: `(height, width)` of the image.
        free: the accelerator's free bytes.
        network, layers, precision, remat, content_layers: as `estimate_step_bytes` takes them.

    Returns:
        The warning's text, naming the largest size that fits and what else would help, or
        None.
    """
    settings = {
        "network": network,
        "layers": layers,
        "precision": precision,
        "remat": remat,
        "content_layers": content_layers,
    }
    needed = estimate_step_bytes(height=size[0], width=size[1], tile_size=tile_size, **settings)
    if needed * HEADROOM <= free:
        return None
    longest = largest_fitting_size(aspect=size[0] / size[1], available_bytes=free, **settings)
    hints = [f"max_size={longest}"] if longest else []
    hints += [] if remat else ["remat=True"]
    hints += ["precision='mixed_bfloat16'"] if precision == "float32" else []
    return (
        f"a {size[1]}x{size[0]} image may need about {describe_bytes(needed)} of accelerator "
        f"memory per step (an estimate) but {describe_bytes(free)} is free, so about {longest} "
        f"px (longest side) fits with these settings; if the run fails for memory, try "
        f"{', '.join(hints) or 'a smaller image'} (memory_check=False silences this)"
    )


def compiled_refusal(*, stats, free, size):
    """The one-line refusal for a compiled step whose XLA memory analysis `stats` (a
    `CompiledMemoryStats`) does not fit `free` bytes, or None when it fits. The arguments
    (weights, image, optimizer state) are already on the device, so in `free`'s account; the
    step needs its temporaries and the outputs that do not reuse (alias) an argument.

    Args:
        stats: XLA's `CompiledMemoryStats` of the compiled step.
        free: the accelerator's free bytes.
        size: `(height, width)` of the image, for the message.

    Returns:
        The refusal's text, or None.
    """
    needed = stats.temp_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
    if needed <= free:
        return None
    return (
        f"the compiled step for a {size[1]}x{size[0]} image needs {describe_bytes(needed)} of "
        f"accelerator memory beyond its inputs (XLA's figure) but {describe_bytes(free)} is "
        "free; use a smaller max_size, remat=True or precision='mixed_bfloat16', or free the "
        "accelerator"
    )


def describe_bytes(count):
    """'1.5 GiB', '300 MiB': for messages.

    Args:
        count: a number of bytes.

    Returns:
        GiB with one decimal from 1 GiB up, else MiB rounded up.
    """
    if count >= 2**30:
        return f"{count / 2**30:.1f} GiB"
    return f"{math.ceil(count / 2**20)} MiB"
