#!/usr/bin/env python3
"""Writes tests/fixtures/pillow_resize.json: Pillow's bilinear resize of pseudo-random images of
many sizes and aspect ratios (up and down, odd sizes, 1-pixel edges, one side kept), and
torchvision's Resize(256) + CenterCrop(224) view of photo-sized ones, as SHA-256 digests of the
output bytes. tests/parity.rs draws the same images from the same formula and requires equal
digests: zero differing values.

Run by hand: pip install pillow numpy torchvision; python3 tools/gen_resize_fixtures.py
"""
import hashlib
import json
import os
import random

import numpy as np
import PIL
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "pillow_resize.json")


def formula_image(w, h, channels, seed):
    """Value of pixel (x, y, c): a 32-bit integer hash of (x, y, c, seed), top byte. The Rust
    test computes the same (tests/parity.rs, `formula_image`)."""
    y, x, c = np.meshgrid(np.arange(h, dtype=np.uint32), np.arange(w, dtype=np.uint32), np.arange(channels, dtype=np.uint32), indexing="ij")
    np.seterr(over="ignore")  # 32-bit arithmetic wraps, as in Rust's wrapping_mul
    v = x * np.uint32(0x9E3779B1) + y * np.uint32(0x85EBCA77) + c * np.uint32(0xC2B2AE3D) + np.uint32(seed) * np.uint32(0x27D4EB2F)
    v ^= v >> np.uint32(15)
    v *= np.uint32(0x2C1B3C6D)
    v ^= v >> np.uint32(12)
    return (v >> np.uint32(24)).astype(np.uint8)


def pil(arr):
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, "L" if arr.shape[2] == 1 else "RGB")


def digest(img):
    return hashlib.sha256(np.asarray(img).tobytes()).hexdigest()


def main():
    rng = random.Random(2026)
    sides = [1, 2, 3, 5, 7, 16, 31, 64, 97, 128, 200, 255, 256, 257, 300]
    cases = []
    for i in range(96):
        w, h = rng.choice(sides + [rng.randint(1, 300)]), rng.choice(sides + [rng.randint(1, 300)])
        nw, nh = rng.choice(sides + [rng.randint(1, 300), w]), rng.choice(sides + [rng.randint(1, 300), h])
        channels = rng.choice([1, 3])
        img = pil(formula_image(w, h, channels, i))
        out = img.resize((nw, nh), Image.BILINEAR)
        cases.append({"w": w, "h": h, "channels": channels, "seed": i, "nw": nw, "nh": nh, "sha256": digest(out)})

    views = []
    try:
        import torchvision.transforms as T

        view = T.Compose([T.Resize(256), T.CenterCrop(224)])
        for i, (w, h) in enumerate([(500, 375), (375, 500), (333, 500), (640, 427), (1024, 683), (257, 1000), (4032, 3024), (224, 224), (256, 256), (1000, 16)]):
            img = pil(formula_image(w, h, 3, 1000 + i))
            views.append({"w": w, "h": h, "seed": 1000 + i, "sha256": digest(view(img))})
    except ImportError:
        raise SystemExit("torchvision is needed for the Resize(256)+CenterCrop(224) views")

    with open(OUT, "w") as f:
        json.dump({"pillow": PIL.__version__, "filter": "BILINEAR", "resize": cases, "views": views}, f, indent=1)
        f.write("\n")
    print("wrote", OUT, len(cases), "resizes,", len(views), "views")


if __name__ == "__main__":
    main()
