"""The data-set protocol and its registry: what a benchmark asks of a data set, and the names it is known by.

A data set is one file in ``seca/data/sets/`` (or a plug-in, docs/extending.md): a subclass of :class:`DataSet`
registered with :func:`register`. Its ``load`` returns the train and test images with the class names that go
into prompts; ``obtain`` says where to get it; it may declare keys of its own under ``data.`` (``Config``), give
reference class orders (the ``reference`` protocol) and a ``prepare`` step (``seca prepare NAME``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from ...config import DataConfig, NoSettings
from ...errors import SecaError
from ...registry import Registry
from ..prepare import PrepareRequest


@dataclass
class BenchmarkData:
    """A data set's train and test images: map-style data sets of ``(image, class id)`` with ``targets`` (a class id
    per item) and ``transform`` (applied to each image), and ``class_names`` (one per class id)."""

    train: Any
    test: Any
    class_names: list[str]

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


DATASETS: Registry[type[DataSet]] = Registry("data set")


def register(cls: type[DataSet]) -> type[DataSet]:
    """Class decorator: make a data set available as ``data.dataset: <cls.name>``."""
    if not (isinstance(cls, type) and issubclass(cls, DataSet)):
        raise ValueError(f"{cls!r} is not a seca.data.DataSet subclass")
    if not dataclasses.is_dataclass(cls.Config):
        raise ValueError(f"{cls.__name__}.Config must be a frozen dataclass of the keys it reads under data.")
    return DATASETS.register(cls)
