"""The flags of every tfstyle command, and what they become: a `StyleConfig`, input files.

The bottom of `tfstyle.cli`: each command module imports this and the library, nothing else
of the CLI. Parsing flags imports neither TensorFlow nor Keras.
"""

import importlib
import os
import sys
import typing
import warnings

from absl import flags

from tfstyle.errors import TfstyleError
from tfstyle.io import native_logs
from tfstyle.settings import style as config_lib
from tfstyle.settings import train as fast_config

# TensorFlow reads its C++ log level once, when it loads; `import tfstyle.cli` does not import
# TensorFlow (see tfstyle/__init__.py), so this is early enough.
native_logs.set_tf_log_level()

FLAGS = flags.FLAGS
_D = config_lib.DEFAULTS


class _PathListParser(flags.ListParser):
    """A comma-separated list of paths, where an existing path is taken whole (its name may
    hold commas); in a list, "double quotes" keep a comma in a name."""

    def parse(self, argument):
        if not isinstance(argument, str):
            return super().parse(argument)
        from tfstyle import io as image_io

        try:
            return image_io.split_path_list(argument)
        except config_lib.ConfigError as exc:
            raise ValueError(str(exc)) from None


_NAMES_HELP = (
    " An existing file is read as named, even with commas or [ ] in its name; in a list, "
    "quote such a name: '\"a, b.png\",c.png'."
)
flags.DEFINE(
    _PathListParser(),
    "content",
    None,
    "Content image(s): files, directories or glob patterns, comma-separated (several need "
    "--output_dir)." + _NAMES_HELP,
    serializer=flags.CsvListSerializer(","),
)
flags.DEFINE(
    _PathListParser(),
    "style",
    None,
    "Style image(s): files, directories or glob patterns, comma-separated; with --output they "
    "are blended, with --output_dir each is applied to each content image." + _NAMES_HELP,
    serializer=flags.CsvListSerializer(","),
)
flags.DEFINE(
    _PathListParser(),
    "style_masks",
    None,
    "One greyscale mask file per --style image, comma-separated, in the same order: white where "
    "that style applies (Gatys et al. 2017; see docs/masks.md). Overlaps are shared; where no "
    "mask is white, only the content loss acts." + _NAMES_HELP,
    serializer=flags.CsvListSerializer(","),
)
flags.DEFINE(
    _PathListParser(),
    "style_image_masks",
    None,
    "One greyscale mask file per --style image, comma-separated: white where that painting's "
    "texture is taken from (the rest of it is ignored)." + _NAMES_HELP,
    serializer=flags.CsvListSerializer(","),
)
flags.DEFINE_string(
    "content_mask",
    None,
    "Greyscale mask file: white where the content is kept (no style there, and its content loss "
    "weighted by --mask_content_weight).",
)
flags.DEFINE_float(
    "mask_content_weight",
    _D.mask_content_weight,
    "With --content_mask: the content loss's weight where the mask is white, relative to "
    "elsewhere.",
)
flags.DEFINE_string("output", None, "Output image (.png, .jpg or .jpeg).")
flags.DEFINE_string(
    "runner",
    None,
    "A batch, or tfstyle video, on Apache Beam (needs tfstyle[beam]): 'direct' (every core "
    "here), DataflowRunner, FlinkRunner, SparkRunner...; Beam pipeline options follow a '--' at "
    "the end.",
)
flags.DEFINE_string(
    "manifest",
    None,
    "With --runner: a CSV or JSON Lines file of pairs (columns content, style and any setting "
    "for that row), instead of --content and --style.",
)
flags.DEFINE_string("model", None, "Paint with this trained stylizer (tfstyle train) instead.")
flags.DEFINE_integer(
    "tile_size",
    fast_config.TILE_SIZE,
    "With --model: paint images with a longer side in overlapping tiles of this side, to bound "
    f"memory (0: never tile). Optimising (no --model; default: untiled): run VGG on tiles of "
    f"this side (a multiple of {config_lib.TILE_GRID}) one at a time, for pictures too large for "
    "memory; the losses and gradient stay the whole image's (global Gram matrices). TensorFlow "
    "backend, --style_loss gram, no masks, not for videos.",
    lower_bound=0,
)
flags.DEFINE_string(
    "output_dir",
    None,
    "Batch mode: write every content x every style to <content stem>__<style stem>.png here, "
    "skipping outputs that exist (unless --overwrite).",
)
flags.DEFINE_enum("network", _D.network, config_lib.NETWORKS, "Feature network.")
flags.DEFINE_string(
    "weights", _D.weights, "'imagenet' (Keras download, cached), 'none' (random) or a file path."
)
flags.DEFINE_enum("pooling", _D.pooling, config_lib.POOLINGS, "Pooling in the network.")
flags.DEFINE_integer("max_size", _D.max_size, "Longest side of the output in pixels.")
flags.DEFINE_integer(
    "iterations",
    _D.iterations,
    "Optimisation steps at the first scale; each finer scale runs "
    f"{config_lib.SCALE_ITERATION_RATIO:g} as many, but at least "
    f"{config_lib.SCALE_ITERATION_FLOOR:g} times --iterations (10 of 200).",
)
flags.DEFINE_enum("optimizer", _D.optimizer, config_lib.OPTIMIZERS, "Optimizer.")
flags.DEFINE_float(
    "learning_rate",
    None,
    "Learning rate; default per optimizer: "
    + ", ".join(f"{k} {v:g}" for k, v in config_lib.DEFAULT_LEARNING_RATES.items())
    + ".",
)
flags.DEFINE_enum("schedule", _D.schedule, config_lib.SCHEDULES, "Learning-rate schedule.")
flags.DEFINE_float("momentum", _D.momentum, "SGD momentum (Nesterov's when not 0).")
flags.DEFINE_enum(
    "precondition",
    _D.precondition,
    config_lib.PRECONDITIONERS,
    "SGD's gradient: rms (each value's divided by its running RMS) or none (raw, as the Keras "
    "example).",
)
flags.DEFINE_float("content_weight", _D.content_weight, "Weight of the content loss.")
flags.DEFINE_float(
    "style_weight",
    None,
    "Weight of the style loss (default: "
    + ", ".join(f"{w:g} for {k}" for k, w in config_lib.DEFAULT_STYLE_WEIGHTS.items())
    + ").",
)
flags.DEFINE_float("tv_weight", _D.tv_weight, "Weight of the total-variation loss.")
flags.DEFINE_list("content_layers", list(_D.content_layers), "Content layer names.")
flags.DEFINE_list("style_layers", list(_D.style_layers), "Style layer names.")
flags.DEFINE_list(
    "style_layer_weights",
    [_D.style_layer_weights],
    "'equal', 'decreasing', or one comma-separated weight per style layer.",
)
flags.DEFINE_enum(
    "style_loss",
    _D.style_loss,
    config_lib.STYLE_LOSSES,
    "gram, mean_cov (Gaussian Wasserstein-2) or sliced_wasserstein (Heitz et al. 2021).",
)
flags.DEFINE_list("style_blend_weights", None, "One weight per style image (default: equal).")
flags.DEFINE_float("style_scale", _D.style_scale, "Style image size relative to the output.")
flags.DEFINE_enum(
    "preserve_colors", _D.preserve_colors, config_lib.COLOR_MODES, "Keep the content's colours."
)
flags.DEFINE_string(
    "scales",
    _D.scales,
    f"'auto' (from about {config_lib.AUTO_SCALE_MIN_SIZE} px up to --max_size, doubling) or the "
    "number of sizes, coarse to fine (1: one size).",
)
flags.DEFINE_string(
    "init",
    _D.init,
    "content, noise, blurred_noise, style, or an image file to start from (centre-cropped to "
    "the content's aspect ratio, then resized to its size).",
)
flags.DEFINE_float("init_noise_ratio", _D.init_noise_ratio, "Noise mixed into the initial image.")
flags.DEFINE_enum("average", _D.average, config_lib.AVERAGING, "Output averaging.")
flags.DEFINE_integer("seed", _D.seed, "Random seed.")
flags.DEFINE_enum(
    "precision",
    _D.precision,
    config_lib.PRECISIONS,
    "Network dtype policy; auto: mixed_bfloat16 where the hardware computes bfloat16 natively "
    "(CPUs with AVX-512 BF16 or AMX on TensorFlow, TPUs, NVIDIA GPUs from Ampere on), else "
    "float32. The report names the one that ran.",
)
flags.DEFINE_boolean(
    "remat", _D.remat, "Recompute activations in the backward pass: less memory, slower steps."
)
flags.DEFINE_boolean(
    "memory_check",
    _D.memory_check,
    "Check before any work that a step fits the memory there is: on a CPU, refuse a size that "
    "does not fit the host's available memory; on a GPU, warn.",
)
flags.DEFINE_integer(
    "save_every", 0, "Also save the image every N steps (0: only at the end).", lower_bound=0
)
flags.DEFINE_integer(
    "max_pixels", None, "Refuse input images with more pixels than this.", lower_bound=1
)
flags.DEFINE_boolean("quiet", False, "No progress bar.")
flags.DEFINE_boolean("version", False, "Print the version (tfstyle X.Y.Z) and exit.")
flags.DEFINE_boolean(
    "resume",
    False,
    "Continue an interrupted run from its checkpoint, <output stem>.ckpt.npz (same settings and "
    "images as the interrupted run).",
)

