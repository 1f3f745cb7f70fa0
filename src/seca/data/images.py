"""Image files on disk: reading one safely (any mode, no decompression bomb), finding the bad ones before any work,
and class folders (``<class>/<images>``) as a map-style data set of ``(image, class id)``.

Every data set made of files (seca.data.sets) and every command that reads a user's images goes through
:func:`open_image`, so a file that cannot be used is one line naming it, wherever it is read.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..config import DataConfig
from ..errors import SecaError
from ..io.feature_store import content_digest

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}


MAX_PIXELS = DataConfig.max_pixels  # a larger image is refused before it is decoded


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB: 16- and 32-bit grey scaled to 0..255, transparency laid on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(pixels * (255.0 / top), 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def open_image(path: Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The image at ``path`` as RGB, whatever its mode (grey, palette, RGBA, CMYK, 16-bit): every image file seca
    reads goes through here. An unreadable or truncated file, one its decoder refuses in any way (PIL raises
    ``OSError``, ``SyntaxError``, ``ValueError``, ``struct.error``, ...), or one of more than ``max_pixels`` pixels
    (checked from the header, before decoding: no decompression bomb reaches the decoder), is a SecaError naming
    the file, in one line."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a decoder's grumbles (corrupt EXIF): the file decodes, or it is refused
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > max_pixels:
                    raise SecaError(
                        f"image '{path}' has {image.width}x{image.height} pixels, more than the "
                        f"limit of {max_pixels} (data.max_pixels); shrink it or raise the limit"
                    )
                image.load()
                return _to_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise SecaError(
            f"image '{path}' is too large to decode safely (more than {max_pixels} pixels, "
            "data.max_pixels); shrink it or raise the limit"
        ) from None
    except SecaError:
        raise
    except Exception as e:  # whatever the decoder raises: OSError, SyntaxError, ValueError, struct.error, ...
        raise SecaError(f"cannot read image '{path}': {decoder_reason(e)}") from None


def decoder_reason(error: Exception) -> str:
    """What a decoder's exception says, in one short line: ``broken PNG file``, ``truncated``."""
    text = " ".join(str(error).split())
    if isinstance(error, OSError):
        text = text.split(" (")[0] or type(error).__name__  # PIL adds its internal error codes in brackets
    else:  # a decoder that stumbled on bytes it did not expect
        text = f"broken image data ({type(error).__name__}{': ' + text if text else ''})"
    return text if len(text) <= 160 else text[:157] + "..."


def find_bad_images(files: Sequence[Path], max_pixels: int = MAX_PIXELS, threads: int = 8) -> list[tuple[Path, str]]:
    """``(file, why)`` of every file that :func:`open_image` refuses, reading each one in full (in ``threads``
    threads: PIL decodes without holding the GIL), in the order of ``files``."""
    from concurrent.futures import ThreadPoolExecutor

    def why(path: Path) -> str | None:
        try:
            open_image(path, max_pixels)
        except SecaError as e:
            return str(e)
        return None

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        reasons = list(pool.map(why, files))
    return [(Path(p), r) for p, r in zip(files, reasons) if r is not None]


def unusable_images(
    files: Sequence[Path], max_pixels: int, skip: bool, fix: str, echo: Callable[[str], None]
) -> set[Path]:
    """The files of ``files`` that cannot be used, found by reading each one. Unless ``skip``, any of them is an
    error saying how many, the first three, and ``fix``; with ``skip`` each is named through ``echo``."""
    bad = dict(find_bad_images(files, max_pixels))
    if bad and not skip:
        first = "; ".join(list(bad.values())[:3])
        raise SecaError(
            f"{len(bad)} image file{'s' if len(bad) > 1 else ''} cannot be used ({first}"
            f"{'; ...' if len(bad) > 3 else ''}); fix or remove them, or {fix}"
        )
    for reason in bad.values():
        echo(f"skipped: {reason}")
    return set(bad)


def without_bad_images(data: ImageFiles, skip: bool, echo: Callable[[str], None]) -> ImageFiles:
    """``data`` after reading every image (:func:`unusable_images`), without the bad ones when ``skip``. Run
    before any training, so a bad file costs minutes, not a run."""
    bad = unusable_images(data.files, data.max_pixels, skip, "set data.skip_bad_images=true (--skip-bad-images)", echo)
    if not bad:
        return data
    keep = [i for i, p in enumerate(data.files) if Path(p) not in bad]
    return ImageFiles(
        [data.files[i] for i in keep], data.targets[keep], data.class_names, data.transform, data.max_pixels
    )


