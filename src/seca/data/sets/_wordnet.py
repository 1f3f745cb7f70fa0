"""Data sets of ImageNet classes shipped as one folder per WordNet id and no split (ImageNet-R, ImageNet-A): read
from the ``train/`` and ``test/`` folders that ``seca prepare`` writes (seca.data.prepare)."""

from __future__ import annotations

from typing import ClassVar

from ...config import DataConfig
from ...errors import SecaError
from ..images import folder_split
from ..prepare import PrepareRequest, prepare_wordnet_split
from ._lists import C3BOX_SPLIT, prepared_split
from .base import BenchmarkData, DataSet, packaged_table


class WordNetFolders(DataSet):
    """A data set of WordNet-id folders; ``table`` is its key in the packaged class names (``imagenet_r``)."""

    table: ClassVar[str] = ""

    def classes(self) -> tuple[list[str], list[str]]:
        """(WordNet ids in label order, class names)."""
        names = packaged_table("class_names")
        return names[f"{self.table}_wnids"], names[self.table]

    def load(self, data: DataConfig) -> BenchmarkData:
        """``train/<wnid>/`` and ``test/<wnid>/`` as ``seca prepare`` writes them, or C3Box's ``train/`` and ``val/``;
        ``data.root`` may be that folder or its parent. A folder holding some of the classes uses those."""
        wnids, official = self.classes()
        names, label = self.class_names(data, official)
        root = self.locate(data, lambda p: self.c3box_folders(p) is not None or (p / "train").is_dir())
        c3box = self.c3box_folders(root)
        train_dir, test_dir = c3box or self.split_folders(root)
        present = [k for k, wnid in enumerate(wnids) if (train_dir / wnid).is_dir()]
        if not present:
            raise SecaError(
                f"{train_dir} holds none of the {len(wnids)} class folders of {self.name} (WordNet ids such as "
                f"'{wnids[0]}'); {self.obtain}"
            )
        fix = f"run `seca prepare {self.name}` on the extracted archive to build train/ and test/"
        chosen, chosen_names = [wnids[k] for k in present], [names[k] for k in present]
        return BenchmarkData(
            folder_split(train_dir, chosen, chosen_names, None, data.max_pixels, fix),
            folder_split(test_dir, chosen, chosen_names, None, data.max_pixels, fix),
            chosen_names,
            split=C3BOX_SPLIT if c3box else prepared_split(root),
            names=label,
            notes=[note for note in [self.subset_note(len(present), len(wnids))] if note],
        )

    def prepare(self, request: PrepareRequest) -> dict:
        wnids, names = self.classes()
        return prepare_wordnet_split(self.name, wnids, names, request)
