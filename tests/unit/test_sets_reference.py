"""The three data sets of the paper in miniature, each in its real on-disk form: CIFAR-100's pickles as torchvision
reads them, ImageNet-R's and ImageNet-A's archives of WordNet-id folders (split by ``seca prepare``) and C3Box's
train/val folders; a folder holding some of the classes, ``data.root`` naming the parent, and a 2-task run."""

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from seca.cli import main
from seca.config import DataConfig
from seca.data.sets import DATASETS, load_dataset
from seca.errors import SecaError

RUN = ["--set", "scenario.order=identity", "--set", "scenario.first_task=2", "--set", "scenario.increment=2",
       "--set", "train.epochs=1", "--set", "scenario.tasks=null"]  # fmt: skip


def _run(tmp_path, dataset, root, *extra):
    out = tmp_path / f"run-{dataset}"
    args = ["run", "cpu-small", "--out", str(out), "--set", f"data.dataset={dataset}", "--set", f"data.root={root}"]
    assert main([*args, *RUN, *extra]) == 0
    return json.loads((out / "results.json").read_text())


def _png(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 12), colour).save(path)


def _cifar(root, classes, per_class):
    """cifar-100-python/{train,test,meta} as the archive holds them (pickles of 32x32x3 rows and fine labels)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for part, n in (("train", per_class), ("test", per_class)):
        labels = [c for c in classes for _ in range(n)]
        rows = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        with open(folder / part, "wb") as f:
            pickle.dump({"data": rows, "fine_labels": labels, "coarse_labels": [0] * len(labels)}, f)
    names = DATASETS["cifar100"]().class_names(DataConfig(dataset="cifar100"), [f"c{k}" for k in range(100)])[0]
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": names}, f)


def test_cifar100_in_miniature(tmp_path, monkeypatch, capsys):
    from torchvision.datasets import CIFAR100

    # the miniature's MD5s are not the archive's: torchvision's checks pass it, its reader reads it as it is
    monkeypatch.setattr(CIFAR100, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
    _cifar(tmp_path / "cifar", [3, 17, 52, 88], per_class=3)
    data = load_dataset(DataConfig(dataset="cifar100", root=str(tmp_path / "cifar")))
    assert data.class_names == ["bear", "castle", "oak tree", "tiger"] and data.num_classes == 4
    assert sorted(set(data.train.targets)) == [0, 1, 2, 3] and len(data.test.targets) == 12
    assert data.notes == [DATASETS["cifar100"]().subset_note(4, 100)]
    # C3Box downloads it into [DATA-PATH]/train/: data.root may name [DATA-PATH]
    _cifar(tmp_path / "c3box" / "train", [3, 17, 52, 88], per_class=2)
    assert load_dataset(DataConfig(dataset="cifar100", root=str(tmp_path / "c3box"))).num_classes == 4
    results = _run(tmp_path, "cifar100", tmp_path / "cifar")
    assert len(results["acc_matrix"]) == 2 and results["class_names"] == ["bear", "castle", "oak tree", "tiger"]
    assert "holds 4 of its 100 classes" in capsys.readouterr().out


@pytest.mark.parametrize("dataset", ["imagenet-r", "imagenet-a"])
def test_an_imagenet_variant_in_miniature(dataset, tmp_path, capsys):
    wnids, names = DATASETS[dataset]().classes()
    raw = tmp_path / "raw" / dataset  # the archive extracts to imagenet-r/<wnid>/
    for k in (5, 1, 9, 0):
        for i in range(4):
            _png(raw / wnids[k] / f"{i}.jpg", (40 * i, 20 * k, 100))
    prepared = tmp_path / "prepared"
    assert main(["prepare", dataset, str(tmp_path / "raw"), str(prepared)]) == 0
    assert "holds 4 of its 200 classes; prepared those" in capsys.readouterr().out
    data = load_dataset(DataConfig(dataset=dataset, root=str(prepared)))
    assert data.class_names == [names[k] for k in (0, 1, 5, 9)]  # the official order
    assert data.split == "seca prepare seed 0, 80/20" and data.notes and "4 of its 200 classes" in data.notes[0]
    # C3Box's train/ and val/ folders, data.root naming their parent's parent
    c3box = tmp_path / "c3box" / "imagenetr"
    for part in ("train", "val"):
        for k in (0, 1):
            _png(c3box / part / wnids[k] / "a.jpg", (10, 10, 10))
    data = load_dataset(DataConfig(dataset=dataset, root=str(tmp_path / "c3box")))
    assert data.split == "C3Box train/val folders" and data.num_classes == 2
    results = _run(tmp_path, dataset, prepared)
    assert len(results["acc_matrix"]) == 2 and results["split"] == "seca prepare seed 0, 80/20"
    assert results["protocol"]["order"] == "identity" and results["names"] == "official"


def test_class_names_from_c3box_or_a_file(tmp_path):
    names = [f"class {k}" for k in range(200)]
    (tmp_path / "labels.json").write_text(json.dumps({"imagenetr": names}))
    dataset = DATASETS["imagenet-r"]()
    wnids, official = dataset.classes()
    config = DataConfig(dataset="imagenet-r", names_file=str(tmp_path / "labels.json"))
    assert dataset.class_names(config, official) == (names, "file")
    with pytest.raises(SecaError, match="no rule gives C3Box's class names of imagenet-r: pass data.names_file"):
        dataset.class_names(DataConfig(dataset="imagenet-r", names="c3box"), official)
    cifar = DATASETS["cifar100"]()
    assert cifar.class_names(DataConfig(names="c3box"), ["a", "b"]) == (["a", "b"], "c3box")
    (tmp_path / "short.json").write_text(json.dumps(names[:3]))
    with pytest.raises(SecaError, match="lists 3 names; the data set has 200 classes"):
        dataset.class_names(DataConfig(names_file=str(tmp_path / "short.json")), official)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SecaError, match="cannot be read as JSON"):
        dataset.class_names(DataConfig(names_file=str(tmp_path / "bad.json")), official)
