"""scripts/floor.py: the FLOP count behind BENCHMARKS.md's physical floors."""

import functools
import importlib.util
import json
import os
import subprocess
import sys

from tfstyle.settings.layers import layer_names

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "floor.py")


@functools.cache
def _floor():
    spec = importlib.util.spec_from_file_location("floor", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vgg16_convs_at_224_match_the_published_count():
    # VGG16's 13 conv layers at 224 x 224 are 15.35 G multiply-adds forward (the figure every
    # FLOP counter gives; 15.47 with the dense layers). A step is forward plus the image
    # gradient, 2 FLOPs per multiply-add: 4 x 15.35 G without Gram matrices.
    flops = _floor().step_flops("vgg16", layer_names("vgg16"), (), 224, 224)
    assert abs(flops / 4 / 1e9 - 15.3466) < 1e-3


def test_gram_cost_by_hand():
    # block1_conv1 alone on 4 x 4: conv 2*9*3*64 per pixel, doubled for the backward pass;
    # its Gram matrix 2*64*64 per pixel, tripled (forward, backward).
    flops = _floor().step_flops("vgg19", ("block1_conv1",), ("block1_conv1",), 4, 4)
    assert flops == 16 * (2 * 2 * 9 * 3 * 64 + 3 * 2 * 64 * 64)


def test_cli_prints_the_default_plan_and_its_floor():
    command = [sys.executable, SCRIPT, "--network", "vgg16", "--height", "512", "--width", "512"]
    line = json.loads(subprocess.run(command, capture_output=True, check=True, text=True).stdout)
    assert [scale["steps"] for scale in line["scales"]] == [200, 50, 13]
    total = sum(scale["steps"] * scale["step_gflop"] for scale in line["scales"])
    assert abs(line["total_gflop"] - total) < 0.1
    assert abs(line["floor_s"] - total / 420) < 0.1
