"""Uploaded images into a temporary folder of ``<class>/<image>`` folders, refusing what is unsafe or wrong.

Everything a request uploads is written under one temporary folder (removed when the request, or the learn
job it starts, ends) and nowhere else. A zip is read entry by entry: a name that climbs out of its folder
(``../``, an absolute path, a drive), a link, more entries or more uncompressed bytes than the limits allow
(a zip bomb) are refused before anything is written past the limit. Every image is then opened in full
(``seca.data.images.open_image``): a file that is not an image, is truncated, or has more pixels than
``data.max_pixels`` is refused, named. Each refusal is an :class:`UploadError`, one sentence.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..data.images import IMAGE_SUFFIXES, check_distinct_names, find_bad_images
from ..errors import SecaError

CHUNK = 1 << 20


class UploadError(SecaError):
    """A request's files are unusable; nothing was changed."""


@dataclass(frozen=True)
class Limits:
    """What one request may upload (``seca serve --max-*``)."""

    request_bytes: int = 512 * 2**20  # the whole request body
    files: int = 10_000  # files (and zip entries) per request
    zip_bytes: int = 2 * 2**30  # the uncompressed size of a zip's entries, all together


@dataclass
class Upload:
    """One uploaded file: its name as the client gave it, and its content (a file object)."""

    filename: str
    file: BinaryIO


def safe_class(name: str) -> str:
    """A class name as a folder name: refused if empty or if it could leave its folder."""
    name = name.strip()
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise UploadError(f"'{name}' is not a usable class name: give a non-empty name without '/' or '\\'")
    return name


def _image_name(filename: str, index: int) -> str:
    """A safe file name for an upload: its own base name if it has an image suffix, else a numbered one."""
    base = PurePosixPath(filename.replace("\\", "/")).name
    suffix = Path(base).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        suffix = ".img"  # opened anyway: a file that is not an image is refused by its content, named
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(base).stem)[:80] or "image"
    return f"{index:05d}-{stem}{suffix}"


