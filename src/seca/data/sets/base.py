"""The data-set protocol and its registry: what a benchmark asks of a data set, and the names it is known by.

A data set is one file in ``seca/data/sets/`` (or a plug-in, docs/extending.md): a subclass of :class:`DataSet`
registered with :func:`register`. Its ``load`` returns the train and test images with the class names that go
into prompts; ``obtain`` says where to get it; it may declare keys of its own under ``data.`` (``Config``), give
reference class orders (the ``reference`` protocol) and a ``prepare`` step (``seca prepare NAME``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from ...config import DataConfig, NoSettings
from ...errors import SecaError
from ...registry import Registry
from ..images import CONTROL, shown
from ..prepare import PrepareRequest


@dataclass
class BenchmarkData:
    """A data set's train and test images: map-style data sets of ``(image, class id)`` with ``targets`` (a class id
    per item) and ``transform`` (applied to each image), and ``class_names`` (one per class id, what the prompts
    read). ``split`` says how train and test were separated and ``names`` which class-name set the names are (both go
    into results.json, so a number says how it was made); ``notes`` are lines a run prints once (a folder holding a
    subset of the classes, a layout recognised)."""

    train: Any
    test: Any
    class_names: list[str]
    split: str = "official"
    names: str = "official"
    notes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@cache
def packaged_table(name: str) -> dict:
    """A table shipped with the package: ``class_names`` (names, WordNet ids) or ``class_orders``."""
    return json.loads((resources.files("seca") / "resources" / f"{name}.json").read_text())


class DataSet:
    """Base class of every data set; subclasses set ``name`` and ``obtain``, implement ``load``, and register.

    The class docstring's first line describes the data set (``seca presets``, docs/data.md).
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = NoSettings  # keys of its own under data. (a frozen dataclass, a section named after it)
    obtain: ClassVar[str] = ""  # where to get it and how to put it in place, in one sentence

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or cls.name).strip().splitlines()[0]

    def load(self, data: DataConfig) -> BenchmarkData:
        """The train and test images of the data set that ``data`` (the config's ``data`` section) points at."""
        raise NotImplementedError

    def reference_orders(self, num_classes: int) -> Sequence[Sequence[int]] | None:
        """The class orders of the ``reference`` protocol (``scenario.trial`` picks one) over the data set's
        ``num_classes`` classes; None if it has none."""
        return None

    def prepare(self, request: PrepareRequest) -> dict:
        """``seca prepare NAME RAW OUT``: lay the data set out from ``request.raw`` (an extracted archive) into
        ``request.out`` as ``load`` reads it; returns the manifest written beside it."""
        raise SecaError(f"the data set '{self.name}' has no prepare step; {self.obtain}")

    @classmethod
    def preparable(cls) -> bool:
        return cls.prepare is not DataSet.prepare

    # ---- helpers of data sets made of folders -------------------------------------------------------------
    def root(self, data: DataConfig, default: str | None = None) -> Path:
        """``data.root`` (or ``default``) as an existing folder; else an error saying how to obtain the data set."""
        given = data.root or default
        if not given:
            raise SecaError(
                f"data.root is not set: give the folder of {self.name}, e.g. --set data.root=/data/"
                f"{self.name} ({self.obtain})"
            )
        path = Path(given).expanduser()
        if not path.is_dir():
            raise SecaError(f"data.root '{given}' is not a folder; give the folder of {self.name} ({self.obtain})")
        return path

    def locate(self, data: DataConfig, looks_right: Callable[[Path], bool], default: str | None = None) -> Path:
        """The data set's folder: ``data.root`` if ``looks_right`` of it, else the one folder inside it (two levels
        down at most) that does, so ``data.root`` may name the folder an archive extracts to or its parent; else a
        one-line error saying what was looked for and how to obtain the data set."""
        root = self.root(data, default)
        found = self.find_inside(root, looks_right)
        if found is None:
            raise SecaError(
                f"'{root}' does not hold {self.name} as distributed (nor C3Box's train/ and val/); {self.obtain}"
            )
        return found

    @staticmethod
    def find_inside(path: Path, looks_right: Callable[[Path], bool]) -> Path | None:
        """``path`` if ``looks_right`` of it, else the first folder inside it (two levels down at most) that does:
        where :meth:`locate` finds the data set in ``data.root``, and ``prepare`` an extracted archive in its RAW."""
        if looks_right(path):
            return path
        inside = [p for p in sorted(path.iterdir()) if p.is_dir()]
        inside += [q for p in inside for q in sorted(p.iterdir()) if q.is_dir()]
        return next((p for p in inside if looks_right(p)), None)

    def c3box_folders(self, root: Path) -> tuple[Path, Path] | None:
        """``root/train`` and ``root/val`` when both hold class folders: the layout C3Box (and PyCIL/PILOT) read with
        torchvision's ImageFolder; None otherwise."""
        train, val = root / "train", root / "val"
        if train.is_dir() and val.is_dir() and any(p.is_dir() for p in train.iterdir()):
            return train, val
        return None

    # The prompt template the field uses for the data set (CoOp's hand-made ones, Zhou et al. IJCV 2022; the
    # continual-clip code's for CIFAR-100 and ImageNet-R/A): a learner's `template: dataset` reads it
    template: ClassVar[str | None] = None

    # The task sizes published on the data set (B-m Inc-n, as "b0-inc10"): with each of its protocols, the benchmark
    # presets `seca presets` lists (seca run cub200-b0-inc20)
    benchmarks: ClassVar[tuple[str, ...]] = ()

    def protocols(self) -> list[str]:
        """The protocols its benchmark presets use, the default first: ``reference`` where the data set has
        reference orders (the continual-clip code's), and ``lamda`` (PyCIL's and C3Box's shuffle)."""
        return (["reference"] if self.reference_orders(0) is not None else []) + ["lamda"]

    # C3Box's key for this data set in its utils/labels.json, when it differs from ``name`` (``cars`` for cars196)
    c3box_key: ClassVar[str] = ""

    def c3box_names(self, official: Sequence[str]) -> list[str] | None:
        """The class names C3Box's code base puts in its prompts, by a rule from the official ones, where one
        reproduces them; None where none does (``data.names_file`` then reads them from the user's copy)."""
        return None

    def class_names(self, data: DataConfig, official: Sequence[str]) -> tuple[list[str], str]:
        """The names the prompts read and the set's label for results.json: ``data.names_file``'s, else C3Box's
        (``data.names: c3box``), else ``official``; the same count as ``official``, in its order."""
        if data.names_file:
            return _names_from_file(data.names_file, [self.name, self.c3box_key], len(official)), "file"
        if data.names == "c3box":
            names = self.c3box_names(official)
            if names is None:
                raise SecaError(
                    f"no rule gives C3Box's class names of {self.name}: pass data.names_file=PATH (C3Box's "
                    "utils/labels.json works as is), or use data.names=official"
                )
            return list(names), "c3box"
        return list(official), "official"

    def subset_note(self, present: int, total: int, what: str = "classes") -> str | None:
        """The line a run prints when a folder holds part of the data set (None when it holds all of it)."""
        if present >= total:
            return None
        return f"{self.name}: the folder holds {present} of its {total} {what}; using those"

    def split_folders(self, root: Path) -> tuple[Path, Path]:
        """``root/train`` and ``root/test``, which must both exist."""
        train, test = root / "train", root / "test"
        if not train.is_dir() or not test.is_dir():
            fix = (
                f"run `seca prepare {self.name} RAW {root}` to split the extracted archive"
                if self.preparable()
                else "put one folder per class under each"
            )
            raise SecaError(f"{root} must hold train/ and test/ folders; {fix}")
        return train, test


