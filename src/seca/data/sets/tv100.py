"""TV100: images of 100 TV series released after 2021, a data set pre-trained CLIP has not seen (Zhou, Qi, Ye and
Zhan, 2024; https://tv-100.github.io/), with no official train/test split.

The release is one archive on Google Drive (licence CC BY-NC-ND 4.0) of one folder of images per series; its exact
layout could not be checked offline, so seca reads any of: the release's class folders split by ``seca prepare tv100
RAW OUT`` (a deterministic 80/20 split per class, with a manifest of files and SHA-256s, as ``imagenet-r`` has), the
``train/`` ``test/`` folders that writes, or C3Box's ``train/`` ``val/`` folders (their TV100.zip). A class's name is
its folder's name with underscores read as spaces; the class ids are the folders' places in sorted order, as
torchvision's ImageFolder (and so C3Box) numbers them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ...config import DataConfig
from ...errors import SecaError
from ..images import list_images
from ..prepare import PrepareRequest, prepare_wordnet_split
from ._lists import c3box_split, folder_name, prepared, prepared_split
from .base import BenchmarkData, DataSet, register


def image_folders(path: Path) -> list[str]:
    """The sub-folders of ``path`` that hold images directly, sorted by name."""
    return sorted(p.name for p in path.iterdir() if p.is_dir() and list_images(p))


@register
class TV100(DataSet):
    """TV100: images of TV series released after 2021, 100 classes, split 80/20 per class by seca prepare (or C3Box's).

    Class names: the class folders' names, underscores read as spaces. C3Box has no TV100 names (its
    utils/labels.json has no ``tv100`` key, and no templates.json entry): give data.names_file for other names.
    """

    name = "tv100"
    classes = 100
    benchmarks = ("b0-inc10", "b50-inc10")
    obtain = (
        "download TV100 from https://tv-100.github.io/ (Google Drive), extract it and run `seca prepare tv100 RAW "
        "ROOT`; C3Box's TV100 folder (train/ and val/) works as is"
    )

    def load(self, data: DataConfig) -> BenchmarkData:
        root = self.locate(data, lambda p: self.c3box_folders(p) is not None or prepared(p))
        c3box = self.c3box_folders(root)
        folders = c3box or (root / "train", root / "test")
        loaded = c3box_split(self, data, folders, self.classes, folder_name)
        if c3box is None:
            loaded.split = prepared_split(root)
        return loaded

    def prepare(self, request: PrepareRequest) -> dict:
        raw = Path(request.raw)
        if not raw.is_dir():
            raise SecaError(f"'{raw}' is not a folder; give the extracted TV100 archive")
        if self.c3box_folders(raw) or prepared(raw):
            raise SecaError(f"'{raw}' is already split into train/ and val/ (or test/): give it as data.root as is")
        class_root = self.find_inside(raw, lambda p: bool(image_folders(p)))
        if class_root is None:
            raise SecaError(f"'{raw}' holds no folders of images (one per TV series); {self.obtain}")
        classes = image_folders(class_root)
        if len(classes) > self.classes:
            raise SecaError(f"{class_root} holds {len(classes)} class folders; TV100 has {self.classes}")
        names = [folder_name(c) for c in classes]
        return prepare_wordnet_split(self.name, classes, names, dataclasses.replace(request, raw=class_root))
