"""Food-101: 101 dishes photographed by users of foodspotting.com, 750 training and 250 test images each (Bossard,
Guillaumin and Van Gool, ECCV 2014), read from the archive's own lists, or from C3Box's train/ val/ folders.

The archive (``food-101.tar.gz``) extracts to ``food-101/`` holding ``images/<class>/<id>.jpg`` and ``meta/``:
``classes.txt`` (the 101 class folders, sorted), ``labels.txt`` (the same classes capitalised), ``train.txt`` and
``test.txt`` (one ``<class>/<id>`` per line, without ``.jpg``: the official split, 75,750 / 25,250) and the same lists
as ``train.json`` / ``test.json``. Class ids follow ``classes.txt``; a class's name is its folder's name with
underscores read as spaces (``apple_pie`` -> "apple pie"), as CoOp's and torchvision's readers have it.

C3Box's ``food101`` is 100 of these classes: the first 100 of ``classes.txt`` (all but ``waffles``), under the same
names, as ``train/<class>/`` and ``val/<class>/`` folders that torchvision's ImageFolder numbers in sorted folder order
(the official order). seca reads those folders as they are: 100 of the data set's 101 classes, said in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...config import DataConfig
from ...errors import SecaError
from ..images import shown
from ._lists import OFFICIAL_SPLIT, c3box_matched, is_folder, listed_in_folders, lists_split, text_lines
from .base import BenchmarkData, DataSet, register

DEFAULT_ROOT = "data/food101"  # where data.download=true puts it when data.root is not set
MISSING = "Food-101's meta/ folder should hold classes.txt, train.txt and test.txt"

# meta/classes.txt as distributed: the class folders of images/, in the order of the class ids (sorted)
CLASSES = """
apple_pie baby_back_ribs baklava beef_carpaccio beef_tartare beet_salad beignets bibimbap bread_pudding
breakfast_burrito bruschetta caesar_salad cannoli caprese_salad carrot_cake ceviche cheese_plate cheesecake
chicken_curry chicken_quesadilla chicken_wings chocolate_cake chocolate_mousse churros clam_chowder club_sandwich
crab_cakes creme_brulee croque_madame cup_cakes deviled_eggs donuts dumplings edamame eggs_benedict escargots falafel
filet_mignon fish_and_chips foie_gras french_fries french_onion_soup french_toast fried_calamari fried_rice
frozen_yogurt garlic_bread gnocchi greek_salad grilled_cheese_sandwich grilled_salmon guacamole gyoza hamburger
hot_and_sour_soup hot_dog huevos_rancheros hummus ice_cream lasagna lobster_bisque lobster_roll_sandwich
macaroni_and_cheese macarons miso_soup mussels nachos omelette onion_rings oysters pad_thai paella pancakes
panna_cotta peking_duck pho pizza pork_chop poutine prime_rib pulled_pork_sandwich ramen ravioli red_velvet_cake
risotto samosa sashimi scallops seaweed_salad shrimp_and_grits spaghetti_bolognese spaghetti_carbonara spring_rolls
steak strawberry_shortcake sushi tacos takoyaki tiramisu tuna_tartare waffles
""".split()


def class_name(folder: str) -> str:
    """A class folder's name as the prompts read it: underscores as spaces (``apple_pie`` -> "apple pie")."""
    return folder.replace("_", " ")


