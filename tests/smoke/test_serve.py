"""``seca serve`` through its HTTP API (FastAPI's test client, in process): it answers as the library does,
a learn job grows the model exactly as ``seca learn`` does, and a job that fails or is cancelled, or a request
that is refused, changes nothing: not the file, not the served model, and leaves no upload behind."""

import dataclasses
import hashlib
import io
import shutil
import struct
import tempfile
import threading
import time
import zipfile
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load_file

pytest.importorskip("fastapi", reason="seca serve needs the serve extra: pip install 'seca[serve]'")
from fastapi.testclient import TestClient

import seca
from seca.cli import main
from seca.errors import SecaError
from seca.serve import check_host
from seca.serve.app import create_app
from seca.serve.jobs import ModelServer
from seca.serve.uploads import Limits

from ..conftest import write_shapes_folder
from .test_fuzz import BASES, mutated

FIRST = ["orange star", "red circle"]


@pytest.fixture
def uploads_dir(tmp_path, monkeypatch):
    """Where the server's temporary upload folders go, to check that none is left behind."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def model(tmp_path):
    """A tiny model file that knows two classes."""
    path = tmp_path / "model.safetensors"
    assert (
        main(["new", str(path), "--backbone", "seca-test", "--set", "train.epochs=2", "--set", "train.batch_size=4"])
        == 0
    )
    assert main(["learn", str(path), "--data", str(write_shapes_folder(tmp_path / "first", FIRST, split="train"))]) == 0
    return path


def serving(path, token=None, limits=Limits()):
    server = ModelServer(path, device="cpu")
    return server, TestClient(create_app(server, token=token, limits=limits))


@pytest.fixture
def served(model, uploads_dir):
    server, client = serving(model)
    yield model, server, client
    server.stop()


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def images_of(folder):
    """(label, file) of every image of ``folder/<class>/``, classes and files in sorted order (as seca learn)."""
    return [(d.name.replace("_", " "), f) for d in sorted(folder.iterdir()) for f in sorted(d.iterdir())]


def multipart(pairs, field="images", labels="labels"):
    files = [(field, (f.name, f.read_bytes(), "image/png")) for _, f in pairs]
    return files, {labels: [label for label, _ in pairs]}


def wait_for(client, job_id, states=("done", "failed", "cancelled"), timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = client.get(f"/jobs/{job_id}").json()
        if view["state"] in states:
            return view
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {view['state']} after {timeout} s")


def test_predict_and_evaluate_answer_as_the_library(served, tmp_path):
    path, _, client = served
    test = write_shapes_folder(tmp_path / "test", FIRST, per_class=2)
    pairs = images_of(test)
    files, _ = multipart(pairs)
    answer = client.post("/predict", files=files, data={"top_k": "2"})
    assert answer.status_code == 200, answer.text
    expected = seca.load(path).predict([str(f) for _, f in pairs], top_k=2)
    got = answer.json()["predictions"]
    assert [p["file"] for p in got] == [f.name for _, f in pairs]
    assert [p["label"] for p in got] == [e.label for e in expected]
    assert [p["score"] for p in got] == pytest.approx([e.score for e in expected], abs=1e-6)
    assert [[t["label"] for t in p["top_k"]] for p in got] == [[n for n, _ in e.top_k] for e in expected]

    files, labels = multipart(pairs)
    report = client.post("/evaluate", files=files, data=labels)
    assert report.status_code == 200, report.text
    library = seca.load(path).evaluate(test, confusion=True)
    assert report.json()["accuracy"] == pytest.approx(library["accuracy"])
    assert report.json()["per_class"] == library["per_class"]
    assert report.json()["confusion"]["counts"] == library["confusion"]["counts"]

    health = client.get("/health").json()
    assert (health["status"], health["classes"], health["tasks"], health["token_required"]) == ("ok", 2, 1, False)
    assert client.get("/classes").json() == {"classes": FIRST, "tasks": [FIRST]}


def test_a_learn_job_grows_the_model_as_seca_learn_does(served, tmp_path):
    path, server, client = served
    twin = tmp_path / "twin.safetensors"
    shutil.copy(path, twin)
    new = write_shapes_folder(tmp_path / "new", ["blue square", "pink heart"], per_class=4, split="train")
    test = write_shapes_folder(tmp_path / "test", FIRST + ["blue square", "pink heart"], per_class=2)
    assert main(["learn", str(twin), "--data", str(new), "--eval", str(test)]) == 0

    files, labels = multipart(images_of(new))
    eval_files, eval_labels = multipart(images_of(test), "eval_images", "eval_labels")
    answer = client.post("/learn", files=files + eval_files, data={**labels, **eval_labels})
    assert answer.status_code == 202, answer.text
    job = wait_for(client, answer.json()["job"])
    assert job["state"] == "done", job
    assert (job["step"], job["steps"], job["epoch"], job["epochs"]) == (4, 4, 2, 2)  # 8 images, batch 4, 2 epochs

    served_file, cli_file = load_file(path), load_file(twin)
    assert served_file.keys() == cli_file.keys()
    for key in cli_file:
        assert served_file[key].equal(cli_file[key]), key
    ours, theirs = seca.load(path), seca.load(twin)
    assert ours.classes == theirs.classes == FIRST + ["blue square", "pink heart"]
    entry, expected = ours.history[-1], theirs.history[-1]
    assert entry["data"] == f"seca serve upload (job {job['id']})"
    assert entry["eval"].pop("data") == f"seca serve upload (job {job['id']}, test images)"
    expected["eval"].pop("data")
    assert entry["eval"] == expected["eval"]
    assert (entry["classes"], entry["images"]) == (expected["classes"], expected["images"])
    assert job["entry"]["eval"]["accuracy"] == entry["eval"]["accuracy"]

    assert client.get("/classes").json()["tasks"] == [FIRST, ["blue square", "pink heart"]]
    assert [e["classes"] for e in client.get("/history").json()["history"]] == [FIRST, ["blue square", "pink heart"]]
    # a server started again on the file serves what the job saved
    again, other = serving(path)
    try:
        assert other.get("/classes").json()["classes"] == ours.classes
    finally:
        again.stop()


def test_every_accuracy_comes_with_its_yardsticks_and_the_test_images_stay_with_the_model(served, tmp_path):
    path, _, client = served
    health = client.get("/health").json()
    assert health["chance"] == 50.0 and health["kept_tests"] == {"images": 0, "classes": 0}
    version = health["model_version"]
    assert version == seca.load(path).version and len(version) == 16

    test = write_shapes_folder(tmp_path / "test", FIRST, per_class=2)
    write_shapes_folder(test, FIRST[:1], per_class=3)  # 3 images of the first class, 2 of the second
    files, labels = multipart(images_of(test))
    report = client.post("/evaluate", files=files, data=labels).json()
    assert (report["chance"], report["majority"]) == (50.0, 60.0)
    assert report["accuracy"] == round(100 * sum(report["task_correct"]) / 5, 2)

    pairs = images_of(test)
    files, _ = multipart(pairs)
    answer = client.post("/predict", files=files, data={"top_k": "2"}).json()
    library = seca.load(path).predict([str(f) for _, f in pairs], top_k=2)
    assert answer["model_version"] == version and answer["undecided_margin"] == seca.api.UNDECIDED_MARGIN
    assert [p["undecided"] for p in answer["predictions"]] == [p.undecided for p in library]
    assert [p["margin"] for p in answer["predictions"]] == pytest.approx([p.margin for p in library], abs=1e-6)

    # a job whose test images are kept: the next job is measured on them too, a whole matrix in /history
    for k, (names, keep) in enumerate(((["blue square"], "true"), (["pink heart"], "false"))):
        new = write_shapes_folder(tmp_path / f"new-{k}", names, per_class=4, split="train")
        files, labels = multipart(images_of(new))
        eval_files, eval_labels = multipart(
            images_of(write_shapes_folder(tmp_path / f"test-{k}", FIRST + names, per_class=2)),
            "eval_images",
            "eval_labels",
        )
        data = {**labels, **eval_labels, "keep_eval": keep}
        job = wait_for(client, client.post("/learn", files=files + eval_files, data=data).json()["job"])
        assert job["state"] == "done", job
        assert set(job["loss_words"]) == set(job["losses"]) and job["loss_words"]["loss"] == "total loss"
        evaluation = job["entry"]["eval"]
        assert evaluation["chance"] == round(100 / (3 + k), 2) and evaluation["known"] == 3 + k
        assert evaluation["kept"] == 6 * k  # the first job kept its 6 test images; the second kept none
    assert client.get("/health").json()["kept_tests"] == {"images": 6, "classes": 3}
    assert client.get("/health").json()["model_version"] != version
    matrix = client.get("/history").json()["matrix"]
    assert [len(row) for row in matrix["acc_matrix"]] == [1, 2, 3]
    assert matrix["acc_matrix"][0] == [None]  # the first task was learned without test images
    assert all(a is not None for a in matrix["acc_matrix"][2]) and matrix["acc_per_step"][2] is not None
    assert matrix["chance"] == [None, 33.33, 25.0]


def test_predictions_keep_answering_while_a_job_learns(served, tmp_path):
    path, server, client = served
    many = write_shapes_folder(tmp_path / "new", ["blue square"], per_class=8, split="train")
    test_files, _ = multipart(images_of(write_shapes_folder(tmp_path / "test", FIRST, per_class=2)))
    answers, errors = [], []
    learning = threading.Event()

    def ask():
        while not learning.is_set():
            time.sleep(0.01)
        while learning.is_set():
            try:
                answer = client.post("/predict", files=test_files)
                answers.append((answer.status_code, [p["label"] for p in answer.json()["predictions"]]))
            except Exception as e:
                errors.append(e)

    askers = [threading.Thread(target=ask) for _ in range(3)]
    for t in askers:
        t.start()
    files, labels = multipart(images_of(many))
    job_id = client.post("/learn", files=files, data={**labels, "epochs": "6"}).json()["job"]
    learning.set()
    job = wait_for(client, job_id)
    learning.clear()
    for t in askers:
        t.join()
    assert job["state"] == "done" and not errors
    assert len(answers) >= 3
    assert all(code == 200 and set(labels) <= set(FIRST + ["blue square"]) for code, labels in answers)
    assert client.get("/health").json()["classes"] == 3


def test_a_cancelled_job_changes_nothing(served, tmp_path, uploads_dir):
    path, server, client = served
    before = digest(path)
    files, labels = multipart(
        images_of(write_shapes_folder(tmp_path / "new", ["blue square"], per_class=8, split="train"))
    )
    running = client.post("/learn", files=files, data={**labels, "epochs": "500"}).json()["job"]
    wait_for(client, running, states=("training",))
    queued_files, queued_labels = multipart(
        images_of(write_shapes_folder(tmp_path / "q", ["pink heart"], split="train"))
    )
    queued = client.post("/learn", files=queued_files, data=queued_labels).json()["job"]
    assert client.get(f"/jobs/{queued}").json()["state"] == "queued"
    assert client.delete(f"/jobs/{queued}").json()["state"] == "cancelled"
    assert client.delete(f"/jobs/{running}").status_code == 200
    assert wait_for(client, running)["state"] == "cancelled"
    assert wait_for(client, queued)["state"] == "cancelled"
    assert digest(path) == before
    assert client.get("/classes").json()["classes"] == FIRST
    assert list(uploads_dir.iterdir()) == []
    # a job the server's stop interrupts changes nothing either
    running = client.post("/learn", files=files, data={**labels, "epochs": "500"}).json()["job"]
    wait_for(client, running, states=("training",))
    server.stop()
    assert server.job(running).state == "cancelled"
    assert digest(path) == before
    assert list(uploads_dir.iterdir()) == []


def test_a_cancelled_job_frees_its_classes(served, tmp_path):
    path, server, client = served
    files, labels = multipart(images_of(write_shapes_folder(tmp_path / "new", ["blue square"], split="train")))
    first = client.post("/learn", files=files, data={**labels, "epochs": "500"}).json()["job"]
    assert client.post("/learn", files=files, data=labels).status_code == 409  # being learned already
    client.delete(f"/jobs/{first}")
    assert wait_for(client, first)["state"] == "cancelled"
    again = client.post("/learn", files=files, data=labels).json()["job"]
    assert wait_for(client, again)["state"] == "done"
    assert client.get("/classes").json()["classes"] == FIRST + ["blue square"]


def test_a_failing_job_changes_nothing_and_the_next_one_runs(served, tmp_path, monkeypatch, uploads_dir):
    path, server, client = served
    before = digest(path)
    calls = []

    def broken(self, *args, **kwargs):
        calls.append(1)
        raise RuntimeError("a bug")

    files, labels = multipart(images_of(write_shapes_folder(tmp_path / "new", ["blue square"], split="train")))
    with monkeypatch.context() as patch:
        patch.setattr(seca.api.SecaModel, "_learn_task", broken)
        job = wait_for(client, client.post("/learn", files=files, data=labels).json()["job"])
    assert calls and job["state"] == "failed"
    assert job["error"] == "internal error (RuntimeError); the server's log has the details"
    assert digest(path) == before and client.get("/classes").json()["classes"] == FIRST
    assert list(uploads_dir.iterdir()) == []
    assert wait_for(client, client.post("/learn", files=files, data=labels).json()["job"])["state"] == "done"


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_bad_requests_get_one_sentence_and_change_nothing(model, tmp_path, uploads_dir):
    server, client = serving(model, limits=Limits(request_bytes=200_000, files=12, zip_bytes=50_000))
    config = server.model.config  # images of more than 5000 pixels are refused (as a run's data.max_pixels)
    server.model.config = dataclasses.replace(config, data=dataclasses.replace(config.data, max_pixels=5000))
    try:
        png = (
            write_shapes_folder(tmp_path / "one", ["blue square"], per_class=1, split="train") / "blue_square" / "0.png"
        ).read_bytes()
        image = ("images", ("a.png", png, "image/png"))
        big = io.BytesIO()
        Image.new("RGB", (100, 100)).save(big, "PNG")
        before = digest(model)
        cases = [
            ("predict nothing", "post", "/predict", {}, {}, 422, "field 'images'"),
            ("top_k 0", "post", "/predict", {"files": [image], "data": {"top_k": "0"}}, {}, 422, "top_k"),
            ("top_k text", "post", "/predict", {"files": [image], "data": {"top_k": "many"}}, {}, 422, "top_k"),
            (
                "too many pixels",
                "post",
                "/predict",
                {"files": [("images", ("big.png", big.getvalue(), "image/png"))]},
                {},
                400,
                "'big.png'",
            ),
            (
                "not an image",
                "post",
                "/predict",
                {"files": [("images", ("notes.txt", b"hello", "text/plain"))]},
                {},
                400,
                "'notes.txt'",
            ),
            (
                "truncated",
                "post",
                "/predict",
                {"files": [("images", ("cut.png", png[:60], "image/png"))]},
                {},
                400,
                "'cut.png'",
            ),
            ("no labels", "post", "/learn", {"files": [image]}, {}, 400, "needs a 'labels' field per image"),
            (
                "labels count",
                "post",
                "/learn",
                {"files": [image, image], "data": {"labels": ["x"]}},
                {},
                400,
                "2 files but 1 labels",
            ),
            (
                "bad class",
                "post",
                "/learn",
                {"files": [image], "data": {"labels": ["tab\tbed"]}},
                {},
                400,
                "holds a control or unassigned character",
            ),
            (
                "known class",
                "post",
                "/learn",
                {"files": [image], "data": {"labels": ["red circle"]}},
                {},
                409,
                "already knows the class 'red circle'",
            ),
            (
                "two spellings",
                "post",
                "/learn",
                {"files": [image, image], "data": {"labels": ["Cat", "cat"]}},
                {},
                400,
                "Cat",
            ),
            (
                "zip slip",
                "post",
                "/learn",
                {"files": [("zip", ("x.zip", zip_of({"../evil/a.png": png}), "a/zip"))]},
                {},
                400,
                "climbs out of its folder",
            ),
            (
                "zip empty class",
                "post",
                "/learn",
                {"files": [("zip", ("x.zip", zip_of({"c/a.png": png, "empty/": b""}), "a/zip"))]},
                {},
                400,
                "'empty' of the zip 'x.zip' holds no images",
            ),
            (
                "zip entries",
                "post",
                "/learn",
                {"files": [("zip", ("x.zip", zip_of({f"c/{k}.png": png for k in range(13)}), "a/zip"))]},
                {},
                400,
                "has 13 entries, more than the 12",
            ),
            (
                "zip bad image",
                "post",
                "/learn",
                {"files": [("zip", ("x.zip", zip_of({"c/a.png": png, "c/b.png": b"no"}), "a/zip"))]},
                {},
                400,
                "'x.zip: c/b.png'",
            ),
            (
                "zip flat",
                "post",
                "/learn",
                {"files": [("zip", ("x.zip", zip_of({"a.png": png}), "a/zip"))]},
                {},
                400,
                "not <class>/<image>",
            ),
            (
                "zip bomb",
                "post",
                "/learn",
                {"files": [("zip", ("x.zip", zip_of({"c/a.png": bytes(60_000)}), "a/zip"))]},
                {},
                400,
                "would unpack to",
            ),
            (
                "not a zip",
                "post",
                "/learn",
                {"files": [("zip", ("x.zip", b"PK not really", "a/zip"))]},
                {},
                400,
                "is not a zip file",
            ),
            ("too many files", "post", "/predict", {"files": [image] * 13}, {}, 400, "more than 12 files"),
            (
                "too large",
                "post",
                "/predict",
                {"files": [("images", ("big.png", bytes(300_000), "image/png"))]},
                {},
                413,
                "larger than",
            ),
            (
                "epochs 0",
                "post",
                "/learn",
                {"files": [image], "data": {"labels": ["x"], "epochs": "0"}},
                {},
                422,
                "epochs",
            ),
            ("unknown job", "get", "/jobs/nope", {}, {}, 404, "no job 'nope'"),
            ("cancel unknown", "delete", "/jobs/nope", {}, {}, 404, "no job 'nope'"),
            (
                "eval of other classes",
                "post",
                "/learn",
                {
                    "files": [image, ("eval_images", ("t.png", png, "image/png"))],
                    "data": {"labels": ["new one"], "eval_labels": ["other"]},
                },
                {},
                400,
                "hold none of the classes",
            ),
            (
                "unknown evaluate class",
                "post",
                "/evaluate",
                {"files": [image], "data": {"labels": ["nope"]}},
                {},
                400,
                "nope",
            ),
        ]
        for name, method, url, kwargs, headers, status, words in cases:
            answer = getattr(client, method)(url, headers=headers, **kwargs)
            assert answer.status_code == status, (name, answer.status_code, answer.text)
            body = answer.json()
            assert list(body) == ["error"] and words in body["error"], (name, body)
            assert "\n" not in body["error"] and "Traceback" not in body["error"], name
        assert digest(model) == before
        assert client.get("/classes").json()["classes"] == FIRST and server.jobs == {}
        assert list(uploads_dir.iterdir()) == []
    finally:
        server.stop()


def test_a_token_guards_every_change(model, tmp_path, uploads_dir):
    server, client = serving(model, token="s3cret")
    try:
        files, labels = multipart(images_of(write_shapes_folder(tmp_path / "new", ["blue square"], split="train")))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            answer = client.post("/learn", files=files, data=labels, headers=headers)
            assert answer.status_code == 401 and "Authorization: Bearer TOKEN" in answer.json()["error"]
        assert client.delete("/jobs/any").status_code == 401
        assert client.get("/health").json()["token_required"] is True
        assert client.post("/predict", files=files).status_code == 200  # reading needs no token
        answer = client.post("/learn", files=files, data=labels, headers={"Authorization": "Bearer s3cret"})
        assert answer.status_code == 202
        assert wait_for(client, answer.json()["job"])["state"] == "done"
    finally:
        server.stop()


def test_serving_beyond_this_machine_needs_a_token(model, capsys):
    check_host("127.0.0.1", None, False)
    check_host("localhost", None, False)
    check_host("0.0.0.0", "s3cret", False)
    check_host("0.0.0.0", None, True)
    with pytest.raises(SecaError, match="--host 0.0.0.0 would let anyone"):
        check_host("0.0.0.0", None, False)
    assert main(["serve", str(model), "--host", "0.0.0.0"]) == 2
    assert "give --token" in capsys.readouterr().err
    assert main(["serve", str(model.parent / "missing.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err


def test_a_job_waits_for_a_cli_learn_on_the_same_file(served, tmp_path):
    """A job whose file another process is writing waits for it, then builds on what that process saved."""
    from seca.io import locks

    path, server, client = served
    files, labels = multipart(images_of(write_shapes_folder(tmp_path / "new", ["blue square"], split="train")))
    other = write_shapes_folder(tmp_path / "other", ["pink heart"], split="train")
    with locks.model_file(path):
        job_id = client.post("/learn", files=files, data=labels).json()["job"]
        time.sleep(1.0)
        assert client.get(f"/jobs/{job_id}").json()["state"] == "queued"
        outside = seca.load(path)
        outside.learn(other, progress=False)
        outside.save(path)
    job = wait_for(client, job_id)
    assert job["state"] == "done", job
    assert seca.load(path).classes == FIRST + ["pink heart", "blue square"]
    assert client.get("/classes").json()["classes"] == FIRST + ["pink heart", "blue square"]


# ---- what an outside battery found (issue 30), each reproduced ----------------------------------------------


def _png(color=(200, 40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, "PNG")
    return buffer.getvalue()


def _broken_images() -> dict[str, bytes]:
    """Files whose decoders raise something other than OSError: SyntaxError, ValueError, ..."""
    png = _png()
    at = png.find(b"IDAT") - 4  # a PNG whose IDAT chunk is empty
    empty_idat = png[:at] + struct.pack(">I", 0) + b"IDAT" + struct.pack(">I", zlib.crc32(b"IDAT")) + png[-12:]
    tiff = io.BytesIO()
    Image.new("RGB", (4, 4)).save(tiff, "TIFF")
    broken_tiff = tiff.getvalue()[:8] + b"\xff" * 12 + tiff.getvalue()[20:]
    return {"idat.png": empty_idat, "header.ppm": b"P6\n4 x\n255\n" + bytes(48), "broken.tif": broken_tiff}


def test_an_image_any_decoder_refuses_is_a_400_naming_it(served):
    _, _, client = served
    for name, data in _broken_images().items():
        answer = client.post("/predict", files=[("images", (name, data, "image/png"))])
        assert answer.status_code == 400, (name, answer.text)
        error = answer.json()["error"]
        assert f"cannot read image '{name}'" in error and "\n" not in error and "seca-serve" not in error


def test_a_zip_the_reader_refuses_is_a_400_naming_the_entry(served):
    from .test_fuzz import _patched

    _, _, client = served
    plain = zip_of({"cat/a.png": _png()})
    cases = {
        "bad crc": (_patched(plain, "crc", 12345), "cannot be read ('cat/a.png'"),
        "encrypted": (_patched(plain, "flags", 0x1), "has an encrypted entry ('cat/a.png')"),
        "deflate64": (_patched(plain, "method", 9), "compressed by a method this server cannot read (number 9)"),
        "backslash climb": (zip_of({"..\\evil\\a.png": _png()}), "climbs out of its folder ('../evil/a.png')"),
    }
    for case, (data, words) in cases.items():
        answer = client.post("/learn", files=[("zip", ("x.zip", data, "application/zip"))])
        assert answer.status_code == 400 and words in answer.json()["error"], (case, answer.text)


def test_labels_are_data_checked_at_upload_with_the_documented_codes(served, tmp_path):
    path, server, client = served
    image = ("images", ("a.png", _png(), "image/png"))
    for label, status, words in [
        ("x" * 300, 400, "is 300 bytes long in UTF-8, more than 255"),
        ("日" * 100, 400, "is 300 bytes long in UTF-8, more than 255"),
        ("Red_Circle", 409, "already knows the class 'Red Circle' (as 'red circle')"),
    ]:
        answer = client.post("/learn", files=[image], data={"labels": [label]})
        assert answer.status_code == status and words in answer.json()["error"], (label, answer.text)
    assert server.jobs == {}
    # a label equal to a split folder's name is a class like any other
    train, bus = _png((10, 200, 10)), _png((10, 10, 200))
    files = [("images", (f"{k}.png", data, "image/png")) for k, data in enumerate([train, train, bus, bus])]
    answer = client.post("/learn", files=files, data={"labels": ["train", "train", "bus", "bus"]})
    assert answer.status_code == 202, answer.text
    assert wait_for(client, answer.json()["job"])["state"] == "done"
    assert seca.load(path).classes == FIRST + ["bus", "train"]


def test_a_failed_jobs_error_shows_no_path_of_the_server(served, monkeypatch):
    _, server, client = served

    def broken(model, request, names, files):
        raise SecaError(f"cannot use '{files[0][0]}' or '{server.path}'")

    monkeypatch.setattr(seca.api.SecaModel, "_learn_task", broken)
    answer = client.post("/learn", files=[("images", ("a.png", _png(), "image/png"))], data={"labels": ["new"]})
    job = wait_for(client, answer.json()["job"])
    assert job["state"] == "failed" and "the upload" in job["error"], job
    assert tempfile.gettempdir() not in job["error"] and "seca-serve" not in job["error"]


def test_the_limits_are_the_documented_ones(model, uploads_dir):
    server, client = serving(model, limits=Limits(request_bytes=1 << 20))
    try:  # 1,001 images: more than the form parser's own default of 1,000 files, within --max-files 10000
        files = [("images", (f"{k}.png", _png((k % 256, 0, 0)), "image/png")) for k in range(1001)]
        answer = client.post("/predict", files=files)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1001

        def chunks():  # 3 MiB without a Content-Length: a chunked body
            yield b'--b\r\nContent-Disposition: form-data; name="images"; filename="a.png"\r\n\r\n'
            for _ in range(48):
                yield bytes(1 << 16)

        answer = client.post("/predict", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert (
            answer.status_code == 413
            and "larger than 1 MiB" in answer.json()["error"]
            and "--max-request-mb" in (answer.json()["error"])
        )
        assert list(uploads_dir.iterdir()) == []
    finally:
        server.stop()


def test_a_token_is_compared_as_bytes_and_one_that_cannot_be_sent_is_refused_at_start(model, uploads_dir, capsys):
    with pytest.raises(SecaError, match="the token must be printable ASCII"):
        create_app(ModelServer(model, device="cpu"), token="clé-secrète")
    assert main(["serve", str(model), "--token", "clé-secrète"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    server, client = serving(model, token="s3cret")
    try:
        for header in ("Bearer café".encode(), b"Bearer s3cr\xe9t", b"Bearer \xff\xfe", "Bearer s3cret é".encode()):
            answer = client.post("/learn", headers={"Authorization": header})
            assert answer.status_code == 401, (header, answer.text)
        assert client.post("/learn", headers={"Authorization": "Bearer s3cret"}).status_code == 400  # no images
    finally:
        server.stop()


def test_the_access_log_never_records_a_query_strings_values():
    import logging

    from seca.serve import QueryRedaction

    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', None, None)
    record.args = ("127.0.0.1:5000", "POST", "/learn?token=s3cret&x=1", "1.1", 401)
    assert QueryRedaction().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "POST /learn?token=[redacted]&x=[redacted] HTTP/1.1" 401'
    # and the server's own logging passes every access line through it
    import logging.config

    from seca.serve import log_config

    logging.config.dictConfig(log_config())
    handler = logging.getLogger("uvicorn.access").handlers[0]
    record.args = ("127.0.0.1:5000", "GET", "/jobs?token=abc", "1.1", 404)
    assert handler.filter(record) and "abc" not in record.getMessage()


def test_a_port_out_of_range_is_refused_in_one_line(model, capsys):
    assert main(["serve", str(model), "--port", "70000"]) == 2
    assert "must be a port number from 1 to 65535, got 70000" in capsys.readouterr().err


def test_a_read_only_model_refuses_a_learn_job_at_once(served):
    path, server, client = served
    path.chmod(0o444)
    answer = client.post("/learn", files=[("images", ("a.png", _png(), "image/png"))], data={"labels": ["new"]})
    assert answer.status_code == 409 and "is read-only (mode 0444)" in answer.json()["error"], answer.text
    assert server.jobs == {}


# ---- fuzzed requests ---------------------------------------------------------------------------------------


@pytest.fixture
def idle(model, uploads_dir):
    """A server whose worker has stopped: a learn request that passes is queued and never trains."""
    server, client = serving(model, token="s3cret", limits=Limits(request_bytes=1 << 20, files=20))
    server.stop()
    return server, client, uploads_dir


@given(data=st.sampled_from(sorted(BASES)).flatmap(lambda fmt: mutated(BASES[fmt])), name=st.text(max_size=20))
def test_fuzz_predict_answers_or_refuses_any_image_in_one_sentence(idle, data, name):
    _, client, uploads = idle
    answer = client.post("/predict", files=[("images", (name or "x", data, "image/png"))])
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        error = answer.json()["error"]
        assert "\n" not in error and "seca-serve" not in error
    assert list(uploads.iterdir()) == []


@given(
    labels=st.lists(st.text(max_size=300), min_size=1, max_size=3),
    token=st.one_of(st.binary(max_size=12), st.just(b"s3cret")),
)
def test_fuzz_learn_answers_any_label_and_token_without_a_500(idle, labels, token):
    server, client, uploads = idle
    files = [("images", (f"{k}.png", _png(), "image/png")) for k in range(len(labels))]
    answer = client.post("/learn", files=files, data={"labels": labels}, headers={"Authorization": b"Bearer " + token})
    assert answer.status_code in (202, 400, 401, 409, 422), answer.text
    if answer.status_code == 202:
        server.cancel(answer.json()["job"])
    else:
        assert "\n" not in answer.json()["error"]
    assert all(job.state == "cancelled" for job in server.jobs.values())
    assert list(uploads.iterdir()) == []
