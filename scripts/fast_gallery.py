"""The README's fast stylizer picture: each photo, the optimisation result and a trained
stylizer's, side by side, at the same size.

    python scripts/fast_gallery.py --model saved_models/starry_night/1 --network vgg16 \
        --weights ~/.cache/tfstyle-dev/vgg16_hed_notop.weights.h5

Shares scripts/gallery.py's flags and panels: the optimisation panels (default settings, the
style of --style) are reused from --panels when they exist, so only missing ones are computed.
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gallery
from absl import app, flags

from tfstyle import build_feature_extractor
from tfstyle.fast.stylizer import FastStylizer
from tfstyle.io import load_image, save_image
from tfstyle.ops import metrics
from tfstyle.ops import preprocessing as pp

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "The trained stylizer (tfstyle train).", required=True)
flags.DEFINE_string("style", "style_starry_night.jpg", "The style it was trained on (--images).")
flags.DEFINE_list(
    "contents",
    ["content_astronaut.png", "content_chelsea.png", "content_coffee.png"],
    "Photos (in --images), one row each.",
)
flags.DEFINE_list("held_out", ["content_astronaut.png"], "Photos not in the training set.")
FLAGS.set_default("output", "docs/fast_starry_night.jpg")
FLAGS.set_default("thumb", 384)


def main(argv):
    del argv
    os.makedirs(FLAGS.panels, exist_ok=True)
    stylizer = FastStylizer.load(FLAGS.model)
    model = os.path.basename(os.path.dirname(os.path.abspath(FLAGS.model)))
    style = FLAGS.style[len("style_") : -len(".jpg")]
    weights = None if FLAGS.weights == "none" else os.path.expanduser(FLAGS.weights)
    scorer = build_feature_extractor(
        layers=metrics.SCORER_LAYERS, network=FLAGS.network, weights=weights
    )
    painting = load_image(os.path.join(FLAGS.images, FLAGS.style))
    items = []
    photos = tempfile.mkdtemp()  # the photos at --size, for the grid only
    for content in FLAGS.contents:
        stem = content[len("content_") : -len(".png")]
        photo = pp.fit_to_max_size(load_image(os.path.join(FLAGS.images, content)), FLAGS.size)
        optimised = gallery.render(f"{stem}__{style}.png", content, FLAGS.style, {})
        stylizer(photo)  # the first call of a size traces the graph
        start = time.perf_counter()
        painted = stylizer(photo)
        seconds = time.perf_counter() - start
        fast = os.path.join(FLAGS.panels, f"{stem}__{model}_fast.png")
        save_image(painted, fast)
        photo_path = os.path.join(photos, f"{stem}.png")
        save_image(photo, photo_path)
        held = " (not in the training set)" if content in FLAGS.held_out else " (in training set)"
        items += [
            (photo_path, f"{stem}{held}"),
            (optimised, "optimisation, default settings"),
            (fast, f"fast stylizer {model}: {seconds:.2f} s"),
        ]
        print(f"{stem}: fast stylizer {seconds:.2f} s at {photo.shape[1]}x{photo.shape[0]}")
        for name, image in (
            ("photo", photo),
            ("optimisation", load_image(optimised)),
            ("fast", painted),
        ):
            scores = metrics.distances(scorer, image, content=photo, style=painting)
            print(f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    gallery.compose(items, columns=3).save(FLAGS.output, quality=88)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
