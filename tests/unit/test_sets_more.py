"""ObjectNet, TV100, Tiny ImageNet, ImageNet-100 and DomainNet: miniatures written here in their official on-disk
layouts (and in C3Box's train/val folders), prepared where the data set has no split, loaded, refused in one line when
malformed, and run for 2 tasks on the tiny CLIP."""

import json

import pytest
from PIL import Image

from seca.data.sets import DATASETS, load_dataset, prepare_dataset
from seca.data.sets._lists import IMAGENET_WNIDS, clip_imagenet_names
from seca.data.sets.imagenet100 import PODNET_100
from seca.engine.configure import data_config
from seca.errors import SecaError
from tests.conftest import FAST_RUN

TRAIN, TEST = 3, 2  # images per class in the split layouts


def _image(path, k, i, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (40 * k % 256, 30 * i % 256, 200)).save(path, fmt)


def _c3box(root, folders, suffix=".jpg"):
    """C3Box's layout: train/<class>/ and val/<class>/."""
    for k, folder in enumerate(folders):
        for i in range(TRAIN):
            _image(root / "train" / folder / f"{i}{suffix}", k, i)
        for i in range(TEST):
            _image(root / "val" / folder / f"v{i}{suffix}", k, i)
    return root


def _load(name, root, **values):
    return load_dataset(data_config(dataset=name, root=str(root), **values))


def _one_line(error):
    assert "\n" not in str(error.value)
    return str(error.value)


# ---- ObjectNet ------------------------------------------------------------------------------------------------

OBJECTNET = {"air_freshener": "Air freshener", "bills_money": "Bills (money)", "butchers_knife": "Butcher's knife"}
OBJECTNET |= {"coffee_french_press": "Coffee/French press", "zipper": "Zipper"}


def write_objectnet(raw, per_class=5):
    """objectnet-1.0/ as extracted: images/<folder>/*.png and mappings/folder_to_objectnet_name.json."""
    release = raw / "objectnet-1.0"
    for k, folder in enumerate(OBJECTNET):
        for i in range(per_class):
            _image(release / "images" / folder / f"{i:04x}.png", k, i)
    (release / "mappings").mkdir(parents=True)
    (release / "mappings" / "folder_to_objectnet_name.json").write_text(json.dumps(OBJECTNET))
    return raw


def test_objectnet_prepared_from_the_release_keeps_c3box_classes_or_all(tmp_path):
    raw = write_objectnet(tmp_path / "raw")
    with pytest.raises(SecaError, match="seca prepare objectnet") as e:  # the release has no split
        _load("objectnet", raw)
    _one_line(e)
    manifest = prepare_dataset("objectnet", raw, tmp_path / "on", progress=False)
    assert manifest["totals"] == {"train": 20, "test": 5} and manifest["dataset"] == "objectnet"
    assert (tmp_path / "on" / "mappings" / "folder_to_objectnet_name.json").is_file()
    assert all(len(d) == 64 for d in manifest["sha256"].values())
    data = _load("objectnet", tmp_path)  # data.root: the folder holding the prepared one
    assert data.class_names == list(OBJECTNET.values())  # the mapping's names, folders sorted
    assert (len(data.train), len(data.test)) == (20, 5) and data.split == "seca prepare seed 0, 80/20"
    assert data.names == "official" and data.train.targets.tolist()[::4] == [0, 1, 2, 3, 4]
    assert "5 of its 200 classes" in data.notes[0] and "licence" in data.notes[-1]
    c3box = _load("objectnet", tmp_path / "on", names="c3box")
    assert c3box.class_names == [f.replace("_", " ") for f in OBJECTNET] and c3box.names == "c3box"
    assert "5 of its 313 classes" in _load("objectnet", tmp_path / "on", objectnet=_objectnet("all")).notes[0]


def _objectnet(classes):
    from seca.data.sets.objectnet import ObjectNetConfig

    return ObjectNetConfig(classes=classes)