flags.DEFINE_boolean("overwrite", False, "Replace outputs that already exist.")
flags.DEFINE_string(
    "tensorboard_dir", None, "Write TensorBoard logs (losses, images) to this directory."
)
flags.DEFINE_string("history", None, "Write the per-step losses to this .json or .csv file.")
flags.DEFINE_boolean("plot_losses", False, "Also write a loss plot, <output stem>_losses.png.")

# The spatial-control flags: only an optimisation (image, batch, optimised video) honours them.
MASK_FLAGS = ("style_masks", "style_image_masks", "content_mask", "mask_content_weight")

# Flags about input images, image outputs and runs, which a SavedModel export has no use for.
NOT_FOR_EXPORT = (
    "content",
    "style",
    *MASK_FLAGS,
    "output_dir",
    "style_blend_weights",
    "save_every",
    "max_pixels",
    "resume",
    "history",
    "tensorboard_dir",
    "plot_losses",
)

INIT_KEYWORDS = tuple(i for i in config_lib.INITS if i != "image")


class ImageRun(typing.NamedTuple):
    """What an image command (one output, or a batch) starts from."""

    config: config_lib.StyleConfig
    contents: list[str]
    styles: list[str]
    init_path: str | None
    style_masks: list[str]
    content_mask: str | None
    style_image_masks: list[str]

    def mask_paths(self):
        """Every mask file of the run (inputs an output must not overwrite)."""
        content = [self.content_mask] if self.content_mask else []
        return [*self.style_masks, *content, *self.style_image_masks]

    def mask_report(self, style=None):
        """The report's `masks` entry (`outputs.report`), or None without masks; in a batch,
        with the masks of `style` alone."""
        if not self.mask_paths():
            return None
        return {
            "style_masks": self.masks_of(self.style_masks, style),
            "content_mask": self.content_mask,
            "style_image_masks": self.masks_of(self.style_image_masks, style),
        }

    def masks_of(self, paths, style=None):
        """`paths` (one per style image), or, for a `style` of a batch, its own only."""
        if style is None or not paths:
            return list(paths)
        return [paths[self.styles.index(style)]]


