"""The fine-grained data sets (cub200, cars196, aircraft): miniatures written here in their official on-disk layouts
and in C3Box's train/val folders, loaded, refused in one line when malformed, and run for 2 tasks on the tiny CLIP."""

import json
import sys

import numpy as np
import pytest
from PIL import Image

from seca.data.sets import load_dataset
from seca.engine.configure import data_config
from seca.errors import SecaError
from tests.conftest import FAST_RUN

# a few real classes of each data set, in their official order
CUB = [
    f"00{k + 1}.{name}"
    for k, name in enumerate(
        [
            "Black_footed_Albatross",
            "Laysan_Albatross",
            "Sooty_Albatross",
            "Groove_billed_Ani",
            "Crested_Auklet",
            "Least_Auklet",
        ]
    )
]
CARS = [
    *("AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012", "Acura TL Type-S 2008"),
    *("Acura TSX Sedan 2012", "Acura Integra Type R 2001"),
]
AIRCRAFT = ["707-320", "727-200", "737-200", "A300B4", "F-16A/B", "F/A-18"]
TRAIN, TEST = 3, 2  # images per class


def _image(path, k, i):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (40 * k % 256, 30 * i % 256, 200)).save(path)


def _lines(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{a} {b}\n" for a, b in rows))


def write_cub(root, present=4, listed=6):
    """CUB_200_2011/ as the archive extracts it, its classes.txt listing ``listed`` classes (the 6 of CUB, then
    made-up ones), with images of the first ``present``."""
    base = root / "CUB_200_2011"
    more = [f"{k + 1:03d}.Bird_{k + 1}" for k in range(len(CUB), listed)]
    _lines(base / "classes.txt", [(k + 1, c) for k, c in enumerate(CUB + more)])
    images, labels, split = [], [], []
    for k, folder in enumerate(CUB):
        for i in range(TRAIN + TEST):
            image_id = len(images) + 1
            relative = f"{folder}/{folder[4:]}_{i:04d}_{k}.jpg"
            images.append((image_id, relative))
            labels.append((image_id, k + 1))
            split.append((image_id, int(i < TRAIN)))
            if k < present:
                _image(base / "images" / relative, k, i)
    _lines(base / "images.txt", images)
    _lines(base / "image_class_labels.txt", labels)
    _lines(base / "train_test_split.txt", split)
    return base


def _annotations(entries):
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    table = np.zeros((1, len(entries)), dtype=[(f, "O") for f in fields])
    for i, (file, label) in enumerate(entries):
        table[0, i] = (np.uint16(0), np.uint16(0), np.uint16(7), np.uint16(7), np.uint8(label), file)
    return {"annotations": table}


def write_cars(root, present=4, torchvision_layout=True):
    """Stanford Cars as distributed (cars_train/, cars_test/, devkit/*.mat, cars_test_annos_withlabels.mat), in
    torchvision's stanford_cars/ folder, listing 6 classes with images of the first ``present``."""
    scipy_io = pytest.importorskip("scipy.io")
    base = root / "stanford_cars" if torchvision_layout else root
    (base / "devkit").mkdir(parents=True)
    scipy_io.savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array(CARS, dtype=object).reshape(1, -1)})
    for split, count, annotations in (
        ("cars_train", TRAIN, base / "devkit" / "cars_train_annos.mat"),
        ("cars_test", TEST, base / "cars_test_annos_withlabels.mat"),
    ):
        entries = [(f"{k * 10 + i + 1:05d}.jpg", k + 1) for k in range(len(CARS)) for i in range(count)]
        for file, label in entries:
            if label <= present:
                _image(base / split / file, label, int(file[:5]))
        (base / split).mkdir(exist_ok=True)
        scipy_io.savemat(annotations, _annotations(entries))
    return base


def write_aircraft(root, present=4):
    """fgvc-aircraft-2013b/data/ as the archive extracts it, listing 6 variants with images of the first ``present``."""
    data = root / "fgvc-aircraft-2013b" / "data"
    data.mkdir(parents=True)
    (data / "variants.txt").write_text("".join(f"{v}\n" for v in AIRCRAFT))
    for split, count in (("trainval", TRAIN), ("test", TEST)):
        first = 1000000 + 10 * (split == "test")
        rows = [(str(first + 100 * k + i), v) for k, v in enumerate(AIRCRAFT) for i in range(count)]
        _lines(data / f"images_variant_{split}.txt", rows)
        for image_id, variant in rows:
            if AIRCRAFT.index(variant) < present:
                _image(data / "images" / f"{image_id}.jpg", AIRCRAFT.index(variant), int(image_id[-2:]))
    return data.parent


