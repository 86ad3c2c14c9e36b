"""The physical floor of a run: its arithmetic divided by the machine's measured peak rate.

    python scripts/floor.py --network vgg16 --height 512 --width 512 --peak_gflops 420

Counts the floating-point operations of a default run's optimisation steps (the `--scales
auto` plan of StyleConfig's defaults for an image of HEIGHT x WIDTH, or `--scales N`,
`--iterations N`), and divides them by `--peak_gflops` (this 2-core EPYC: about 212 in float32
and 420 in bfloat16, measured with TensorFlow's matmul and 3x3 convolution). One JSON line:
the plan, each scale's step GFLOP, the total, and `floor_s`, the time no implementation on
this machine can beat. Start-up, compilation and writes are not in it.

What a step costs (conv layers dominate; everything else is well under 2% at these sizes):
- forward: each 3x3 conv up to the deepest layer used, 2 * 9 * C_in * C_out FLOPs per output
  pixel (a multiply and an add per weight);
- backward: the gradient with respect to the image only (VGG's weights are constants, so no
  weight gradients): each conv's input gradient is a transposed convolution of the same size,
  the same FLOPs again;
- each style layer's Gram matrix, 2 * C^2 * H * W forward and twice that backward.
The content and style targets are computed once per scale: three forward passes (content,
style, first) are left out, as are pooling, ReLU and the optimizer's few element-wise passes.
"""

import json
import os
import sys

from absl import app, flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfstyle.optimize.pyramid import scale_plan
from tfstyle.settings.layers import layer_names
from tfstyle.settings.style import StyleConfig

FLAGS = flags.FLAGS


def _define_flags():
    # Defined when run as a script only: the tests import step_flops into a process whose
    # absl FLAGS already hold the CLI's --network.
    flags.DEFINE_string("network", "vgg19", "vgg16 or vgg19.")
    flags.DEFINE_integer("height", 512, "The output's height.")
    flags.DEFINE_integer("width", 512, "The output's width.")
    flags.DEFINE_string("scales", "auto", "As the CLI's --scales.")
    flags.DEFINE_integer("iterations", None, "As the CLI's --iterations (default: StyleConfig's).")
    flags.DEFINE_float("peak_gflops", 420.0, "The machine's measured peak, GFLOP/s.")


def step_flops(network, layers, style_layers, height, width):
    """FLOPs of one optimisation step (forward to the deepest layer, image gradient back) on
    a `height` x `width` image."""
    names = layer_names(network)
    used = names[: max(names.index(name) for name in layers) + 1]
    total, channels_in, block_seen = 0, 3, 1
    h, w = height, width
    for name in used:
        block = int(name[5])
        while block_seen < block:  # the pools before this block
            h, w, block_seen = h // 2, w // 2, block_seen + 1
        channels = min(64 * 2 ** (block - 1), 512)
        total += 2 * (2 * 9 * channels_in * channels * h * w)  # forward + input gradient
        if name in style_layers:
            total += 3 * (2 * channels * channels * h * w)  # Gram forward + backward
        channels_in = channels
    return total


def main(argv):
    del argv
    settings = {"network": FLAGS.network}
    if FLAGS.scales != "auto":
        settings["scales"] = int(FLAGS.scales)
    if FLAGS.iterations is not None:
        settings["iterations"] = FLAGS.iterations
    config = StyleConfig(max_size=max(FLAGS.height, FLAGS.width), **settings)
    layers = config.content_layers + config.style_layers
    plan = scale_plan(config, (FLAGS.height, FLAGS.width))
    scales, total = [], 0
    for (height, width), steps in plan:
        flops = step_flops(config.network, layers, config.style_layers, height, width)
        scales.append({"size": [height, width], "steps": steps, "step_gflop": flops / 1e9})
        total += steps * flops
    line = {"network": config.network, "scales": scales, "total_gflop": round(total / 1e9, 1)}
    line |= {"peak_gflops": FLAGS.peak_gflops, "floor_s": round(total / 1e9 / FLAGS.peak_gflops, 1)}
    print(json.dumps(line))


if __name__ == "__main__":
    _define_flags()
    app.run(main)
