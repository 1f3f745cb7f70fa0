"""The shapes world: a generated image domain whose classes are named by composable words.

Class ``k`` is a colour and a shape ("red star"), so the names carry real relations: "red star" shares a
word with "red circle" and with "blue star", and a text encoder trained on captions knows it. Two domains:

* ``clean`` -- filled shapes on plain light backgrounds, nearly upright, for pretraining a small CLIP;
* ``renditions`` -- the same classes as a shifted domain (``RENDITIONS``): every hue turned by 30 degrees,
  gradient and speckled backgrounds, a wider range of scales and positions, some blur, so that zero-shot
  transfer works but is far from perfect (as ImageNet-R is for CLIP). A ``RenditionProfile`` can also
  draw outlines, textured fills, sketched doubles, clutter and any rotation; the default leaves those out
  because the small CLIP cannot learn them from 40 images per class (docs/offline.md has the measurements).

Every image is a pure function of (seed, domain, split, class, index): any item can be drawn in any order, and the
same seed gives the same bytes on every machine. A ``ShapesDataset`` renders all its images once per configuration
and keeps them in the cache (``$SECA_CACHE/worlds/``) as one uint8 array with its SHA-256, so that later runs load
them instead of drawing them again; the key of a file covers the world, the split, the domain, the count and this
file's source code, so a change to the drawing code never reads a stale array.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..errors import SecaError
from ..io.cache import cache_root
from ..io.files import atomic_write, atomic_write_json

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 25),
    "green": (40, 165, 50),
    "cyan": (30, 200, 210),
    "blue": (35, 70, 215),
    "purple": (130, 45, 180),
    "pink": (245, 120, 185),
    "brown": (120, 75, 35),
    "black": (20, 20, 20),
}

SHAPES = ("circle", "square", "triangle", "star", "heart", "cross", "diamond", "hexagon", "crescent", "arrow")

DOMAINS = ("clean", "renditions")
SPLITS = ("train", "test", "pretrain")


def class_names(colors: int = 10, shapes: int = 10) -> list[str]:
    """Class ``k`` is colour ``k // shapes`` and shape ``k % shapes``: ``["red circle", "red square", ...]``."""
    if not 1 <= colors <= len(COLORS) or not 1 <= shapes <= len(SHAPES):
        raise ValueError(f"the shapes world has at most {len(COLORS)} colours and {len(SHAPES)} shapes")
    return [f"{c} {s}" for c in list(COLORS)[:colors] for s in SHAPES[:shapes]]


# --------------------------------------------------------------------------------------------------
# Outlines of the shapes as polygons in the unit disc (x right, y down), before rotation and scaling


def _regular(n: int, phase: float = -math.pi / 2) -> np.ndarray:
    t = phase + np.arange(n) * 2 * math.pi / n
    return np.stack([np.cos(t), np.sin(t)], 1)


def _star() -> np.ndarray:
    outer, inner = _regular(5), _regular(5, -math.pi / 2 + math.pi / 5) * 0.42
    return np.stack([outer, inner], 1).reshape(-1, 2)


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y], 1) / 17.0
    return pts - pts.mean(0) * np.array([0, 1])


def _cross() -> np.ndarray:
    a, b = 0.33, 1.0
    return np.array(
        [[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b], [-a, a], [-b, a], [-b, -a], [-a, -a]]
    )


def _crescent() -> np.ndarray:
    """The unit disc minus a disc of radius r centred at (d, 0): an outer arc, then the inner arc back."""
    r, d = 0.85, 0.45
    x = (1 - r * r + d * d) / (2 * d)  # where the two circles cross
    y = math.sqrt(1 - x * x)
    a = math.atan2(y, x)
    outer_t = np.linspace(a, 2 * math.pi - a, 40)
    b = math.atan2(y, x - d)
    inner_t = np.linspace(2 * math.pi - b, b, 40)[1:-1]
    outer = np.stack([np.cos(outer_t), np.sin(outer_t)], 1)
    inner = np.stack([d + r * np.cos(inner_t), r * np.sin(inner_t)], 1)
    return np.concatenate([outer, inner]) + np.array([0.2, 0])


def _arrow() -> np.ndarray:
    return np.array([[1.0, 0.0], [0.2, -0.75], [0.2, -0.3], [-1.0, -0.3], [-1.0, 0.3], [0.2, 0.3], [0.2, 0.75]])


