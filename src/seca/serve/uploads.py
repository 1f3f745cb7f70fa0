"""Uploaded images into a temporary folder, by class, refusing what is unsafe or wrong.

Everything a request uploads is written under one temporary folder (removed when the request, or the learn
job it starts, ends) and nowhere else; a class's label is data, checked once, and never a path. A zip is read
entry by entry: a name that climbs out of its folder (``../``, ``..\\``, an absolute path, a drive), a link, an
encrypted entry, a compression the reader lacks, more entries or more uncompressed bytes than the limits allow
(a zip bomb) are refused before anything is written past the limit, and whatever else the zip reader raises is
one sentence naming the entry. Every image is then opened in full
(``seca.data.images.open_image``): a file that is not an image, is truncated, or has more pixels than
``data.max_pixels`` is refused, named. Each refusal is an :class:`UploadError`, one sentence.
"""

from __future__ import annotations

import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..data.images import IMAGE_SUFFIXES, class_key, decoder_reason, find_bad_images, label_name, shown
from ..errors import SecaError

CHUNK = 1 << 20
LABELS_BYTES = 1 << 16  # the largest form field (a label, a number) the parser takes: far above a label's 255 bytes
PREFIX = "seca-serve-"  # of every workspace's folder name


def too_many_files(limits: Limits) -> str:
    return f"the request holds more than {limits.files} files; send fewer at a time (the limit is --max-files)"


def scrub(message: str) -> str:
    """``message`` without the paths of the server's temporary folders (an answer never shows the server's files):
    each becomes "the upload"."""
    pattern = re.escape(str(Path(tempfile.gettempdir()).resolve())) + "|" + re.escape(tempfile.gettempdir())
    return re.sub(rf"(?:{pattern})/{PREFIX}[^/\s'\"]*(?:/[^\s'\"]*)?", "the upload", message)


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


def _image_name(filename: str, index: int) -> str:
    """A safe file name for an upload: its own base name if it has an image suffix, else a numbered one."""
    base = PurePosixPath(filename.replace("\\", "/")).name
    suffix = Path(base).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        suffix = ".img"  # opened anyway: a file that is not an image is refused by its content, named
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(base).stem)[:80] or "image"
    return f"{index:05d}-{stem}{suffix}"


