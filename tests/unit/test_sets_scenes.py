"""Food-101, SUN397 and UCF-101: miniatures in each one's official on-disk layout and in C3Box's train/ val/ folders,
written here (a few classes, a few tiny JPEGs), loaded, refused in one line when malformed, and run for 2 tasks."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from seca.cli import main
from seca.data.sets import load_dataset
from seca.data.sets.food101 import CLASSES as FOOD_CLASSES
from seca.data.sets.sun397 import CLASSES as SUN_CLASSES
from seca.data.sets.sun397 import Sun397Config, first_level
from seca.data.sets.ucf101 import CLASSES as UCF_CLASSES
from seca.data.sets.ucf101 import Ucf101Config, class_name
from seca.engine.configure import data_config
from seca.errors import SecaError
from tests.conftest import FAST_RUN


def jpeg(path, seed):
    """A tiny JPEG whose colour depends on ``seed`` (its class), with a little noise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = np.array([(seed * 70) % 256, (seed * 130) % 256, (seed * 190) % 256], dtype=np.int16)
    pixels = np.clip(base + rng.integers(-20, 21, (12, 12, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def load(dataset, root, **values):
    return load_dataset(data_config(dataset=dataset, root=str(root), **values))


def refused(dataset, root, match, **values):
    """The load is a SecaError of one line matching ``match``."""
    with pytest.raises(SecaError, match=match) as error:
        load(dataset, root, **values)
    assert "\n" not in str(error.value)
    return str(error.value)


def c3box(root, folders, train=3, test=2):
    """C3Box's layout: root/train/<folder>/ and root/val/<folder>/."""
    for k, folder in enumerate(folders):
        for i in range(train):
            jpeg(root / "train" / folder / f"{i}.jpg", k)
        for i in range(test):
            jpeg(root / "val" / folder / f"{i}.jpg", k)
    return root


def run_two_tasks(tmp_path, dataset, root):
    out = tmp_path / "run"
    code = main(
        [
            "run",
            "cpu-small",
            "--out",
            str(out),
            *FAST_RUN,
            "--set",
            f"data.dataset={dataset}",
            "--set",
            f"data.root={root}",
            "--set",
            "scenario.order=identity",
            "--set",
            "scenario.first_task=2",
            "--set",
            "scenario.increment=2",
            "--set",
            "train.epochs=1",
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["acc_matrix"]) == 2 and results["tasks"] == [[0, 1], [2, 3]]
    return results


# ---- Food-101 -------------------------------------------------------------------------------------------------

FOOD4 = ["apple_pie", "baklava", "cheese_plate", "cheesecake"]


def food(parent, listed=FOOD4, present=FOOD4, train=3, test=2):
    """food-101/ as the archive has it: meta/{classes,labels,train,test}.txt and images/<class>/<id>.jpg; the lists
    name ``train`` + ``test`` images of every ``listed`` class, the images exist for the ``present`` ones."""
    root = parent / "food-101"
    write(root / "meta" / "classes.txt", listed)
    write(root / "meta" / "labels.txt", [c.replace("_", " ").capitalize() for c in listed])
    lists = {"train": [], "test": []}
    for k, cls in enumerate(listed):
        for i in range(train + test):
            split = "train" if i < train else "test"
            lists[split].append(f"{cls}/{1000 * k + i}")
            if cls in present:
                jpeg(root / "images" / cls / f"{1000 * k + i}.jpg", k)
    for split, lines in lists.items():
        write(root / "meta" / f"{split}.txt", lines)
    return root


def test_food101_reads_the_archive_layout(tmp_path):
    root = food(tmp_path)
    data = load("food101", root)
    assert data.class_names == ["apple pie", "baklava", "cheese plate", "cheesecake"]
    assert (len(data.train), len(data.test)) == (12, 8)
    assert data.train.targets.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert data.split == "official train/test lists"
    assert (data.names, data.notes) == ("official", [])
    image, label = data.test[7]
    assert image.size == (12, 12) and label == 3
    assert load("food101", root, names="c3box").class_names == data.class_names  # C3Box's are the official names


def test_food101_root_may_be_the_archives_parent(tmp_path):
    food(tmp_path / "datasets")
    assert load("food101", tmp_path / "datasets").num_classes == 4


def test_food101_holding_some_classes_and_images_says_so(tmp_path):
    root = food(tmp_path, listed=FOOD_CLASSES, present=["baklava", "apple_pie", "waffles"])
    (root / "images" / "waffles" / f"{100_000}.jpg").unlink()  # a listed training image gone
    data = load("food101", root)
    assert data.class_names == ["apple pie", "baklava", "waffles"]
    assert (len(data.train), len(data.test)) == (8, 6)
    assert data.notes[0].startswith("food101: the folder holds 3 of its 101 classes")
    assert "holds 14 of its 15 listed images" in data.notes[1]


def test_food101_reads_c3box_folders(tmp_path):
    c3box(tmp_path / "food", ["waffles", "apple_pie", "cheesecake", "cheese_plate"])
    data = load("food101", tmp_path)  # the parent of train/ and val/
    assert data.class_names == ["apple pie", "cheese plate", "cheesecake", "waffles"]  # sorted folders, as ImageFolder
    assert (len(data.train), len(data.test), data.split) == (12, 8, "C3Box train/val folders")
    assert data.notes == [data.notes[0]] and "4 of its 101 classes" in data.notes[0]


@pytest.mark.parametrize(
    "spoil, match",
    [
        (lambda r: write(r / "meta" / "train.txt", ["apple_pie/1", "apple_pie 2"]), r"train.txt line 2: 'apple_pie 2'"),
        (lambda r: write(r / "meta" / "test.txt", ["pizza/1"]), "the class 'pizza' is not in meta/classes.txt"),
        (lambda r: (r / "meta" / "test.txt").unlink(), "test.txt is missing"),
        (lambda r: [p.unlink() for p in (r / "images" / "baklava").glob("100[34].jpg")], "baklava holds none of"),
        (lambda r: [p.rename(r / f"{p.name}.gone") for p in (r / "images").iterdir()], "holds none of the 4 class"),
    ],
)
def test_food101_refuses_bad_input_in_one_line(tmp_path, spoil, match):
    root = food(tmp_path)
    spoil(root)
    refused("food101", root, match)


def test_food101_refuses_a_c3box_folder_of_another_data_set(tmp_path):
    c3box(tmp_path, ["ApplyEyeMakeup", "Archery"])
    refused("food101", tmp_path, "ApplyEyeMakeup is not a Food-101 class")


def test_food101_downloads_with_torchvision_when_asked(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    class FakeReader:  # torchvision's Food101 with download=True, without the network: it extracts a miniature
        def __init__(self, root, split, download):
            calls.append((root, split, download))
            food(tmp_path / "dl")

    monkeypatch.setattr(torchvision.datasets, "Food101", FakeReader)
    (tmp_path / "dl").mkdir()
    refused("food101", tmp_path / "dl", "does not hold food101 as distributed", download=False)
    data = load("food101", tmp_path / "dl", download=True)
    assert calls == [(str(tmp_path / "dl"), "test", True)] and data.num_classes == 4


def test_food101_runs_two_tasks(tmp_path):
    results = run_two_tasks(tmp_path, "food101", food(tmp_path / "data").parent)
    assert results["class_names"] == ["apple pie", "baklava", "cheese plate", "cheesecake"]


# ---- SUN397 -----------------------------------------------------------------------------------------------------

SUN4 = ["a/abbey", "b/balcony/exterior", "b/balcony/interior", "b/bazaar/outdoor"]


def sun(parent, listed=SUN4, present=SUN4, per_split=2, partitions=(1,), beside=False):
    """SUN397/ as the archive has it (ClassName.txt, <letter>/<category>/sun_*.jpg) and Partitions/ (inside it, or
    beside it with ``beside``) with Training_NN.txt and Testing_NN.txt of ``per_split`` images a listed class."""
    root = parent / "SUN397"
    write(root / "ClassName.txt", [f"/{c}" for c in listed])
    where = parent / "Partitions" if beside else root / "Partitions"
    for number in partitions:
        lists = {"Training": [], "Testing": []}
        for k, cls in enumerate(listed):
            for i in range(2 * per_split):
                name = f"sun_{k:03d}{i:02d}{number:02d}.jpg"
                lists["Training" if i < per_split else "Testing"].append(f"/{cls}/{name}")
                if cls in present:
                    jpeg(root / cls / name, k)
        for split, lines in lists.items():
            write(where / f"{split}_{number:02d}.txt", lines)
    return root


def test_sun397_reads_the_archive_layout_and_its_partitions(tmp_path):
    root = sun(tmp_path, per_split=3, partitions=(1, 2))
    data = load("sun397", root)
    assert data.class_names == ["abbey", "exterior balcony", "interior balcony", "outdoor bazaar"]
    assert (len(data.train), len(data.test), data.notes) == (12, 12, [])
    assert data.train.targets.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert data.split == "official partition 01 (Training_01/Testing_01)"
    second = load("sun397", root, sun397=Sun397Config(partition=2))
    assert second.split.startswith("official partition 02")
    assert not {p.name for p in second.train.files} & {p.name for p in data.train.files}
    refused("sun397", root, "Training_03.txt is missing.*Partitions.zip", sun397=Sun397Config(partition=3))
    refused("sun397", root, "no rule gives C3Box's class names of sun397", names="c3box")


def test_sun397_partitions_may_lie_beside_it_and_root_may_be_the_parent(tmp_path):
    sun(tmp_path / "scenes", beside=True)
    write(tmp_path / "scenes" / "Partitions" / "ClassName.txt", [f"/{c}" for c in SUN4])  # as Partitions.zip has
    data = load("sun397", tmp_path / "scenes")  # not Partitions/, though it holds a ClassName.txt too
    assert data.num_classes == 4 and len(data.test) == 8


def test_sun397_holding_some_categories_says_so(tmp_path):
    classes = [c.lstrip("/") for c in SUN_CLASSES]
    root = sun(tmp_path, listed=classes, present=["a/abbey", "b/bazaar/indoor", "y/youth_hostel"])
    data = load("sun397", root)
    assert data.class_names == ["abbey", "indoor bazaar", "youth hostel"]
    assert len(data.notes) == 1 and data.notes[0].startswith("sun397: the folder holds 3 of its 397 classes")


def test_sun397_reads_c3box_folders_of_first_level_categories(tmp_path):
    root = c3box(tmp_path, ["bazaar", "abbey", "balcony", "airplane_cabin"])
    data = load("sun397", root)
    assert data.class_names == ["abbey", "airplane cabin", "balcony", "bazaar"]
    assert load("sun397", root, names="c3box").names == "c3box"
    assert data.split == "C3Box train/val folders" and "4 of its 362 first-level categories" in data.notes[0]
    assert len(first_level(SUN_CLASSES)) == 362


@pytest.mark.parametrize(
    "spoil, match",
    [
        (lambda r: write(r / "ClassName.txt", ["/a/abbey", "abbey"]), "ClassName.txt line 2: 'abbey' is not a new"),
        (
            lambda r: write(r / "Partitions" / "Testing_01.txt", ["/a/abbey/x.jpg", "/q/quarry/y.jpg"]),
            "Testing_01.txt line 2: the category '/q/quarry' is not in ClassName.txt",
        ),
        (lambda r: write(r / "Partitions" / "Training_01.txt", ["sun_a.jpg"]), "line 1: 'sun_a.jpg' is not '/<letter>"),
        (lambda r: [shutil.rmtree(r / letter) for letter in "ab"], "holds none of the 4 category folders"),
    ],
)
def test_sun397_refuses_bad_input_in_one_line(tmp_path, spoil, match):
    root = sun(tmp_path)
    spoil(root)
    refused("sun397", root, match)


def test_sun397_refuses_a_category_without_test_images(tmp_path):
    root = sun(tmp_path)
    write(root / "Partitions" / "Testing_01.txt", ["/a/abbey/sun_0000201.jpg"])  # abbey's first test image only
    refused("sun397", root, r"balcony/exterior holds none of the images that Testing_01.txt lists")


def test_sun397_runs_two_tasks(tmp_path):
    results = run_two_tasks(tmp_path, "sun397", sun(tmp_path / "data").parent)
    assert results["class_names"][:2] == ["abbey", "exterior balcony"]


# ---- UCF-101 ----------------------------------------------------------------------------------------------------

UCF4 = ["ApplyEyeMakeup", "HandstandPushups", "JumpingJack", "YoYo"]


def ucf(parent, listed=UCF4, present=UCF4, train=3, test=2):
    """ucf101/ as CoOp lays it out: UCF-101-midframes/<Class_In_Words>/<video>.jpg, with the official
    ucfTrainTestlist/ (classInd.txt, trainlist01.txt with class numbers, testlist01.txt without)."""
    root = parent / "ucf101"
    write(root / "ucfTrainTestlist" / "classInd.txt", [f"{k + 1} {c}" for k, c in enumerate(listed)])
    lists = {"train": [], "test": []}
    for k, cls in enumerate(listed):
        spelled = "HandStandPushups" if cls == "HandstandPushups" else cls  # as the video files spell it
        for i in range(train + test):
            video = f"v_{spelled}_g{i + 1:02d}_c01"
            split = "train" if i < train else "test"
            lists[split].append(f"{cls}/{video}.avi" + (f" {k + 1}" if split == "train" else ""))
            if cls in present:
                jpeg(root / "UCF-101-midframes" / "_".join(class_name(cls).split()) / f"{video}.jpg", k)
    for split, lines in lists.items():
        write(root / "ucfTrainTestlist" / f"{split}list01.txt", lines)
    return root


def test_ucf101_reads_midframes_with_the_official_split(tmp_path):
    root = ucf(tmp_path)
    data = load("ucf101", root)
    assert data.class_names == ["Apply Eye Makeup", "Handstand Pushups", "Jumping Jack", "Yo Yo"]
    assert (len(data.train), len(data.test), data.notes) == (12, 8, [])
    assert data.split == "official split 1 (trainlist01/testlist01)"
    assert data.train.files[3].as_posix().endswith("Handstand_Pushups/v_HandStandPushups_g01_c01.jpg")
    c3 = load("ucf101", root, names="c3box")
    assert (c3.class_names[1], c3.names) == ("Hand Stand Pushups", "c3box")
    refused("ucf101", root, "trainlist02.txt is missing", ucf101=Ucf101Config(split=2))


def test_ucf101_root_may_be_the_parent_and_may_hold_some_classes(tmp_path):
    ucf(tmp_path / "videos", listed=UCF_CLASSES, present=["YoYo", "Archery"])
    data = load("ucf101", tmp_path / "videos")
    assert data.class_names == ["Archery", "Yo Yo"] and data.train.targets.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.notes == [data.notes[0]] and "2 of its 101 classes" in data.notes[0]


def test_ucf101_reads_c3box_folders_in_their_order(tmp_path):
    root = c3box(tmp_path, ["Hammering", "HammerThrow", "JumpingJack", "JumpRope"])
    data = load("ucf101", root)
    assert data.class_names == ["Hammer Throw", "Hammering", "Jump Rope", "Jumping Jack"]  # ImageFolder's order
    assert data.split == "C3Box train/val folders" and "HammerThrow comes before Hammering" in data.notes[0]
    spaced = c3box(tmp_path / "spaced", ["Hand_Stand_Pushups", "Handstand_Walking"])
    assert load("ucf101", spaced, names="c3box").class_names == ["Hand Stand Pushups", "Handstand Walking"]
    assert "2 of its 101 classes" in load("ucf101", spaced).notes[0]


@pytest.mark.parametrize(
    "spoil, match",
    [
        (lambda r: write(r / "ucfTrainTestlist" / "classInd.txt", ["1 ApplyEyeMakeup", "3 YoYo"]), "line 2: '3 YoYo'"),
        (
            lambda r: write(r / "ucfTrainTestlist" / "trainlist01.txt", ["YoYo/v_YoYo_g01_c01.avi 1"]),
            "the class number 1 is not YoYo's \\(4\\)",
        ),
        (
            lambda r: write(r / "ucfTrainTestlist" / "testlist01.txt", ["Rowing/v_Rowing_g01_c01.avi"]),
            "the class 'Rowing' is not in classInd.txt",
        ),
        (lambda r: write(r / "ucfTrainTestlist" / "testlist01.txt", ["v_YoYo.avi"]), "is not '<Class>/<video>.avi"),
        (
            lambda r: write(r / "ucfTrainTestlist" / "testlist01.txt", ["YoYo/v_YoYo_g04_c01.avi"]),
            "Apply_Eye_Makeup holds none of the frames of the videos that testlist01.txt lists",
        ),
    ],
)
def test_ucf101_refuses_bad_input_in_one_line(tmp_path, spoil, match):
    root = ucf(tmp_path)
    spoil(root)
    refused("ucf101", root, match)


def test_ucf101_runs_two_tasks(tmp_path):
    results = run_two_tasks(tmp_path, "ucf101", ucf(tmp_path / "data").parent)
    assert results["class_names"] == ["Apply Eye Makeup", "Handstand Pushups", "Jumping Jack", "Yo Yo"]
