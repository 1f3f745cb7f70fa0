"""Image features a user can read (issue 31): ``SecaModel.embed``, ``seca embed`` and ``POST /embed`` give the same
numbers to the bit; the learner's features are its own (adapted, for SECA), the frozen CLIP's are nothing learned."""

import sys
import tempfile

import numpy as np
import pytest
import torch

import seca
from seca.cli import main
from seca.errors import SecaError

from ..conftest import write_shapes_folder

FIRST = ["orange star", "red circle"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(a training folder of two classes, a test folder of the same classes: 6 images)."""
    root = tmp_path_factory.mktemp("embed-data")
    return (
        write_shapes_folder(root / "train", FIRST, per_class=4, split="train"),
        write_shapes_folder(root / "test", FIRST, per_class=3),
    )


def _new(path, *extra):
    assert main(["new", str(path), "--backbone", "seca-test", "--set", "train.epochs=1", *extra]) == 0
    return path


def _learned(root, train, *extra):
    path = _new(root / "model.safetensors", *extra)
    assert main(["learn", str(path), "--data", str(train)]) == 0
    return path


@pytest.fixture(scope="module")
def seca_model(folders, tmp_path_factory):
    """A tiny SECA model that has learned one task (its adapters trained one epoch)."""
    return _learned(tmp_path_factory.mktemp("embed-seca"), folders[0])


def _files(folder):
    return [str(p) for p in sorted(folder.rglob("*.png"))]


def test_embed_is_n_by_d_float32_and_the_same_twice(seca_model, folders):
    model = seca.load(seca_model, device="cpu")
    files = _files(folders[1])
    features = model.embed(files)
    assert features.shape == (len(files), model.learner.backbone.embed_dim) and features.dtype == torch.float32
    assert features.device.type == "cpu" and torch.isfinite(features).all()
    assert torch.equal(features, model.embed(files))
    # another batching gives the same features, up to the floating-point order of the batch's matrix products
    torch.testing.assert_close(features, model.embed(files, batch_size=4), rtol=0, atol=1e-6)
    torch.testing.assert_close(features[2:3], model.embed(files[2]), rtol=0, atol=1e-6)  # one path: one row
    torch.testing.assert_close(features.norm(dim=1), torch.ones(len(files)))  # normalised, as predict scores them
    assert model.embed([]).shape == (0, model.learner.backbone.embed_dim)


def test_a_trained_learners_features_are_its_own_and_the_frozen_ones_are_nothing_learned(seca_model, folders):
    model = seca.load(seca_model, device="cpu")
    files = _files(folders[1])
    learner, frozen = model.embed(files), model.embed(files, frozen=True)
    assert learner.shape == frozen.shape and not torch.equal(learner, frozen)  # SECA's adapters moved them
    with torch.no_grad():
        plain = model.learner.backbone.encode_image(torch.stack([model._tensor(f) for f in files]))
    torch.testing.assert_close(frozen, torch.nn.functional.normalize(plain, dim=-1))

    fresh = seca.load(_new(seca_model.parent / "fresh.safetensors"), device="cpu")  # knows no class yet
    assert torch.equal(fresh.embed(files, frozen=True), frozen)  # the same frozen CLIP, whatever was learned
    with pytest.raises(SecaError, match="learned no task yet.*frozen=True"):
        fresh.embed(files)


@pytest.mark.parametrize("method", ["simplecil", "zero-shot"])
def test_a_learner_over_the_frozen_clip_embeds_as_the_frozen_clip(method, folders, tmp_path):
    model = seca.load(_learned(tmp_path, folders[0], "--method", method), device="cpu")
    files = _files(folders[1])
    assert torch.equal(model.embed(files), model.embed(files, frozen=True))


def test_seca_embed_writes_what_the_library_computes(seca_model, folders, tmp_path, capsys):
    model = seca.load(seca_model, device="cpu")
    files = _files(folders[1])
    dim = model.learner.backbone.embed_dim
    out = tmp_path / "features.npy"
    assert main(["embed", str(seca_model), str(folders[1]), "--out", str(out), "--device", "cpu"]) == 0
    written = np.load(out)
    assert written.dtype == np.float32 and np.array_equal(written, model.embed(files).numpy())
    assert capsys.readouterr().out == f"wrote 6 embeddings of dimension {dim} (the learner's features) to {out}\n"

    out = tmp_path / "sub" / "frozen.npz"  # a folder that is not there yet is made
    assert main(["embed", str(seca_model), str(folders[1]), "--out", str(out), "--frozen", "--batch-size", "4"]) == 0
    with np.load(out) as archive:  # no pickles: plain arrays
        assert sorted(archive.files) == ["features", "files"]
        assert archive["files"].tolist() == files  # the folder expanded, in order
        assert np.array_equal(archive["features"], model.embed(files, frozen=True, batch_size=4).numpy())
    assert "(the frozen CLIP's)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["features.npy", "frozen.npz", "sub"]  # no temporary left


def test_seca_embed_skips_bad_images_only_when_asked(seca_model, folders, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    good = sorted(folders[1].rglob("*.png"))[:2]
    for k, path in enumerate(good):
        (folder / f"{k}.png").write_bytes(path.read_bytes())
    (folder / "2.png").write_bytes(b"not an image")
    out = tmp_path / "x.npz"
    assert main(["embed", str(seca_model), str(folder), "--out", str(out)]) == 2
    assert "2.png" in capsys.readouterr().err and not out.exists()
    assert main(["embed", str(seca_model), str(folder), "--out", str(out), "--skip-bad-images"]) == 0
    with np.load(out) as archive:
        assert archive["files"].tolist() == [str(folder / "0.png"), str(folder / "1.png")]
        assert archive["features"].shape[0] == 2


def _refused(capsys, *argv):
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_seca_embed_refuses_an_output_it_cannot_write_before_the_model_loads(tmp_path, monkeypatch, capsys):
    missing = str(tmp_path / "missing.safetensors")  # never read: each refusal comes first
    image = write_shapes_folder(tmp_path / "images", ["red circle"], per_class=1)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as where pyarrow is not installed: import fails
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    err = _refused(capsys, "embed", missing, str(image), "--out", str(tmp_path / "x.parquet"))
    assert "writing .parquet needs pyarrow: pip install pyarrow, or use .npz which keeps the file names" in err
    err = _refused(capsys, "embed", missing, str(image), "--out", str(tmp_path / "x.csv"))
    assert all(suffix in err for suffix in (".npy", ".npz", ".parquet"))
    (tmp_path / "folder.npy").mkdir()
    err = _refused(capsys, "embed", missing, str(image), "--out", str(tmp_path / "folder.npy"))
    assert "is a folder; give the path of the file to write" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.npy", "images"]  # nothing written


def test_seca_embed_writes_parquet_with_pyarrow(seca_model, folders, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not a dependency; .parquet needs it")
    out = tmp_path / "features.parquet"
    assert main(["embed", str(seca_model), str(folders[1]), "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.column_names == ["file", "embedding"] and table["file"].to_pylist() == _files(folders[1])
    written = np.array(table["embedding"].to_pylist(), dtype=np.float32)
    assert np.array_equal(written, seca.load(seca_model, device="cpu").embed(_files(folders[1])).numpy())


def test_post_embed_answers_the_librarys_numbers_exactly(seca_model, folders, tmp_path, monkeypatch):
    pytest.importorskip("fastapi", reason="seca serve needs the serve extra: pip install 'seca[serve]'")
    from fastapi.testclient import TestClient

    from seca.serve.app import create_app
    from seca.serve.jobs import ModelServer

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(uploads))
    model = seca.load(seca_model, device="cpu")
    paths = sorted(folders[1].rglob("*.png"))
    server = ModelServer(seca_model, device="cpu")
    try:
        client = TestClient(create_app(server))
        for frozen in (False, True):
            files = [("images", (p.name, p.read_bytes(), "image/png")) for p in paths]
            answer = client.post("/embed", files=files, data={"frozen": str(frozen).lower()})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            expected = model.embed([str(p) for p in paths], frozen=frozen)
            assert (body["dim"], body["features"]) == (expected.shape[1], "frozen" if frozen else "learner")
            assert [e["file"] for e in body["embeddings"]] == [p.name for p in paths]
            assert [e["embedding"] for e in body["embeddings"]] == expected.tolist()  # float32 -> JSON -> the same
        refused = client.post("/embed", data={"frozen": "true"})
        assert refused.status_code == 422 and "images" in refused.json()["error"]
    finally:
        server.stop()
    fresh = _new(tmp_path / "fresh.safetensors")  # knows no class: the frozen CLIP's features only
    server = ModelServer(fresh, device="cpu")
    try:
        client = TestClient(create_app(server))
        files = [("images", (paths[0].name, paths[0].read_bytes(), "image/png"))]
        refused = client.post("/embed", files=files)
        assert refused.status_code == 400 and "learned no task yet" in refused.json()["error"]
        answer = client.post("/embed", files=files, data={"frozen": "true"})
        assert answer.json()["embeddings"][0]["embedding"] == model.embed(str(paths[0]), frozen=True)[0].tolist()
    finally:
        server.stop()
    assert list(uploads.iterdir()) == []
