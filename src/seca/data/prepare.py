"""``seca prepare``'s split of a data set shipped as one folder per class and no split (ImageNet-R, ImageNet-A):
a deterministic 80/20 train/test split (spec §8).

The archives ship one folder per WordNet id and no split; the reference implementation does not publish
its split. This module draws one per class from a seed (or takes a user's split list), writes
``OUT/train/<wnid>/`` and ``OUT/test/<wnid>/``, and a ``manifest.json`` with counts per class, the file
lists and their SHA-256 checksums. Passing that manifest back as ``--split-file`` reproduces the split.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SecaError
from ..io.files import atomic_write_text
from .images import list_images

TRAIN_FRACTION = 0.8
LINK_MODES = ("copy", "symlink", "hardlink")


def find_class_root(raw: Path, wnids: list[str]) -> Path:
    """The folder holding the class folders: ``raw`` itself or a subfolder (``imagenet-r/``); it may hold some of
    them only (a user trying a data set on part of it): :func:`present_classes` says which."""
    if not raw.is_dir():
        raise SecaError(f"'{raw}' is not a folder; give the extracted archive of the data set")
    candidates = [raw] + sorted(p for p in raw.iterdir() if p.is_dir())
    best = max(candidates, key=lambda c: sum((c / w).is_dir() for w in wnids))
    if not any((best / w).is_dir() for w in wnids):
        raise SecaError(
            f"'{raw}' holds none of the {len(wnids)} class folders of this data set (e.g. '{wnids[0]}'); give the "
            "folder where the archive was extracted"
        )
    return best


def present_classes(class_root: Path, wnids: list[str]) -> list[str]:
    """The class folders of ``wnids`` that ``class_root`` holds, in their official order."""
    return [w for w in wnids if (class_root / w).is_dir()]


def seeded_split(
    class_root: Path, wnids: list[str], seed: int, indices: list[int] | None = None
) -> dict[str, list[str]]:
    """Per class: shuffle the sorted file list with a generator seeded by (seed, class index) and put
    round(80%) of it in train. Paths are relative to ``class_root`` (``wnid/file``). ``indices``: each class's index
    in the whole data set (when ``wnids`` is part of it), so a class is split the same with or without the others."""
    splits: dict[str, list[str]] = {"train": [], "test": []}
    for label, wnid in zip(indices if indices is not None else range(len(wnids)), wnids):
        files = [f"{wnid}/{p.name}" for p in list_images(class_root / wnid)]
        if len(files) < 2:
            raise SecaError(f"class folder {class_root / wnid} has {len(files)} images; a split needs at least 2")
        order = np.random.default_rng([seed, label]).permutation(len(files))
        n_train = min(len(files) - 1, max(1, int(np.floor(TRAIN_FRACTION * len(files) + 0.5))))
        splits["train"] += sorted(files[i] for i in order[:n_train])
        splits["test"] += sorted(files[i] for i in order[n_train:])
    return splits


def read_split_file(path: Path, class_root: Path, wnids: list[str]) -> dict[str, list[str]]:
    """A manifest written by ``seca prepare`` or a text file of ``train|test <wnid>/<file>`` lines."""
    if not path.is_file():
        raise SecaError(f"split file '{path}' not found")
    text = path.read_text()
    splits: dict[str, list[str]] = {"train": [], "test": []}
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)["splits"]
            splits = {"train": list(data["train"]), "test": list(data["test"])}
        except (ValueError, KeyError, TypeError):
            raise SecaError(
                f"split file '{path}' is JSON but not a manifest with splits.train and splits.test"
            ) from None
    else:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split(maxsplit=1)
            split = {"val": "test"}.get(parts[0], parts[0])
            if len(parts) != 2 or split not in splits:
                raise SecaError(
                    f"{path}:{number}: expected 'train <wnid>/<file>' or 'test <wnid>/<file>', got '{line}'"
                )
            splits[split].append(parts[1].strip())
    known = set(wnids)
    seen: set[str] = set()
    for files in splits.values():
        for rel in files:
            if rel in seen:
                raise SecaError(f"split file '{path}' lists '{rel}' twice")
            seen.add(rel)
            if rel.split("/", 1)[0] not in known:
                raise SecaError(f"split file '{path}' names '{rel}', whose folder is not a class of this data set")
            if not (class_root / rel).is_file():
                raise SecaError(f"split file '{path}' names '{rel}', which is not under {class_root}")
    return splits


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _place(source: Path, target: Path, mode: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "symlink":
        target.symlink_to(source.resolve())
    elif mode == "hardlink":
        try:
            os.link(source, target)
        except OSError:  # another file system: fall back to a copy
            shutil.copy2(source, target)
    else:
        shutil.copy2(source, target)


@dataclass(frozen=True)
class PrepareRequest:
    """One ``seca prepare``: the extracted archive ``raw``, the folder ``out`` to lay the data set out in, the
    split's ``seed`` or a ``split_file`` to follow instead, how the files are placed (``link``: copy, symlink or
    hardlink) and whether to show progress."""

    raw: Path
    out: Path
    seed: int = 0
    split_file: Path | None = None
    link: str = "copy"
    progress: bool = True


def prepare_wordnet_split(dataset: str, wnids: list[str], names: list[str], request: PrepareRequest) -> dict:
    """Write the split of ``dataset`` (classes ``wnids`` named ``names``) that ``request`` asks for; returns the
    manifest."""
    raw, out, seed, split_file, progress = request.raw, request.out, request.seed, request.split_file, request.progress
    if request.link not in LINK_MODES:
        raise SecaError(f"--link must be one of {', '.join(LINK_MODES)}, got '{request.link}'")
    class_root = find_class_root(Path(raw), wnids)
    out = Path(out)
    if (out / "manifest.json").exists() or (out / "train").exists() or (out / "test").exists():
        raise SecaError(f"'{out}' already holds a prepared split; remove it or choose another output folder")
    present = present_classes(class_root, wnids)
    splits = (
        read_split_file(Path(split_file), class_root, wnids)
        if split_file
        else seeded_split(class_root, present, seed, [wnids.index(w) for w in present])
    )

    # Build everything in a hidden folder, then move it into place: an interrupted run leaves no half split.
    partial = out / ".partial"
    if partial.exists():
        shutil.rmtree(partial)
    from tqdm import tqdm

    checksums: dict[str, str] = {}
    jobs = [(split, rel) for split in ("train", "test") for rel in splits[split]]
    for split, rel in tqdm(jobs, desc=f"prepare {dataset}", unit="img", disable=None if progress else True):
        source = class_root / rel
        checksums[f"{split}/{rel}"] = _sha256(source)
        _place(source, partial / split / rel, request.link)
    counts = {w: {"name": n, "train": 0, "test": 0} for w, n in zip(wnids, names) if w in present or split_file}
    for split in ("train", "test"):
        for rel in splits[split]:
            counts[rel.split("/", 1)[0]][split] += 1
    manifest = {
        "dataset": dataset,
        "split": {"seed": seed} if split_file is None else {"split_file": Path(split_file).name},
        "train_fraction": TRAIN_FRACTION,
        "totals": {split: len(splits[split]) for split in ("train", "test")},
        "classes": counts,
        "of_classes": len(wnids),
        "splits": splits,
        "sha256": checksums,
    }
    for split in ("train", "test"):
        (partial / split).mkdir(parents=True, exist_ok=True)
        os.replace(partial / split, out / split)
    partial.rmdir()
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1))
    return manifest