_OUTLINES: dict[str, np.ndarray] = {
    "circle": _regular(48),
    "square": _regular(4, -math.pi / 4) * 1.05,
    "triangle": _regular(3) * 1.1 + np.array([0, 0.15]),
    "star": _star() * 1.1,
    "heart": _heart(),
    "cross": _cross(),
    "diamond": np.array([[0, -1.0], [0.62, 0], [0, 1.0], [-0.62, 0]]),
    "hexagon": _regular(6, 0),
    "crescent": _crescent(),
    "arrow": _arrow(),
}


# --------------------------------------------------------------------------------------------------
# Rendering

_SUPERSAMPLE = 3  # draw large, then shrink with a box filter: smooth edges at any output size


def _jitter(rgb: Sequence[int], rng: np.random.Generator, amount: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(np.asarray(rgb) + rng.integers(-amount, amount + 1, 3), 0, 255))


def _background(size: int, rng: np.random.Generator, style: str) -> Image.Image:
    base = rng.integers(200, 256, 3)
    if style == "plain":
        return Image.new("RGB", (size, size), tuple(int(v) for v in base))
    if style == "gradient":
        other = rng.integers(170, 256, 3)
        ramp = np.linspace(0, 1, size)[None, :, None]
        if rng.random() < 0.5:
            ramp = ramp.transpose(1, 0, 2)
        arr = base * (1 - ramp) + other * ramp
        return Image.fromarray(np.broadcast_to(arr, (size, size, 3)).astype(np.uint8))
    # "noise": speckled paper
    arr = base + rng.normal(0, 18, (size, size, 1))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _polygon(shape: str, center: np.ndarray, radius: float, angle: float) -> list[tuple[float, float]]:
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    pts = _OUTLINES[shape] @ rot.T * radius + center
    return [tuple(p) for p in pts]