def refuse_flags(names, message):
    """Raise TfstyleError(`message` with `{name}` filled in) for the first of `names` given on
    the command line: flags that the command at hand does not use."""
    for name in names:
        if FLAGS[name].present:
            raise TfstyleError(message.format(name=name))


def refuse_existing_output(path):
    """The policy for one named output (--output of every command): a file or folder already
    there is refused, before any work, unless --overwrite (docs/reliability.md, "Existing
    outputs"). Batches skip existing outputs instead (`nothing_to_do` when all exist)."""
    if os.path.lexists(path) and not FLAGS.overwrite:
        raise TfstyleError(f"{path} already exists; remove it or pass --overwrite")


def nothing_to_do(count, where):
    """The one line, and exit status, of a batch whose every output (`count` of them, in
    folder `where`) already exists: a finished batch run again has nothing left to do, which is
    not a failure (a stopped batch is resumed the same way)."""
    if count == 1:
        return nothing_left(f"the output in {where} already exists")
    return nothing_left(f"all {count} outputs in {where} already exist", them=True)


def nothing_left(what, *, them=False):
    """Print `tfstyle: nothing to do: WHAT; pass --overwrite to redo it`; returns
    NOTHING_TO_DO."""
    print(
        f"tfstyle: nothing to do: {what}; pass --overwrite to redo {'them' if them else 'it'}",
        file=sys.stderr,
    )
    return NOTHING_TO_DO