def _names_from_file(path: str, keys: Sequence[str], count: int) -> list[str]:
    """A list of ``count`` names from a JSON file: a list, or a mapping holding it under one of ``keys``."""
    file = Path(path).expanduser()
    try:
        given = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # ValueError: not UTF-8, not JSON, a number of 4300 digits
        raise SecaError(
            f"data.names_file '{shown(path)}' cannot be read as JSON ({type(e).__name__}): {shown(str(e), 120)}"
        ) from None
    if isinstance(given, dict):
        key = next((k for k in keys if k and k in given), None)
        if key is None:
            raise SecaError(f"data.names_file '{path}' has no key {' or '.join(repr(k) for k in keys if k)}")
        given = given[key]
    if not (isinstance(given, list) and all(isinstance(n, str) and n.strip() for n in given)):
        raise SecaError(f"data.names_file '{path}' should hold a list of class names (text)")
    for n in given:
        if CONTROL.search(n):
            raise SecaError(f"data.names_file '{path}': the name '{shown(n, 40)}' holds a control character")
    if len(given) != count:
        raise SecaError(f"data.names_file '{path}' lists {len(given)} names; the data set has {count} classes")
    return [n.strip() for n in given]


DATASETS: Registry[type[DataSet]] = Registry("data set")


def register(cls: type[DataSet]) -> type[DataSet]:
    """Class decorator: make a data set available as ``data.dataset: <cls.name>``."""
    if not (isinstance(cls, type) and issubclass(cls, DataSet)):
        raise ValueError(f"{cls!r} is not a seca.data.DataSet subclass")
    if not dataclasses.is_dataclass(cls.Config):
        raise ValueError(f"{cls.__name__}.Config must be a frozen dataclass of the keys it reads under data.")
    return DATASETS.register(cls)