def _texture_mask(size: int, rng: np.random.Generator) -> Image.Image:
    """Stripes, checks or dots: where the shape's colour shows inside a textured shape."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    kind = rng.integers(3)
    step = int(size * rng.uniform(0.1, 0.18)) + 2  # coarse enough to survive the shrink to small images
    if kind == 0:  # stripes at a random angle
        for off in range(-2 * size, 2 * size, step):
            draw.line([(off, 0), (off + size, size)], fill=255, width=max(2, step // 2))
        mask = mask.rotate(float(rng.uniform(0, 180)))
    elif kind == 1:  # checks
        for i in range(0, size, step):
            for j in range(0, size, step):
                if (i // step + j // step) % 2 == 0:
                    draw.rectangle([i, j, i + step - 1, j + step - 1], fill=255)
    else:  # dots
        r = max(2, step // 3)
        for i in range(0, size, step):
            for j in range(0, size, step):
                draw.ellipse([i, j, i + 2 * r, j + 2 * r], fill=255)
    return mask


def _clutter(draw: ImageDraw.ImageDraw, size: int, rng: np.random.Generator) -> None:
    """Thin low-contrast strokes and small grey blobs behind the object."""
    for _ in range(int(rng.integers(4, 10))):
        grey = int(rng.integers(110, 200))
        p = rng.uniform(0, size, 4)
        draw.line([(p[0], p[1]), (p[2], p[3])], fill=(grey, grey, grey), width=int(rng.integers(1, 4)) * _SUPERSAMPLE)
    for _ in range(int(rng.integers(0, 4))):
        grey = int(rng.integers(120, 210))
        c, r = rng.uniform(0, size, 2), rng.uniform(0.03, 0.08) * size
        draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=(grey, grey, grey))


STYLES = ("filled", "outline", "texture", "double")


@dataclass(frozen=True)
class RenditionProfile:
    """How the renditions domain departs from the clean one (the clean domain draws filled shapes only,
    on plain light backgrounds, at moderate scales, nearly upright).

    ``styles`` are (name, share) pairs; names: ``filled``, ``outline``, ``texture`` (stripes, checks or dots
    inside the outline), ``double`` (a filled shape with a smaller sketched copy).
    """

    styles: tuple[tuple[str, float], ...] = (("filled", 1.0),)
    # Every hue turned by this many degrees (and a little darker): the same for all classes, so what a
    # learner adapts to on some classes carries over to the others.
    hue_shift: float = 30.0
    clutter: float = 0.0  # chance of background strokes and blobs
    blur: float = 0.0  # chance of a Gaussian blur
    rotate: bool = False  # any orientation (else within +-20 degrees, as in the clean domain)
    scales: tuple[float, float] = (0.2, 0.48)  # shape radius as a fraction of the image side
    busy_backgrounds: bool = True  # gradients and speckled paper besides plain backgrounds

    def __post_init__(self):
        names = [name for name, _ in self.styles]
        if not names or not set(names) <= set(STYLES) or len(set(names)) != len(names):
            raise ValueError(f"styles must name distinct styles among {STYLES}, got {names}")
        if any(share < 0 for _, share in self.styles) or not math.isclose(sum(s for _, s in self.styles), 1.0):
            raise ValueError(f"the shares of the styles must be non-negative and sum to 1, got {self.styles}")
        if not (0 <= self.clutter <= 1 and 0 <= self.blur <= 1):
            raise ValueError(f"clutter and blur are chances in [0, 1], got {self.clutter} and {self.blur}")
        if not 0 < self.scales[0] <= self.scales[1] <= 0.5:
            raise ValueError(f"scales must satisfy 0 < low <= high <= 0.5, got {self.scales}")


# The benchmark's renditions. Harder profiles (10% outlines, 10% textures, 25% clutter) left the small CLIP
# almost nothing to learn: SECA 22.7% against zero-shot 19.9% (docs/offline.md, "Harder renditions").
RENDITIONS = RenditionProfile(blur=0.3)


def _rendition_color(rgb: tuple[int, int, int], hue_shift: float) -> tuple[int, int, int]:
    import colorsys

    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    r, g, b = colorsys.hsv_to_rgb((h + hue_shift / 360) % 1.0, s, v * (0.85 if hue_shift else 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def _draw(
    image: Image.Image,
    polygon: list,
    rgb: tuple,
    style: str,
    rng: np.random.Generator,
    redraw: Callable[[float, float], list],
) -> None:
    """Draw ``polygon`` in ``style``; ``redraw(scale, turn)`` gives a smaller, turned copy (``double``)."""
    big = image.size[0]
    draw = ImageDraw.Draw(image)
    if style == "outline":
        draw.polygon(polygon, outline=rgb, width=int(big * rng.uniform(0.05, 0.09)) + 1)  # 5-9% of the side
    elif style == "texture":
        shape_mask = Image.new("L", (big, big), 0)
        ImageDraw.Draw(shape_mask).polygon(polygon, fill=255)
        pattern = np.minimum(np.asarray(shape_mask), np.asarray(_texture_mask(big, rng)))
        image.paste(Image.new("RGB", (big, big), rgb), (0, 0), Image.fromarray(pattern))
        draw.polygon(polygon, outline=rgb, width=_SUPERSAMPLE)
    elif style == "double":  # a second, smaller copy beside the first, as in a sketch sheet
        draw.polygon(polygon, fill=rgb)
        draw.polygon(redraw(0.5, 0.5), outline=rgb, width=2 * _SUPERSAMPLE)
    else:
        draw.polygon(polygon, fill=rgb)


def render(
    color: str,
    shape: str,
    rng: np.random.Generator,
    domain: str = "clean",
    size: int = 64,
    profile: RenditionProfile = RENDITIONS,
) -> Image.Image:
    """One image of a ``color`` ``shape`` in ``domain``; all randomness comes from ``rng``."""
    big = size * _SUPERSAMPLE
    rgb = _jitter(COLORS[color], rng, 18)
    angle = float(rng.uniform(-0.35, 0.35)) if shape != "circle" else 0.0
    if domain == "clean":
        radius = big * float(rng.uniform(0.26, 0.38))
        center = big / 2 + rng.uniform(-0.12, 0.12, 2) * big
        image = _background(big, rng, "plain")
        _draw(image, _polygon(shape, center, radius, angle), rgb, "filled", rng, None)
        return image.resize((size, size), Image.BOX)
    if domain != "renditions":
        raise ValueError(f"unknown domain '{domain}' (choose from {DOMAINS})")
    p = profile
    rgb = _rendition_color(rgb, p.hue_shift)
    scale = float(rng.uniform(*p.scales))
    radius = big * scale
    margin = max(0.0, 0.5 - scale - 0.02)
    center = big / 2 + rng.uniform(-margin, margin, 2) * big
    if p.rotate and shape != "circle":
        angle = float(rng.uniform(-math.pi, math.pi))
    image = _background(big, rng, str(rng.choice(["plain", "gradient", "noise"])) if p.busy_backgrounds else "plain")
    if rng.random() < p.clutter:
        _clutter(ImageDraw.Draw(image), big, rng)
    style = str(rng.choice([name for name, _ in p.styles], p=[share for _, share in p.styles]))
    offset = rng.uniform(-0.3, 0.3, 2) * big if style == "double" else 0.0

    def redraw(factor: float, turn: float) -> list:
        return _polygon(shape, np.clip(center + offset, 0, big), radius * factor, angle + turn)

    _draw(image, _polygon(shape, center, radius, angle), rgb, style, rng, redraw)
    image = image.resize((size, size), Image.BOX)
    if rng.random() < p.blur:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.4)) * size / 64))
    return image


@dataclass(frozen=True)
class ShapesWorld:
    """The classes and the deterministic image source of one shapes world."""

    colors: int = 10
    shapes: int = 10
    image_size: int = 64
    seed: int = 0
    renditions: RenditionProfile = RENDITIONS

    @property
    def class_names(self) -> list[str]:
        return class_names(self.colors, self.shapes)

    @property
    def num_classes(self) -> int:
        return self.colors * self.shapes

    def color_and_shape(self, label: int) -> tuple[str, str]:
        return list(COLORS)[label // self.shapes], SHAPES[label % self.shapes]

    def image(self, label: int, index: int, domain: str = "renditions", split: str = "train") -> Image.Image:
        """Image ``index`` of class ``label``; a pure function of the arguments and the world's seed."""
        if split not in SPLITS or domain not in DOMAINS:
            raise ValueError(f"split must be one of {SPLITS} and domain one of {DOMAINS}")
        rng = np.random.default_rng([self.seed, DOMAINS.index(domain), SPLITS.index(split), label, index])
        color, shape = self.color_and_shape(label)
        return render(color, shape, rng, domain, self.image_size, self.renditions)


