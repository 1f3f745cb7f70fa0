"""Data sets of ImageNet classes shipped as one folder per WordNet id and no split (ImageNet-R, ImageNet-A): read
from the ``train/`` and ``test/`` folders that ``seca prepare`` writes (seca.data.prepare)."""

from __future__ import annotations

from typing import ClassVar

from ...config import DataConfig
from ..images import folder_split
from ..prepare import PrepareRequest, prepare_wordnet_split
from .base import BenchmarkData, DataSet, packaged_table


class WordNetFolders(DataSet):
    """A data set of WordNet-id folders; ``table`` is its key in the packaged class names (``imagenet_r``)."""

    table: ClassVar[str] = ""

    def classes(self) -> tuple[list[str], list[str]]:
        """(WordNet ids in label order, class names)."""
        names = packaged_table("class_names")
        return names[f"{self.table}_wnids"], names[self.table]

    def load(self, data: DataConfig) -> BenchmarkData:
        train_dir, test_dir = self.split_folders(self.root(data))
        wnids, names = self.classes()
        fix = f"run `seca prepare {self.name}` on the extracted archive to build train/ and test/"
        return BenchmarkData(
            folder_split(train_dir, wnids, names, None, data.max_pixels, fix),
            folder_split(test_dir, wnids, names, None, data.max_pixels, fix),
            names,
        )

    def prepare(self, request: PrepareRequest) -> dict:
        wnids, names = self.classes()
        return prepare_wordnet_split(self.name, wnids, names, request)
