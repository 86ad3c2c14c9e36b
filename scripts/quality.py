"""Compare flag sets on content x style pairs: a contact sheet and a table of distances.

    python scripts/quality.py --network vgg16 --weights WEIGHTS_FILE --max_size 384 \
        --run "default:" --run "adam: optimizer='adam' scales=1"

Each `--run` is `LABEL: FIELD=VALUE ...` with `StyleConfig` fields (values as Python literals,
or plain strings); `--network`, `--weights` and `--max_size` apply to every run. Per run and
pair it prints the content distance, the style distance on the loss's layers and on held-out
layers, at full and at half size (`tfstyle.ops.metrics`, scored with the same network and
weights), the precision that ran (in brackets: `precision="auto"` resolved) and the wall time
of the `stylize` call; then the mean of each run over the pairs.
The sheet has one row per pair: content | style | each run.
"""

import ast
import os
import time

from absl import app, flags
from PIL import Image, ImageDraw

from tfstyle import StyleConfig, build_feature_extractor, stylize
from tfstyle.io import load_image, save_image
from tfstyle.ops import metrics
from tfstyle.ops import preprocessing as pp

FLAGS = flags.FLAGS
flags.DEFINE_string("network", "vgg19", "Feature network of the runs and the scorer.")
flags.DEFINE_string("weights", "imagenet", "Weights: imagenet, none or a file.")
flags.DEFINE_integer("max_size", 384, "Longest side of the outputs.")
flags.DEFINE_string("images", "examples/images", "Folder with the images.")
flags.DEFINE_list(
    "pairs",
    [
        "content_astronaut.png:style_shipwreck.jpg",
        "content_coffee.png:style_the_scream.jpg",
        "content_chelsea.png:style_starry_night.jpg",
    ],
    "CONTENT:STYLE file names in --images.",
)
flags.DEFINE_multi_string("run", ["default:"], "LABEL: FIELD=VALUE ... (repeatable).")
flags.DEFINE_string("sheet", "out/quality.png", "Contact sheet PNG ('' for none).")
flags.DEFINE_string("save_dir", "", "Also save every result here ('' for none).")
flags.DEFINE_integer("thumb", 256, "Longest side of each sheet panel.")
flags.DEFINE_boolean(
    "rescore",
    False,
    "Score the results saved in --save_dir by an earlier run instead of running again (wall "
    "times then read 0).",
)


def parse_run(spec):
    """`"LABEL: a=1 b=x"` -> `("LABEL", {"a": 1, "b": "x"})`."""
    label, _, fields = spec.partition(":")
    changes = {}
    for item in fields.split():
        key, _, value = item.partition("=")
        try:
            changes[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            changes[key] = value
    return label.strip() or "default", changes


def main(argv):
    del argv
    weights = None if FLAGS.weights == "none" else FLAGS.weights
    base = {"network": FLAGS.network, "weights": weights, "max_size": FLAGS.max_size}
    runs = [parse_run(spec) for spec in FLAGS.run]
    scorer = build_feature_extractor(
        layers=metrics.SCORER_LAYERS, network=FLAGS.network, weights=weights
    )
    pairs = [pair.split(":") for pair in FLAGS.pairs]
    for folder in (FLAGS.save_dir, os.path.dirname(FLAGS.sheet)):
        if folder:
            os.makedirs(folder, exist_ok=True)
    rows, table = [], {"(the photo)": [], **{label: [] for label, _ in runs}}
    for content_name, style_name in pairs:
        content = load_image(os.path.join(FLAGS.images, content_name))
        style = load_image(os.path.join(FLAGS.images, style_name))
        row = [content, style]
        photo = metrics.distances(
            scorer, pp.fit_to_max_size(content, FLAGS.max_size), content=content, style=style
        )
        table.setdefault("(the photo)", []).append({**photo, "wall_s": 0.0})
        print(_line(f"(the photo) {content_name[8:-4]}+{style_name[6:-4]}", photo, 0.0))
        for label, changes in runs:
            config = StyleConfig(**{**base, **changes})
            saved = os.path.join(
                FLAGS.save_dir, f"{content_name[8:-4]}__{style_name[6:-4]}__{label}.png"
            )
            start = time.perf_counter()
            if FLAGS.rescore:
                image, wall, ran = load_image(saved), 0.0, "?"
            else:
                result = stylize(content, style, config=config)
                image, ran = result.image, result.config.precision  # "auto" resolved
                wall = time.perf_counter() - start
            scores = metrics.distances(
                scorer, image, content=content, style=style, style_scale=config.style_scale
            )
            table[label].append({**scores, "wall_s": wall})
            print(
                _line(f"{label} {content_name[8:-4]}+{style_name[6:-4]} [{ran}]", scores, wall),
                flush=True,
            )
            row.append(image)
            if FLAGS.save_dir and not FLAGS.rescore:
                save_image(image, saved)
        rows.append(row)
    print(
        "\n| run | content | style | held-out style | coarse held-out | wall (s) |"
        "\n|---|---|---|---|---|---|"
    )
    for label, results in table.items():
        mean = {k: sum(r[k] for r in results) / len(results) for k in results[0]}
        print(
            f"| {label} | {mean['content']:.3f} | {mean['style']:.4f} | "
            f"{mean['held_out_style']:.3f} | {mean['coarse_held_out_style']:.3f} | "
            f"{mean['wall_s']:.0f} |"
        )
    if FLAGS.sheet:
        _sheet(rows, ["content", "style", *(label for label, _ in runs)]).save(FLAGS.sheet)
        print(f"\ncontact sheet: {FLAGS.sheet}")


def _line(name, scores, wall):
    return (
        f"{name}: content {scores['content']:.3f}  style {scores['style']:.4f}  "
        f"held-out {scores['held_out_style']:.3f}  coarse {scores['coarse_held_out_style']:.3f}  "
        f"{wall:.0f} s"
    )


def _sheet(rows, captions):
    """A grid of panels scaled to fit `--thumb`, one row per pair, captions on top."""
    size, pad, top = FLAGS.thumb, 4, 18
    sheet = Image.new(
        "RGB", (len(captions) * (size + pad), len(rows) * (size + pad) + top), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for col, caption in enumerate(captions):
        draw.text((col * (size + pad) + 4, 2), caption, fill="black")
    for r, row in enumerate(rows):
        for col, image in enumerate(row):
            panel = Image.fromarray((image * 255 + 0.5).astype("uint8"))
            panel.thumbnail((size, size), Image.Resampling.LANCZOS)
            sheet.paste(panel, (col * (size + pad), top + r * (size + pad)))
    return sheet


if __name__ == "__main__":
    app.run(main)