# The exit status of a command that found every output already there.
NOTHING_TO_DO = 0


def image_run():
    """The flags of an image run checked and expanded, before any work.

    Raises:
        TfstyleError: a required flag is missing, a setting is bad, an optional package or an
            input is missing.
    """
    from tfstyle.io import check_directory, expand_image_paths

    for name in ("content", "style"):
        if not getattr(FLAGS, name):
            raise TfstyleError(f"--{name} is required")
    if FLAGS.output and FLAGS.output_dir:
        raise TfstyleError("give --output (one image) or --output_dir (a batch), not both")
    if not (FLAGS.output or FLAGS.output_dir):
        raise TfstyleError("--output is required (or --output_dir for a batch)")
    config = config_from_flags()
    check_optional_packages()
    init_path = None if FLAGS.init in INIT_KEYWORDS else FLAGS.init
    if FLAGS.tensorboard_dir:
        check_directory(FLAGS.tensorboard_dir, create=True)
    contents = expand_image_paths(FLAGS.content)
    styles = expand_image_paths(FLAGS.style)
    style_masks = list(FLAGS.style_masks or [])
    image_masks = list(FLAGS.style_image_masks or [])
    check_mask_options(
        config,
        style_masks=len(style_masks),
        content_mask=bool(FLAGS.content_mask),
        styles=len(styles),
        style_image_masks=len(image_masks),
    )
    return ImageRun(
        config, contents, styles, init_path, style_masks, FLAGS.content_mask, image_masks
    )


# Flags that need an optional package: (flag, package to import, how to install it).
_OPTIONAL_PACKAGES = (
    ("tensorboard_dir", "tensorboard", "pip install tensorboard"),
    ("plot_losses", "matplotlib", "pip install matplotlib"),
)


def check_optional_packages():
    """Refuse, before any work, a flag whose optional package is not installed."""
    for flag, package, install in _OPTIONAL_PACKAGES:
        if getattr(FLAGS, flag):
            try:
                importlib.import_module(package)
            except ImportError:
                raise config_lib.ConfigError(
                    f"--{flag} needs the {package} package, which is not installed: {install}"
                ) from None


def check_mask_options(config, **counts):
    """`tfstyle.ops.masks.check_options`, and --mask_content_weight only with a --content_mask."""
    from tfstyle.ops.masks import check_options

    if FLAGS["mask_content_weight"].present and not FLAGS.content_mask:
        raise TfstyleError("--mask_content_weight needs a --content_mask")
    check_options(config, **counts)


