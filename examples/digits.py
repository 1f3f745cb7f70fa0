"""Write scikit-learn's bundled digits as image folders, to try seca on data nobody on the project made.

    pip install scikit-learn
    python examples/digits.py data/digits

writes (1,797 images of 8x8 pixels, upscaled to 32x32, a seeded 80/20 split per class):

    data/digits/train/<zero..nine>/*.png      every class, for `seca run` with data.dataset: imagefolder
    data/digits/test/<zero..nine>/*.png       the test images of every class
    data/digits/task-1/<zero..four>/*.png     the training images of the first five digits, for `seca learn`
    data/digits/task-2/<five..nine>/*.png     and of the last five

The journey that docs/own-data.md walks through (new model, learn task 1, learn task 2, evaluate).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def write_digits(out: Path, size: int = 32, train_fraction: float = 0.8, seed: int = 0) -> dict[str, int]:
    """Write the folders above into ``out``; returns the number of images written per split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    written = {"train": 0, "test": 0}
    for label, name in enumerate(NAMES):
        indices = rng.permutation(np.flatnonzero(digits.target == label))
        cut = round(train_fraction * len(indices))
        task = "task-1" if label < 5 else "task-2"
        for position, index in enumerate(indices):
            pixels = (digits.images[index] * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
            image = Image.fromarray(pixels).resize((size, size), Image.BILINEAR).convert("RGB")
            split = "train" if position < cut else "test"
            folders = [out / split / name] + ([out / task / name] if split == "train" else [])
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
                image.save(folder / f"{index:04d}.png")
            written[split] += 1
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the folder to write (e.g. data/digits)")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels (default 32)")
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        print(f"error: '{out}' is not empty; give a new folder", file=sys.stderr)
        return 2
    try:
        counts = write_digits(out, args.size)
    except ImportError:
        print("error: this example needs scikit-learn: pip install scikit-learn", file=sys.stderr)
        return 2
    print(f"wrote {counts['train']} training and {counts['test']} test images of 10 digits to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
