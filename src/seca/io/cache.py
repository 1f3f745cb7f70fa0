"""The cache folder: ``$SECA_CACHE`` if set, else ``~/.cache/seca``.

It holds what seca computes once and reuses across runs, seeds, methods and processes: the offline CLIP's weights
(``seca-shapes-*.safetensors``), the offline world's images as arrays (``worlds/``) and the frozen features of
images (``features/``, :mod:`seca.io.feature_store`). Everything in it can be deleted (``seca cache clear``); what
is missing is made again.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import SecaError


def cache_root() -> Path:
    """``$SECA_CACHE`` if set, else ``~/.cache/seca``."""
    return Path(os.environ.get("SECA_CACHE") or Path.home() / ".cache" / "seca").expanduser()


# What the cache holds, by part: name -> (its files, relative to the root; what they are)
PARTS = {
    "features": ("features/*/*", "frozen CLIP features of images (the feature store, train.feature_store)"),
    "worlds": ("worlds/*", "the offline world's images, rendered once per configuration"),
    "weights": ("seca-shapes-*", "the offline CLIP's weights (seca pretrain-shapes builds them again)"),
}
CLEARED_BY_DEFAULT = ("features", "worlds")


@dataclass
class Part:
    """One part of the cache: its files and their total size."""

    name: str
    about: str
    files: list[Path]
    bytes: int
    keys: list[dict]  # the feature store's keys (key.json of each folder)


def inventory(root: Path | None = None) -> list[Part]:
    """Every part of the cache at ``root`` (default: :func:`cache_root`) with its files."""
    root = cache_root() if root is None else root
    parts = []
    for name, (pattern, about) in PARTS.items():
        files = sorted(p for p in root.glob(pattern) if p.is_file()) if root.is_dir() else []
        keys = []
        if name == "features":
            for key_file in sorted(root.glob("features/*/key.json")):
                try:
                    key = json.loads(key_file.read_text())
                except (OSError, ValueError):
                    key = {}
                shards = [p for p in key_file.parent.iterdir() if p.suffix == ".safetensors"]
                keys.append({**key, "folder": key_file.parent.name, "shards": len(shards), "bytes": _size(shards)})
        parts.append(Part(name, about, files, _size(files), keys))
    return parts


def clear(names: Sequence[str], root: Path | None = None) -> tuple[int, int]:
    """Delete the files of the parts ``names``; returns (files deleted, bytes freed). A file another process deletes
    meanwhile is not counted; a file that cannot be deleted is an error naming it."""
    files = freed = 0
    for part in inventory(root):
        if part.name not in names:
            continue
        for path in part.files:
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as e:
                raise SecaError(f"cannot delete {path} ({e.strerror or e}); check the folder's permissions") from None
            files, freed = files + 1, freed + size
        for folder in sorted({p.parent for p in part.files}, reverse=True):
            if folder != (root or cache_root()):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # empty now, unless a run wrote to it meanwhile
    return files, freed


def _size(files: Sequence[Path]) -> int:
    total = 0
    for path in files:
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total
