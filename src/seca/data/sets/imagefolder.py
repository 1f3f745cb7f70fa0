"""Your own images as class folders: ``ROOT/train/<class>/`` and ``ROOT/test/<class>/`` (docs/data.md)."""

from __future__ import annotations

from ...config import DataConfig
from ...errors import SecaError
from ..images import class_dirs, folder_split
from .base import BenchmarkData, DataSet, register


@register
class ImageFolder(DataSet):
    """Your own images: ROOT/train/<class>/ and ROOT/test/<class>/, one folder per class (the folder names)."""

    name = "imagefolder"
    obtain = "put your images in ROOT/train/<class name>/ and ROOT/test/<class name>/"

    def load(self, data: DataConfig) -> BenchmarkData:
        train_dir, test_dir = self.split_folders(self.root(data))
        dirs, names = class_dirs(train_dir)
        if not dirs:
            raise SecaError(f"{train_dir} has no class folders")
        classes = [d.name for d in dirs]
        return BenchmarkData(
            folder_split(train_dir, classes, names, None, data.max_pixels),
            folder_split(test_dir, classes, names, None, data.max_pixels),
            names,
        )

    def reference_orders(self, num_classes: int):
        return [list(range(num_classes))]  # the folders' sorted names: the class ids' own order
