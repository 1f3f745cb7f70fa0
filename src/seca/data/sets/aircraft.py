"""FGVC-Aircraft 2013b: 100 aircraft variants, 10,000 photographs, the official 6,667 trainval / 3,333 test split
(Maji et al., 2013).

Read as distributed (``fgvc-aircraft-2013b/data/`` with ``variants.txt``, ``images_variant_trainval.txt``,
``images_variant_test.txt`` and ``images/<id>.jpg``, as torchvision's FGVCAircraft reads it; ``data.download=true``
fetches it with torchvision's downloader), or as C3Box's ``train/`` ``val/`` class folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...config import DataConfig
from ...errors import SecaError
from ..images import shown
from ._lists import OFFICIAL_SPLIT, files_in, folder_name, listed_split, official_or_c3box, read_list, text_lines
from .base import BenchmarkData, DataSet, register


@register
class Aircraft(DataSet):
    """FGVC-Aircraft: photographs of aircraft, 100 variants, 6,667 train / 3,333 test images (official trainval/test).

    Class names: ``variants.txt``'s lines as given ("707-320", "F/A-18"), in its order; C3Box's names
    (utils/labels.json, key ``aircraft``) are the same 100 in the same order. C3Box's ``train/`` ``val/`` folders
    are read as C3Box reads them: class ids in sorted folder order, names from the folder names, underscores read as
    spaces (a folder cannot hold the "/" of "F-16A/B": give data.names_file for exact names there).
    """

    name = "aircraft"
    classes = 100
    template = "a photo of a {}, a type of aircraft."
    benchmarks = ("b0-inc10", "b50-inc10")  # C3Box's exps: proof, l2p, dual, mind, engine, tuna; rapf
    archive = "fgvc-aircraft-2013b"
    obtain = (
        "set data.download=true to fetch it (about 2.6 GB) into data.root, or download "
        "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz and extract it "
        "(data.root: fgvc-aircraft-2013b/ or the folder holding it; C3Box's aircraft train/ and val/ folders work too)"
    )

    def lists(self, path: Path) -> Path | None:
        """The folder of the lists and images/: ``path/data`` (the archive's folder) or ``path`` (its data/)."""
        return next((p for p in (path / "data", path) if (p / "variants.txt").is_file()), None)

    def official_layout(self, path: Path) -> bool:
        return self.lists(path) is not None

    def load(self, data: DataConfig) -> BenchmarkData:
        if data.download:
            self.download(data)
        return official_or_c3box(self, data, self.official_layout, self.official, self.classes, folder_name)

    def download(self, data: DataConfig) -> None:
        """Fetch and extract the archive into data.root (default data/aircraft) with torchvision, unless it is there."""
        root = Path(data.root or "data/aircraft").expanduser()
        if self.lists(root) or self.lists(root / self.archive) or self.c3box_folders(root):
            return
        from torchvision.datasets import FGVCAircraft

        try:
            root.mkdir(parents=True, exist_ok=True)
            FGVCAircraft(str(root), split="trainval", download=True)
        except Exception as e:  # no network, a broken archive, a full disk: one line, with what to do
            raise SecaError(
                f"could not download FGVC-Aircraft to {root} ({type(e).__name__}: {shown(str(e), 120)}); fetch "
                f"{self.archive}.tar.gz elsewhere and extract it there"
            ) from None

    def official(self, data: DataConfig, root: Path) -> BenchmarkData:
        lists = self.lists(root)
        assert lists is not None  # official_or_c3box found the official layout
        variants = lists / "variants.txt"
        official = [" ".join(line.split()) for _, line in text_lines(variants, "it should list one variant a line")]
        place = {n: k for k, n in enumerate(official)}
        present = files_in(lists / "images")
        splits, listed = [], 0
        for split in ("trainval", "test"):
            path = lists / f"images_variant_{split}.txt"
            items = []
            for line, image_id, variant in read_list(path, "<image id> <variant>"):
                variant = " ".join(variant.split())
                if variant not in place:
                    raise SecaError(
                        f"{path}, line {line}: the image {shown(image_id, 40)} has the variant '{shown(variant, 40)}', "
                        "which variants.txt does not list"
                    )
                if f"{image_id}.jpg" in present:
                    items.append((lists / "images" / f"{image_id}.jpg", place[variant]))
                listed += 1
            splits.append(items)
        where = lists.parent if lists.name == "data" else lists
        return listed_split(
            self, data, official, splits[0], splits[1], split=OFFICIAL_SPLIT, where=where, listed=listed
        )

    def c3box_names(self, official: Sequence[str]) -> list[str] | None:
        # C3Box's labels.json (key aircraft) is variants.txt as given: 100 of 100 names the same
        return list(official)
