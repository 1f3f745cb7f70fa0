"""How the number of test images per class moves the spread over seeds, on finished multi-seed runs.

    python benchmarks/test_size.py runs/offline/modules/h-peft runs/offline/modules/seca --sizes 20,50

For each run folder (one ``seed<k>/model.safetensors`` per seed) it evaluates the final model on the first
N test images of every class of the shapes benchmark, for each N of ``--sizes`` (the benchmark's images
are a pure function of their index, so the first 20 of 50 are exactly the 20-per-class test set), and
prints Last's mean ± std over seeds per N and the paired difference of every folder to the first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import seca
from seca.data.shapes import ShapesWorld
from seca.eval.stats import paired_difference, summarize_values


def accuracy(model, world: ShapesWorld, domain: str, per_class: int, batch_size: int = 500) -> float:
    items = [(label, index) for label in range(world.num_classes) for index in range(per_class)]
    names = [world.class_names[label] for label, _ in items]
    correct = 0
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        images = [world.image(label, index, domain, "test") for label, index in chunk]
        predictions = model.predict(images, batch_size=batch_size)
        correct += sum(p.label == n for p, n in zip(predictions, names[start : start + batch_size]))
    return 100.0 * correct / len(items)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--sizes", default="20,50")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    torch.set_num_threads(2)
    table: dict[str, dict[int, list[float]]] = {}
    for folder in args.folders:
        results = json.loads((Path(folder) / "results.json").read_text())
        table[folder] = {n: [] for n in sizes}
        for run in results["runs"]:
            model = seca.load(Path(folder) / run / "model.safetensors", device="cpu")
            shapes = model.config.data.shapes
            world = ShapesWorld(shapes.colors, shapes.shapes, image_size=shapes.image_size, seed=shapes.seed)
            for n in sizes:
                table[folder][n].append(accuracy(model, world, shapes.domain, n))
    reference = args.folders[0]
    print(
        f"{'run':<40} {'test/class':>10} {'Last (mean ± std)':>20} {'Δ to ' + Path(reference).name + ' [95% CI]':>30}"
    )
    for folder, by_size in table.items():
        for n, values in by_size.items():
            line = f"{folder:<40} {n:>10} {summarize_values(values).format():>20}"
            if folder != reference:
                d = paired_difference(values, table[reference][n])
                line += f" {d.mean:+10.2f} ± {d.std:.2f} [{d.low:+.2f}, {d.high:+.2f}]"
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
