"""A model you keep: save/load, predict, evaluate, learn new classes, resume after a kill, reports."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import seca
from seca.cli import main
from seca.errors import SecaError

from ..conftest import FAST_RUN, write_shapes_folder

OLD = ["red circle", "orange star"]  # classes of the cpu-small world (4 colours x 5 shapes)
NEW = ["purple star", "pink heart", "cyan square"]  # not in it


def test_save_load_round_trip_gives_identical_predictions(small_run, tmp_path):
    model = seca.load(small_run / "model.safetensors")
    assert model.method == "seca" and len(model.classes) == 20 and len(model.learner.tasks) == 5
    images = write_shapes_folder(tmp_path / "imgs", OLD, per_class=3)
    files = sorted(str(p) for p in images.rglob("*.png"))
    first = model.probabilities(files)
    model.save(tmp_path / "copy.safetensors")
    again = seca.load(tmp_path / "copy.safetensors").probabilities(files)
    assert torch.equal(first, again)
    torch.testing.assert_close(first.sum(dim=1), torch.ones(len(files)))


def test_loaded_model_reproduces_the_runs_test_accuracy(small_run):
    # evaluating the loaded model on the run's own test images gives the run's final accuracy row
    from seca.data.sets import load_dataset
    from seca.engine.configure import load_config
    from seca.engine.data import TaskImages
    from seca.engine.evaluate import evaluate_tasks

    results = json.loads((small_run / "results.json").read_text())
    model = seca.load(small_run / "model.safetensors")
    cfg = load_config("cpu-small", ["data.shapes.train_per_class=8", "data.shapes.test_per_class=4"])
    data = load_dataset(cfg.data, model.preprocess)
    label_of = {c: k for k, c in enumerate(results["class_order"])}
    sets = []
    for task in results["tasks"]:
        idx = [i for i, t in enumerate(data.test.targets) if t in task]
        sets.append(TaskImages(data.test, idx, [label_of[int(data.test.targets[i])] for i in idx]))
    correct, total = evaluate_tasks(model.learner, sets, 64, model.device, progress=False)
    assert [100.0 * c / n for c, n in zip(correct, total)] == results["acc_matrix"][-1]


def test_predict_accepts_paths_pil_images_and_tensors(small_run, tmp_path):
    from PIL import Image

    model = seca.load(small_run / "model.safetensors")
    path = write_shapes_folder(tmp_path, ["red circle"], per_class=1) / "red_circle" / "0.png"
    pil = Image.open(path).convert("RGB")
    by_path, by_pil, by_tensor = (model.predict(x, top_k=3)[0] for x in (str(path), pil, model.preprocess(pil)))
    assert by_path == by_pil == by_tensor
    assert len(by_path.top_k) == 3 and by_path.top_k[0][0] == by_path.label in model.classes
    assert by_path.top_k[0][1] >= by_path.top_k[1][1] >= by_path.top_k[2][1]
    with pytest.raises(SecaError, match="3x32x32"):
        model.predict(torch.zeros(3, 8, 8))


def test_predict_cli_prints_text_and_json(small_run, tmp_path, capsys):
    folder = write_shapes_folder(tmp_path, OLD, per_class=2)
    assert main(["predict", str(small_run / "model.safetensors"), str(folder), "--top-k", "2"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    lines = [line for line in printed if line.startswith(str(folder))]  # one per image, then a count of undecided
    assert len(lines) == 4 and all(line.count("(") == 2 for line in lines)
    undecided = sum("[undecided: " in line for line in lines)
    summary = f"{undecided} image{'s' if undecided > 1 else ''} of 4 undecided: its two most likely classes are within"
    assert (printed[4:] == [summary + " 2 points of probability"]) if undecided else len(printed) == 4
    model_classes = seca.load(small_run / "model.safetensors").classes
    first_label = lines[0].split(": ", 1)[1].split(" (")[0]
    assert first_label in model_classes
    assert main(["predict", str(small_run / "model.safetensors"), str(folder), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 4 and {"path", "label", "score", "margin", "undecided", "top_k"} <= set(records[0])
    probabilities = seca.load(small_run / "model.safetensors").probabilities([r["path"] for r in records])
    two = probabilities.topk(2, dim=1).values
    assert [r["margin"] for r in records] == pytest.approx((two[:, 0] - two[:, 1]).tolist(), abs=1e-6)
    assert [r["undecided"] for r in records] == [r["margin"] < 0.02 for r in records]
    assert records[0]["label"] in model_classes and 0 <= records[0]["score"] <= 1


def test_learn_through_the_api_then_predict_old_and_new_classes(small_run, tmp_path):
    model = seca.load(small_run / "model.safetensors")
    new = write_shapes_folder(tmp_path / "new", NEW, per_class=4, split="train")
    task = model.learn(new, epochs=1, progress=False)
    assert task.index == 5 and (task.start, task.stop) == (20, 23)
    assert model.classes[-3:] == sorted(NEW, key=lambda n: n.replace(" ", "_"))
    assert model.learner.stored_prototypes.shape[0] == 23 and len(model.learner.prompts) == 6
    mixed = write_shapes_folder(tmp_path / "mixed", OLD + NEW, per_class=2)
    predictions = model.predict([str(p) for p in sorted(mixed.rglob("*.png"))])
    assert len(predictions) == 10 and all(p.label in model.classes for p in predictions)
    saved = model.save(tmp_path / "grown.safetensors")
    reloaded = seca.load(saved)
    assert reloaded.classes == model.classes
    assert torch.equal(
        reloaded.probabilities([str(p) for p in sorted(mixed.rglob("*.png"))]),
        model.probabilities([str(p) for p in sorted(mixed.rglob("*.png"))]),
    )
    report = reloaded.evaluate(mixed)
    assert report["images"] == 10 and set(report["per_class"]) == set(OLD + NEW)


def test_learn_cli_refuses_known_classes_and_adds_new_ones(small_run, tmp_path, capsys):
    known = write_shapes_folder(tmp_path / "known", ["red circle", "purple star"], split="train")
    code = main(["learn", str(small_run / "model.safetensors"), "--data", str(known), "--out", str(tmp_path / "x")])
    assert code == 2 and "'red circle' is already known" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    new = write_shapes_folder(tmp_path / "new", NEW, split="train")
    out = tmp_path / "grown.safetensors"
    assert (
        main(["learn", str(small_run / "model.safetensors"), "--data", str(new), "--out", str(out), "--epochs", "1"])
        == 0
    )
    assert "23 classes" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--data", str(write_shapes_folder(tmp_path / "t", NEW)), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 9 and set(report["per_class"]) == set(NEW)
    assert main(["evaluate", str(out), "--data", str(write_shapes_folder(tmp_path / "u", ["yellow arrow"]))]) == 2
    assert "does not know class 'yellow arrow'" in capsys.readouterr().err


def _run_args(out):
    return ["run", "cpu-small", "--out", str(out), *FAST_RUN, "--set", "train.epochs=3", "--set", "train.log_every=1"]


def test_a_killed_run_resumes_to_the_same_results(tmp_path):
    reference = tmp_path / "reference"
    assert main(_run_args(reference)) == 0
    expected = json.loads((reference / "results.json").read_text())

    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "seca.cli", *_run_args(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = out / "log.jsonl"
    deadline = time.time() + 300
    killed = False
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and any(
            json.loads(line).get("event") == "train_step" and json.loads(line)["task"] == 1
            for line in log.read_text().splitlines()
            if line.strip()
        ):
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.02)
    proc.wait()
    assert killed, "the run ended before its second task could be interrupted"
    assert not (out / "results.json").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["task-01.safetensors"]

    assert main(_run_args(out) + ["--resume"]) == 0
    resumed = json.loads((out / "results.json").read_text())
    assert resumed["acc_matrix"] == expected["acc_matrix"]
    assert resumed["last"] == expected["last"]
    events = [json.loads(line)["event"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert "resume" in events
    # the model's history holds every task, the one before the kill too, as the uninterrupted run's does
    from seca.io.checkpoint import read_metadata

    def without_seconds(path):
        return [{k: v for k, v in e.items() if k != "seconds"} for e in read_metadata(path)["history"]]

    assert without_seconds(out / "model.safetensors") == without_seconds(reference / "model.safetensors")
    assert len(without_seconds(out / "model.safetensors")) == 5


def test_resume_refuses_another_config_and_finished_runs(small_run, tmp_path, capsys):
    assert main(["run", "cpu-small", "--out", str(small_run), *FAST_RUN, "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    out = tmp_path / "r"  # a run stopped after its last checkpoint
    assert main(["run", "cpu-small", "--out", str(out), *FAST_RUN, "--set", "train.checkpoints=all"]) == 0
    (out / "results.json").unlink()
    assert main(["run", "cpu-small", "--out", str(out), *FAST_RUN, "--set", "train.epochs=2", "--resume"]) == 2
    assert (
        "the config differs from the interrupted run's at train.epochs (2 now, 1 in the run); resume with the "
        "same config"
    ) in capsys.readouterr().err


def test_report_and_compare(small_run, tmp_path, capsys):
    zero = tmp_path / "zero-shot" / "seed0"
    assert main(["run", "cpu-small", "--out", str(zero), *FAST_RUN, "--set", "method.name=zero-shot"]) == 0
    capsys.readouterr()
    assert main(["report", str(small_run), "--zero-shot", str(zero)]) == 0
    written = capsys.readouterr().out.split("\n")[-4:-1]  # the table, then the files written
    assert [p.rsplit("/", 1)[-1] for p in written] == ["accuracy_matrix.png", "accuracy_curve.png", "summary.md"]
    summary = (small_run / "summary.md").read_text()
    assert "| Last |" in summary and "zero-shot" in summary
    from PIL import Image

    assert Image.open(small_run / "accuracy_matrix.png").size[0] > 100
    assert main(["compare", str(small_run), str(zero)]) == 0
    table = capsys.readouterr().out
    assert "seca" in table and "zero-shot" in table and "Last" in table


def test_checkpoint_metadata_describes_the_model(small_run):
    from seca.io.checkpoint import read_metadata

    meta = read_metadata(small_run / "model.safetensors")
    assert meta["backbone"] == {"model": "seca-test", "pretrained": None}
    assert len(meta["class_names"]) == 20 and len(meta["tasks"]) == 5 and meta["method"] == "seca"
    assert meta["seca_version"] == seca.__version__ and len(meta["content_sha256"]) == 64
    assert meta["config"]["train"]["epochs"] == 1


def test_a_runs_results_keep_the_final_confusion_counts(small_run):
    results = json.loads((small_run / "results.json").read_text())
    confusion = results["confusion"]
    classes = len(results["class_order"])
    assert len(confusion) == classes and all(len(row) == classes for row in confusion)
    per_class = results["test_counts"][0] // len(results["tasks"][0])
    assert all(sum(row) == per_class for row in confusion)  # every test image counted once
    # the diagonal is the final row of the accuracy matrix, task by task
    diagonal = [confusion[k][k] for k in range(classes)]
    for task, accuracy, (start, stop) in zip(
        results["tasks"], results["acc_matrix"][-1], [(4 * t, 4 * t + 4) for t in range(len(results["tasks"]))]
    ):
        assert 100.0 * sum(diagonal[start:stop]) / (per_class * len(task)) == pytest.approx(accuracy)


def test_evaluate_shows_where_the_errors_go(small_run, tmp_path, capsys):
    model = seca.load(small_run / "model.safetensors")
    names = model.classes[:3] + model.classes[-2:]
    data = write_shapes_folder(tmp_path / "data", names, per_class=4)
    out = tmp_path / "report"
    assert (
        main(
            [
                "evaluate",
                str(small_run / "model.safetensors"),
                "--data",
                str(data),
                "--confusion",
                "--out",
                str(out),
                "--top",
                "3",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    c = report["confusion"]
    assert c["rows"] == names and c["columns"] == model.classes  # both in the model's label (task) order
    assert c["task_bounds"] == [0, 4, 8, 12, 16, 20]
    assert [sum(row) for row in c["counts"]] == [4] * 5
    for row_name, row in zip(c["rows"], c["counts"]):  # the diagonal is each class's accuracy
        assert 100.0 * row[model.classes.index(row_name)] / 4 == report["per_class"][row_name]["accuracy"]
    pairs = c["most_confused"]
    assert len(pairs) <= 3 and all(p["true"] != p["predicted"] for p in pairs)
    assert [p["images"] for p in pairs] == sorted((p["images"] for p in pairs), reverse=True)
    lines = (out / "confusion.csv").read_text().splitlines()
    assert lines[0].split(",")[1:] == model.classes and len(lines) == 6
    assert (out / "confusion.png").stat().st_size > 1000
    assert (
        main(["evaluate", str(small_run / "model.safetensors"), "--data", str(data), "--confusion", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "most confused" in printed or "no image went to a wrong class" in printed
    assert main(["evaluate", str(small_run / "model.safetensors"), "--data", str(data), "--top", "0"]) == 2


def test_most_confused_pairs_by_hand():
    from seca.eval.confusion import most_confused

    counts = [[5, 3, 2], [0, 6, 4], [1, 1, 8]]
    pairs = most_confused(counts, ["a", "b", "c"], ["a", "b", "c"], top=3)
    assert [(p["true"], p["predicted"], p["images"]) for p in pairs] == [("b", "c", 4), ("a", "b", 3), ("a", "c", 2)]
    assert pairs[0]["share"] == pytest.approx(40.0) and pairs[1]["share"] == pytest.approx(30.0)
    assert most_confused([[2, 0], [0, 3]], ["a", "b"], ["a", "b"]) == []
