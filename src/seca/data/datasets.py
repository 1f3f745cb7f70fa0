"""The data sets a benchmark can use: CIFAR-100, ImageNet-R, ImageNet-A, any image folder, the shapes world.

Each is a map-style data set of ``(image, class id)`` with ``targets`` (one class id per item) and
``class_names`` (one per class id). Missing data gives an error that says where it was looked for and
how to get it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image

from ..config import ShapesConfig
from ..errors import SecaError
from .shapes import ShapesDataset, ShapesWorld

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
DATASETS = ("cifar100", "imagenet-r", "imagenet-a", "imagefolder", "shapes")


@lru_cache(maxsize=None)
def reference_data(name: str) -> dict:
    """The shipped reference tables: ``class_names`` (names, WordNet ids) or ``class_orders``."""
    return json.loads((resources.files("seca") / "resources" / f"{name}.json").read_text())


def imagenet_subset_classes(dataset: str) -> tuple[list[str], list[str]]:
    """(WordNet ids in label order, class names) of ImageNet-R or ImageNet-A."""
    key = {"imagenet-r": "imagenet_r", "imagenet-a": "imagenet_a"}[dataset]
    table = reference_data("class_names")
    return table[f"{key}_wnids"], table[key]


class ImageFiles:
    """Image files with class ids; loads each with PIL as RGB and applies ``transform``."""

    def __init__(self, files: Sequence[Path], targets: Sequence[int], class_names: Sequence[str],
                 transform: Optional[Callable] = None):
        self.files = list(files)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.class_names = list(class_names)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        with Image.open(self.files[i]) as image:
            image = image.convert("RGB")
        return (self.transform(image) if self.transform is not None else image), int(self.targets[i])


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (and, if ``recursive``, in its sub-folders), sorted."""
    entries = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def folder_split(split_dir: Path, class_dirs: Sequence[str], class_names: Sequence[str],
                 transform: Optional[Callable]) -> ImageFiles:
    """``split_dir/<class_dirs[k]>/*`` with label k."""
    missing = [d for d in class_dirs if not (split_dir / d).is_dir()]
    if missing:
        raise SecaError(
            f"{split_dir} lacks {len(missing)} of its {len(class_dirs)} class folders (e.g. '{missing[0]}'); "
            "for ImageNet-R/A run `seca prepare` on the extracted archive to build train/ and test/"
        )
    files, targets = [], []
    for label, d in enumerate(class_dirs):
        images = list_images(split_dir / d)
        if not images:
            raise SecaError(f"class folder {split_dir / d} holds no images")
        files += images
        targets += [label] * len(images)
    return ImageFiles(files, targets, class_names, transform)


@dataclass
class BenchmarkData:
    train: object
    test: object
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _require_root(dataset: str, root: Optional[str]) -> Path:
    if not root:
        raise SecaError(f"data.root is not set: give the folder of {dataset}, e.g. --set data.root=/data/{dataset}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise SecaError(f"data.root '{root}' is not a folder; give the folder of {dataset}")
    return path


def _split_dirs(root: Path, dataset: str) -> tuple[Path, Path]:
    train, test = root / "train", root / "test"
    if not train.is_dir() or not test.is_dir():
        hint = (f"run `seca prepare {dataset} RAW {root}` to split the extracted archive"
                if dataset.startswith("imagenet") else "put one folder per class under each")
        raise SecaError(f"{root} must hold train/ and test/ folders; {hint}")
    return train, test


def build_datasets(dataset: str, root: Optional[str] = None, transform: Optional[Callable] = None,
                   download: bool = False, shapes: Optional[ShapesConfig] = None) -> BenchmarkData:
    """The train and test sets of ``dataset`` with ``transform`` applied to every image."""
    if dataset == "cifar100":
        return _cifar100(root, transform, download)
    if dataset in ("imagenet-r", "imagenet-a"):
        path = _require_root(dataset, root)
        train_dir, test_dir = _split_dirs(path, dataset)
        wnids, names = imagenet_subset_classes(dataset)
        return BenchmarkData(folder_split(train_dir, wnids, names, transform),
                             folder_split(test_dir, wnids, names, transform), names)
    if dataset == "imagefolder":
        path = _require_root(dataset, root)
        train_dir, test_dir = _split_dirs(path, dataset)
        classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
        if not classes:
            raise SecaError(f"{train_dir} has no class folders")
        names = [c.replace("_", " ") for c in classes]
        return BenchmarkData(folder_split(train_dir, classes, names, transform),
                             folder_split(test_dir, classes, names, transform), names)
    if dataset == "shapes":
        cfg = shapes or ShapesConfig()
        try:
            world = ShapesWorld(cfg.colors, cfg.shapes, cfg.image_size, cfg.seed)
            names = world.class_names
            train = ShapesDataset(world, "train", cfg.train_per_class, cfg.domain, transform)
            test = ShapesDataset(world, "test", cfg.test_per_class, cfg.domain, transform)
        except ValueError as e:
            raise SecaError(f"data.shapes: {e}") from None
        return BenchmarkData(train, test, names)
    raise SecaError(f"unknown data.dataset '{dataset}'; choose one of: {', '.join(DATASETS)}")


def _cifar100(root: Optional[str], transform: Optional[Callable], download: bool) -> BenchmarkData:
    from torchvision.datasets import CIFAR100

    path = Path(root or "data/cifar100").expanduser()
    try:
        train = CIFAR100(str(path), train=True, transform=transform, download=download)
        test = CIFAR100(str(path), train=False, transform=transform, download=download)
    except RuntimeError:
        raise SecaError(
            f"CIFAR-100 not found under {path}: set data.download=true to fetch it, or put the extracted "
            "'cifar-100-python' folder there"
        ) from None
    except OSError as e:
        raise SecaError(f"could not download CIFAR-100 to {path} ({e.__class__.__name__}: {e}); "
                        "fetch cifar-100-python.tar.gz elsewhere and extract it there") from None
    names = reference_data("class_names")["cifar100"]
    return BenchmarkData(train, test, names)
