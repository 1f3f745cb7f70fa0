"""DomainNet: 345 classes drawn in six domains (clipart, infograph, painting, quickdraw, real, sketch), 586,575
images, the official 409,832 / 176,743 train/test split (Peng et al., ICCV 2019; https://ai.bu.edu/M3SDA/).

Each domain is a zip extracting to ``<domain>/<class>/<file>.jpg`` and two lists beside it, ``<domain>_train.txt`` and
``<domain>_test.txt``, one ``<domain>/<class>/<file> <label>`` per line. A run is class-incremental over the 345
classes with the images of the domains ``data.domainnet.domains`` names (all six by default) pooled; class ids are the
lists' labels (0..344) and a class's name is its folder's name with underscores read as spaces
(``The_Eiffel_Tower`` is "The Eiffel Tower"). C3Box-style ``train/`` ``val/`` class folders are read too (class ids in
sorted folder order, as ImageFolder numbers them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...config import DataConfig, Rule, section, setting
from ...errors import SecaError
from ..images import shown
from ._lists import OFFICIAL_SPLIT, files_in, folder_name, inside, listed_split, number, official_or_c3box, text_lines
from .base import BenchmarkData, DataSet, register

DOMAINS = ("clipart", "infograph", "painting", "quickdraw", "real", "sketch")
CLASSES = 345


@dataclass(frozen=True)
class DomainNetConfig:
    """DomainNet: the domains whose images a run pools."""

    domains: tuple[str, ...] = setting(
        DOMAINS,
        "the domains whose images are pooled (class-incremental over the 345 classes): any of clipart, infograph, "
        "painting, quickdraw, real, sketch",
        Rule(
            lambda v: len(v) > 0 and len(set(v)) == len(v) and all(d in DOMAINS for d in v),
            "one or more of " + ", ".join(DOMAINS) + ", each once",
        ),
    )


@register
class DomainNet(DataSet):
    """DomainNet: objects in six styles of image, 345 classes, 409,832 train / 176,743 test images (official lists).

    Class names: the class folders' names, underscores read as spaces ("aircraft_carrier" is "aircraft carrier"). C3Box
    has no DomainNet (no labels.json or templates.json key).
    """

    name = "domainnet"
    classes = CLASSES
    benchmarks = ("b0-inc69",)
    obtain = (
        "download the domains' zips and their <domain>_train.txt / <domain>_test.txt lists from "
        "https://ai.bu.edu/M3SDA/ and extract them side by side in one folder (data.root)"
    )

    @dataclass(frozen=True)
    class Config:
        domainnet: DomainNetConfig = section(DomainNetConfig)

    def has_lists(self, path: Path) -> bool:
        return any((path / f"{d}_train.txt").is_file() for d in DOMAINS)

    def load(self, data: DataConfig) -> BenchmarkData:
        return official_or_c3box(self, data, self.has_lists, self.official, self.classes, folder_name)

    def official(self, data: DataConfig, root: Path) -> BenchmarkData:
        asked = data.domainnet.domains
        here = [d for d in asked if (root / f"{d}_train.txt").is_file() and (root / f"{d}_test.txt").is_file()]
        if not here:
            raise SecaError(
                f"{root} holds the lists of none of the domains asked ({', '.join(asked)}): <domain>_train.txt and "
                f"<domain>_test.txt; {self.obtain}"
            )
        folder_of: dict[int, str] = {}  # label -> class folder
        label_of: dict[str, int] = {}  # class folder -> label
        present: dict[tuple[str, str], set[str]] = {}
        images: dict[str, list[tuple[Path, int]]] = {"train": [], "test": []}
        listed = 0
        for split in ("train", "test"):
            for domain in here:
                path = root / f"{domain}_{split}.txt"
                for line_number, line in text_lines(path, f"lines '{domain}/<class>/<file> <label>'"):
                    parts = line.split()
                    relative = parts[0].split("/")
                    if len(parts) != 2 or len(relative) != 3 or relative[0] != domain:
                        raise SecaError(
                            f"{path}, line {line_number}: expected '{domain}/<class>/<file> <label>', got "
                            f"'{shown(line)}'"
                        )
                    inside(parts[0], path, line_number, f"'{domain}/<class>/<file>'")
                    label = number(parts[1], path, "a label", line_number)
                    folder = relative[1]
                    if not 0 <= label < CLASSES:
                        raise SecaError(f"{path}, line {line_number}: the label {label} is not a class id (0..344)")
                    if folder_of.setdefault(label, folder) != folder or label_of.setdefault(folder, label) != label:
                        raise SecaError(
                            f"{path}, line {line_number}: '{shown(folder, 40)}' has the label {label}, which the lists "
                            f"give elsewhere to '{shown(folder_of[label], 40)}' (or the class another label)"
                        )
                    listed += 1
                    if (domain, folder) not in present:
                        present[(domain, folder)] = files_in(root / domain / folder)
                    if relative[2] in present[(domain, folder)]:
                        images[split].append((root / parts[0], label))
        labels = sorted(folder_of)
        place = {label: k for k, label in enumerate(labels)}
        loaded = listed_split(
            self,
            data,
            [folder_name(folder_of[label]) for label in labels],
            [(p, place[label]) for p, label in images["train"]],
            [(p, place[label]) for p, label in images["test"]],
            split=f"{OFFICIAL_SPLIT} ({', '.join(here)})",
            where=root,
            total=CLASSES,
            listed=listed,
        )
        if len(here) < len(asked):
            loaded.notes = [
                f"domainnet: the folder holds the lists of {len(here)} of the {len(asked)} domains asked for "
                f"({', '.join(here)}); using those",
                *loaded.notes,
            ]
        return loaded
