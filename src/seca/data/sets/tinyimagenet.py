"""Tiny ImageNet: 200 ImageNet classes at 64x64 pixels, 500 training and 50 validation images each (Stanford CS231n,
2015); the validation set is the test set (the release's test/ images carry no labels).

The archive (``tiny-imagenet-200.zip``) extracts to ``tiny-imagenet-200/`` holding ``wnids.txt`` (the 200 WordNet
ids), ``words.txt`` (every WordNet id with its synonyms, tab-separated), ``train/<wnid>/images/*.JPEG`` and
``val/images/*.JPEG`` with ``val/val_annotations.txt`` (``<file> <wnid> <box>`` per line, tab-separated). Class ids
are the WordNet ids' places in sorted order (torchvision's ImageFolder order over train/, which continuum's reader,
and so continual-clip, uses); a class's name is the first synonym of its line in ``words.txt`` ("goldfish, Carassius
auratus" is "goldfish"). Also read: ``train/<wnid>/`` and ``val/<wnid>/`` class folders (the validation images sorted
into folders, as C3Box-style toolboxes read it), named from ``words.txt`` when it is beside them, else by CLIP's
ImageNet names (all 200 are ImageNet-1k classes).
"""

from __future__ import annotations

from pathlib import Path

from ...config import DataConfig
from ...errors import SecaError
from ..images import list_images, shown
from ._lists import (
    WNID,
    c3box_split,
    clip_imagenet_names,
    files_in,
    folder_name,
    imagenet_index,
    listed_split,
    text_lines,
)
from .base import BenchmarkData, DataSet, register


def read_lines(path: Path) -> list[tuple[int, str]]:
    """The non-empty lines of a text file of the release with their numbers (``text_lines``), or one line saying it
    is missing, unreadable or empty."""
    return text_lines(path, "tiny-imagenet-200/ must be as extracted")


def read_wnids(path: Path) -> list[str]:
    """``wnids.txt``: one WordNet id per line, each once."""
    wnids: list[str] = []
    for number, wnid in read_lines(path):
        if not WNID.fullmatch(wnid):
            raise SecaError(f"{path}, line {number}: expected a WordNet id (n########), got '{shown(wnid)}'")
        if wnid in wnids:
            raise SecaError(f"{path} lists {wnid} twice")
        wnids.append(wnid)
    return wnids


def words_names(path: Path, wnids: list[str]) -> list[str]:
    """Each WordNet id's first synonym in ``words.txt`` (``<wnid>\\t<synonym>, <synonym>, ...``)."""
    wanted, found = set(wnids), {}
    for number, line in read_lines(path):
        wnid, tab, synonyms = line.partition("\t")
        if wnid in wanted:
            name = synonyms.split(",")[0].strip()
            if not tab or not name:
                raise SecaError(f"{path}, line {number}: expected '<wnid><TAB><names>', got '{shown(line)}'")
            found[wnid] = name
    missing = [w for w in wnids if w not in found]
    if missing:
        raise SecaError(f"{path} has no line for {missing[0]} (and {len(missing) - 1} more classes)")
    return [found[w] for w in wnids]


@register
class TinyImageNet(DataSet):
    """Tiny ImageNet: 64x64 photographs of 200 ImageNet classes, 100,000 train / 10,000 test (the official val) images.

    Class names: the first synonym of each class's line in ``words.txt`` ("goldfish, Carassius auratus" is
    "goldfish"). C3Box has no Tiny ImageNet (no labels.json or templates.json key).
    """

    name = "tinyimagenet"
    classes = 200
    template = "a photo of a {}."
    benchmarks = ("b100-inc20", "b100-inc10", "b100-inc5")
    obtain = (
        "download http://cs231n.stanford.edu/tiny-imagenet-200.zip and extract it; data.root is tiny-imagenet-200/ or "
        "the folder holding it (train/<wnid>/ and val/<wnid>/ class folders work too)"
    )

    def official_layout(self, path: Path) -> bool:
        return (path / "wnids.txt").is_file() and (path / "val" / "val_annotations.txt").is_file()

    def load(self, data: DataConfig) -> BenchmarkData:
        root = self.locate(data, lambda p: self.official_layout(p) or self.c3box_folders(p) is not None)
        if self.official_layout(root):
            return self.official(data, root)
        folders = self.c3box_folders(root)
        assert folders is not None  # locate found one of the two layouts
        names = {p.name for d in folders for p in d.iterdir() if p.is_dir()}
        if (root / "words.txt").is_file():
            named = dict(zip(sorted(names), words_names(root / "words.txt", sorted(names))))
            how = "words.txt's first synonyms"
        elif all(n in imagenet_index() for n in names):
            named = dict(zip(sorted(names), clip_imagenet_names(sorted(names))))
            how = "CLIP's ImageNet names (no words.txt beside the folders)"
        else:
            named, how = {n: folder_name(n) for n in names}, "the folder names"
        loaded = c3box_split(self, data, folders, self.classes, lambda n: named[n])
        loaded.notes = [*loaded.notes, f"tinyimagenet: class folders train/ and val/, named by {how}"]
        return loaded

    def official(self, data: DataConfig, root: Path) -> BenchmarkData:
        wnids = sorted(read_wnids(root / "wnids.txt"))
        place = {w: k for k, w in enumerate(wnids)}
        official = words_names(root / "words.txt", wnids)
        train_dir = root / "train"
        if not train_dir.is_dir():
            raise SecaError(f"{train_dir} is missing; tiny-imagenet-200/ must be as extracted")
        for p in sorted(train_dir.iterdir()):
            if p.is_dir() and p.name not in place:
                raise SecaError(f"{p} is not a class of {root / 'wnids.txt'}")
        train = [
            (p, k)
            for k, w in enumerate(wnids)
            if (train_dir / w).is_dir()
            for p in list_images(train_dir / w / "images" if (train_dir / w / "images").is_dir() else train_dir / w)
        ]
        annotations = root / "val" / "val_annotations.txt"
        present = files_in(root / "val" / "images")
        test, listed = [], 0
        for number, line in read_lines(annotations):
            parts = line.split("\t") if "\t" in line else line.split()
            if len(parts) < 2:
                raise SecaError(f"{annotations}, line {number}: expected '<file> <wnid> <box>', got '{shown(line)}'")
            file, wnid = parts[0].strip(), parts[1].strip()
            if wnid not in place:
                raise SecaError(f"{annotations}, line {number}: '{shown(wnid, 20)}' is not a class of wnids.txt")
            listed += 1
            if file in present:
                test.append((root / "val" / "images" / file, place[wnid]))
        return listed_split(
            self,
            data,
            official,
            train,
            test,
            split="official train/val (val as test)",
            where=root,
            total=max(self.classes, len(wnids)),
            listed=len(train) + listed,
        )
