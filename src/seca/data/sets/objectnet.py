"""ObjectNet: 313 classes of household objects photographed at unusual rotations, backgrounds and viewpoints, about
50,000 images (Barbu et al., NeurIPS 2019), a test set with no train/test split.

The release (``objectnet-1.0.zip``, https://objectnet.dev) extracts to ``objectnet-1.0/`` holding
``images/<class folder>/*.png`` and ``mappings/folder_to_objectnet_name.json`` (class folder -> class name, e.g.
``"bills_money": "Bills (money)"``). ``seca prepare objectnet RAW OUT`` splits it 80/20 per class (deterministic, with a
manifest of files and SHA-256s; the mapping is copied beside), and seca reads the ``train/`` ``test/`` it writes, or
C3Box's ``train/`` ``val/`` folders.

C3Box (after APER/RevisitingCIL, PROOF and EASE) uses 200 of the 313 classes: its utils/labels.json ``objectnet`` list
is the first 200 class folders in sorted order (``air_freshener`` .. ``plunger``) with underscores read as spaces, and
its train/ val/ folders hold those 200. ``data.objectnet.classes: c3box`` (the default) keeps the same 200 of a
prepared release, so a user with the official archive runs C3Box's classes; ``all`` keeps the 313.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...config import DataConfig, one_of, section, setting
from ...errors import SecaError
from ..images import CONTROL, list_images, shown
from ..prepare import PrepareRequest, prepare_wordnet_split
from ._lists import C3BOX_SPLIT, c3box_split, folder_name, is_folder, listed_split, prepared, prepared_split
from .base import BenchmarkData, DataSet, register

MAPPING = "folder_to_objectnet_name.json"
C3BOX_CLASSES = 200  # C3Box's subset: the first 200 class folders of the release in sorted order

LICENCE_NOTE = (
    "objectnet: ObjectNet's licence says it may never be used to tune the parameters of any model; training on it "
    "(as C3Box's protocol does) is for comparing with published numbers only"
)


@dataclass(frozen=True)
class ObjectNetConfig:
    """ObjectNet: which of its classes a run uses."""

    classes: str = setting(
        "c3box",
        "`c3box`: the 200 classes C3Box, APER and PROOF use (the first 200 class folders in sorted order, "
        "air_freshener .. plunger); `all`: the 313 classes of the release",
        one_of("c3box", "all"),
    )


def read_mapping(path: Path) -> dict[str, str]:
    """``folder_to_objectnet_name.json``: class folder -> class name, each a non-empty text; else one line."""
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # ValueError: not UTF-8, not JSON, a number of 4300 digits
        raise SecaError(f"cannot read {path} ({type(e).__name__}); it should map class folders to names") from None
    if not isinstance(mapping, dict) or not mapping:
        raise SecaError(f"{path} should be a JSON object mapping each class folder to its name")
    for folder, name in mapping.items():
        if not isinstance(name, str) or not name.strip() or CONTROL.search(name):
            raise SecaError(f"{path}: the entry '{shown(folder, 40)}' should map a class folder to a name (text)")
        if not folder.strip() or "/" in folder or folder in (".", "..") or CONTROL.search(folder):
            raise SecaError(f"{path}: '{shown(folder, 40)}' is not the name of a class folder")
    return {folder: name.strip() for folder, name in mapping.items()}


def is_release(path: Path) -> bool:
    """``path`` is ``objectnet-1.0/`` as extracted: ``images/`` and ``mappings/folder_to_objectnet_name.json``."""
    return (path / "images").is_dir() and (path / "mappings" / MAPPING).is_file()


@register
class ObjectNet(DataSet):
    """ObjectNet: household objects in unusual poses, 313 classes (C3Box: 200), about 50,000 images, no official split.

    Class names: ``mappings/folder_to_objectnet_name.json``'s names as written ("Bills (money)"), in the sorted order
    of the class folders. C3Box's names (utils/labels.json, key ``objectnet``) are the class folders' names with
    underscores read as spaces ("bills money"): ``data.names=c3box`` gives those. C3Box's train/ val/ folders carry
    no mapping file: their names are the folder names by that rule (put the release's mapping file beside them, as
    ``mappings/folder_to_objectnet_name.json``, for the official names). C3Box's prompts for it: templates.json key
    ``objectnet`` (seven ImageNet templates, "itap of a {}.").
    """

    name = "objectnet"
    classes = 313
    template = "a photo of a {}."
    benchmarks = ("b0-inc10", "b100-inc10")

    @dataclass(frozen=True)
    class Config:
        objectnet: ObjectNetConfig = section(ObjectNetConfig)

    obtain = (
        "download objectnet-1.0.zip from https://objectnet.dev/download.html (the password is on that page), extract "
        "it and run `seca prepare objectnet RAW ROOT`; C3Box's ObjectNet folder (train/ and val/) works as is"
    )

    def __init__(self) -> None:
        super().__init__()
        self._folders: list[str] | None = None  # the class folders of the list being named (for c3box_names)

    def load(self, data: DataConfig) -> BenchmarkData:
        root = self.locate(data, lambda p: self.c3box_folders(p) is not None or prepared(p) or is_release(p))
        c3box = self.c3box_folders(root)
        if c3box is None and not prepared(root):
            raise SecaError(
                f"{root} is ObjectNet as distributed (images/, no train/test split): run `seca prepare objectnet "
                f"{root} OUT` and give OUT as data.root"
            )
        mapping_file = next((p for p in (root / "mappings" / MAPPING, root / MAPPING) if p.is_file()), None)
        if mapping_file is None:
            if c3box is None:
                raise SecaError(
                    f"{root / 'mappings' / MAPPING} is missing (seca prepare copies it there); copy it from the "
                    "release's objectnet-1.0/mappings/"
                )
            self._folders = None
            loaded = c3box_split(self, data, c3box, C3BOX_CLASSES, folder_name)
            loaded.notes = [
                *loaded.notes,
                "objectnet: C3Box's folders hold its 200-class subset; no folder_to_objectnet_name.json beside them, "
                "so the class names are the folder names (underscores read as spaces), which are C3Box's",
                LICENCE_NOTE,
            ]
            return loaded
        mapping = read_mapping(mapping_file)
        train_dir, test_dir = c3box or (root / "train", root / "test")
        for split_dir in (train_dir, test_dir):
            unknown = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and p.name not in mapping)
            if unknown:
                raise SecaError(
                    f"{split_dir / unknown[0]} is not a class folder of ObjectNet (not in {mapping_file.name})"
                )
        folders, total = sorted(mapping), self.classes
        if data.objectnet.classes == "c3box":
            folders, total = folders[:C3BOX_CLASSES], C3BOX_CLASSES
        official = [mapping[f] for f in folders]

        def items(split_dir: Path) -> list[tuple[Path, int]]:
            return [
                (p, k) for k, f in enumerate(folders) if is_folder(split_dir / f) for p in list_images(split_dir / f)
            ]

        self._folders = folders
        loaded = listed_split(
            self,
            data,
            official,
            items(train_dir),
            items(test_dir),
            split=C3BOX_SPLIT if c3box else prepared_split(root),
            where=root,
            total=total,
        )
        loaded.notes = [*loaded.notes, LICENCE_NOTE]
        return loaded

    def c3box_names(self, official: Sequence[str]) -> list[str] | None:
        # C3Box's labels.json (key objectnet): the sorted first 200 class folders, underscores read as spaces (the
        # folder names of the 66 of its classes that also name ImageNet classes checked; the full list of 313
        # folders is not available offline)
        if self._folders is None or len(self._folders) != len(official):
            return list(official)  # C3Box's folders without the mapping: the names already are the folder names
        return [folder_name(f) for f in self._folders]

    def prepare(self, request: PrepareRequest) -> dict:
        raw = Path(request.raw)
        if not raw.is_dir():
            raise SecaError(f"'{raw}' is not a folder; give the extracted objectnet-1.0.zip")
        release = self.find_inside(raw, is_release)
        if release is None:
            raise SecaError(
                f"'{raw}' does not hold objectnet-1.0/ as extracted (images/ and mappings/{MAPPING}); {self.obtain}"
            )
        mapping = read_mapping(release / "mappings" / MAPPING)
        images = release / "images"
        unknown = sorted(p.name for p in images.iterdir() if p.is_dir() and p.name not in mapping)
        if unknown:
            raise SecaError(f"{images / unknown[0]} is not a class folder of ObjectNet (not in {MAPPING})")
        folders = sorted(mapping)
        manifest = prepare_wordnet_split(
            self.name, folders, [mapping[f] for f in folders], dataclasses.replace(request, raw=images)
        )
        target = Path(request.out) / "mappings" / MAPPING
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(release / "mappings" / MAPPING, target)
        return manifest