def write_c3box(root, folders):
    """C3Box's layout: root/train/<class>/ and root/val/<class>/."""
    for k, folder in enumerate(folders):
        for i in range(TRAIN + TEST):
            _image(root / ("train" if i < TRAIN else "val") / folder / f"{i}.jpg", k, i)
    return root


WRITE = {"cub200": write_cub, "cars196": write_cars, "aircraft": write_aircraft}
NAMES = {
    "cub200": ["Black footed Albatross", "Laysan Albatross", "Sooty Albatross", "Groove billed Ani"],
    "cars196": CARS[:4],
    "aircraft": AIRCRAFT[:4],
}


def load(name, root, **settings):
    return load_dataset(data_config(dataset=name, root=str(root), **settings))


def one_line(name, root, **settings):
    with pytest.raises(SecaError) as info:
        load(name, root, **settings)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# ---- the official layouts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WRITE)
def test_the_official_layout_loads_with_its_split_and_names(name, tmp_path):
    base = WRITE[name](tmp_path, present=6)
    data = load(name, base)
    assert data.num_classes == 6 and data.split == "official train/test lists" and data.names == "official"
    assert data.class_names[:4] == NAMES[name] and data.notes == []
    assert len(data.train) == 6 * TRAIN and len(data.test) == 6 * TEST
    assert sorted(set(data.train.targets.tolist())) == list(range(6))
    image, label = data.test[0]
    assert isinstance(image, Image.Image) and label == int(data.test.targets[0])
    # C3Box's names are the official ones, cleaned by the same rule
    assert load(name, base, names="c3box").class_names == data.class_names


@pytest.mark.parametrize("name", WRITE)
def test_a_folder_with_some_of_the_classes_loads_them_and_says_so(name, tmp_path):
    base = WRITE[name](tmp_path, present=4)
    data = load(name, tmp_path)  # the archive's parent folder works as well
    assert data.class_names == NAMES[name] and data.num_classes == 4
    assert len(data.train) == 4 * TRAIN and len(data.test) == 4 * TEST
    assert len(data.notes) == 1 and "holds 4 of its 6 classes" in data.notes[0] and name in data.notes[0]
    assert load(name, base).class_names == NAMES[name]


@pytest.mark.parametrize("name", WRITE)
def test_a_folder_with_some_images_of_every_class_says_so(name, tmp_path):
    WRITE[name](tmp_path, present=6)
    victim = sorted(p for p in tmp_path.rglob("*.jpg"))[0]
    victim.unlink()
    data = load(name, tmp_path)
    assert data.num_classes == 6 and len(data.train) + len(data.test) == 6 * (TRAIN + TEST) - 1
    assert len(data.notes) == 1 and f"{6 * (TRAIN + TEST) - 1} of its {6 * (TRAIN + TEST)} images" in data.notes[0]


# the test images of the second class of each miniature
SECOND_CLASS_TEST = {
    "cub200": [f"CUB_200_2011/images/002.Laysan_Albatross/Laysan_Albatross_{i:04d}_1.jpg" for i in (3, 4)],
    "cars196": ["stanford_cars/cars_test/00011.jpg", "stanford_cars/cars_test/00012.jpg"],
    "aircraft": ["fgvc-aircraft-2013b/data/images/1000110.jpg", "fgvc-aircraft-2013b/data/images/1000111.jpg"],
}


@pytest.mark.parametrize("name", WRITE)
def test_a_class_without_test_images_is_refused_in_one_line(name, tmp_path):
    WRITE[name](tmp_path, present=6)
    for path in SECOND_CLASS_TEST[name]:
        (tmp_path / path).unlink()
    message = one_line(name, tmp_path)
    assert "has training images but no test images" in message and NAMES[name][1] in message


@pytest.mark.parametrize("name", WRITE)
def test_a_folder_without_the_data_set_says_how_to_obtain_it(name, tmp_path):
    (tmp_path / "other").mkdir()
    message = one_line(name, tmp_path)
    assert f"does not hold {name}" in message
    assert "not a folder" in one_line(name, tmp_path / "absent")
    WRITE[name](tmp_path / "empty", present=0)
    assert "holds none of the images" in one_line(name, tmp_path / "empty")


