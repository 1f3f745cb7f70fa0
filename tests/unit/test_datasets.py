"""Data sets: the generated shapes world, image folders, and clear errors when data is missing."""

import numpy as np
import pytest
from PIL import Image

from seca.data.sets import load_dataset
from seca.data.sets.shapes import ShapesConfig
from seca.data.shapes import RenditionProfile, ShapesWorld, class_names
from seca.engine.configure import data_config
from seca.errors import SecaError


def test_shapes_world_is_deterministic_to_the_byte():
    a, b = ShapesWorld(seed=5), ShapesWorld(seed=5)
    for domain in ("clean", "renditions"):
        for label, index in [(0, 0), (57, 3), (99, 12)]:
            assert a.image(label, index, domain).tobytes() == b.image(label, index, domain).tobytes()
    assert a.image(3, 1).tobytes() != ShapesWorld(seed=6).image(3, 1).tobytes()
    assert a.image(3, 1, split="train").tobytes() != a.image(3, 1, split="test").tobytes()


def test_items_do_not_depend_on_access_order():
    data = load_dataset(
        data_config(dataset="shapes", shapes=ShapesConfig(colors=2, shapes=3, train_per_class=4, test_per_class=2))
    )
    forward = [np.asarray(data.train[i][0]) for i in range(len(data.train))]
    backward = [np.asarray(data.train[i][0]) for i in reversed(range(len(data.train)))][::-1]
    assert all((f == b).all() for f, b in zip(forward, backward))
    assert data.train.targets.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4


def test_class_names_compose_colour_and_shape():
    names = class_names(10, 10)
    assert len(names) == 100 and names[0] == "red circle" and names[13] == "orange star"


def test_shapes_images_have_the_class_colour():
    world = ShapesWorld(image_size=64)
    red = np.asarray(world.image(0, 0, "clean")).reshape(-1, 3).astype(int)  # red circle
    blue = np.asarray(world.image(50, 0, "clean")).reshape(-1, 3).astype(int)  # blue circle
    assert ((red[:, 0] > 150) & (red[:, 1] < 90)).sum() > 200
    assert ((blue[:, 2] > 150) & (blue[:, 0] < 90)).sum() > 200


def test_a_rendition_profile_changes_the_renditions_only():
    plain = ShapesWorld(seed=2)
    outlines = ShapesWorld(seed=2, renditions=RenditionProfile(styles=(("outline", 1.0),), busy_backgrounds=False))
    assert plain.image(7, 0, "clean").tobytes() == outlines.image(7, 0, "clean").tobytes()
    # an outline leaves the middle of a large shape showing the background
    big = ShapesWorld(
        seed=2,
        renditions=RenditionProfile(
            styles=(("outline", 1.0),), hue_shift=0, busy_backgrounds=False, scales=(0.45, 0.48)
        ),
    )
    filled = ShapesWorld(seed=2, renditions=RenditionProfile(hue_shift=0, busy_backgrounds=False, scales=(0.45, 0.48)))
    red_square = 1

    def centre(world):
        return np.asarray(world.image(red_square, 0)).astype(int)[26:38, 26:38].mean((0, 1))

    assert centre(filled)[0] - centre(filled)[1] > 100  # red inside
    assert abs(centre(big)[0] - centre(big)[1]) < 60  # light background inside


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"styles": (("sketch", 1.0),)}, "distinct styles"),
        ({"styles": (("filled", 0.5), ("outline", 0.3))}, "sum to 1"),
        ({"blur": 1.5}, "chances"),
        ({"scales": (0.3, 0.2)}, "scales"),
    ],
)
def test_a_bad_rendition_profile_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RenditionProfile(**kwargs)


def test_imagefolder_takes_class_names_from_folders(tmp_path):
    for split in ("train", "test"):
        for name in ("sea_lion", "zebra"):
            (tmp_path / split / name).mkdir(parents=True)
            Image.new("RGB", (3, 3)).save(tmp_path / split / name / "a.png")
    data = load_dataset(data_config(dataset="imagefolder", root=str(tmp_path)))
    assert data.class_names == ["sea lion", "zebra"]
    assert data.train.targets.tolist() == [0, 1]


@pytest.mark.parametrize(
    "dataset, root, message",
    [
        ("imagenet-r", None, "data.root is not set"),
        ("imagenet-r", "/nonexistent/place", "is not a folder"),
        ("imagenet-q", None, "unknown data set 'imagenet-q'"),
    ],
)
def test_missing_data_is_a_clear_error(dataset, root, message):
    with pytest.raises(SecaError, match=message):
        load_dataset(data_config(dataset=dataset, root=root))


def test_folder_without_split_says_how_to_make_one(tmp_path):
    with pytest.raises(SecaError, match="seca prepare imagenet-a"):
        load_dataset(data_config(dataset="imagenet-a", root=str(tmp_path)))


def test_cifar100_absent_without_download(tmp_path):
    with pytest.raises(SecaError, match="data.download=true"):
        load_dataset(data_config(dataset="cifar100", root=str(tmp_path)))