@register
class Food101(DataSet):
    """Food-101: 101 dishes, 75,750 training and 25,250 test images (the official meta/train.txt and meta/test.txt)."""

    name = "food101"
    template = "a photo of {}, a type of food."
    benchmarks = ("b0-inc10", "b50-inc10")  # on C3Box's 100 classes (101 do not divide by 10)
    obtain = (
        "download http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz (5 GB) and extract it in data.root (it makes "
        "food-101/ with images/ and meta/), or set data.download=true to fetch it there; C3Box's train/ and val/ "
        "folders of Food-101 are read too"
    )

    def load(self, data: DataConfig) -> BenchmarkData:
        try:
            root = self.locate(data, self._looks_right, DEFAULT_ROOT if data.download else None)
        except SecaError:
            if not data.download:
                raise
            root = self._download(data)
        folders = self.c3box_folders(root) if not (root / "meta").is_dir() else None
        if folders is not None:
            return self._c3box(data, folders)
        return self._official(data, root)

    def c3box_names(self, official: Sequence[str]) -> list[str]:
        """C3Box's names are the official ones (its labels.json lists the first 100, all but "waffles")."""
        return list(official)

    # ---- the archive's layout --------------------------------------------------------------------------------
    def _looks_right(self, path: Path) -> bool:
        return (path / "meta" / "classes.txt").is_file() or self.c3box_folders(path) is not None

    def _official(self, data: DataConfig, root: Path) -> BenchmarkData:
        meta, images = root / "meta", root / "images"
        classes = []
        for n, line in text_lines(meta / "classes.txt", MISSING):
            if "/" in line or " " in line or line in (".", "..") or line in classes:
                raise SecaError(f"{meta / 'classes.txt'} line {n}: '{shown(line)}' is not a new class folder name")
            classes.append(line)
        index = {c: k for k, c in enumerate(classes)}
        listed = {split: self._read_list(meta / f"{split}.txt", index) for split in ("train", "test")}
        folders = {k: images / c for k, c in enumerate(classes) if is_folder(images / c)}
        none = (
            f"{images} holds none of the {len(classes)} class folders that meta/classes.txt lists (e.g. "
            f"'{classes[0]}'); {self.obtain}"
        )
        found = listed_in_folders(listed.items(), folders, none)
        have = {split: set(targets) for split, (_, targets) in found.splits.items()}
        for i, k in enumerate(found.present):
            lacking = [split for split in ("train", "test") if i not in have[split]]
            if lacking:
                raise SecaError(
                    f"{images / classes[k]} holds none of the images that meta/{lacking[0]}.txt lists for "
                    f"'{classes[k]}'; add them or remove the folder"
                )
        return lists_split(self, data, [class_name(c) for c in classes], found, split=OFFICIAL_SPLIT)

    @staticmethod
    def _read_list(path: Path, index: dict[str, int]) -> list[tuple[int, str]]:
        """``(class id, file name)`` of each ``<class>/<id>`` line of meta/train.txt or test.txt."""
        entries = []
        for n, line in text_lines(path, MISSING):
            cls, _, stem = line.partition("/")
            if not stem or "/" in stem or " " in line:
                raise SecaError(f"{path} line {n}: '{shown(line)}' is not '<class>/<image id>'")
            if cls not in index:
                raise SecaError(f"{path} line {n}: the class '{shown(cls)}' is not in meta/classes.txt")
            entries.append((index[cls], f"{stem}.jpg"))
        return entries

    def _download(self, data: DataConfig) -> Path:
        """torchvision's Food-101 downloader into data.root (or data/food101); the folder it made."""
        from torchvision.datasets import Food101 as Reader

        path = Path(data.root or DEFAULT_ROOT).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
            Reader(str(path), split="test", download=True)
        except (OSError, RuntimeError, ValueError) as e:
            raise SecaError(
                f"could not download Food-101 to {path} ({type(e).__name__}: {' '.join(str(e).split())}); fetch "
                "food-101.tar.gz elsewhere and extract it there"
            ) from None
        return path / "food-101"

    # ---- C3Box's layout ---------------------------------------------------------------------------------------
    def _c3box(self, data: DataConfig, folders: tuple[Path, Path]) -> BenchmarkData:
        """C3Box's train/<class>/ and val/<class>/: the classes numbered in sorted folder order (ImageFolder's, so
        C3Box's class ids and labels.json line up), each folder matched to an official class whatever its spelling."""
        official = [class_name(c) for c in CLASSES]
        return c3box_matched(
            self, data, folders, CLASSES, official, unknown="a Food-101 class (classes such as 'apple_pie')"
        )
