"""CUB-200-2011: 200 bird species, 11,788 photographs, the official 5,994 / 5,794 train/test split (Wah et al., 2011).

Read as distributed (``CUB_200_2011/`` with ``classes.txt``, ``images.txt``, ``image_class_labels.txt``,
``train_test_split.txt`` and ``images/<class folder>/<file>``) or as C3Box's ``train/`` ``val/`` class folders.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ...config import DataConfig
from ...errors import SecaError
from ..images import shown
from ._lists import OFFICIAL_SPLIT, files_in, folder_name, listed_split, number, official_or_c3box, read_list
from .base import BenchmarkData, DataSet, register


def cub_name(text: str) -> str:
    """A CUB class as a prompt's name: ``001.Black_footed_Albatross`` is "Black footed Albatross"."""
    return folder_name(re.sub(r"^\d+\.", "", text.strip()))


@register
class CUB200(DataSet):
    """CUB-200-2011: photographs of birds, 200 species, 5,994 train / 5,794 test images (the official split).

    Class names: ``classes.txt``'s folder names without their number, underscores read as spaces
    (``001.Black_footed_Albatross`` is "Black footed Albatross"), in classes.txt's order; C3Box's names
    (utils/labels.json, key ``cub200``) are the same 200 names in the same order. C3Box's ``train/`` ``val/``
    folders (their own sample of the images, not the official split) are read as C3Box reads them: class ids in
    sorted folder order (the numbered folders keep the official order), names from the folder names by the same rule.
    """

    name = "cub200"
    classes = 200
    template = "a photo of a {}, a type of bird."
    benchmarks = ("b0-inc20",)  # SLCA's exps/slca_cub.json (init_cls 20, increment 20)
    obtain = (
        "download CUB_200_2011.tgz (https://www.vision.caltech.edu/datasets/cub_200_2011/) and extract it; data.root "
        "is CUB_200_2011/ or the folder holding it (C3Box's cub train/ and val/ folders work too)"
    )

    def official_layout(self, path: Path) -> bool:
        return (path / "images.txt").is_file() or (path / "classes.txt").is_file()

    def load(self, data: DataConfig) -> BenchmarkData:
        return official_or_c3box(self, data, self.official_layout, self.official, self.classes, cub_name)

    def official(self, data: DataConfig, root: Path) -> BenchmarkData:
        listed = read_list(root / "classes.txt", "<class id> <class folder>")
        class_of = {}  # class id -> place in classes.txt's order
        for i, (key, _) in enumerate(listed):
            class_id = number(key, root / "classes.txt", "a class id")
            if class_id in class_of:
                raise SecaError(f"{root / 'classes.txt'} lists the class id {class_id} twice")
            class_of[class_id] = i
        official = [cub_name(folder) for _, folder in listed]
        paths = read_list(root / "images.txt", "<image id> <path under images/>")
        labels = dict(read_list(root / "image_class_labels.txt", "<image id> <class id>"))
        is_train = dict(read_list(root / "train_test_split.txt", "<image id> <1 for training, 0 for test>"))
        present: dict[str, set[str]] = {}
        train, test = [], []
        for image_id, relative in paths:
            for table, file in ((labels, "image_class_labels.txt"), (is_train, "train_test_split.txt")):
                if image_id not in table:
                    raise SecaError(f"the image {image_id} of images.txt has no line in {root / file}")
            class_id = number(labels[image_id], root / "image_class_labels.txt", f"the class of image {image_id}")
            if class_id not in class_of:
                raise SecaError(
                    f"{root / 'image_class_labels.txt'}: the image {image_id} has the class id {class_id}, which "
                    "classes.txt does not list"
                )
            if is_train[image_id] not in ("0", "1"):
                raise SecaError(
                    f"{root / 'train_test_split.txt'}: the image {image_id} is marked '{shown(is_train[image_id], 20)}'"
                    " (1 for training, 0 for test)"
                )
            folder, _, file = relative.rpartition("/")
            if folder not in present:
                present[folder] = files_in(root / "images" / folder)
            if file in present[folder]:
                (train if is_train[image_id] == "1" else test).append((root / "images" / relative, class_of[class_id]))
        return listed_split(self, data, official, train, test, split=OFFICIAL_SPLIT, where=root, listed=len(paths))

    def c3box_names(self, official: Sequence[str]) -> list[str] | None:
        # C3Box's labels.json (key cub200) is classes.txt by this module's rule: 200 of 200 names the same
        return list(official)
