"""Stanford Cars: 196 car models (make, model, year), 16,185 photographs, the official 8,144 / 8,041 train/test split
(Krause et al., 3dRR 2013).

Read as distributed (``cars_train/``, ``cars_test/``, ``devkit/cars_meta.mat``, ``devkit/cars_train_annos.mat`` and
``cars_test_annos_withlabels.mat``, also in torchvision's ``stanford_cars/`` folder) with scipy's MATLAB reader, or as
C3Box's ``train/`` ``val/`` class folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...config import DataConfig
from ...errors import SecaError
from ..images import CONTROL, shown
from ._lists import OFFICIAL_SPLIT, files_in, folder_name, listed_split, official_or_c3box
from .base import BenchmarkData, DataSet, register

TEST_LABELS = "cars_test_annos_withlabels.mat"


def load_mat(path: Path) -> dict[str, Any]:
    """A MATLAB file read by scipy (``squeeze_me``, as torchvision reads these), or one line saying what is wrong."""
    if not path.is_file():
        raise SecaError(f"{path} is missing; Stanford Cars' devkit files must be as distributed")
    try:
        import scipy.io
    except ImportError:
        raise SecaError(
            f"reading Stanford Cars' .mat files ({path.name}) needs scipy: pip install scipy (or 'seca[cars]')"
        ) from None
    try:
        return scipy.io.loadmat(str(path), squeeze_me=True)
    except Exception as e:  # whatever scipy raises on a file that is not MATLAB's
        raise SecaError(f"cannot read {path} as a MATLAB file ({type(e).__name__})") from None


def mat_entries(path: Path, mat: dict[str, Any], key: str) -> np.ndarray:
    """``mat[key]`` as a 1-d array (one entry is squeezed to a scalar by scipy)."""
    if key not in mat:
        held = ", ".join(k for k in mat if not k.startswith("__"))
        raise SecaError(f"{path} holds no '{key}' (it has {shown(held, 80) or 'nothing else'})")
    return np.atleast_1d(mat[key])


def car_name(text: str) -> str:
    """A cars_meta.mat class name as a prompt's name: as given, spaces collapsed ("AM General Hummer SUV 2000")."""
    return " ".join(str(text).split())


@register
class Cars196(DataSet):
    """Stanford Cars: photographs of cars, 196 models, 8,144 train / 8,041 test images (the official split).

    Class names: ``devkit/cars_meta.mat``'s ``class_names`` as given (spaces collapsed), in its order; the class ids
    follow that order. C3Box's cars (utils/data.py ``StanfordCars``, key ``cars``) is a 100-class subset of its own
    (class_order ``range(100)``); its labels.json lists 102 names, the first 102 of these 196 names sorted by their
    folder names (spaces as underscores), each the official name of its class. Its ``train/`` ``val/`` folders are
    read as C3Box reads them: class ids in sorted folder order, names from the folder names, underscores read as
    spaces.
    """

    name = "cars196"
    c3box_key = "cars"
    classes = 196
    # C3Box's (PROOF's) task sizes, on its 100-class train/val folders; the 196 classes take none of them evenly
    template = "a photo of a {}."
    benchmarks = ("b0-inc10", "b50-inc10")
    obtain = (
        "Stanford Cars' site (https://ai.stanford.edu/~jkrause/cars/car_dataset.html) is offline: put cars_train/, "
        "cars_test/, devkit/ and cars_test_annos_withlabels.mat from a copy of it in one folder (torchvision's "
        "stanford_cars/ works; data.root is it or its parent; reading needs scipy), or point data.root at C3Box's "
        "cars train/ and val/ folders"
    )

    def official_layout(self, path: Path) -> bool:
        return (path / "devkit").is_dir() or (path / "cars_train").is_dir()

    def load(self, data: DataConfig) -> BenchmarkData:
        return official_or_c3box(self, data, self.official_layout, self.official, self.classes, folder_name)

    def official(self, data: DataConfig, root: Path) -> BenchmarkData:
        devkit = root / "devkit"
        meta = devkit / "cars_meta.mat"
        given = mat_entries(meta, load_mat(meta), "class_names").tolist()
        if not given or not all(isinstance(n, str) and car_name(n) and not CONTROL.search(n) for n in given):
            raise SecaError(f"{meta}: class_names should be the class names (text)")
        official = [car_name(n) for n in given]
        test_annotations = next((p for p in (root / TEST_LABELS, devkit / TEST_LABELS) if p.is_file()), None)
        if test_annotations is None:
            raise SecaError(
                f"{root} lacks {TEST_LABELS} (the test images' classes; devkit/cars_test_annos.mat has none): "
                f"put it beside devkit/ ({self.obtain})"
            )
        train, listed_train = self.annotated(devkit / "cars_train_annos.mat", root / "cars_train", len(official))
        test, listed_test = self.annotated(test_annotations, root / "cars_test", len(official))
        return listed_split(
            self, data, official, train, test, split=OFFICIAL_SPLIT, where=root, listed=listed_train + listed_test
        )

    def annotated(self, path: Path, images: Path, count: int) -> tuple[list[tuple[Path, int]], int]:
        """The images of the annotations ``path`` found in ``images`` with their classes' places (0-based), and how
        many the annotations list."""
        annotations = mat_entries(path, load_mat(path), "annotations")
        fields = annotations.dtype.names or ()
        if "fname" not in fields or "class" not in fields:
            raise SecaError(
                f"{path}: the annotations have no 'fname' and 'class' fields (they have {shown(repr(list(fields)))})"
            )
        present = files_in(images)
        found = []
        for entry in annotations:
            file, label = entry["fname"], np.asarray(entry["class"])
            value = label.item() if label.shape == () else None
            if not isinstance(file, str) or not isinstance(value, (int, float)) or isinstance(value, bool):
                raise SecaError(
                    f"{path}: an annotation's file and class are {shown(repr(file), 60)} and {shown(repr(label), 60)} "
                    "(a name, a number)"
                )
            if not (float(value).is_integer() and 1 <= value <= count):  # NaN and infinities are no whole number
                raise SecaError(
                    f"{path}: the image '{shown(file, 60)}' has the class {shown(str(value), 40)}; cars_meta.mat has "
                    f"1..{count}"
                )
            if file in present:
                found.append((images / file, int(value) - 1))
        return found, len(annotations)

    def c3box_names(self, official: Sequence[str]) -> list[str] | None:
        # C3Box's labels.json (key cars) names each class by its official name: 102 of 102 the same
        return list(official)
