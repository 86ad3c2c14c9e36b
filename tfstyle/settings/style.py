"""Every setting of a stylization, its default and its validation, in one frozen dataclass.

The CLI maps flags onto `StyleConfig`, the library reads only `StyleConfig`: a default lives here
and nowhere else. `DEFAULTS` is an instance holding them, for keyword defaults of lower-level
functions.
"""

import dataclasses
import math

from tfstyle.errors import ConfigError
from tfstyle.settings.base import Settings
from tfstyle.settings.checks import check_choice as _check_choice
from tfstyle.settings.checks import check_int as _check_int
from tfstyle.settings.checks import check_number as _check_number
from tfstyle.settings.layers import check_layers, layer_names, min_input_size

NETWORKS = ("vgg19", "vgg16")
POOLINGS = ("max", "avg")
OPTIMIZERS = ("sgd", "adam", "lbfgs")
PRECONDITIONERS = ("rms", "none")
SCHEDULES = (
    "constant",
    "exponential",
    "piecewise",
    "polynomial",
    "cosine",
    "cosine_restarts",
    "one_cycle",
)
INITS = ("content", "noise", "blurred_noise", "style", "image")
COLOR_MODES = ("none", "luminance", "histogram")
LAYER_WEIGHT_PRESETS = ("equal", "decreasing")
AVERAGING = ("none", "ema", "best")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# precision="auto" runs "mixed_bfloat16" where the hardware computes bfloat16 natively, else
# "float32" (`resolve_precision`). On this 2-core EPYC (AVX-512 BF16, TensorFlow's oneDNN) a
# default step at 384 px ran 1.53x faster in bfloat16 with the same look; where bfloat16 is
# emulated it is slower, and XLA:CPU (the JAX backend) ran a 3x3 convolution no faster in
# bfloat16 than in float32 (1.0x), so JAX on a CPU stays float32.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# NVIDIA GPUs compute bfloat16 natively from Ampere (compute capability 8.0) on.
BFLOAT16_MIN_COMPUTE_CAPABILITY = (8, 0)
STYLE_LOSSES = ("gram", "mean_cov", "sliced_wasserstein")
# The loss terms of every run, in the order of its history and reports (`ops.losses` computes
# them; checkpoints, callbacks and runners read the names from here, without importing Keras).
LOSS_NAMES = ("content", "style", "tv", "total")

# Style loss "mean_cov" (style_stats.py): Newton-Schulz iterations per matrix square root, and the
# ridge added to both covariances, relative to the target's mean variance (tr(S) / C). The
# gradient of tr(root) is taken in closed form from the iteration's inverse root (`trace_sqrt`),
# so an iteration costs 3 matmuls forward and none backward, and 18 are cheaper than the 15
# backpropagated before (the step at 192 px: 2.9x gram's instead of 5.6x, issue 25). Measured on
# real VGG16 features of chelsea against The Starry Night at 256 px (block1-3_conv1), against the
# exact gradient (float64 eigendecomposition): closed form at 18 iterations 1.2-2.7% off (loss
# 0.03-0.15%), at 20 0.7-1.4%, at 15 3.4-7.7%; autodiff through 15 (before) 3.2-6.1%, through
# 22 0.3-0.8%. (40 iterations overflow to NaN in float32.)
NEWTON_SCHULZ_ITERATIONS = 18
COVARIANCE_RIDGE = 1e-4

# Style loss "sliced_wasserstein": random directions per layer, as a fraction of its channels
# (Heitz et al. use as many as channels). The directions are drawn anew every step, so fewer
# per step still cover all of them over a run; the step's cost is about linear in their number
# (issue 25; VGG16, 192 px, one script: 7.2x gram's step at 1, 3.5x at 1/2, 1.7x at 1/4).
# Astronaut + The Shipwreck at 256 px, style weight 100, looked at: 1, 1/2 and 1/4 give the same
# picture and scores (held-out style 0.042, 0.035, 0.035; content 0.496, 0.492, 0.494).
SLICED_DIRECTIONS_PER_CHANNEL = 0.25