class Workspace:
    """A temporary folder holding the uploads of one request (or one learn job), removed by :meth:`close`."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.root = Path(tempfile.mkdtemp(prefix="seca-serve-"))
        self.count = 0
        self.names: dict[Path, str] = {}  # each written file -> its name as the client gave it

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _next(self) -> int:
        self.count += 1
        if self.count > self.limits.files:
            raise UploadError(
                f"the request holds more than {self.limits.files} files; send fewer at a time (the "
                "limit is --max-files)"
            )
        return self.count

    def add(self, folder: str, uploads: Sequence[Upload], labels: Sequence[str] | None, field: str) -> Path:
        """Write ``uploads`` under ``root/folder/<label>/`` (``labels``: one class name per upload), or under
        ``root/folder/`` when ``labels`` is None (images without classes, to predict)."""
        target = self.root / folder
        if labels is not None and len(labels) != len(uploads):
            raise UploadError(f"'{field}' has {len(uploads)} files but {len(labels)} labels; give one label per image")
        for k, upload in enumerate(uploads):
            place = target if labels is None else target / safe_class(labels[k])
            place.mkdir(parents=True, exist_ok=True)
            path = place / _image_name(upload.filename or "image", self._next())
            self.names[path] = upload.filename or path.name
            with open(path, "wb") as out:
                shutil.copyfileobj(upload.file, out, CHUNK)
        return target

    def add_zip(self, folder: str, upload: Upload, field: str) -> Path:
        """Extract a zip of ``<class>/<image>`` entries under ``root/folder/``."""
        target = self.root / folder
        try:
            archive = zipfile.ZipFile(upload.file)
        except (zipfile.BadZipFile, OSError, ValueError):
            raise UploadError(f"'{field}' ({upload.filename}) is not a zip file") from None
        with archive:
            listed = [e for e in archive.infolist() if not _hidden(e.filename)]
            entries = [e for e in listed if not e.is_dir()]
            full = {_entry_parts(e, upload.filename)[0] for e in entries}
            empty = [
                e.filename.strip("/")
                for e in listed
                if e.is_dir() and e.filename.strip("/") not in full and "/" not in e.filename.strip("/")
            ]
            if empty:
                raise UploadError(
                    f"the class folder '{empty[0]}' of the zip '{upload.filename}' holds no images; "
                    "leave it out or add its images"
                )
            if len(entries) + self.count > self.limits.files:
                raise UploadError(
                    f"the zip '{upload.filename}' has {len(entries)} entries, more than the "
                    f"{self.limits.files} a request may hold (--max-files)"
                )
            declared = sum(e.file_size for e in entries)
            if declared > self.limits.zip_bytes:
                raise UploadError(
                    f"the zip '{upload.filename}' would unpack to {declared / 2**20:.0f} MiB, more "
                    f"than the {self.limits.zip_bytes / 2**20:.0f} MiB allowed (--max-zip-mb)"
                )
            written = 0
            for entry in entries:
                parts = _entry_parts(entry, upload.filename)
                place = target / safe_class(parts[0])
                place.mkdir(parents=True, exist_ok=True)
                path = place / _image_name(parts[1], self._next())
                self.names[path] = f"{upload.filename}: {entry.filename}"
                with archive.open(entry) as source, open(path, "wb") as out:
                    while chunk := source.read(CHUNK):  # counted as it unpacks: a header may lie about sizes
                        written += len(chunk)
                        if written > self.limits.zip_bytes:
                            raise UploadError(
                                f"the zip '{upload.filename}' unpacks to more than "
                                f"{self.limits.zip_bytes / 2**20:.0f} MiB (--max-zip-mb)"
                            )
                        out.write(chunk)
        if not entries:
            raise UploadError(f"the zip '{upload.filename}' holds no files; give <class>/<image> entries")
        return target

    def check_images(self, files: Sequence[Path], max_pixels: int) -> None:
        """Refuse, naming them as the client did, uploaded files that are not images, are truncated, or are too
        large."""
        bad = find_bad_images(list(files), max_pixels)
        if bad:
            reasons = []
            for path, why in bad[:3]:
                reasons.append(why.replace(str(path), self.names.get(path, path.name)))
            many = len(bad) > 1
            raise UploadError(
                f"{len(bad)} uploaded file{'s' if many else ''} cannot be used as image{'s' if many else ''}"
                f" ({'; '.join(reasons)}{'; ...' if len(bad) > 3 else ''}); send whole image files only"
            )


def _hidden(name: str) -> bool:
    """Entries no one means as data: macOS's resource forks and dot files."""
    return any((part.startswith(".") and part != "..") or part == "__MACOSX" for part in PurePosixPath(name).parts)


def _entry_parts(entry: zipfile.ZipInfo, archive: str) -> tuple[str, str]:
    """(class, file name) of a zip entry ``<class>/<image>``; anything else is refused."""
    name = entry.filename.replace("\\", "/")
    mode = entry.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UploadError(f"the zip '{archive}' holds a link ('{name}'); give plain image files")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UploadError(
            f"the zip '{archive}' has an entry that climbs out of its folder ('{name}'); entries "
            "must be <class>/<image>"
        )
    if len(path.parts) != 2:
        raise UploadError(
            f"the zip '{archive}' has an entry '{name}' that is not <class>/<image>; put each "
            "class's images in a folder named after the class, at the top of the zip"
        )
    return path.parts[0], path.parts[1]


def class_folder_names(folder: Path) -> list[str]:
    """The class folders of ``folder`` (two naming one class, such as ``Cat`` and ``cat``, are refused)."""
    names = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    try:
        check_distinct_names(names, Path(folder.name))
    except SecaError as e:
        raise UploadError(str(e).replace(f" in {folder.name}", "")) from None
    return names
