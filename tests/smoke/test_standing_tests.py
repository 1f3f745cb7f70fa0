"""A model's standing test set and its yardsticks: the test images given to ``learn`` are kept beside the model file,
by digest, so every later task is measured on every task learned so far (a whole accuracy matrix over the model's
life, equal to what ``seca evaluate`` gives on the kept images after each task); chance and the majority class
beside every accuracy; a warning when a new task scores below chance."""

import hashlib
import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seca
from seca.cli import main
from seca.errors import SecaError
from seca.io.checkpoint import read_metadata
from seca.io.kept_tests import KeptTests, folder_of

from ..conftest import write_shapes_folder

TASKS = [["orange star", "red circle"], ["blue square", "green triangle"], ["purple star", "yellow arrow"]]


def _new(path, method=None):
    args = ["new", str(path), "--backbone", "seca-test", "--set", "train.epochs=1"]
    assert main(args + (["--method", method] if method else [])) == 0


def test_three_learns_make_a_whole_matrix_equal_to_evaluate_on_the_kept_images(tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    _new(model)
    capsys.readouterr()
    rows = []
    for k, names in enumerate(TASKS):
        train = write_shapes_folder(tmp_path / f"train-{k}", names, per_class=4, split="train")
        # each test folder holds only the new classes' images (as the web page sends them); one class has more
        test = write_shapes_folder(tmp_path / f"test-{k}", names[:1], per_class=3)
        write_shapes_folder(test, names[1:], per_class=2)
        assert main(["learn", str(model), "--data", str(train), "--eval", str(test)]) == 0
        printed = capsys.readouterr().out
        known = 2 * (k + 1)
        assert f"chance {100 / known:.2f}% (guessing among {known} classes)" in printed
        assert f"kept test images: {5 * (k + 1)} images of {known} classes" in printed
        # what seca evaluate gives on the kept images now is this learn's row, number for number
        assert main(["evaluate", str(model), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        entry = seca.load(model).history[-1]["eval"]
        assert report["per_task"] == entry["per_task"] and report["task_correct"] == entry["task_correct"]
        assert report["accuracy"] == entry["accuracy"] and report["images"] == 5 * (k + 1)
        assert entry["kept"] == 5 * k and entry["task_images"] == [5] * (k + 1)
        assert entry["chance"] == round(100 / known, 2)
        assert entry["majority"] == round(100 * 3 / (5 * (k + 1)), 2)  # 3 images of each task's first class
        rows.append(entry["per_task"])

    assert main(["report", str(model), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["acc_matrix"] == rows and [len(r) for r in rows] == [1, 2, 3]
    assert all(a is not None for row in rows for a in row)
    assert results["chance"] == [50.0, 25.0, round(100 / 6, 2)] and results["last"] == results["acc_per_step"][-1]
    assert results["forgetting"] is not None and results["avg"] is not None

    # the sidecar: every kept image, named by the SHA-256 of its bytes; the model lists them by class
    folder = folder_of(model)
    files = sorted(folder.iterdir())
    assert len(files) == 15 and all(hashlib.sha256(f.read_bytes()).hexdigest() + ".png" == f.name for f in files)
    manifest = read_metadata(model)["kept_tests"]
    assert sorted(manifest["classes"]) == sorted(n for names in TASKS for n in names)
    assert {i["digest"] + i["suffix"] for items in manifest["classes"].values() for i in items} == {
        f.name for f in files
    }


def test_keeping_is_opt_out_and_a_copy_takes_its_images_along(tmp_path, capsys):
    model, grown = tmp_path / "m.safetensors", tmp_path / "grown.safetensors"
    _new(model)
    for k in range(2):
        train = write_shapes_folder(tmp_path / f"train-{k}", TASKS[k], per_class=3, split="train")
        test = write_shapes_folder(tmp_path / f"test-{k}", TASKS[k], per_class=2)
        flag = ["--no-keep-eval"] if k == 1 else []
        assert main(["learn", str(model), "--data", str(train), "--eval", str(test), *flag]) == 0
    assert len(seca.load(model).kept) == 4  # the second task's test images were not kept
    # a third learn without --eval is still measured on the kept images: task 1 only
    train = write_shapes_folder(tmp_path / "train-2", TASKS[2], per_class=3, split="train")
    assert main(["learn", str(model), "--data", str(train), "--out", str(grown)]) == 0
    entry = seca.load(grown).history[-1]["eval"]
    assert entry["task_images"] == [4, 0, 0] and entry["per_task"][1:] == [None, None] and entry["kept"] == 4
    assert sorted(p.name for p in folder_of(grown).iterdir()) == sorted(p.name for p in folder_of(model).iterdir())

    # the model file copied without its folder: evaluate says so in one line; learn goes on without them
    lone = tmp_path / "lone" / "m.safetensors"
    lone.parent.mkdir()
    shutil.copy(grown, lone)
    capsys.readouterr()
    assert main(["evaluate", str(lone)]) == 2
    err = capsys.readouterr().err.strip()
    assert "4 of the model's 4 kept test images are missing" in err and len(err.splitlines()) == 1
    train = write_shapes_folder(tmp_path / "train-3", ["brown crescent"], per_class=3, split="train")
    assert main(["learn", str(lone), "--data", str(train)]) == 0  # every kept image gone: learned, not evaluated
    assert "4 kept test images were missing" in capsys.readouterr().out
    assert seca.load(lone).history[-1]["eval"] is None


def test_a_failed_learn_changes_neither_the_model_nor_its_kept_images(tmp_path):
    path = tmp_path / "m.safetensors"
    _new(path)
    model = seca.load(path)
    test = write_shapes_folder(tmp_path / "test-0", TASKS[0], per_class=2)
    model.learn(write_shapes_folder(tmp_path / "t0", TASKS[0], split="train"), eval_data=test, progress=False)
    model.save(path)
    before = (path.read_bytes(), sorted(p.name for p in folder_of(path).iterdir()))

    def stop(event, fields):
        if event == "evaluating":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.learn(
            write_shapes_folder(tmp_path / "t1", TASKS[1], split="train"),
            eval_data=write_shapes_folder(tmp_path / "test-1", TASKS[1], per_class=2),
            out=path,
            progress=False,
            on_event=stop,
        )
    assert (path.read_bytes(), sorted(p.name for p in folder_of(path).iterdir())) == before
    assert len(model.kept) == 4 and len(model.classes) == 2


def test_a_new_task_below_chance_ends_in_a_warning_with_chance_and_majority(tmp_path, capsys):
    # zero-shot answers from the class names alone, so what it answers for an image is known before the learn:
    # the new classes' test images are images it gives to other classes, and the new task scores 0% < chance
    model = tmp_path / "m.safetensors"
    _new(model, "zero-shot")
    assert main(["learn", str(model), "--data", str(write_shapes_folder(tmp_path / "a", TASKS[0], split="train"))]) == 0
    scratch = seca.load(model)
    pool = write_shapes_folder(tmp_path / "pool", TASKS[0] + TASKS[1], per_class=4)
    scratch.learn(write_shapes_folder(tmp_path / "b", TASKS[1], split="train"), progress=False)
    images = sorted(pool.rglob("*.png"))
    answers = scratch.predict(images)
    test = tmp_path / "test"
    for name in TASKS[1]:
        wrong = [p for p, a in zip(images, answers) if a.label != name][:3]
        assert wrong, "every pooled image is answered as one class"
        (test / name.replace(" ", "_")).mkdir(parents=True)
        for k, p in enumerate(wrong):
            shutil.copy(p, test / name.replace(" ", "_") / f"{k}.png")
    capsys.readouterr()
    train = write_shapes_folder(tmp_path / "b2", TASKS[1], split="train")
    assert main(["learn", str(model), "--data", str(train), "--eval", str(test)]) == 0
    printed = capsys.readouterr().out
    assert "added task 2: 2 new classes" in printed and "by name only" in printed
    assert "chance 25.00% (guessing among 4 classes), majority 50.00%" in printed
    assert "warning: the last task's classes (task 2) scored 0.00%, below chance (25.00%" in printed
    assert seca.load(model).history[-1]["eval"]["warning"].startswith("the last task's classes (task 2) scored 0.00%")


def test_the_evaluation_without_a_kept_set_says_how_to_make_one(tmp_path):
    path = tmp_path / "m.safetensors"
    _new(path)
    model = seca.load(path)
    model.learn(write_shapes_folder(tmp_path / "t0", TASKS[0], split="train"), progress=False)
    with pytest.raises(SecaError, match="keeps no test images"):
        model.evaluate()


# any JSON a damaged or hand-made model file may hold under kept_tests
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
_entry = st.fixed_dictionaries(
    {"digest": st.text("0123456789abcdef./", min_size=60, max_size=66), "suffix": st.text(".pngPNG/\\", max_size=6)},
    optional={"file": st.text(max_size=8)},
)


@settings(max_examples=25, deadline=None)
@given(
    manifest=_json
    | st.fixed_dictionaries(
        {"format": st.just(1), "classes": st.dictionaries(st.text(max_size=8), _json | st.lists(_entry))}
    )
)
def test_fuzz_a_kept_tests_list_is_read_or_refused_in_one_line_and_never_names_a_file_outside(
    manifest, tmp_path_factory
):
    folder = tmp_path_factory.mktemp("kept") / "m.safetensors.tests"
    try:
        kept = KeptTests(manifest, folder)
    except SecaError as e:
        assert "\n" not in str(e)
        return
    for items in kept.classes.values():
        for item in items:  # every image the list names is a file of the folder itself
            assert (folder / (item["digest"] + item["suffix"])).parent == folder
    assert kept.images() == {} and kept.dropped == len(kept)


def test_a_kept_tests_entry_that_would_name_a_file_outside_its_folder_is_refused():
    outside = {"format": 1, "classes": {"a": [{"digest": "../" * 21 + "x", "suffix": "", "file": "x"}]}}
    with pytest.raises(SecaError, match="kept test images .* is damaged"):
        KeptTests(outside)
    with pytest.raises(SecaError, match="format 2; this seca reads format 1"):
        KeptTests({"format": 2, "classes": {}})
    good = {"format": 1, "classes": {"a": [{"digest": "0" * 64, "suffix": ".png", "file": "x.png"}]}}
    assert len(KeptTests(good)) == 1


def test_kept_images_go_beside_the_real_file_and_a_read_only_model_writes_nothing(tmp_path):
    import os

    real = tmp_path / "real" / "m.safetensors"
    real.parent.mkdir()
    _new(real)
    link = tmp_path / "link.safetensors"
    link.symlink_to(real)
    test = write_shapes_folder(tmp_path / "test-0", TASKS[0], per_class=2)
    train = write_shapes_folder(tmp_path / "t0", TASKS[0], split="train")
    assert main(["learn", str(link), "--data", str(train), "--eval", str(test)]) == 0
    assert link.is_symlink() and len(list(folder_of(real).iterdir())) == 4
    assert not (tmp_path / "link.safetensors.tests").exists()
    assert len(seca.load(real).kept_tests()) == 2  # found from either path
    assert len(seca.load(link).kept_tests()) == 2

    before = sorted(p.name for p in folder_of(real).iterdir())
    os.chmod(real, 0o444)
    more = write_shapes_folder(tmp_path / "test-1", TASKS[1], per_class=2)
    train = write_shapes_folder(tmp_path / "t1", TASKS[1], split="train")
    assert main(["learn", str(real), "--data", str(train), "--eval", str(more)]) == 2
    assert sorted(p.name for p in folder_of(real).iterdir()) == before  # no kept image written for it
