"""`seca prepare`: a deterministic per-class 80/20 split with a manifest, or a user's split list."""

import json

import pytest
from PIL import Image

from seca.cli import main
from seca.data.sets import DATASETS, load_dataset, prepare_dataset
from seca.engine.configure import data_config
from seca.errors import SecaError


@pytest.fixture(scope="module")
def raw_imagenet_r(tmp_path_factory):
    """A fake extracted archive: imagenet-r/<wnid>/ with 5 to 9 tiny images per class."""
    root = tmp_path_factory.mktemp("raw")
    wnids, _ = DATASETS["imagenet-r"]().classes()
    for k, wnid in enumerate(wnids):
        folder = root / "imagenet-r" / wnid
        folder.mkdir(parents=True)
        for i in range(5 + k % 5):
            Image.new("RGB", (4, 4), (k % 256, i * 20, 0)).save(folder / f"img_{i}.png")
    return root


def test_split_is_80_20_per_class_and_deterministic(raw_imagenet_r, tmp_path):
    a = prepare_dataset("imagenet-r", raw_imagenet_r, tmp_path / "a", seed=3, progress=False)
    b = prepare_dataset("imagenet-r", raw_imagenet_r, tmp_path / "b", seed=3, progress=False)
    c = prepare_dataset("imagenet-r", raw_imagenet_r, tmp_path / "c", seed=4, progress=False)
    assert a["splits"] == b["splits"] and a["splits"] != c["splits"]
    counts = a["classes"]
    wnids, names = DATASETS["imagenet-r"]().classes()
    # classes have 5..9 images: round(0.8 n) train -> 4,5,6,6,7 ; the rest test
    for k, wnid in enumerate(wnids):
        n = 5 + k % 5
        assert counts[wnid]["train"] == {5: 4, 6: 5, 7: 6, 8: 6, 9: 7}[n]
        assert counts[wnid]["train"] + counts[wnid]["test"] == n
        assert counts[wnid]["name"] == names[k]
    assert len(a["sha256"]) == sum(5 + k % 5 for k in range(200))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["manifest.json", "test", "train"]


def test_prepared_folder_loads_as_the_data_set(raw_imagenet_r, tmp_path):
    prepare_dataset("imagenet-r", raw_imagenet_r, tmp_path / "out", seed=0, progress=False)
    data = load_dataset(data_config(dataset="imagenet-r", root=str(tmp_path / "out")))
    assert data.num_classes == 200 and data.class_names[0] == "goldfish"
    assert len(data.train) + len(data.test) == sum(5 + k % 5 for k in range(200))
    image, label = data.test[0]
    assert label == 0 and image.size == (4, 4)


def test_manifest_as_split_file_reproduces_the_split(raw_imagenet_r, tmp_path):
    first = prepare_dataset("imagenet-r", raw_imagenet_r, tmp_path / "a", seed=11, progress=False)
    again = prepare_dataset(
        "imagenet-r", raw_imagenet_r, tmp_path / "b", split_file=tmp_path / "a" / "manifest.json", progress=False
    )
    assert again["splits"] == first["splits"] and again["sha256"] == first["sha256"]


def test_text_split_file(raw_imagenet_r, tmp_path):
    wnids, _ = DATASETS["imagenet-r"]().classes()
    lines = [f"train {w}/img_0.png\ntest {w}/img_1.png" for w in wnids]
    (tmp_path / "split.txt").write_text("# my split\n" + "\n".join(lines))
    manifest = prepare_dataset(
        "imagenet-r", raw_imagenet_r, tmp_path / "out", split_file=tmp_path / "split.txt", progress=False
    )
    assert manifest["totals"] == {"train": 200, "test": 200}
    assert (tmp_path / "out" / "test" / wnids[5] / "img_1.png").is_file()


def test_bad_inputs_are_one_line_errors(raw_imagenet_r, tmp_path):
    with pytest.raises(SecaError, match="not a folder"):
        prepare_dataset("imagenet-r", tmp_path / "missing", tmp_path / "o1", progress=False)
    # ImageNet-R is not ImageNet-A: the 86 classes they share are a part of ImageNet-A, prepared as such
    part = prepare_dataset("imagenet-a", raw_imagenet_r, tmp_path / "o2", progress=False)
    assert len(part["classes"]) == 86 and part["of_classes"] == 200
    with pytest.raises(SecaError, match="holds none of the 200 class folders"):
        prepare_dataset("imagenet-a", tmp_path / "o2" / "train" / "n01531178", tmp_path / "o4", progress=False)
    (tmp_path / "bad.txt").write_text("train n99999999/x.png\n")
    with pytest.raises(SecaError, match="not a class of this data set"):
        prepare_dataset("imagenet-r", raw_imagenet_r, tmp_path / "o3", split_file=tmp_path / "bad.txt", progress=False)
    prepare_dataset("imagenet-r", raw_imagenet_r, tmp_path / "done", progress=False)
    with pytest.raises(SecaError, match="already holds a prepared split"):
        prepare_dataset("imagenet-r", raw_imagenet_r, tmp_path / "done", progress=False)


def test_cli_prepare(raw_imagenet_r, tmp_path, capsys):
    assert main(["prepare", "imagenet-r", str(raw_imagenet_r), str(tmp_path / "out"), "--seed", "1"]) == 0
    assert "training and" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["split"] == {"seed": 1}
    assert main(["prepare", "imagenet-r", str(tmp_path / "nope"), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
