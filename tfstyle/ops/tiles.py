"""Where the tiles of a tiled step lie: cores that partition the image, each with a halo of
context wide enough that VGG's features in the core are exactly those of the whole image.

A tiled step (`tfstyle.optimize.step.tiled`, `StyleConfig.tile_size`) never holds the whole
image's activations: it runs VGG on one tile at a time. For that to change nothing, the features
each tile contributes must be the untiled network's, which holds when:

* Each tile starts on VGG's pooling grid (a multiple of `alignment`: 2 ** the pools before the
  deepest layer), so a tile's pooled positions are the image's, shifted by a whole number.
* Its halo covers the dependency cone of the core's features: a 3x3 convolution reads one
  feature either side, which is `stride` pixels at a layer `stride` pixels apart; a 2x2 pool of
  stride 2 over an aligned range reads nothing outside it. So the cone of a layer reaches
  `sum(stride of each conv up to it)` pixels beyond the core (`receptive_margin`): 70 px for
  VGG19's block5_conv1, 58 for VGG16's. Features nearer a tile's edge than that saw the tile's
  zero padding instead of the neighbouring pixels, and lie in the halo, which is discarded.
* Where a tile meets the image's edge, the zero padding is the image's own, so no halo is needed
  there.

Pure Python: no tensors, no I/O.
"""

import dataclasses

from tfstyle.settings.layers import layer_names


@dataclasses.dataclass(frozen=True)
class Tile:
    """One tile, in pixels of the whole image: the part VGG runs on (`top`..`bottom`,
    `left`..`right`, end exclusive) and its core (`core_*`), the part whose features it
    contributes. Cores partition the image."""

    top: int
    left: int
    bottom: int
    right: int
    core_top: int
    core_left: int
    core_bottom: int
    core_right: int


def block_of(name):
    """VGG block number of a conv layer name: "block4_conv2" -> 4."""
    return int(name.split("_")[0][len("block") :])


def layer_stride(name):
    """Pixels between neighbouring features of layer `name` (the pools before it)."""
    return 2 ** (block_of(name) - 1)


def receptive_margin(network, layers):
    """Pixels beyond a pooling-aligned core that the deepest of `layers`' features depend on."""
    names = layer_names(network)
    deepest = max(names.index(name) for name in layers)
    return sum(layer_stride(name) for name in names[: deepest + 1])


def alignment(network, layers):
    """The pooling grid of the deepest of `layers`: tiles and cores start on multiples of it."""
    names = layer_names(network)
    return layer_stride(names[max(names.index(name) for name in layers)])


def halo(network, layers):
    """The context (pixels) on each side of a core: the receptive margin rounded up to the
    pooling grid."""
    grid = alignment(network, layers)
    return -(-receptive_margin(network, layers) // grid) * grid


def tile_plan(height, width, *, tile_size, network, layers):
    """The tiles of a `height` x `width` image whose cores are at most `tile_size` pixels on a
    side (a multiple of `alignment`): row by row, each tile its core plus `halo` where the core
    is not at the image's edge."""
    margin = halo(network, layers)
    grid = alignment(network, layers)
    if tile_size % grid:
        raise ValueError(f"tile_size {tile_size} is not a multiple of the pooling grid {grid}")

    def spans(length):
        starts = range(0, length, tile_size)
        return [
            (max(0, s - margin), s, min(length, s + tile_size), min(length, s + tile_size + margin))
            for s in starts
        ]

    return [
        Tile(top, left, bottom, right, core_top, core_left, core_bottom, core_right)
        for top, core_top, core_bottom, bottom in spans(height)
        for left, core_left, core_right, right in spans(width)
    ]


def run_plan(config, size):
    """The tiles of a run's step for an image of `size` (height, width), or None when the step
    is untiled: `config.tile_size` is None, or the image fits in one tile (an untiled step is
    then the same).

    Args:
        config: the run's `StyleConfig` (tile_size, network and layers).
        size: `(height, width)` of the image at this scale.

    Returns:
        `tile_plan`'s list of `Tile`s, or None.
    """
    tile = config.tile_size
    if tile is None or max(size) <= tile:
        return None
    layers = config.content_layers + config.style_layers
    return tile_plan(*size, tile_size=tile, network=config.network, layers=layers)


def tile_count(config, size):
    """How many tiles `run_plan(config, size)` runs VGG on: 1 for an untiled step."""
    plan = run_plan(config, size)
    return 1 if plan is None else len(plan)


def largest_tile(height, width, *, tile_size, network, layers):
    """(height, width) of the largest tile of the plan: what one tile's step must fit."""
    tiles = tile_plan(height, width, tile_size=tile_size, network=network, layers=layers)
    return max(((t.bottom - t.top, t.right - t.left) for t in tiles), key=lambda s: s[0] * s[1])