class Workspace:
    """A temporary folder holding the uploads of one request (or one learn job), removed by :meth:`close`.

    A label is data: it is checked once (:func:`seca.data.images.label_name`) and never becomes a path. Each class's
    files go into a folder of a generated name, and :meth:`labelled` hands the images on by class, as
    ``SecaModel.learn`` and ``evaluate`` take them."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        self.count = 0
        self.names: dict[Path, str] = {}  # each written file -> its name as the client gave it
        self.classes: dict[str, dict[str, list[Path]]] = {}  # part ("train", "eval", ...) -> class name -> files

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _next(self) -> int:
        self.count += 1
        if self.count > self.limits.files:
            raise UploadError(too_many_files(self.limits))
        return self.count

    def _class_folder(self, part: str, label: str, where: str) -> Path:
        """The folder (of a generated name) that holds the images of class ``label`` in ``part``; the label is checked
        once here, and a second spelling of a class already in ``part`` is refused."""
        try:
            name = label_name(label)
        except SecaError as e:
            raise UploadError(f"{where}: {e}") from None
        group = self.classes.setdefault(part, {})
        same = next((other for other in group if class_key(other) == class_key(name)), name)
        if same != name:
            raise UploadError(
                f"the labels '{shown(same)}' and '{shown(name)}' name the same class (they differ only by case, "
                "spaces or underscores); use one spelling"
            )
        group.setdefault(name, [])
        folder = self.root / part / f"class-{list(group).index(name):05d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _keep(self, part: str, label: str | None, path: Path, shown: str) -> None:
        self.names[path] = shown
        if label is not None:
            self.classes[part][label_name(label)].append(path)

    def add(self, part: str, uploads: Sequence[Upload], labels: Sequence[str] | None, field: str) -> Path:
        """Write ``uploads`` under ``root/part/``: by class (``labels``: one class name per upload), or, when
        ``labels`` is None (images without classes, to predict), as they are."""
        target = self.root / part
        target.mkdir(parents=True, exist_ok=True)
        if labels is not None and len(labels) != len(uploads):
            raise UploadError(f"'{field}' has {len(uploads)} files but {len(labels)} labels; give one label per image")
        for k, upload in enumerate(uploads):
            label = None if labels is None else labels[k]
            given = shown(upload.filename or "image")
            place = target if label is None else self._class_folder(part, label, f"the label of '{given}'")
            path = place / _image_name(upload.filename or "image", self._next())
            self._keep(part, label, path, given)
            with open(path, "wb") as out:
                shutil.copyfileobj(upload.file, out, CHUNK)
        return target

    def add_zip(self, part: str, upload: Upload, field: str) -> None:
        """Extract a zip of ``<class>/<image>`` entries into ``part``, by class. Whatever the zip reader refuses
        (not a zip, a bad CRC, an encrypted entry, a compression it lacks) is one sentence naming the entry."""
        name = shown(upload.filename or field)
        try:
            archive = zipfile.ZipFile(upload.file)
            listed = archive.infolist()
        except Exception as e:  # BadZipFile, OSError, ValueError, UnicodeDecodeError, ...: not a zip to read
            raise UploadError(f"'{field}' ({name}) is not a zip file that can be read ({decoder_reason(e)})") from None
        with archive:
            for entry in listed:  # every entry, hidden ones too, before anything is written
                _check_entry(entry, name)
            listed = [e for e in listed if not _hidden(e.filename)]
            entries = [e for e in listed if not e.is_dir()]
            full = {_entry_parts(e, name)[0] for e in entries}
            empty = [
                e.filename.strip("/")
                for e in listed
                if e.is_dir() and e.filename.strip("/") not in full and "/" not in e.filename.strip("/")
            ]
            if empty:
                raise UploadError(
                    f"the class folder '{empty[0]}' of the zip '{name}' holds no images; leave it out or add its images"
                )
            if len(entries) + self.count > self.limits.files:
                raise UploadError(
                    f"the zip '{name}' has {len(entries)} entries, more than the "
                    f"{self.limits.files} a request may hold (--max-files)"
                )
            declared = sum(e.file_size for e in entries)
            if declared > self.limits.zip_bytes:
                raise UploadError(
                    f"the zip '{name}' would unpack to {declared / 2**20:.0f} MiB, more "
                    f"than the {self.limits.zip_bytes / 2**20:.0f} MiB allowed (--max-zip-mb)"
                )
            if not entries:
                raise UploadError(f"the zip '{name}' holds no files; give <class>/<image> entries")
            written = 0
            for entry in entries:
                label, file_name = _entry_parts(entry, name)
                place = self._class_folder(part, label, f"the zip '{name}', entry '{shown(entry.filename)}'")
                path = place / _image_name(file_name, self._next())
                self._keep(part, label, path, f"{name}: {shown(entry.filename)}")
                written += self._extract(archive, entry, path, name, self.limits.zip_bytes - written)

    @staticmethod
    def _extract(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, path: Path, name: str, room: int) -> int:
        """Unpack one entry to ``path``, counting its bytes as they come (a header may lie about sizes); returns
        them. Whatever the reader raises is an UploadError naming the entry."""
        written = 0
        try:
            with archive.open(entry) as source, open(path, "wb") as out:
                while chunk := source.read(CHUNK):
                    written += len(chunk)
                    if written > room:
                        raise UploadError(
                            f"the zip '{name}' unpacks to more than the limit of --max-zip-mb; send less at a time"
                        )
                    out.write(chunk)
        except UploadError:
            raise
        except Exception as e:  # BadZipFile (a bad CRC), RuntimeError, NotImplementedError, zlib.error, ...
            raise UploadError(
                f"the zip '{name}' has an entry that cannot be read ('{shown(entry.filename)}': {decoder_reason(e)}); "
                "send "
                "the images as files, or a zip made again"
            ) from None
        return written

    def labelled(self, part: str) -> dict[str, list[Path]]:
        """The images of ``part`` by class, as ``SecaModel.learn`` and ``evaluate`` take them."""
        return {name: list(files) for name, files in self.classes.get(part, {}).items()}

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
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any((part.startswith(".") and part != "..") or part == "__MACOSX" for part in parts)


SUPPORTED = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def _check_entry(entry: zipfile.ZipInfo, archive: str) -> None:
    """Refuse an entry that could not be unpacked safely or at all: a link, a name that climbs out of its folder
    (``../``, ``..\\``, an absolute path, a drive), a NUL in its name, encryption, a compression this reader lacks."""
    raw = entry.filename.replace("\\", "/")
    name = shown(raw)
    if not raw.strip("/"):
        raise UploadError(f"the zip '{archive}' has an entry without a name; entries must be <class>/<image>")
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise UploadError(f"the zip '{archive}' holds a link ('{name}'); give plain image files")
    if "\0" in raw:
        raise UploadError(f"the zip '{archive}' has an entry whose name holds a NUL character ('{name}')")
    path = PurePosixPath(raw)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UploadError(
            f"the zip '{archive}' has an entry that climbs out of its folder ('{name}'); entries must be "
            "<class>/<image>"
        )
    if entry.flag_bits & 0x1:
        raise UploadError(f"the zip '{archive}' has an encrypted entry ('{name}'); send it without a password")
    if entry.compress_type not in SUPPORTED:
        raise UploadError(
            f"the zip '{archive}' has an entry ('{name}') compressed by a method this server cannot read "
            f"(number {entry.compress_type}); make the zip with deflate, the common default"
        )


def _entry_parts(entry: zipfile.ZipInfo, archive: str) -> tuple[str, str]:
    """(class, file name) of a zip entry ``<class>/<image>`` (already checked by :func:`_check_entry`)."""
    path = PurePosixPath(entry.filename.replace("\\", "/"))
    if len(path.parts) != 2:
        raise UploadError(
            f"the zip '{archive}' has an entry '{shown(str(path))}' that is not <class>/<image>; put each "
            "class's images in a folder named after the class, at the top of the zip"
        )
    return path.parts[0], path.parts[1]
