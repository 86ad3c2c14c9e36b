"""Regenerate the README gallery: content x style grid plus colour preservation, texture
synthesis and a multi-scale 1024 px result.

    python scripts/gallery.py --network vgg16 \
        --weights ~/.cache/tfstyle-dev/vgg16_hed_notop.weights.h5

Each panel is saved under --panels (reused on the next run unless --overwrite, so the slow ones
need computing once); the grid goes to --output.
"""

import os
import time

from absl import app, flags
from PIL import Image, ImageDraw

from tfstyle import StyleConfig, stylize
from tfstyle.io import load_image, save_image
from tfstyle.ops import preprocessing as pp

FLAGS = flags.FLAGS
flags.DEFINE_string("network", "vgg19", "Feature network.")
flags.DEFINE_string("weights", "imagenet", "Weights: imagenet, none or a file.")
flags.DEFINE_string("images", "examples/images", "Folder with the example images.")
flags.DEFINE_string("panels", "docs/gallery", "Folder for the individual panels.")
flags.DEFINE_string("output", "docs/gallery.png", "The grid image.")
flags.DEFINE_integer("size", 512, "Longest side of the grid panels.")
flags.DEFINE_integer("iterations", None, "First-scale steps (default: StyleConfig's).")
flags.DEFINE_integer("large_size", 1024, "Longest side of the large panel (0: skip).")
flags.DEFINE_boolean("extras", True, "Also the colour-preserving and texture panels.")
flags.DEFINE_integer("thumb", 256, "Longest side of each panel in the grid.")
flags.DEFINE_boolean("overwrite", False, "Recompute panels that exist.")

CONTENTS = ("content_chelsea.png", "content_coffee.png")
STYLES = ("style_starry_night.jpg", "style_the_scream.jpg")


def panels():
    """(file name, caption, content, style, StyleConfig changes) of every panel."""
    grid = [
        (f"{c[8:-4]}__{s[6:-4]}.png", f"{c[8:-4]} + {s[6:-4]}", c, s, {})
        for c in CONTENTS
        for s in STYLES
    ]
    coffee, starry = CONTENTS[1], STYLES[0]
    extras = [
        (
            "coffee__luminance.png",
            "colours kept: luminance",
            coffee,
            starry,
            {"preserve_colors": "luminance"},
        ),
        (
            "coffee__histogram.png",
            "colours kept: histogram",
            coffee,
            starry,
            {"preserve_colors": "histogram"},
        ),
        (
            "texture__starry.png",
            "texture synthesis",
            coffee,
            starry,
            {"content_weight": 0.0, "init": "noise"},
        ),
    ]
    extras = extras if FLAGS.extras else []
    if FLAGS.large_size:
        # No example photo is that large and stylize() never upscales: the photo is enlarged
        # (Lanczos) first, so the strokes are painted at the full size.
        extras.append(
            (
                f"coffee__starry_{FLAGS.large_size}.png",
                f"{FLAGS.large_size} px (photo enlarged)",
                coffee,
                starry,
                {"max_size": FLAGS.large_size, "enlarge": True},
            )
        )
    return grid + extras


def render(name, content, style, changes):
    path = os.path.join(FLAGS.panels, name)
    if os.path.exists(path) and not FLAGS.overwrite:
        return path
    weights = None if FLAGS.weights == "none" else os.path.expanduser(FLAGS.weights)
    steps = {} if FLAGS.iterations is None else {"iterations": FLAGS.iterations}
    changes = dict(changes)
    enlarge = changes.pop("enlarge", False)
    config = StyleConfig(
        network=FLAGS.network, weights=weights, max_size=FLAGS.size, **steps
    ).replace(**changes)
    load = lambda f: load_image(os.path.join(FLAGS.images, f))  # noqa: E731
    photo = load(content)
    if enlarge:
        photo = pp.resize(photo, *pp.scaled_shape(photo.shape, config.max_size))
    start = time.perf_counter()
    result = stylize(photo, load(style), config=config)
    save_image(result.image, path)
    print(f"{name}: {time.perf_counter() - start:.0f} s, losses {result.final_losses()}")
    return path


def compose(items, columns=5):
    thumb = FLAGS.thumb
    images = []
    for path, caption in items:
        image = Image.open(path).convert("RGB")
        image.thumbnail((thumb, thumb), Image.Resampling.LANCZOS)
        images.append((image, caption))
    image_h = max(image.height for image, _ in images)
    cell_h = image_h + 18
    rows = -(-len(items) // columns)
    sheet = Image.new("RGB", (columns * thumb, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (image, caption) in enumerate(images):
        x, y = (index % columns) * thumb, (index // columns) * cell_h
        sheet.paste(image, (x + (thumb - image.width) // 2, y + (image_h - image.height) // 2))
        draw.text((x + 4, y + image_h + 3), caption, fill="black")
    return sheet


def main(argv):
    del argv
    os.makedirs(FLAGS.panels, exist_ok=True)
    items = [(render(name, c, s, changes), caption) for name, caption, c, s, changes in panels()]
    sheet = compose(items)
    sheet.save(FLAGS.output)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
