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
from ._lists import (
    OFFICIAL_SPLIT,
    files_in,
    folder_name,
    inside,
    listed_split,
    number,
    official_or_c3box,
    read_list,
)
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
        classes = root / "classes.txt"
        listed = read_list(classes, "<class id> <class folder>")
        class_of = {}  # class id -> place in classes.txt's order
        for i, (line, key, folder) in enumerate(listed):
            class_id = number(key, classes, "a class id", line)
            if class_id in class_of:
                raise SecaError(f"{classes}, line {line}: the class id {class_id} is listed twice")
            if not cub_name(folder):
                raise SecaError(f"{classes}, line {line}: '{shown(folder)}' is not a class folder ('001.Name')")
            class_of[class_id] = i
        official = [cub_name(folder) for _, _, folder in listed]
        paths = read_list(root / "images.txt", "<image id> <path under images/>")
        labels = {
            key: (line, value)
            for line, key, value in read_list(root / "image_class_labels.txt", "<image id> <class id>")
        }
        marks = read_list(root / "train_test_split.txt", "<image id> <1 for training, 0 for test>")
        is_train = {key: (line, value) for line, key, value in marks}
        present: dict[str, set[str]] = {}
        train, test = [], []
        for line, image_id, relative in paths:
            for table, file in ((labels, "image_class_labels.txt"), (is_train, "train_test_split.txt")):
                if image_id not in table:
                    raise SecaError(
                        f"{root / 'images.txt'}, line {line}: the image {shown(image_id, 40)} has no line in "
                        f"{root / file}"
                    )
            label_line, label = labels[image_id]
            labels_file = root / "image_class_labels.txt"
            class_id = number(label, labels_file, f"the class of image {shown(image_id, 40)}", label_line)
            if class_id not in class_of:
                raise SecaError(
                    f"{labels_file}, line {label_line}: the image {shown(image_id, 40)} has the class id {class_id}, "
                    "which classes.txt does not list"
                )
            mark_line, mark = is_train[image_id]
            if mark not in ("0", "1"):
                raise SecaError(
                    f"{root / 'train_test_split.txt'}, line {mark_line}: the image {shown(image_id, 40)} is marked "
                    f"'{shown(mark, 20)}' (1 for training, 0 for test)"
                )
            inside(relative, root / "images.txt", line, "a path under images/ ('<class folder>/<file>')")
            folder, _, file = relative.rpartition("/")
            if folder not in present:
                present[folder] = files_in(root / "images" / folder)
            if file in present[folder]:
                (train if mark == "1" else test).append((root / "images" / relative, class_of[class_id]))
        return listed_split(self, data, official, train, test, split=OFFICIAL_SPLIT, where=root, listed=len(paths))

    def c3box_names(self, official: Sequence[str]) -> list[str] | None:
        # C3Box's labels.json (key cub200) is classes.txt by this module's rule: 200 of 200 names the same
        return list(official)