class ImageFiles:
    """Image files with class ids; loads each with :func:`open_image` and applies ``transform``."""

    def __init__(
        self,
        files: Sequence[Path],
        targets: Sequence[int],
        class_names: Sequence[str],
        transform: Callable | None = None,
        max_pixels: int = MAX_PIXELS,
    ):
        self.files = list(files)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.class_names = list(class_names)
        self.transform = transform
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        image = open_image(self.files[i], self.max_pixels)
        return (self.transform(image) if self.transform is not None else image), int(self.targets[i])

    def digest(self, i: int) -> bytes:
        """The digest of image ``i``'s file (its bytes, not its name): the key of its frozen features in the
        feature store. A file that cannot be read has none: its features are computed (and it is refused) as
        any other's."""
        try:
            return content_digest(Path(self.files[i]).read_bytes())
        except OSError:
            return b""


def item_digests(dataset: Any, indices: Sequence[int]) -> list[bytes] | None:
    """The content digest of each item ``indices`` of ``dataset`` (the feature store's keys), or None when the data
    set cannot give them: it has a ``digest(i)`` method (image files, the offline world), or holds its images as
    one array ``data`` (torchvision's CIFAR-100). An empty digest (a file that cannot be read) is never stored."""
    if hasattr(dataset, "digest"):
        return [dataset.digest(int(i)) for i in indices]
    array = getattr(dataset, "data", None)
    if isinstance(array, np.ndarray) and len(array) == len(dataset):
        return [content_digest(array[int(i)].tobytes() + str(array[int(i)].shape).encode()) for i in indices]
    return None


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (and, if ``recursive``, in its sub-folders), sorted."""
    entries = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def report_other_files(folders: Sequence[Path], where: Path) -> int:
    """Say (as a warning) how many files in ``folders`` are left out because their suffix is not an image's;
    hidden files (``.DS_Store``) are not counted. Returns that number."""
    others = [
        p
        for folder in folders
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in IMAGE_SUFFIXES
    ]
    if others:
        log.warning(
            "%d file%s in %s left out: not images by their suffix (e.g. '%s'; images are %s)",
            len(others),
            "s" if len(others) > 1 else "",
            where,
            others[0].name,
            " ".join(sorted(IMAGE_SUFFIXES)),
        )
    return len(others)


# ---- class names ------------------------------------------------------------------------------------------

LABEL_BYTES = 255  # the longest class name in UTF-8 bytes: any class can also be a folder of `seca learn --data`


def class_name(text: str) -> str:
    """A folder's name or a label as a class name: underscores read as spaces (``sea_lion`` is "sea lion")."""
    return text.replace("_", " ")


def class_key(name: str) -> str:
    """What makes two spellings one class: case, spaces and underscores aside (``Sea_Lion`` is "sea lion")."""
    return " ".join(name.replace("_", " ").split()).casefold()


