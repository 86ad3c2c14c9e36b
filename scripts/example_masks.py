"""Make the example masks of docs/masks.md and compose the README's masks picture.

    python scripts/example_masks.py masks        # examples/images/mask_coffee_{left,right}.png
    python scripts/example_masks.py panel OUT    # docs/images/masks.jpg: inputs above OUT

The masks split content_coffee.png (600x400) into a left and a right half with a soft border (a
linear ramp over a tenth of the width), so the two styles blend there instead of meeting at a
seam; each is the other's complement, so together they cover every pixel once.
"""

import sys

import numpy as np
from PIL import Image, ImageDraw

from tfstyle.io import load_image, save_image

IMAGES = "examples/images"
CONTENT = f"{IMAGES}/content_coffee.png"
MASKS = (f"{IMAGES}/mask_coffee_left.png", f"{IMAGES}/mask_coffee_right.png")
STYLES = (f"{IMAGES}/style_starry_night.jpg", f"{IMAGES}/style_the_scream.jpg")
PANEL = "docs/images/masks.jpg"


def make_masks():
    height, width = load_image(CONTENT).shape[:2]
    x = (np.arange(width) + 0.5) / width
    left = np.clip((0.55 - x) / 0.1, 0.0, 1.0)  # white up to 0.5 of the width, black from 0.6
    left = np.broadcast_to(left[None, :, None], (height, width, 3))
    for path, mask in zip(MASKS, (left, 1.0 - left), strict=True):
        save_image(mask, path)
        print(path)


def make_panel(result_path, gap=4):
    """Top: content, left mask (framed, as its white meets the page), the two styles, all of one
    height and filling the width; below: the result."""
    result = Image.open(result_path).convert("RGB")
    small = [Image.open(p).convert("RGB") for p in (CONTENT, MASKS[0], *STYLES)]
    aspects = [im.width / im.height for im in small]
    height = int((result.width - gap * (len(small) - 1)) / sum(aspects))
    canvas = Image.new("RGB", (result.width, height + gap + result.height), "white")
    x = 0
    for index, (im, aspect) in enumerate(zip(small, aspects, strict=True)):
        im = im.resize((round(height * aspect), height), Image.Resampling.LANCZOS)
        if index == 1:
            ImageDraw.Draw(im).rectangle((0, 0, im.width - 1, im.height - 1), outline="grey")
        canvas.paste(im, (x, 0))
        x += im.width + gap
    canvas.paste(result, (0, height + gap))
    save_image(np.asarray(canvas), PANEL)
    print(PANEL)


if __name__ == "__main__":
    if sys.argv[1:2] == ["masks"]:
        make_masks()
    elif sys.argv[1:2] == ["panel"] and len(sys.argv) == 3:
        make_panel(sys.argv[2])
    else:
        sys.exit(__doc__)
