"""The offline world rendered once per configuration and kept in the cache ($SECA_CACHE/worlds/) as arrays with
their digest: the same pixels as drawing, loads without drawing, damage and unwritable folders survived in one line,
and per-image digests computed without drawing."""

import json

import numpy as np
import pytest

from seca.data import shapes
from seca.data.shapes import RenditionProfile, ShapesDataset, ShapesWorld

WORLD = ShapesWorld(colors=2, shapes=2, image_size=16, seed=3)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SECA_CACHE", str(tmp_path))
    return tmp_path / "worlds"


def no_drawing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("drew an image that should have come from the cache")

    monkeypatch.setattr(ShapesWorld, "image", refuse)


def assert_drawn_pixels(dataset: ShapesDataset, world: ShapesWorld = WORLD):
    drawn = [
        world.image(label, index, dataset.domain, dataset.split)
        for label in range(world.num_classes)
        for index in range(dataset.per_class)
    ]
    assert len(dataset) == len(drawn)
    for i, expected in enumerate(drawn):
        image, label = dataset[i]
        assert image.mode == expected.mode == "RGB"
        assert image.size == expected.size
        assert image.tobytes() == expected.tobytes()
        assert label == i // dataset.per_class == dataset.targets[i]


def cached_files(cache):
    return sorted(p.name for p in cache.glob("*.npy"))


def test_pixels_identical_cold_and_warm_and_the_second_load_draws_nothing(cache, monkeypatch, capsys):
    cold = ShapesDataset(WORLD, "test", 3)
    assert_drawn_pixels(cold)
    (npy,) = cache.glob("*.npy")
    meta = json.loads(npy.with_suffix(".json").read_text())
    assert meta["shape"] == [12, 16, 16, 3] and meta["key"]["split"] == "test" and len(meta["sha256"]) == 64
    assert sorted(p.name for p in cache.iterdir()) == sorted([npy.name, npy.with_suffix(".json").name])  # no tmp

    warm = ShapesDataset(WORLD, "test", 3)  # a new object, as in a new process
    drawn = [WORLD.image(k // 3, k % 3, "renditions", "test").tobytes() for k in range(12)]
    no_drawing(monkeypatch)
    assert [warm[i][0].tobytes() for i in range(len(warm))] == drawn
    assert warm.images().dtype == np.uint8 and warm.images().shape == (12, 16, 16, 3)
    assert capsys.readouterr().err == ""


def test_transform_is_applied_and_settable_after_construction(cache):
    dataset = ShapesDataset(WORLD, "train", 2, domain="clean")
    dataset.transform = lambda image: np.asarray(image).sum()
    value, label = dataset[5]
    assert value == np.asarray(WORLD.image(2, 1, "clean", "train")).sum() and label == 2
    assert dataset[-1][1] == 3
    with pytest.raises(IndexError):
        dataset[len(dataset)]


@pytest.mark.parametrize("damage", ["flip", "header", "truncate", "garbage", "sidecar"])
def test_a_damaged_file_is_rendered_again_with_one_line(cache, capsys, damage):
    ShapesDataset(WORLD, "test", 3).images()
    (npy,) = cache.glob("*.npy")
    data = bytearray(npy.read_bytes())
    if damage == "flip":
        data[-5] ^= 0xFF  # a pixel: the array loads, its digest does not match
    elif damage == "header":
        data[20] ^= 0xFF  # inside the .npy header (its dtype, order or shape)
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray(b"not an array at all")
    if damage == "sidecar":
        npy.with_suffix(".json").write_text("{ not json")
    else:
        npy.write_bytes(bytes(data))
    capsys.readouterr()

    again = ShapesDataset(WORLD, "test", 3)
    assert_drawn_pixels(again)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is damaged" in err[0] and "rendering it again" in err[0]
    # the file was rewritten whole: the next load is silent and draws nothing
    ShapesDataset(WORLD, "test", 3).images()
    assert capsys.readouterr().err == ""


def test_an_unwritable_cache_works_from_memory_with_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SECA_CACHE", str(blocker / "cache"))  # mkdir fails under a regular file
    train, test = ShapesDataset(WORLD, "train", 2), ShapesDataset(WORLD, "test", 3)
    assert_drawn_pixels(train)
    assert_drawn_pixels(test)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not be kept in the cache" in err[0]
    assert "Traceback" not in err[0]


def test_every_setting_names_another_file(cache):
    variants = [
        ShapesDataset(WORLD, "test", 3),
        ShapesDataset(WORLD, "train", 3),
        ShapesDataset(WORLD, "test", 3, domain="clean"),
        ShapesDataset(WORLD, "test", 2),
        ShapesDataset(ShapesWorld(colors=2, shapes=2, image_size=16, seed=4), "test", 3),
        ShapesDataset(ShapesWorld(colors=2, shapes=2, image_size=12, seed=3), "test", 3),
        ShapesDataset(ShapesWorld(colors=2, shapes=2, image_size=16, seed=3, renditions=RenditionProfile()), "test", 3),
    ]
    for dataset in variants:
        dataset.images()
    assert len(cached_files(cache)) == len(variants)


def test_the_renderer_code_is_part_of_the_key(cache, monkeypatch):
    before = shapes.world_file(WORLD, "test", "renditions", 3)
    monkeypatch.setattr(shapes, "renderer_digest", lambda: "0" * 64)
    assert shapes.world_file(WORLD, "test", "renditions", 3) != before


def test_digests_name_images_without_drawing_them(cache, monkeypatch):
    few, more = ShapesDataset(WORLD, "test", 3), ShapesDataset(WORLD, "test", 5)
    clean = ShapesDataset(WORLD, "test", 3, domain="clean")
    train = ShapesDataset(WORLD, "train", 3)
    no_drawing(monkeypatch)
    digests = [few.digest(i) for i in range(len(few))]
    assert all(isinstance(d, bytes) and len(d) == 16 for d in digests)
    assert len(set(digests)) == len(digests)
    # item i of `few` is (label i // 3, index i % 3); the same image in `more` is item label * 5 + index
    assert digests == [more.digest((i // 3) * 5 + i % 3) for i in range(len(few))]
    assert not set(digests) & {clean.digest(i) for i in range(len(clean))}
    assert not set(digests) & {train.digest(i) for i in range(len(train))}
    other = ShapesDataset(ShapesWorld(colors=2, shapes=2, image_size=16, seed=4), "test", 3)
    assert not set(digests) & {other.digest(i) for i in range(len(other))}
    assert few._images is None  # nothing was loaded or drawn