def mask_loader():
    """`load(path, what)`: `tfstyle.io.load_mask` with the --max_pixels limit, refusing a blank
    mask with its file's name."""
    from tfstyle.io import load_mask
    from tfstyle.io.paths import quote
    from tfstyle.ops.masks import check_not_blank

    kwargs = {} if FLAGS.max_pixels is None else {"max_pixels": FLAGS.max_pixels}

    def load(path, what):
        mask = load_mask(path, **kwargs)
        check_not_blank(mask, what=f"{what} {quote(path)}")
        return mask

    return load


def loader():
    """`load(path)`: `tfstyle.io.load_image` with the --max_pixels limit."""
    from tfstyle.io import load_image

    kwargs = {} if FLAGS.max_pixels is None else {"max_pixels": FLAGS.max_pixels}
    return lambda path: load_image(path, **kwargs)


def config_from_flags():
    """`StyleConfig` from the parsed flags (raises ConfigError for bad values)."""
    layer_weights = FLAGS.style_layer_weights
    if len(layer_weights) == 1 and layer_weights[0] in config_lib.LAYER_WEIGHT_PRESETS:
        layer_weights = layer_weights[0]
    else:
        layer_weights = tuple(_floats("style_layer_weights", layer_weights))
    blend = FLAGS.style_blend_weights
    weights = FLAGS.weights
    return config_lib.StyleConfig(
        network=FLAGS.network,
        weights=None if weights.lower() == "none" else weights,
        pooling=FLAGS.pooling,
        content_layers=tuple(FLAGS.content_layers),
        style_layers=tuple(FLAGS.style_layers),
        style_layer_weights=layer_weights,
        content_weight=FLAGS.content_weight,
        style_weight=FLAGS.style_weight,
        tv_weight=FLAGS.tv_weight,
        mask_content_weight=FLAGS.mask_content_weight,
        style_loss=FLAGS.style_loss,
        max_size=FLAGS.max_size,
        style_scale=FLAGS.style_scale,
        style_blend_weights=tuple(_floats("style_blend_weights", blend)) if blend else None,
        preserve_colors=FLAGS.preserve_colors,
        iterations=FLAGS.iterations,
        optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate,
        schedule=FLAGS.schedule,
        scales=_scales(FLAGS.scales),
        momentum=FLAGS.momentum,
        precondition=FLAGS.precondition,
        init=FLAGS.init if FLAGS.init in INIT_KEYWORDS else "image",
        init_noise_ratio=FLAGS.init_noise_ratio,
        average=FLAGS.average,
        seed=FLAGS.seed,
        precision=FLAGS.precision,
        remat=FLAGS.remat,
        memory_check=FLAGS.memory_check,
        # --tile_size's default (2048) is --model's; an optimisation is tiled only when asked.
        tile_size=FLAGS.tile_size or None
        if FLAGS["tile_size"].present and not FLAGS.model
        else None,
        steps_per_call=_steps_per_call(FLAGS.save_every),
    )


def _scales(value):
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise config_lib.ConfigError(
            f"--scales must be 'auto' or a whole number; got {value!r}"
        ) from None


def _steps_per_call(save_every):
    """Steps per compiled call: the largest divisor of --save_every up to the default, so that
    calls (which end on multiples of it over the whole run) line up with the snapshots."""
    if save_every <= 0:
        return _D.steps_per_call
    steps = max(d for d in range(1, min(save_every, _D.steps_per_call) + 1) if save_every % d == 0)
    if steps < min(save_every, _D.steps_per_call):
        # Said, not done silently: a prime over 10 ran every step as its own compiled call.
        warnings.warn(
            f"--save_every {save_every} runs {steps} step(s) per compiled call instead of "
            f"{_D.steps_per_call} (calls end on the snapshots), which is slower: a multiple of "
            f"{_D.steps_per_call} keeps full speed",
            stacklevel=2,
        )
    return steps


def _floats(name, values):
    try:
        return [float(v) for v in values]
    except ValueError:
        raise config_lib.ConfigError(
            f"--{name} takes comma-separated numbers; got {','.join(values)}"
        ) from None
