"""The data sets a benchmark can use, one file each, found without an import list (docs/data.md).

Every module of this package is imported when the package is (its data set registers itself), so a new data set
is one file here, or a plug-in named in a config's ``plugins`` (docs/extending.md). :data:`DATASETS` feeds
``data.dataset``'s choices, ``seca prepare``, ``seca presets`` and the docs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...config import DataConfig
from ...registry import import_modules
from ..prepare import PrepareRequest
from .base import DATASETS, BenchmarkData, DataSet, packaged_table, register

__all__ = [
    "DATASETS",
    "BenchmarkData",
    "DataSet",
    "load_dataset",
    "packaged_table",
    "preparable",
    "prepare_dataset",
    "register",
]

import_modules(__name__, __path__, "data set")


def load_dataset(data: DataConfig, transform: Callable | None = None) -> BenchmarkData:
    """The train and test images of ``data.dataset``, with ``transform`` applied to every image."""
    loaded = DATASETS[data.dataset]().load(data)
    loaded.train.transform = loaded.test.transform = transform
    return loaded


def prepare_dataset(name: str, raw: Path, out: Path, **options: Any) -> dict:
    """``seca prepare NAME RAW OUT``: the data set's prepare step (``options``: those of :class:`PrepareRequest`)."""
    return DATASETS[name]().prepare(PrepareRequest(Path(raw), Path(out), **options))


def preparable() -> list[str]:
    """The data sets that have a prepare step."""
    return [name for name, cls in DATASETS.items() if cls.preparable()]
