"""Make examples/videos/coffee_pan.mp4: a short synthetic clip (a slow pan and zoom over the
CC0 photo examples/images/content_coffee.png), the clip docs/video.md measures stability on.

    python scripts/make_example_clip.py [--output examples/videos/coffee_pan.mp4]

Deterministic: 12 frames at 12 fps, 192x128 px, H.264 (crf 18). Each frame crops a window of
the photo that moves 8 photo pixels right and shrinks 1% per frame (a pan with a slow zoom-in,
so the flow is neither zero nor a pure shift), resized with Lanczos filtering.
"""

import argparse
import os
from fractions import Fraction

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTO = os.path.join(ROOT, "examples", "images", "content_coffee.png")
FRAMES, RATE, SIZE = 12, Fraction(12), (192, 128)


def frames():
    photo = Image.open(PHOTO).convert("RGB")
    width, height = photo.size
    for t in range(FRAMES):
        scale = 0.8 * 0.99**t  # the window's size relative to the photo
        w, h = width * scale, height * scale
        left = 20 + 8 * t + (width * 0.8 - w) / 2
        top = (height - h) / 2
        box = (left, top, left + w, top + h)
        yield np.asarray(photo.resize(SIZE, Image.Resampling.LANCZOS, box=box))


def main():
    import av

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "examples", "videos", "coffee_pan.mp4")
    )
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with av.open(args.output, "w") as output:
        stream = output.add_stream("libx264", rate=RATE)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for pixels in frames():
            output.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        output.mux(stream.encode(None))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