# --------------------------------------------------------------------------------------------------
# The rendered world in the cache: one uint8 array [N, H, W, 3] per (world, split, domain, per_class)


@functools.cache
def renderer_digest() -> str:
    """The SHA-256 of this file's bytes: every cached array and every image digest depends on the drawing code."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def worlds_folder() -> Path:
    """Where the rendered worlds are kept: ``cache_root() / "worlds"``."""
    return cache_root() / "worlds"


def world_key(world: ShapesWorld, split: str, domain: str, per_class: int) -> dict:
    """Everything the pixels of a data set depend on; its hash names the cached file."""
    return {
        "world": repr(world),  # a frozen dataclass: every field, the renditions profile included
        "split": split,
        "domain": domain,
        "per_class": per_class,
        "renderer_sha256": renderer_digest(),
    }


def world_file(world: ShapesWorld, split: str, domain: str, per_class: int) -> Path:
    """The cached array of a data set (``.npy``); its sidecar (``.json``) holds the digest, the shape and the key."""
    key = world_key(world, split, domain, per_class)
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return worlds_folder() / f"shapes-{split}-{domain}-{name}.npy"


def render_images(world: ShapesWorld, split: str, per_class: int, domain: str) -> np.ndarray:
    """Every image of the data set, class by class, as one uint8 array ``[N, H, W, 3]`` (drawn, not read)."""
    size = world.image_size
    images = np.empty((world.num_classes * per_class, size, size, 3), np.uint8)
    for i in range(len(images)):
        label, index = divmod(i, per_class)
        image = world.image(label, index, domain, split)
        if image.mode != "RGB":  # the renderer draws RGB only; anything else would not round-trip
            raise ValueError(f"the shapes renderer gave a {image.mode} image, expected RGB")
        images[i] = np.asarray(image)
    return images


def _array_digest(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).data).hexdigest()


def _read_cached(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached array at ``path`` if it is there and whole; None if it is not there; a damaged file (unreadable,
    truncated, of another shape, or whose digest differs from its sidecar's) is reported in one line, then None."""
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        return None
    try:
        meta = json.loads(sidecar.read_text())
        images = np.load(path, allow_pickle=False)
        if images.dtype != np.uint8 or images.shape != shape:
            raise ValueError(f"an array of {images.dtype} {images.shape}, expected uint8 {shape}")
        if _array_digest(images) != meta["sha256"]:
            raise ValueError("its SHA-256 differs from the one recorded beside it")
    except Exception as e:  # ValueError, OSError, EOFError, unpickling and JSON errors, a missing key: all damage
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"seca: the cached offline world {path} is damaged ({reason}); rendering it again", file=sys.stderr)
        return None
    return images