# What no name or line of text read from a data set's files may hold: control characters (a tab aside) and Unicode's
# line and paragraph separators, which would make a class name, or a message quoting it, more than one line
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def shown(text: str, limit: int = 80) -> str:
    """``text`` as a message may quote it: one line, control characters escaped, at most ``limit`` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def label_name(text: object) -> str:
    """A class name given as data (an upload's label, a key of :data:`ImagesByClass`), checked once: printable text
    (no control character), its underscores read as spaces as a folder's name is, its spaces collapsed and its ends
    stripped, not empty, at most :data:`LABEL_BYTES` UTF-8 bytes. Anything else is a SecaError saying what is wrong."""
    if not isinstance(text, str):
        raise SecaError(f"a class name must be text, got {shown(repr(text))}")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in text):
        raise SecaError(
            f"the class name '{shown(text, 40)}' holds a control or unassigned character; give printable text"
        )
    name = " ".join(class_name(text).split())
    if not name:
        raise SecaError("a class name is empty; give each image's class")
    size = len(name.encode("utf-8"))
    if size > LABEL_BYTES:
        raise SecaError(
            f"the class name '{shown(name, 40)}' is {size} bytes long in UTF-8, more than {LABEL_BYTES}; shorten it"
        )
    return name


def check_distinct_names(names: Sequence[str], what: str) -> None:
    """Refuse names (of class folders, or labels) that name one class twice: ``Cat`` and ``cat``, ``sea_lion`` and
    ``sea lion``; ``what`` says what they are (``class folders in DIR``, ``labels``)."""
    seen: dict[str, str] = {}
    for name in names:
        key = class_key(name)
        if key in seen:
            raise SecaError(
                f"{what} '{seen[key]}' and '{name}' name the same class (they differ only by case, spaces or "
                "underscores); use one spelling"
            )
        seen[key] = name


def class_dirs(root: Path) -> tuple[list[Path], list[str]]:
    """The class folders of ``root`` and their classes: every sub-folder, sorted by name, is a class named by the
    folder's name with underscores read as spaces; two folders naming one class are refused."""
    dirs = sorted(p for p in root.iterdir() if p.is_dir())
    check_distinct_names([d.name for d in dirs], f"the class folders in {root}")
    return dirs, [class_name(d.name) for d in dirs]


# Images given by class, as data: {class name: image files}. Whatever a name holds, it is never read as a path.
ImagesByClass = Mapping[str, Sequence[str | Path]]


def labelled_images(
    data: str | Path | ImagesByClass, split: str, report: bool = True
) -> tuple[list[str], list[list[Path]]]:
    """(class names, image files per class) of a folder of class folders (:func:`class_folders`) or of images given
    by class (:data:`ImagesByClass`), each name checked by :func:`label_name`; classes sorted by name."""
    if not isinstance(data, Mapping):
        return class_folders(data, split, report)
    given = sorted((label_name(name), [Path(f) for f in files]) for name, files in data.items())
    check_distinct_names([name for name, _ in given], "the labels")
    empty = [name for name, files in given if not files]
    if empty:
        raise SecaError(f"the class '{empty[0]}' has no images; give at least one per class")
    if not given:
        raise SecaError("no images were given; give at least one class with its images")
    return [name for name, _ in given], [files for _, files in given]


def source_of(data: str | Path | ImagesByClass) -> str:
    """How a model's history names the images it learned or was evaluated on: the folder, or a count."""
    if isinstance(data, Mapping):
        return f"{sum(len(files) for files in data.values())} images of {len(data)} classes, given by class"
    return str(data)


def class_folders(folder: str | Path, split: str, report: bool = True) -> tuple[list[str], list[list[Path]]]:
    """(class names, image files per class) of ``folder/<class>/`` (or ``folder/<split>/<class>/``)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise SecaError(f"'{folder}' is not a folder; give a folder with one sub-folder of images per class")
    if (root / split).is_dir():
        root = root / split
    dirs, names = class_dirs(root)
    if not dirs:
        raise SecaError(f"'{root}' has no class sub-folders (expected {root}/<class name>/<images>)")
    if report:  # files that are not images: said once, when the folder is used
        report_other_files(dirs, root)
    files = [list_images(d) for d in dirs]
    empty = [d.name for d, f in zip(dirs, files) if not f]
    if empty:
        raise SecaError(f"class folder '{root / empty[0]}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return names, files


def folder_split(
    split_dir: Path,
    class_dirs: Sequence[str],
    class_names: Sequence[str],
    transform: Callable | None = None,
    max_pixels: int = MAX_PIXELS,
    fix: str = "",
) -> ImageFiles:
    """``split_dir/<class_dirs[k]>/*`` with label k; ``fix`` says how to make missing class folders."""
    missing = [d for d in class_dirs if not (split_dir / d).is_dir()]
    if missing:
        raise SecaError(
            f"{split_dir} lacks {len(missing)} of its {len(class_dirs)} class folders (e.g. "
            f"'{missing[0]}'){'; ' + fix if fix else ''}"
        )
    report_other_files([split_dir / d for d in class_dirs], split_dir)
    files, targets = [], []
    for label, d in enumerate(class_dirs):
        images = list_images(split_dir / d)
        if not images:
            raise SecaError(f"class folder {split_dir / d} holds no images")
        files += images
        targets += [label] * len(images)
    return ImageFiles(files, targets, class_names, transform, max_pixels)