# The style weight of each style loss when `style_weight` is None. Every loss is a relative
# error, about 1 for a blank image, but they fall at different rates as the image approaches the
# painting: sliced_wasserstein at gram's weight of 10 left the photo under a faint texture at
# 384 px (issue 25). Astronaut + The Shipwreck, VGG16, 256 px, default pyramid, looked at:
# at 30 the face is kept (eyes, mouth) and painted in Turner's palette, content 0.344, held-out
# style 0.043 (gram at 10: 0.390, 0.066); at 100 the face is painted away (0.494, 0.035).
DEFAULT_STYLE_WEIGHTS = {"gram": 10.0, "mean_cov": 10.0, "sliced_wasserstein": 30.0}

# Input images with more pixels are refused from their header, before decoding (decompression
# bombs); the CLI raises it with --max_pixels.
MAX_INPUT_PIXELS = 128_000_000

# Tiles of a tiled step (`tile_size`) are multiples of this: VGG's deepest pooling grid (four
# 2x2 pools before block5), so every tile's pooled positions are the whole image's.
TILE_GRID = 16

# scales="auto": the pyramid's coarsest scale is the smallest size of at least this many pixels
# (longest side) in the halving sequence from max_size (512 -> 128, 256, 512; 384 -> 192, 384;
# under 256, one scale), as crowsonkb's style-transfer starts near 128 px.
AUTO_SCALE_MIN_SIZE = 128
# Each finer scale runs this fraction of the previous scale's steps (rounded up). A step costs
# four times as much at twice the size, so every scale costs about the same, and most steps
# fall where the colours and large shapes move: at the coarse scales.
SCALE_ITERATION_RATIO = 0.25
# ...but every scale runs at least this fraction of the first scale's steps (rounded up): 10 of
# the default 200. Our deviation from a plain geometric schedule, for print-size outputs: with
# the ratio alone a 2048 px run gave its finest scale 1 step (a 4096 px run 1 at each of its two
# finest), so the picture was the coarser result enlarged, soft at 100%, with no fine strokes.
# Measured at 1024 px (VGG16 ImageNet-derived weights, coffee enlarged, The Starry Night; the
# finest scale's steps, docs/recipes.md "Detail at full size"): the held-out style distance of
# 512 px crops against the painting was 0.52 after the 4 steps the ratio gives, 0.34 after 10,
# 0.21 after 20, 0.11 after 40, and the 100% crops sharpen from 4 to 10 steps, less so beyond.
# 10 because of its cost at 4096 px, where a step costs 64 times one at 512 px (the pixels):
# with 10 steps at each of 1024, 2048 and 4096 px a 4096 px run costs about 6.5 times what the
# ratio alone gave (1, 1 and 4 steps there), with 40 about 25 times. Runs of up to 512 px (13
# steps at their finest) are unchanged, and so are runs of 20 iterations or fewer (a floor of 1).
SCALE_ITERATION_FLOOR = 0.05

# Spatial control (`tfstyle.ops.masks`). Where the content mask is white, each position's content
# loss is multiplied by `mask_content_weight`: the style loss is already zero there, but the deep
# style layers' receptive fields reach into the region from outside and pull its border along,
# so the content needs more than its usual weight to hold. Measured (tests/test_masks.py, 48 px,
# default SGD): the masked half moved by 0.051 mean absolute pixel difference at 1, 0.035 at 10
# and 0.020 at 100, the stylized half by about 0.12. The default 10 is a middle value, not tuned
# on real photos.
MASK_CONTENT_WEIGHT = 10.0
# Mask pixels at or below this count as black when a mask is checked for being blank (half a
# grey level of an 8-bit file).
BLANK_MASK_LEVEL = 0.5 / 255

# How often (in steps) callbacks that show the image do so: TensorBoard images, Colab previews.
PREVIEW_EVERY = 50