# ---- malformed files, one line each --------------------------------------------------------------------------


def test_malformed_cub_lists_are_refused_in_one_line(tmp_path):
    base = write_cub(tmp_path)
    (base / "train_test_split.txt").write_text("1 1\n2 maybe\n")
    assert "image 2 is marked 'maybe'" in one_line("cub200", base)
    (base / "train_test_split.txt").write_text("1\n")
    assert "train_test_split.txt, line 1: expected" in one_line("cub200", base)
    write_cub(tmp_path / "b")
    base = tmp_path / "b" / "CUB_200_2011"
    (base / "image_class_labels.txt").write_text("1 201\n")
    assert "class id 201, which classes.txt does not list" in one_line("cub200", base)
    (base / "image_class_labels.txt").write_text("1 one\n")
    assert "'one' is not a number" in one_line("cub200", base)
    (base / "image_class_labels.txt").unlink()
    assert "image_class_labels.txt is missing" in one_line("cub200", base)


def test_malformed_cars_files_are_refused_in_one_line(tmp_path, monkeypatch):
    base = write_cars(tmp_path)
    (base / "cars_test_annos_withlabels.mat").write_bytes(b"not a MATLAB file")
    assert "cannot read" in one_line("cars196", tmp_path) and "as a MATLAB file" in one_line("cars196", tmp_path)
    (base / "cars_test_annos_withlabels.mat").unlink()
    assert "lacks cars_test_annos_withlabels.mat" in one_line("cars196", tmp_path)
    import scipy.io

    scipy.io.savemat(base / "cars_test_annos_withlabels.mat", _annotations([("00001.jpg", 197)]))
    assert "has the class 197; cars_meta.mat has 1..6" in one_line("cars196", tmp_path)
    scipy.io.savemat(base / "cars_test_annos_withlabels.mat", {"boxes": np.zeros(3)})
    assert "holds no 'annotations'" in one_line("cars196", tmp_path)
    # without scipy: what to install, in one line
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    assert "pip install scipy" in one_line("cars196", tmp_path)


def test_the_original_cars_devkit_layout_loads_too(tmp_path):
    write_cars(tmp_path, present=6, torchvision_layout=False)
    (tmp_path / "cars_test_annos_withlabels.mat").rename(tmp_path / "devkit" / "cars_test_annos_withlabels.mat")
    data = load("cars196", tmp_path)
    assert data.class_names == CARS and len(data.test) == 6 * TEST


def test_the_cars_miniature_reads_the_same_with_torchvision(tmp_path):
    from torchvision.datasets import StanfordCars

    write_cars(tmp_path, present=6)
    data, theirs = load("cars196", tmp_path), StanfordCars(str(tmp_path), split="test")
    assert theirs.classes == data.class_names
    assert [label for _, label in theirs._samples] == data.test.targets.tolist()


def test_malformed_aircraft_lists_are_refused_in_one_line(tmp_path):
    base = write_aircraft(tmp_path)
    lists = base / "data" / "images_variant_test.txt"
    lists.write_text("1000010 Concorde\n")
    assert "has the variant 'Concorde', which variants.txt does not list" in one_line("aircraft", base)
    lists.write_text("1000010\n")
    assert "images_variant_test.txt, line 1: expected '<image id> <variant>'" in one_line("aircraft", base)
    lists.unlink()
    assert "images_variant_test.txt is missing" in one_line("aircraft", base)


