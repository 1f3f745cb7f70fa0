"""A model's standing test set: the test images given to ``learn``, kept with the model so that every later task
is measured on every task learned before it (an accuracy-matrix row per task, as ``seca run`` has).

What is stored, and where: each test image of a class the model knows, byte for byte, in a folder beside the model
file named after it (``digits.safetensors`` -> ``digits.safetensors.tests/``), under the SHA-256 of its bytes and
its suffix (``3fa1...e2.png``); the model file's metadata lists them by class (``kept_tests``: the digest, the
suffix and the file's original name). Nothing else: no path of the machine, no other image.

The model file is the commit point. Saving (under the model file's lock) first writes every listed image that the
folder lacks, whole and checked against its digest, then the model file, then removes the images no longer
listed: a save that fails or is interrupted leaves the old model with every image it lists (at most some
unlisted files, removed by the next save). A listed image found missing (the model file copied without its folder)
is named in one line and left out; ``seca learn --no-keep-eval`` (``keep_eval=False``) keeps none of a task's.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ..errors import SecaError
from .files import atomic_write, real_path

SUFFIX = ".tests"
FORMAT = 1
_DIGEST = re.compile(r"[0-9a-f]{64}")
_FILE_SUFFIX = re.compile(r"(\.[a-z0-9]{1,15})?")


def folder_of(model_file: str | Path) -> Path:
    """The folder of a model file's kept test images: ``<model file>.tests`` beside the real file (a model reached
    through a symbolic link keeps them beside its target, where every other path to it finds them)."""
    path = real_path(model_file)
    return path.with_name(path.name + SUFFIX)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _name(item: Mapping) -> str:
    return item["digest"] + item["suffix"]


class KeptTests:
    """The kept test images of one model: by class (its spelling), each ``{"digest", "suffix", "file"}``; the
    images' bytes are in :attr:`home` (the folder of the file the model was loaded from or saved to) or, for images
    added since, still at the paths they were given from (:attr:`pending`)."""

    def __init__(self, manifest: Mapping | None = None, home: Path | None = None):
        self.classes: dict[str, list[dict]] = _checked(manifest or {})
        self.home = home
        self.pending: dict[str, Path] = {}  # digest -> the file it was given as, until saved
        self.dropped = 0  # listed images found missing when last read or saved, and left out

    def manifest(self) -> dict:
        """What the model file's metadata holds (``kept_tests``)."""
        return {"format": FORMAT, "classes": {name: list(items) for name, items in self.classes.items() if items}}

    def __len__(self) -> int:
        return sum(len(items) for items in self.classes.values())

    def copy(self) -> KeptTests:
        twin = KeptTests(self.manifest(), self.home)
        twin.pending = dict(self.pending)
        return twin

    def digests(self, name: str) -> set[str]:
        return {item["digest"] for item in self.classes.get(name, [])}

    def add(self, by_class: Mapping[str, Sequence[Path]]) -> int:
        """Keep the images of ``by_class`` (class name -> files) not kept already; how many were new."""
        added = 0
        for name, files in by_class.items():
            have = self.digests(name)
            for file in files:
                digest = _digest(Path(file).read_bytes())
                if digest in have:
                    continue
                have.add(digest)
                suffix = Path(file).suffix.lower()
                self.classes.setdefault(name, []).append(
                    {
                        "digest": digest,
                        "suffix": suffix if _FILE_SUFFIX.fullmatch(suffix) else "",
                        "file": Path(file).name,
                    }
                )
                self.pending[digest] = Path(file)
                added += 1
        return added

    def _source(self, item: Mapping) -> Path | None:
        pending = self.pending.get(item["digest"])
        if pending is not None and pending.is_file():
            return pending
        if self.home is not None and (self.home / _name(item)).is_file():
            return self.home / _name(item)
        return None

    def images(self) -> dict[str, list[Path]]:
        """The kept images by class, as files to read; a listed image whose file is gone is left out and counted
        in :attr:`dropped` (the caller says so)."""
        found, self.dropped = {}, 0
        for name, items in self.classes.items():
            paths = [self._source(item) for item in items]
            self.dropped += sum(p is None for p in paths)
            if any(p is not None for p in paths):
                found[name] = [p for p in paths if p is not None]
        return found

    def write(self, folder: Path) -> None:
        """Before the model file is written: every listed image into ``folder`` (whole, checked against its
        digest). A listed image with no bytes anywhere is left out of the list (counted in :attr:`dropped`)."""
        self.dropped = 0
        for name, items in self.classes.items():
            kept = []
            for item in items:
                target = folder / _name(item)
                if not target.is_file():
                    source = self._source(item)
                    if source is None:
                        self.dropped += 1
                        continue
                    data = source.read_bytes()
                    if _digest(data) != item["digest"]:
                        raise SecaError(
                            f"the test image '{source.name}' of class '{name}' changed since it was evaluated; "
                            "nothing was saved: learn the task again"
                        )
                    folder.mkdir(parents=True, exist_ok=True)
                    atomic_write(target, lambda tmp, data=data: tmp.write_bytes(data))
                kept.append(item)
            self.classes[name] = kept

    def saved(self, folder: Path) -> None:
        """After the model file is written: ``folder`` holds every listed image; files it holds that are not
        listed (an earlier model's, or of a save that failed) are removed."""
        listed = {_name(item) for items in self.classes.values() for item in items}
        if folder.is_dir():
            for path in _files(folder.iterdir()):
                if path.name not in listed:
                    path.unlink(missing_ok=True)
            if not any(folder.iterdir()):
                shutil.rmtree(folder, ignore_errors=True)
        self.home, self.pending = folder, {}


def _checked(manifest: object) -> dict[str, list[dict]]:
    """The classes of a model file's ``kept_tests``, each entry checked (a digest of 64 hex digits, a short suffix,
    a file name), so that no entry can name a file outside the folder; anything else is one line."""
    if not manifest:
        return {}
    damaged = "the model file's list of kept test images (kept_tests) is damaged"
    if not isinstance(manifest, Mapping):
        raise SecaError(f"{damaged}: it is not a mapping; save the model again from a good copy")
    if manifest.get("format") != FORMAT:
        raise SecaError(
            f"the model's kept test images are listed in format {manifest.get('format')!r}; this seca reads "
            f"format {FORMAT}: upgrade seca"
        )
    classes = manifest.get("classes", {})
    if not isinstance(classes, Mapping):
        raise SecaError(f"{damaged}: 'classes' is not a mapping")
    checked = {}
    for name, items in classes.items():
        if not isinstance(name, str) or not isinstance(items, list):
            raise SecaError(f"{damaged}: class {name!r} does not hold a list of images")
        for item in items:
            if not (
                isinstance(item, Mapping)
                and isinstance(item.get("digest"), str)
                and _DIGEST.fullmatch(item["digest"])
                and isinstance(item.get("suffix"), str)
                and _FILE_SUFFIX.fullmatch(item["suffix"])
                and isinstance(item.get("file"), str)
            ):
                raise SecaError(f"{damaged}: an image of class {name!r} is not a SHA-256 digest with a suffix")
        checked[name] = [{"digest": i["digest"], "suffix": i["suffix"], "file": i["file"]} for i in items]
    return checked


def _files(paths: Iterable[Path]) -> list[Path]:
    return [p for p in paths if p.is_file() and not p.is_symlink()]
