"""ImageNet-100: the 100-class subset of ImageNet-1k (ILSVRC-2012) that class-incremental learning uses, about
130,000 training and 5,000 validation (used as test) images.

Which 100: PODNet's and DyTox's ``imagenet100_splits`` (train_100.txt / val_100.txt), which continual-clip reads, list
the first 100 ImageNet-1k classes in sorted WordNet-id order (n01440764 tench .. n01855672 goose): checked against
both repositories' val_100.txt. PyCIL and C3Box read ``train/`` and ``val/`` folders of 100 WordNet ids and name their
list only as a Google Drive file, which could not be fetched here: seca takes the classes from such a folder as it
is, and says so when they are not the list above. ``data.imagenet100.classes`` names another list (a file).

Layouts: ImageNet-1k as ILSVRC-2012 is usually laid out (``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG``, the
validation images sorted into class folders), restricted to the 100 classes; or a ``train/`` ``val/`` folder holding
the 100 classes only (PyCIL's, C3Box's). The class ids are the classes' places in sorted WordNet-id order, as
torchvision's ImageFolder numbers them.

Class names: the names CLIP's ImageNet prompts use (OpenAI's curated list, ``open_clip.IMAGENET_CLASSNAMES``), by
ImageNet-1k class index: the names continual-clip (and seca's class_names.json, 400 of 400 the same for ImageNet-R/A)
and C3Box (utils/labels.json ``imagenet``, 1000 of 1000 the same) use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...config import DataConfig, section, setting
from ...errors import SecaError
from ..images import IMAGE_SUFFIXES, list_images, shown
from ._lists import (
    C3BOX_SPLIT,
    IMAGENET_WNIDS,
    WNID,
    clip_imagenet_names,
    imagenet_index,
    listed_split,
    text_lines,
)
from .base import BenchmarkData, DataSet, register

PODNET_100 = IMAGENET_WNIDS[:100]  # PODNet's / DyTox's / continual-clip's ImageNet-100


@dataclass(frozen=True)
class ImageNet100Config:
    """ImageNet-100: which 100 ImageNet-1k classes."""

    classes: str = setting(
        "podnet",
        "`podnet`: the first 100 ImageNet-1k classes in sorted WordNet-id order (PODNet's, DyTox's and "
        "continual-clip's ImageNet-100); or a file listing WordNet ids (one per line, or lines such as "
        "`train/n01440764/x.JPEG 0`, PODNet's and PyCIL's file lists)",
    )


def read_class_list(path: str) -> list[str]:
    """The WordNet ids a class-list file names (the first ``n########`` of each line), sorted; else one line."""
    file = Path(path).expanduser()
    wnids: set[str] = set()
    for number, line in text_lines(file, "data.imagenet100.classes names it, a file listing WordNet ids"):
        if line.startswith("#"):
            continue
        found = WNID.search(line)
        if found is None:
            raise SecaError(f"{file}, line {number}: no WordNet id (n########) in '{shown(line)}'")
        wnids.add(found.group())
    if not wnids:
        raise SecaError(f"data.imagenet100.classes: '{path}' names no WordNet id")
    clip_imagenet_names(sorted(wnids))  # each must be an ImageNet-1k class
    return sorted(wnids)


@register
class ImageNet100(DataSet):
    """ImageNet-100: photographs of 100 ImageNet-1k classes, about 130,000 train / 5,000 test (ILSVRC val) images.

    Class names: CLIP's ImageNet names (OpenAI's list) by ImageNet-1k index, which C3Box's labels.json ``imagenet``
    list also is (C3Box has no ``imagenet100`` key: its prompts would read the ``imagenet`` templates).
    """

    name = "imagenet100"
    classes = 100
    template = "a photo of a {}."
    benchmarks = ("b0-inc10", "b50-inc10", "b50-inc5")
    obtain = (
        "download ILSVRC-2012 (https://image-net.org/download.php: the train and validation archives), extract them "
        "as train/<wnid>/ and val/<wnid>/ (the validation images sorted into class folders) and give that folder, "
        "or a train/ val/ folder of the 100 classes (PyCIL's, C3Box's)"
    )

    @dataclass(frozen=True)
    class Config:
        imagenet100: ImageNet100Config = section(ImageNet100Config)

    def chosen(self, data: DataConfig) -> tuple[list[str], str]:
        """The 100 classes asked for (sorted WordNet ids) and how to name the list in a note."""
        given = data.imagenet100.classes
        if given == "podnet":
            return list(PODNET_100), "PODNet/continual-clip ImageNet-100"
        return read_class_list(given), f"'{Path(given).name}'"

    def load(self, data: DataConfig) -> BenchmarkData:
        root = self.locate(data, lambda p: self.c3box_folders(p) is not None)
        train_dir, val_dir = self.c3box_folders(root) or (root / "train", root / "val")
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in val_dir.iterdir()) and not any(
            p.is_dir() for p in val_dir.iterdir()
        ):
            raise SecaError(
                f"{val_dir} holds ILSVRC-2012's validation images unsorted; sort them into val/<wnid>/ folders (e.g. "
                "with the devkit's ground truth, as PyTorch's ImageNet example does) first"
            )
        folders = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
        index = imagenet_index()
        for name in folders:
            if name not in index:
                raise SecaError(
                    f"{train_dir / name} is not an ImageNet-1k class folder (a WordNet id such as n01440764)"
                )
        chosen, which = self.chosen(data)
        notes = []
        if len(folders) > self.classes:  # ImageNet-1k: keep the chosen classes
            universe, split = chosen, "ILSVRC-2012 train/val"
        else:  # a folder of the 100 classes (PyCIL's, C3Box's): its classes as they are
            split = C3BOX_SPLIT
            outside = [f for f in folders if f not in chosen]
            universe = folders if outside else chosen
            if outside:
                notes.append(
                    f"imagenet100: {len(outside)} of the folder's {len(folders)} classes are not in the {which} list "
                    f"(e.g. {outside[0]}); using the folder's own classes"
                )

        def items(split_dir: Path) -> list[tuple[Path, int]]:
            return [
                (p, k) for k, w in enumerate(universe) if (split_dir / w).is_dir() for p in list_images(split_dir / w)
            ]

        loaded = listed_split(
            self,
            data,
            clip_imagenet_names(universe),
            items(train_dir),
            items(val_dir),
            split=split,
            where=root,
            total=len(chosen) if universe is chosen else self.classes,
        )
        loaded.notes = [*notes, *loaded.notes]
        return loaded

    def c3box_names(self, official: Sequence[str]) -> list[str] | None:
        # C3Box's labels.json "imagenet" list is open_clip's IMAGENET_CLASSNAMES (1000 of 1000 the same), the rule
        # of the official names here
        return list(official)