def test_aircraft_downloads_with_torchvision_and_says_when_it_cannot(tmp_path, monkeypatch):
    import torchvision.datasets.fgvc_aircraft as reader

    fetched = []

    def fake_download(url, root, *args, **kwargs):
        fetched.append(url)
        write_aircraft(tmp_path / "data", present=6)

    monkeypatch.setattr(reader, "download_and_extract_archive", fake_download)
    data = load("aircraft", tmp_path / "data", download=True)
    assert fetched[0].endswith("fgvc-aircraft-2013b.tar.gz") and data.class_names == AIRCRAFT
    assert load("aircraft", tmp_path / "data", download=True).num_classes == 6 and len(fetched) == 1

    def offline(url, root, *args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(reader, "download_and_extract_archive", offline)
    message = one_line("aircraft", tmp_path / "elsewhere", download=True)
    assert "could not download FGVC-Aircraft" in message and "Network is unreachable" in message


# ---- C3Box's train/val folders -------------------------------------------------------------------------------

# C3Box's folders for 4 classes of each miniature, and the classes they give in sorted folder order
C3BOX = {
    "cub200": (CUB[:4], NAMES["cub200"]),
    "cars196": (
        [c.replace(" ", "_") for c in CARS[2:6]],
        ["Acura Integra Type R 2001", "Acura TL Sedan 2012", "Acura TL Type-S 2008", "Acura TSX Sedan 2012"],
    ),
    "aircraft": (["737-200", "A300B4", "F-16A_B", "F_A-18"], ["737-200", "A300B4", "F-16A B", "F A-18"]),
}
TOTAL = {"cub200": 200, "cars196": 196, "aircraft": 100}


@pytest.mark.parametrize("name", WRITE)
def test_c3box_folders_load_in_sorted_folder_order(name, tmp_path):
    folders, names = C3BOX[name]
    write_c3box(tmp_path / name, folders)
    data = load(name, tmp_path)  # the parent of C3Box's folder works too
    assert data.split == "C3Box train/val folders" and data.class_names == names
    assert len(data.train) == 4 * TRAIN and len(data.test) == 4 * TEST
    assert data.train.targets.tolist() == [k for k in range(4) for _ in range(TRAIN)]
    assert len(data.notes) == 1 and f"{name}: the folder holds 4 of its {TOTAL[name]} classes" in data.notes[0]
    # a class folder in train/ with none in val/: one line naming it
    write_c3box(tmp_path / "more", folders[:2])
    _image(tmp_path / "more" / "train" / folders[2] / "0.jpg", 2, 0)
    message = one_line(name, tmp_path / "more")
    third = {"cub200": "Sooty Albatross", "cars196": "Acura TSX Sedan 2012", "aircraft": "F-16A B"}[name]
    assert "has training images but no test images" in message and f"'{third}'" in message


def test_c3box_names_for_the_c3box_layout_follow_the_folders(tmp_path):
    write_c3box(tmp_path, CUB)
    data = load("cub200", tmp_path, names="c3box")
    assert data.names == "c3box" and data.class_names[:2] == ["Black footed Albatross", "Laysan Albatross"]
    names_file = tmp_path / "labels.json"
    names_file.write_text(json.dumps({"cub200": [f"bird {k}" for k in range(6)]}))
    data = load("cub200", tmp_path, names_file=str(names_file))
    assert data.names == "file" and data.class_names[5] == "bird 5"


# ---- two tasks on the tiny CLIP ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WRITE)
def test_a_miniature_runs_two_tasks(name, tmp_path):
    from seca.cli import main

    root = tmp_path / "data"
    WRITE[name](root, present=4)
    out = tmp_path / "run"
    args = ["run", "cpu-small", "--out", str(out), "--set", f"data.dataset={name}", "--set", f"data.root={root}"]
    args += ["--set", "scenario.order=identity", "--set", "scenario.first_task=2", "--set", "scenario.increment=2"]
    assert main(args + FAST_RUN) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["acc_matrix"]) == 2 and results["tasks"] == [[0, 1], [2, 3]]
    assert results["dataset"] == name and results["split"] == "official train/test lists"
    assert results["class_names"] == NAMES[name]


def test_a_cub_folder_of_6_of_its_200_classes_runs_the_lamda_protocol(tmp_path, capsys):
    from seca.cli import main

    write_cub(tmp_path / "data", present=6, listed=200)
    out = tmp_path / "run"
    args = [
        "run",
        "cpu-small",
        "--out",
        str(out),
        "--set",
        "data.dataset=cub200",
        "--set",
        f"data.root={tmp_path}/data",
    ]
    args += ["--set", "scenario.order=lamda", "--set", "scenario.first_task=3", "--set", "scenario.increment=3"]
    assert main(args + FAST_RUN) == 0
    assert "cub200: the folder holds 6 of its 200 classes" in capsys.readouterr().out
    order = np.random.RandomState(1993).permutation(6).tolist()  # PyCIL's and C3Box's shuffle of the 6 class ids
    results = json.loads((out / "results.json").read_text())
    assert results["tasks"] == [order[:3], order[3:]] and len(results["acc_matrix"]) == 2