# Learning rates for images in [0, 1] with the gradient scaled as `tfstyle.optimize.step` describes
# (L-BFGS has none: its line search sets the step). SGD's default runs with Nesterov momentum
# 0.95 on the preconditioned gradient (`optimizers.PreconditionedSGD`): with every value's
# gradient normalised, the momentum is what separates the painting's steady pull (colours,
# large shapes, which add up over about 1 / (1 - 0.95) = 20 steps) from high-frequency
# components whose sign changes from step to step (they cancel). A steady gradient moves a
# value by up to lr / (1 - momentum) = 0.01 per step. Measured with scripts/quality.py (VGG16,
# docs/quality.md): momentum 0.99 at 3e-4 (0.03 per step) overshoots and paints the face away,
# as Adam at 0.02 does; 0.95 at 5e-4 kept the content and scored lower held-out style
# distances than both.
DEFAULT_LEARNING_RATES = {"sgd": 5e-4, "adam": 0.02}
# SGD on the raw gradient (precondition="none", the Keras example's update) needs a rate in
# gradient units instead: see SGD_GRADIENT_CLIP_RMS.
PLAIN_SGD_LEARNING_RATE = 2e-4

# SGD clips the gradient's global norm to this root-mean-square value per pixel channel (a safety
# net, not in the Keras example): at the start the RMS is about 40-65 with ImageNet-like VGG16
# weights at 64-256 px, but it grows with the image size and the style, and one plain-SGD run
# (The Scream at 256 px, rate 4e-4) diverged to a saturated image. Clipped, a step moves pixels
# by at most lr * 50 RMS.
SGD_GRADIENT_CLIP_RMS = 50.0