_UNWRITABLE_REPORTED: set[Path] = set()  # one line per process and folder, however many data sets miss the cache


def _save_npy(path: Path, images: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save given a name not ending in .npy would add the suffix
        np.save(f, images, allow_pickle=False)


def _write_cached(path: Path, images: np.ndarray, key: dict) -> None:
    """Keep ``images`` at ``path``, atomically, the array first, then the sidecar with its digest (a reader that
    finds the sidecar finds a whole array; two processes that render the same world write the same bytes). A cache
    that cannot be written is reported in one line; the caller goes on from memory."""
    meta = {"sha256": _array_digest(images), "shape": list(images.shape), "dtype": "uint8", "key": key}
    try:
        atomic_write(path, lambda tmp: _save_npy(tmp, images))
        atomic_write_json(path.with_suffix(".json"), meta)
    except (SecaError, OSError) as e:
        if path.parent not in _UNWRITABLE_REPORTED:
            _UNWRITABLE_REPORTED.add(path.parent)
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(
                f"seca: the offline world could not be kept in the cache ({reason}); "
                "it is rendered in memory for this run",
                file=sys.stderr,
            )


def load_world(world: ShapesWorld, split: str, per_class: int, domain: str) -> np.ndarray:
    """The images of a data set as one uint8 array ``[N, H, W, 3]``: read from the cache if it holds them whole,
    else rendered and kept there for the next run."""
    path = world_file(world, split, domain, per_class)
    shape = (world.num_classes * per_class, world.image_size, world.image_size, 3)
    images = _read_cached(path, shape)
    if images is None:
        images = render_images(world, split, per_class, domain)
        _write_cached(path, images, world_key(world, split, domain, per_class))
    return images


class ShapesDataset:
    """``per_class`` images of every class of a world, in one domain and split; items are (image, label).

    The images are rendered together on first use (``images()`` or the first item) and kept in memory and in the
    cache (:func:`load_world`); an item is ``Image.fromarray`` of its row, the same pixels ``world.image`` draws."""

    def __init__(
        self,
        world: ShapesWorld,
        split: str,
        per_class: int,
        domain: str = "renditions",
        transform: Callable | None = None,
    ):
        if split not in SPLITS or domain not in DOMAINS:
            raise ValueError(f"split must be one of {SPLITS} and domain one of {DOMAINS}")
        self.world, self.split, self.domain, self.per_class = world, split, domain, per_class
        self.transform = transform
        self.targets = np.repeat(np.arange(world.num_classes), per_class)
        self.class_names = world.class_names
        self._images: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.targets)

    def images(self) -> np.ndarray:
        """All the images as one uint8 array ``[N, H, W, 3]``, in item order (loaded or rendered on first use)."""
        if self._images is None:
            self._images = load_world(self.world, self.split, self.per_class, self.domain)
        return self._images

    def _item(self, i: int) -> tuple[int, int]:
        """(label, index) of item ``i``; negative items count from the end."""
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"item {i} of a data set of {len(self)} images")
        return divmod(i, self.per_class)

    def __getitem__(self, i: int):
        label, index = self._item(i)
        image = Image.fromarray(self.images()[label * self.per_class + index])
        return (self.transform(image) if self.transform is not None else image), int(label)

    def digest(self, i: int) -> bytes:
        """A 16-byte digest of item ``i``'s pixels, computed without drawing them: a hash of the world, split,
        domain, (class, index) and the renderer's code. Two data sets that hold the same image (whatever their
        ``per_class``) give it the same digest; different images get different ones."""
        label, index = self._item(i)
        parts = [repr(self.world), self.split, self.domain, str(label), str(index), renderer_digest()]
        return hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).digest()
