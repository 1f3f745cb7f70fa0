"""The offline world as a data set: colour x shape classes drawn on demand (seca.data.shapes), in the shifted
``renditions`` domain by default; nothing to download (docs/offline.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...config import DataConfig, at_least, between, one_of, section, setting
from ...errors import SecaError
from ..shapes import ShapesDataset, ShapesWorld
from .base import BenchmarkData, DataSet, register


@dataclass(frozen=True)
class ShapesConfig:
    """The generated colour x shape world used offline."""

    colors: int = setting(10, "shapes world: number of colours (at most 10)", between(1, 10))
    shapes: int = setting(10, "number of shapes (at most 10); classes = colours x shapes", between(1, 10))
    train_per_class: int = setting(40, "training images per class", at_least(1))
    test_per_class: int = setting(20, "test images per class", at_least(1))
    image_size: int = setting(
        64, "image side in pixels (the `shapes` preset: 32, the input size of `seca-shapes`)", at_least(8)
    )
    domain: str = setting(
        "renditions", "`clean` (pretraining domain) or `renditions` (the shifted domain)", one_of("clean", "renditions")
    )
    seed: int = setting(0, "the world's seed: every image is a pure function of it", at_least(0))


@register
class Shapes(DataSet):
    """The offline world: up to 100 generated colour x shape classes ("red star"), drawn on demand, no download."""

    name = "shapes"
    obtain = "nothing to obtain: the images are generated (data.shapes sets the world)"

    @dataclass(frozen=True)
    class Config:
        shapes: ShapesConfig = section(ShapesConfig)

    def load(self, data: DataConfig) -> BenchmarkData:
        cfg = data.shapes
        try:
            world = ShapesWorld(cfg.colors, cfg.shapes, cfg.image_size, cfg.seed)
            train = ShapesDataset(world, "train", cfg.train_per_class, cfg.domain)
            test = ShapesDataset(world, "test", cfg.test_per_class, cfg.domain)
        except ValueError as e:
            raise SecaError(f"data.shapes: {e}") from None
        for images in (train, test):  # loaded from the cache (or drawn once into it) now: the set-up pays for it
            images.images()
        return BenchmarkData(train, test, world.class_names)

    def reference_orders(self, num_classes: int):
        return [[int(c) for c in np.random.default_rng(1993).permutation(num_classes)]]  # the world's fixed order