@dataclasses.dataclass(frozen=True)
class StyleConfig(Settings):
    """Settings of one stylization. All fields are keyword arguments with validated defaults.

    Network and layers:
        network: "vgg19" or "vgg16".
        weights: "imagenet", None (random, for tests), or a path to a local weights file.
        pooling: "max" or "avg".
        content_layers, style_layers: VGG conv layer names (their ReLU outputs).
        style_layer_weights: "equal", "decreasing" (1/1, 1/2, 1/4... in the order of
            `style_layers` as given, not sorted by depth: list shallow layers first to weight
            them more, as crowsonkb's style-transfer-pytorch does) or one weight per style
            layer.
    Loss weights (see `losses.py` for the normalisation that makes them size-independent):
        content_weight, style_weight, tv_weight. `style_weight` None: the style loss's own
            default (`DEFAULT_STYLE_WEIGHTS`); `effective_style_weight` is the one in force.
        mask_content_weight: with a content mask (`stylize(..., content_mask=...)`), the
            content loss where the mask is white is multiplied by this (see `tfstyle.ops.masks`).
        style_loss: what the style term matches: "gram" (Gram matrices, Gatys et al.),
            "mean_cov" (Wasserstein-2 distance between Gaussian fits: means and covariances)
            or "sliced_wasserstein" (the full feature distributions along random directions,
            Heitz et al. 2021). All three are relative errors, about 1 for a blank image.
    Images:
        max_size: longest side of the output in pixels.
        style_scale: style image's longest side relative to the output's.
        style_blend_weights: one weight per style image (None: equal).
        preserve_colors: "none", "luminance" (transfer luminance only, keep the content's
            chroma) or "histogram" (match the style's colours to the content's first).
    Optimisation:
        iterations: steps at the first (coarsest) scale (L-BFGS: iterations); each finer scale
            runs `SCALE_ITERATION_RATIO` as many, rounded up, but at least
            `SCALE_ITERATION_FLOOR` times `iterations` (10 of 200), so that the finest scales
            of a large output still paint. With one scale, all the steps.
        optimizer: "sgd" (with `schedule`, default "exponential" as in the Keras example),
            "adam" or "lbfgs" (scipy L-BFGS-B with pixel bounds).
        momentum: SGD's momentum (Nesterov's when not 0).
        precondition: "rms" (SGD steps on each value's gradient divided by its running RMS,
            see `optimizers.PreconditionedSGD`) or "none" (the raw gradient, as the Keras
            example; its default rate is then `PLAIN_SGD_LEARNING_RATE`).
        learning_rate: None for the optimizer's default (`DEFAULT_LEARNING_RATES`).
        schedule: learning-rate schedule for SGD and Adam.
        scales: "auto" (a pyramid from about `AUTO_SCALE_MIN_SIZE` px up to max_size, each
            size twice the previous) or the number of sizes (1: a single scale). Each scale
            starts from the previous result, with the optimizer's state resized and carried.
        init: "content", "noise", "blurred_noise", "style", or "image" (pass init_image).
        init_noise_ratio: fraction of noise mixed into the initial image.
        average: "none", "ema" (exponential moving average of the image as output) or
            "best" (the image with the lowest total loss).
        seed: seeds the noise; runs are deterministic for a seed on the CPU.
        precision: Keras dtype policy for the network: "float32", "mixed_bfloat16",
            "mixed_float16", or "auto" ("mixed_bfloat16" where the hardware computes
            bfloat16 natively, else "float32"; resolved once when a run starts, and the
            result's config and the JSON report name the precision that ran).
        steps_per_call: optimisation steps in one compiled call (callbacks see every step).
        remat: recompute each VGG block's activations in the backward pass instead of storing
            them (less memory for large images, about a third more compute per step).
        memory_check: check that a step fits the memory there is (see
            `tfstyle.optimize.memory`): before any work, on a CPU a refusal when the estimated
            step of the largest scale exceeds the host's available memory, on an accelerator a
            warning from the estimate; on JAX, a refusal from XLA's own figures when a scale's
            step is compiled. False skips all of these.
        tile_size: None (untiled), or the side in pixels (a multiple of `TILE_GRID`) of the
            tiles VGG runs on one at a time, so that a step's memory is bounded by the tile,
            not the image; the losses and gradient are the untiled step's (global Gram
            matrices: see `tfstyle.optimize.step.tiled`), for about one more forward pass per
            step. TensorFlow backend, "gram" style loss, no masks, no float16.
    """

    network: str = "vgg19"
    weights: str | None = "imagenet"
    pooling: str = "max"
    content_layers: tuple[str, ...] = ("block4_conv2",)
    style_layers: tuple[str, ...] = (
        "block1_conv1",
        "block2_conv1",
        "block3_conv1",
        "block4_conv1",
        "block5_conv1",
    )
    style_layer_weights: str | tuple[float, ...] = "equal"
    content_weight: float = 1.0
    style_weight: float | None = None
    tv_weight: float = 1.0
    mask_content_weight: float = MASK_CONTENT_WEIGHT
    style_loss: str = "gram"
    max_size: int = 512
    style_scale: float = 1.0
    style_blend_weights: tuple[float, ...] | None = None
    preserve_colors: str = "none"
    iterations: int = 200
    optimizer: str = "sgd"
    learning_rate: float | None = None
    momentum: float = 0.95
    precondition: str = "rms"
    schedule: str = "exponential"
    scales: int | str = "auto"
    init: str = "content"
    init_noise_ratio: float = 0.0
    average: str = "none"
    ema_decay: float = 0.9
    seed: int = 0
    precision: str = "auto"
    steps_per_call: int = 10
    remat: bool = False
    memory_check: bool = True
    tile_size: int | None = None

    def __post_init__(self):
        for name, allowed in (
            ("network", NETWORKS),
            ("pooling", POOLINGS),
            ("optimizer", OPTIMIZERS),
            ("precondition", PRECONDITIONERS),
            ("schedule", SCHEDULES),
            ("init", INITS),
            ("preserve_colors", COLOR_MODES),
            ("average", AVERAGING),
            ("precision", PRECISIONS),
            ("style_loss", STYLE_LOSSES),
        ):
            _check_choice(name, getattr(self, name), allowed)
        for name in ("content_layers", "style_layers"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.content_layers and not self.style_layers:
            raise ConfigError("at least one content or style layer is needed")
        check_layers(self.network, self.content_layers + self.style_layers)
        for name in ("content_weight", "style_weight", "tv_weight", "mask_content_weight"):
            if getattr(self, name) is not None or name != "style_weight":  # None: the default
                _check_number(name, getattr(self, name), low=0.0)
        if self.content_weight == 0 and self.effective_style_weight == 0:
            raise ConfigError("content_weight and style_weight are both 0: nothing to optimise")
        for name in ("remat", "memory_check"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False; got {getattr(self, name)!r}")
        for name in ("max_size", "iterations", "steps_per_call"):
            _check_int(name, getattr(self, name), low=1)
        if self.scales != "auto":
            _check_int("scales", self.scales, low=1)
        _check_number("style_scale", self.style_scale, low=0.0, low_open=True, high=10.0)
        _check_number("init_noise_ratio", self.init_noise_ratio, low=0.0, high=1.0)
        _check_number("ema_decay", self.ema_decay, low=0.0, high=1.0, high_open=True)
        _check_number("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        if self.learning_rate is not None:
            _check_number("learning_rate", self.learning_rate, low=0.0, low_open=True)
            if self.optimizer == "lbfgs":
                raise ConfigError("learning_rate does not apply to lbfgs (its line search sets it)")
        if self.optimizer == "lbfgs" and self.average != "none":
            raise ConfigError("average applies to sgd and adam, not lbfgs; use average='none'")
        _check_int("seed", self.seed, low=0)
        self._check_max_size()
        self._check_layer_weights()
        self._check_tile_size()
        if self.style_blend_weights is not None:
            weights = tuple(float(w) for w in self.style_blend_weights)
            for w in weights:
                _check_number("style_blend_weights", w, low=0.0)
            if not any(weights):
                raise ConfigError("style_blend_weights must not all be 0")
            object.__setattr__(self, "style_blend_weights", weights)

    def _check_tile_size(self):
        if self.tile_size is None:
            return
        _check_int("tile_size", self.tile_size, low=TILE_GRID)
        if self.tile_size % TILE_GRID:
            raise ConfigError(
                f"tile_size must be a multiple of {TILE_GRID} (VGG's pooling grid); "
                f"got {self.tile_size}"
            )
        # The tiled step sums the Gram matrices' F^T F over tiles; the other losses' statistics
        # (a covariance square root, sorted samples) are not such sums.
        if self.style_loss != "gram":
            raise ConfigError(
                f"tile_size works with style_loss='gram' only, not {self.style_loss!r}"
            )
        if self.precision == "mixed_float16":
            raise ConfigError(
                "tile_size does not work with precision='mixed_float16' (no loss scaling in "
                "the tiled step); use mixed_bfloat16 or float32"
            )

    def scale_count(self, longest):
        """The number of scales for an output whose longest side is `longest` px.

        Args:
            longest: the output's longest side in pixels.

        Returns:
            `scales` if it is a number; for "auto", 1 plus the number of halvings that stay
            at or above `AUTO_SCALE_MIN_SIZE`.
        """
        if self.scales != "auto":
            return self.scales
        count = 1
        while longest / 2**count >= AUTO_SCALE_MIN_SIZE:
            count += 1
        return count

    def most_steps(self):
        """The most steps a run can take (the longest pyramid any image gets at max_size)."""
        return sum(self.scale_iterations(self.scale_count(self.max_size)))

    def scale_iterations(self, count):
        """Steps of each of `count` scales, coarse to fine.

        Args:
            count: the number of scales.

        Returns:
            A list of `count` ints: `iterations` for the first scale, then each scale
            `SCALE_ITERATION_RATIO` times the one before (rounded up), but at least
            `SCALE_ITERATION_FLOOR` times `iterations` (rounded up, so at least 1).
        """
        floor = math.ceil(self.iterations * SCALE_ITERATION_FLOOR - 1e-9)
        return [
            max(floor, math.ceil(self.iterations * SCALE_ITERATION_RATIO**k - 1e-9))
            for k in range(count)
        ]

    def _check_max_size(self):
        # The image's own shape is checked in stylize(); this is what no image can fix.
        minimum = min_input_size(self.network, self.content_layers + self.style_layers)
        scales = self.scale_count(self.max_size)
        first = round(self.max_size / 2 ** (scales - 1))
        if first < minimum:
            needed = minimum * 2 ** (scales - 1)
            raise ConfigError(
                f"max_size must be at least {needed} for {self.network} with layers up to "
                f"{self.deepest_layer} and {scales} scale(s) (the first scale needs "
                f"{minimum} px); got {self.max_size}"
            )

    @property
    def deepest_layer(self):
        """The deepest content or style layer (it sets the smallest usable image size)."""
        names = layer_names(self.network)
        return max(self.content_layers + self.style_layers, key=names.index)

    def _check_layer_weights(self):
        weights = self.style_layer_weights
        if isinstance(weights, str):
            _check_choice("style_layer_weights", weights, LAYER_WEIGHT_PRESETS)
            return
        weights = tuple(float(w) for w in weights)
        if len(weights) != len(self.style_layers):
            raise ConfigError(
                f"style_layer_weights has {len(weights)} values but there are "
                f"{len(self.style_layers)} style layers; give one weight per layer"
            )
        for w in weights:
            _check_number("style_layer_weights", w, low=0.0)
        if self.style_layers and not any(weights):
            raise ConfigError("style_layer_weights must not all be 0")
        object.__setattr__(self, "style_layer_weights", weights)

    def blend_weights(self, count):
        """The weights of `count` style images, normalised to sum to 1 (equal by default).

        Args:
            count: the number of style images.

        Returns:
            A list of `count` floats summing to 1.

        Raises:
            ConfigError: `style_blend_weights` does not have `count` values.
        """
        weights = self.style_blend_weights
        if weights is None:
            return [1.0 / count] * count
        if len(weights) != count:
            raise ConfigError(
                f"style_blend_weights has {len(weights)} values for {count} style image(s); "
                "give one weight per style image"
            )
        return [w / sum(weights) for w in weights]

    @property
    def effective_style_weight(self):
        """The style weight in force: `style_weight`, or the style loss's default
        (`DEFAULT_STYLE_WEIGHTS`). Kept apart from the field so that `replace(style_loss=...)`
        of a default config takes the new loss's default."""
        if self.style_weight is not None:
            return self.style_weight
        return DEFAULT_STYLE_WEIGHTS[self.style_loss]

    @property
    def lr(self):
        """The learning rate in force: `learning_rate`, or the optimizer's default (None for
        L-BFGS)."""
        if self.learning_rate is not None:
            return self.learning_rate
        if self.optimizer == "sgd" and self.precondition == "none":
            return PLAIN_SGD_LEARNING_RATE
        return DEFAULT_LEARNING_RATES.get(self.optimizer)

    def style_layer_weight_map(self):
        """`{style layer: weight}` with presets expanded (normalised later, in the loss)."""
        if self.style_layer_weights == "equal":
            weights = [1.0] * len(self.style_layers)
        elif self.style_layer_weights == "decreasing":
            weights = [2.0**-i for i in range(len(self.style_layers))]
        else:
            weights = list(self.style_layer_weights)
        return dict(zip(self.style_layers, weights, strict=True))


def resolve_precision(precision, *, bfloat16_native):
    """The dtype policy that runs for `precision`: "auto" becomes "mixed_bfloat16" when
    `bfloat16_native` (see `tfstyle.optimize.step.native_bfloat16`), else "float32"; any other
    value is returned as it is."""
    if precision != "auto":
        return precision
    return "mixed_bfloat16" if bfloat16_native else "float32"


def cpu_computes_bfloat16(flags):
    """Whether a CPU with feature `flags` (`tfstyle.io.hardware.cpu_flags`) has bfloat16
    arithmetic instructions (`BFLOAT16_CPU_FLAGS`); without them oneDNN emulates bfloat16."""
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


DEFAULTS = StyleConfig()
# The defaults of `tfstyle export` and `export_optimization`: one scale, since the exported
# graph runs no pyramid (with "auto", the default max_size is three scales and the export was
# refused).
EXPORT_DEFAULTS = DEFAULTS.replace(scales=1)
