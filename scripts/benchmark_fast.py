"""Fast stylizer speed: seconds per image through the network, and training steps per second.

    python scripts/benchmark_fast.py --width 16 --sizes 256,512
    python scripts/benchmark_fast.py --model saved_models/starry_night/1 --sizes 512

Applying: `FastStylizer(model)(image)` on a `size x size` image, after one untimed call (the
first call builds the graph), fastest of --repeats. Training: `train_stylizer` steps at
--train_size, batch --batch_size, with random loss-network weights (timing only), steps per
second over the steps after the first (which traces and compiles). Prints one JSON line each.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A trained stylizer to time (default: a fresh network).")
flags.DEFINE_integer("width", 16, "Width of the fresh network.")
flags.DEFINE_list("sizes", ["512"], "Image sizes to apply the network to (square, pixels).")
flags.DEFINE_integer("repeats", 5, "Timed calls per size; the fastest is kept.")
flags.DEFINE_integer("train_steps", 6, "Training steps to time (0: skip training).")
flags.DEFINE_integer("train_size", 256, "Training crop size.")
flags.DEFINE_integer("batch_size", 4, "Training batch size.")
flags.DEFINE_enum("network", "vgg16", ["vgg19", "vgg16"], "Loss network for training.")


def main(argv):
    del argv
    import keras
    import numpy as np

    from tfstyle.fast.config import TrainConfig
    from tfstyle.fast.network import build_stylizer
    from tfstyle.fast.stylizer import FastStylizer
    from tfstyle.fast.train import train_stylizer

    if FLAGS.model:
        stylizer = FastStylizer.load(FLAGS.model)
    else:
        stylizer = FastStylizer(build_stylizer(width=FLAGS.width))
    rng = np.random.default_rng(0)
    for size in map(int, FLAGS.sizes):
        image = rng.random((size, size, 3)).astype("float32")
        stylizer(image)
        times = []
        for _ in range(FLAGS.repeats):
            start = time.perf_counter()
            stylizer(image)
            times.append(time.perf_counter() - start)
        print(
            json.dumps(
                {
                    "what": "apply",
                    "size": size,
                    "seconds": round(min(times), 4),
                    "parameters": stylizer.model.count_params(),
                    "backend": keras.backend.backend(),
                }
            ),
            flush=True,
        )
    if FLAGS.train_steps:
        steps = []
        callback = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: steps.append(time.perf_counter())
        )
        photos = [rng.random((FLAGS.train_size + 32, FLAGS.train_size + 48, 3)) for _ in range(4)]
        config = TrainConfig(
            width=FLAGS.width,
            network=FLAGS.network,
            weights=None,
            size=FLAGS.train_size,
            batch_size=FLAGS.batch_size,
            steps=FLAGS.train_steps + 1,
            checkpoint_every=0,
            preview_every=0,
        )
        train_stylizer(photos[0], photos, config=config, callbacks=[callback])
        rate = (len(steps) - 1) / (steps[-1] - steps[0])
        print(
            json.dumps(
                {
                    "what": "train",
                    "size": FLAGS.train_size,
                    "batch_size": FLAGS.batch_size,
                    "width": FLAGS.width,
                    "network": FLAGS.network,
                    "steps_per_s": round(rate, 3),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    app.run(main)