def test_objectnet_c3box_keeps_the_first_200_folders_in_sorted_order(tmp_path):
    raw = tmp_path / "raw" / "objectnet-1.0"
    mapping = {f"class_{k:03d}": f"Class {k}" for k in range(205)}
    for folder in ("class_000", "class_199", "class_200", "class_204"):
        for i in range(5):
            _image(raw / "images" / folder / f"{i}.png", 0, i)
    (raw / "mappings").mkdir()
    (raw / "mappings" / "folder_to_objectnet_name.json").write_text(json.dumps(mapping))
    prepare_dataset("objectnet", tmp_path / "raw", tmp_path / "on", progress=False)
    data = _load("objectnet", tmp_path / "on")
    assert data.class_names == ["Class 0", "Class 199"] and "2 of its 200 classes" in data.notes[0]
    assert _load("objectnet", tmp_path / "on", objectnet=_objectnet("all")).class_names == [
        "Class 0",
        "Class 199",
        "Class 200",
        "Class 204",
    ]


def test_objectnet_reads_c3box_folders_and_refuses_a_broken_mapping(tmp_path):
    folders = sorted(OBJECTNET)[:4]
    _c3box(tmp_path / "objectnet", folders)
    data = _load("objectnet", tmp_path)
    assert data.class_names == [f.replace("_", " ") for f in folders] and data.split == "C3Box train/val folders"
    assert "4 of its 200 classes" in data.notes[0] and any("C3Box's folders" in n for n in data.notes)
    mapping = tmp_path / "objectnet" / "mappings" / "folder_to_objectnet_name.json"
    mapping.parent.mkdir()
    mapping.write_text(json.dumps(OBJECTNET))  # the release's mapping beside them: the official names
    assert _load("objectnet", tmp_path).class_names == [OBJECTNET[f] for f in folders]
    mapping.write_text('{"air_freshener": "Air freshener",')
    with pytest.raises(SecaError, match="cannot read .*folder_to_objectnet_name.json") as e:
        _load("objectnet", tmp_path)
    _one_line(e)
    mapping.write_text(json.dumps({"air_freshener": "Air freshener"}))
    with pytest.raises(SecaError, match="bills_money is not a class folder of ObjectNet"):
        _load("objectnet", tmp_path)


# ---- TV100 ----------------------------------------------------------------------------------------------------

TV100 = ["A_Business_Proposal", "Arcane", "Squid_Game", "The_Glory", "Wednesday"]


def write_tv100(raw, classes=TV100, per_class=5):
    for k, series in enumerate(classes):
        for i in range(per_class):
            _image(raw / "TV100" / series / f"{i}.jpg", k, i)
    return raw


def test_tv100_is_prepared_80_20_and_reads_c3box_folders(tmp_path):
    raw = write_tv100(tmp_path / "raw")
    with pytest.raises(SecaError, match="seca prepare tv100"):
        _load("tv100", raw)
    manifest = prepare_dataset("tv100", raw, tmp_path / "tv", seed=3, progress=False)
    assert manifest["totals"] == {"train": 20, "test": 5} and manifest["split"] == {"seed": 3}
    again = prepare_dataset("tv100", raw, tmp_path / "again", seed=3, progress=False)
    assert again["splits"] == manifest["splits"]  # deterministic
    data = _load("tv100", tmp_path)
    assert data.class_names == ["A Business Proposal", "Arcane", "Squid Game", "The Glory", "Wednesday"]
    assert (len(data.train), len(data.test)) == (20, 5) and data.split == "seca prepare seed 3, 80/20"
    assert data.notes == [DATASETS["tv100"]().subset_note(5, 100)]
    c3box = _load("tv100", _c3box(tmp_path / "c3box", TV100[:4]))
    assert c3box.split == "C3Box train/val folders" and c3box.class_names == data.class_names[:4]
    with pytest.raises(SecaError, match="no rule gives C3Box's class names of tv100"):
        _load("tv100", tmp_path / "c3box", names="c3box")


def test_tv100_refuses_a_class_without_test_images(tmp_path):
    root = _c3box(tmp_path / "c3box", TV100[:3])
    for file in (root / "val" / "Arcane").iterdir():
        file.unlink()
    with pytest.raises(SecaError, match="'Arcane' has training images but no test images") as e:
        _load("tv100", root)
    _one_line(e)
    with pytest.raises(SecaError, match="holds no folders of images"):
        prepare_dataset("tv100", tmp_path / "c3box" / "train" / "Squid_Game", tmp_path / "o", progress=False)


# ---- Tiny ImageNet --------------------------------------------------------------------------------------------

TINY = ["n01644900", "n01443537", "n01641577", "n01629819"]  # wnids.txt's order (not sorted)
TINY_WORDS = {
    "n01443537": "goldfish, Carassius auratus",
    "n01629819": "European fire salamander, Salamandra salamandra",
    "n01641577": "bullfrog, Rana catesbeiana",
    "n01644900": "tailed frog, bell toad, ribbed toad, tailed toad, Ascaphus trui",
}
TINY_NAMES = ["goldfish", "European fire salamander", "bullfrog", "tailed frog"]  # in sorted wnid order


def write_tiny(root, wnids=TINY):
    """tiny-imagenet-200/ as extracted."""
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    words = {"n00001740": "entity", **TINY_WORDS, "n99999999": "not a class"}
    (root / "words.txt").write_text("".join(f"{w}\t{names}\n" for w, names in words.items()))
    annotations = []
    for k, wnid in enumerate(wnids):
        for i in range(TRAIN):
            _image(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", k, i, "JPEG")
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for i in range(TEST):
            file = f"val_{k * TEST + i}.JPEG"
            _image(root / "val" / "images" / file, k, i, "JPEG")
            annotations.append(f"{file}\t{wnid}\t0\t0\t63\t63\n")
    (root / "val" / "val_annotations.txt").write_text("".join(annotations))
    _image(root / "test" / "images" / "test_0.JPEG", 0, 0, "JPEG")
    return root


def test_tinyimagenet_reads_the_release_with_val_as_test(tmp_path):
    write_tiny(tmp_path / "tiny-imagenet-200")
    data = _load("tinyimagenet", tmp_path)
    assert data.class_names == TINY_NAMES and data.split == "official train/val (val as test)"
    assert (len(data.train), len(data.test)) == (12, 8) and sorted(set(data.test.targets.tolist())) == [0, 1, 2, 3]
    assert data.test.files[0].name == "val_0.JPEG" and data.test.targets[0] == 3  # n01644900: wnids.txt's first
    assert "4 of its 200 classes" in data.notes[0]
    c3box = _c3box(tmp_path / "folders", sorted(TINY), ".JPEG")
    folders = _load("tinyimagenet", c3box)
    assert folders.class_names == clip_imagenet_names(sorted(TINY)) and "CLIP's ImageNet names" in folders.notes[-1]


def test_tinyimagenet_refuses_an_unknown_class_in_the_val_annotations(tmp_path):
    root = write_tiny(tmp_path / "tiny-imagenet-200")
    with open(root / "val" / "val_annotations.txt", "a") as f:
        f.write("val_99.JPEG\tn09999999\t0\t0\t1\t1\n")
    with pytest.raises(SecaError, match="line 9: 'n09999999' is not a class of wnids.txt") as e:
        _load("tinyimagenet", root)
    _one_line(e)
    (root / "words.txt").write_text("n01443537\tgoldfish\n")
    with pytest.raises(SecaError, match="words.txt has no line for n01629819"):
        _load("tinyimagenet", root)


# ---- ImageNet-100 ---------------------------------------------------------------------------------------------


def test_imagenet100_is_podnets_first_100_classes_of_imagenet():
    assert len(IMAGENET_WNIDS) == 1000 and list(IMAGENET_WNIDS) == sorted(IMAGENET_WNIDS)
    assert PODNET_100[0] == "n01440764" and PODNET_100[-1] == "n01855672" and len(set(PODNET_100)) == 100
    assert clip_imagenet_names(PODNET_100[:4]) == ["tench", "goldfish", "great white shark", "tiger shark"]


def test_imagenet100_restricts_imagenet_1k_to_the_list(tmp_path):
    root = tmp_path / "ILSVRC2012"
    _c3box(root, PODNET_100[:4], ".JPEG")
    for wnid in IMAGENET_WNIDS[100:200]:  # the rest of ImageNet-1k: classes outside the list, left out
        (root / "train" / wnid).mkdir()
    data = _load("imagenet100", tmp_path)
    assert data.class_names == ["tench", "goldfish", "great white shark", "tiger shark"]
    assert data.split == "ILSVRC-2012 train/val" and (len(data.train), len(data.test)) == (12, 8)
    assert len(data.notes) == 1 and "4 of its 100 classes" in data.notes[0]
    _image(root / "train" / IMAGENET_WNIDS[150] / "a.JPEG", 0, 0)
    (tmp_path / "list.txt").write_text(f"train/{IMAGENET_WNIDS[150]}/a.JPEG 0\n# a comment\n{PODNET_100[1]}\n")
    with pytest.raises(SecaError, match="'sea lion' has training images but no test images"):
        _load("imagenet100", root, imagenet100=_imagenet100(str(tmp_path / "list.txt")))


def _imagenet100(classes):
    from seca.data.sets.imagenet100 import ImageNet100Config

    return ImageNet100Config(classes=classes)


def test_imagenet100_reads_a_c3box_folder_of_its_classes(tmp_path):
    _c3box(tmp_path / "in100", [PODNET_100[3], PODNET_100[0]], ".JPEG")
    data = _load("imagenet100", tmp_path / "in100")
    assert data.class_names == ["tench", "tiger shark"] and data.split == "C3Box train/val folders"
    other = _c3box(tmp_path / "pycil", [PODNET_100[0], IMAGENET_WNIDS[500]], ".JPEG")
    data = _load("imagenet100", other)  # classes outside the list: the folder's own
    assert data.class_names == clip_imagenet_names([PODNET_100[0], IMAGENET_WNIDS[500]])
    assert "1 of the folder's 2 classes are not in the PODNet/continual-clip ImageNet-100 list" in data.notes[0]


def test_imagenet100_refuses_unsorted_val_and_foreign_folders(tmp_path):
    root = _c3box(tmp_path / "in", PODNET_100[:2], ".JPEG")
    (root / "train" / "cats").mkdir()
    with pytest.raises(SecaError, match="cats is not an ImageNet-1k class folder") as e:
        _load("imagenet100", root)
    _one_line(e)
    (root / "train" / "cats").rmdir()
    for folder in list((root / "val").iterdir()):
        for file in folder.iterdir():
            file.rename(root / "val" / f"ILSVRC2012_val_{folder.name}_{file.name}")
        folder.rmdir()
    with pytest.raises(SecaError, match="unsorted; sort them into val/<wnid>/"):
        _load("imagenet100", root)


# ---- DomainNet ------------------------------------------------------------------------------------------------

DOMAINNET = {"aircraft_carrier": 0, "airplane": 1, "The_Eiffel_Tower": 305, "zigzag": 344}


def write_domainnet(root, domains=("clipart", "sketch")):
    """Two domains as extracted: <domain>/<class>/<file>.jpg with <domain>_train.txt and <domain>_test.txt."""
    for domain in domains:
        lines = {"train": [], "test": []}
        for k, (folder, label) in enumerate(DOMAINNET.items()):
            for i in range(TRAIN + TEST):
                relative = f"{domain}/{folder}/{domain}_{label + 1:03d}_{i:06d}.jpg"
                _image(root / relative, k, i)
                lines["train" if i < TRAIN else "test"].append(f"{relative} {label}\n")
        for split, listed in lines.items():
            (root / f"{domain}_{split}.txt").write_text("".join(listed))
    return root


def test_domainnet_pools_the_domains_over_the_345_classes(tmp_path):
    write_domainnet(tmp_path / "domainnet")
    data = _load("domainnet", tmp_path)
    assert data.class_names == ["aircraft carrier", "airplane", "The Eiffel Tower", "zigzag"]
    assert (len(data.train), len(data.test)) == (24, 16) and data.split == "official train/test lists (clipart, sketch)"
    assert "2 of the 6 domains asked for (clipart, sketch)" in data.notes[0] and "4 of its 345 classes" in data.notes[1]
    from seca.data.sets.domainnet import DomainNetConfig

    clipart = _load("domainnet", tmp_path / "domainnet", domainnet=DomainNetConfig(domains=("clipart",)))
    assert (len(clipart.train), len(clipart.test)) == (12, 8)
    assert clipart.notes == [DATASETS["domainnet"]().subset_note(4, 345)]
    (tmp_path / "domainnet" / "clipart" / "zigzag" / "clipart_345_000004.jpg").unlink()  # a listed image missing
    assert len(_load("domainnet", tmp_path).test) == 15
    c3box = _load("domainnet", _c3box(tmp_path / "c3box", list(DOMAINNET)))
    assert c3box.class_names == ["The Eiffel Tower", "aircraft carrier", "airplane", "zigzag"]  # ImageFolder's order


@pytest.mark.parametrize(
    "line, message",
    [
        ("clipart/airplane/x.jpg\n", "line 13: expected 'clipart/<class>/<file> <label>'"),
        ("sketch/airplane/x.jpg 1\n", "line 13: expected 'clipart/<class>/<file> <label>'"),
        ("clipart/airplane/x.jpg one\n", "'one' is not a number"),
        ("clipart/airplane/x.jpg 345\n", "the label 345 is not a class id"),
        ("clipart/airplane/x.jpg 0\n", "'airplane' has the label 0, which the lists give elsewhere"),
    ],
)
def test_domainnet_refuses_a_malformed_list_line(tmp_path, line, message):
    root = write_domainnet(tmp_path / "domainnet", domains=("clipart",))
    with open(root / "clipart_train.txt", "a") as f:
        f.write(line)
    with pytest.raises(SecaError, match=message) as e:
        _load("domainnet", root)
    _one_line(e)


# ---- two tasks on the tiny CLIP -------------------------------------------------------------------------------


def _objectnet_run(root):
    write_objectnet(root / "raw")
    prepare_dataset("objectnet", root / "raw", root / "objectnet", progress=False)
    return root / "objectnet"


def _tv100_run(root):
    write_tv100(root / "raw", TV100[:4])
    prepare_dataset("tv100", root / "raw", root / "tv100", progress=False)
    return root / "tv100"


RUNS = {
    "objectnet": (_objectnet_run, ["--set", "data.objectnet.classes=all"], "seca prepare seed 0, 80/20"),
    "tv100": (_tv100_run, [], "seca prepare seed 0, 80/20"),
    "tinyimagenet": (lambda r: write_tiny(r / "tiny-imagenet-200"), [], "official train/val"),
    "imagenet100": (lambda r: _c3box(r / "in100", PODNET_100[:4], ".JPEG"), [], "C3Box train/val folders"),
    "domainnet": (lambda r: write_domainnet(r / "domainnet"), ["--set", "data.domainnet.domains=[clipart, sketch]"],
                  "official train/test lists (clipart, sketch)"),
}  # fmt: skip


@pytest.mark.parametrize("name", RUNS)
def test_a_miniature_runs_two_tasks(name, tmp_path):
    from seca.cli import main

    write, extra, split = RUNS[name]
    root = write(tmp_path / "data")
    out = tmp_path / "run"
    args = ["run", "cpu-small", "--out", str(out), "--set", f"data.dataset={name}", "--set", f"data.root={root}"]
    args += ["--set", "scenario.order=identity", "--set", "scenario.first_task=2", "--set", "scenario.increment=2"]
    if name == "objectnet":  # 5 classes: keep 4
        (root / "train" / "zipper").rename(tmp_path / "zipper-train")
        (root / "test" / "zipper").rename(tmp_path / "zipper-test")
    assert main(args + extra + FAST_RUN) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["acc_matrix"]) == 2 and results["tasks"] == [[0, 1], [2, 3]]
    assert results["dataset"] == name and results["split"].startswith(split)
