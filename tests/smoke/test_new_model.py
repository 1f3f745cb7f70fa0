"""A model grown from nothing: seca new, learn task after task with --eval, its history, and its report."""

import json

import pytest
import torch

import seca
from seca.cli import main
from seca.errors import SecaError
from seca.eval.history import eval_record, history_results
from seca.io.checkpoint import read_metadata

from ..conftest import write_shapes_folder

TASK_1 = ["red circle", "orange star"]
TASK_2 = ["purple star", "pink heart", "cyan square"]


def _folders(root):
    """Training folders of two tasks and one test folder of all five classes."""
    return (
        write_shapes_folder(root / "task-1", TASK_1, per_class=4, split="train"),
        write_shapes_folder(root / "task-2", TASK_2, per_class=4, split="train"),
        write_shapes_folder(root / "test", TASK_1 + TASK_2, per_class=3),
    )


def test_new_learn_twice_evaluate_and_report_through_the_cli(tmp_path, capsys):
    task_1, task_2, test = _folders(tmp_path)
    model = tmp_path / "model" / "digits.safetensors"
    assert main(["new", str(model), "--backbone", "seca-test", "--set", "train.epochs=1"]) == 0
    assert "knows no class yet" in capsys.readouterr().out
    meta = read_metadata(model)
    assert meta["class_names"] == [] and meta["history"] == [] and meta["config"]["train"]["epochs"] == 1
    assert meta["config"]["benchmark"] == "custom" and meta["backbone"] == {"model": "seca-test", "pretrained": None}

    assert main(["learn", str(model), "--data", str(task_1), "--eval", str(test)]) == 0  # in place
    printed = capsys.readouterr().out
    assert "learned task 1: 2 new classes" in printed and "on 6 images of 2 classes" in printed
    assert main(["learn", str(model), "--data", str(task_2), "--eval", str(test)]) == 0
    assert "the model now knows 5 classes" in capsys.readouterr().out

    history = seca.load(model).history
    assert [e["task"] for e in history] == [0, 1]
    assert [sorted(e["classes"]) for e in history] == [sorted(TASK_1), sorted(TASK_2)]
    assert [e["images"] for e in history] == [8, 12] and all(e["seconds"] > 0 for e in history)
    first, second = history[0]["eval"], history[1]["eval"]
    assert (first["images"], first["classes"], len(first["per_task"])) == (6, 2, 1)
    assert (second["images"], second["classes"], second["task_images"]) == (15, 5, [6, 9])

    assert main(["evaluate", str(model), "--data", str(test), "--confusion", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # the history's last evaluation is this model on these images: the same numbers
    assert report["accuracy"] == pytest.approx(second["accuracy"])
    assert report["per_task"] == pytest.approx(second["per_task"])
    per_class = report["per_class"]
    task_1_correct = sum(round(per_class[n]["accuracy"] * per_class[n]["images"] / 100) for n in TASK_1)
    assert second["task_correct"][0] == task_1_correct and second["per_task"][0] == round(100 * task_1_correct / 6, 2)
    assert report["confusion"]["task_bounds"] == [0, 2, 5]
    assert (model.parent / "confusion.csv").is_file() and (model.parent / "confusion.png").is_file()

    assert main(["report", str(model)]) == 0
    written = capsys.readouterr().out.split("\n")[-4:-1]  # the table, then the files written
    assert [p.rsplit("/", 1)[-1] for p in written] == ["accuracy_matrix.png", "accuracy_curve.png", "summary.md"]
    summary = (model.parent / "summary.md").read_text()
    # the second step: the folder's images and the 6 of task 1 kept from the first learn (the same images)
    assert "grown task by task" in summary and summary.count(f"| {test} | ") == 1
    assert summary.count(f"| {test} + 6 kept test images | ") == 1
    assert f"| Last | {second['accuracy']:.2f} |" in summary
    forgetting = first["per_task"][0] - second["per_task"][0]
    assert f"| Forgetting | {forgetting:.2f} |" in summary


def test_new_refuses_bad_requests_before_writing_anything(tmp_path, capsys):
    def refused(*args):
        assert main(["new", *args]) == 2
        return capsys.readouterr().err

    assert ".safetensors" in refused(str(tmp_path / "model"), "--backbone", "seca-test")
    assert "--pretrained" in refused(str(tmp_path / "m.safetensors"), "--backbone", "ViT-B-32")
    assert "did you mean seca-shapes" in refused(str(tmp_path / "m.safetensors"), "--backbone", "seca-shape")
    assert "learn does not use" in refused(
        str(tmp_path / "m.safetensors"), "--backbone", "seca-test", "--set", "data.root=x"
    )
    assert "unknown config key" in refused(
        str(tmp_path / "m.safetensors"), "--backbone", "seca-test", "--set", "train.epoch=1"
    )
    assert not list(tmp_path.iterdir())
    path = tmp_path / "m.safetensors"
    assert main(["new", str(path), "--backbone", "seca-test", "--method", "h-peft"]) == 0
    assert "--overwrite" in refused(str(path), "--backbone", "seca-test")
    assert read_metadata(path)["method"] == "h-peft"


def test_an_empty_model_says_what_to_do(tmp_path, capsys):
    path = tmp_path / "m.safetensors"
    assert main(["new", str(path), "--backbone", "seca-test"]) == 0
    folder = write_shapes_folder(tmp_path / "imgs", TASK_1, per_class=1)
    assert main(["predict", str(path), str(folder)]) == 2
    assert "knows no class yet" in capsys.readouterr().err
    assert main(["report", str(path)]) == 2
    assert "learned no task yet" in capsys.readouterr().err


def test_learn_checks_the_eval_folder_before_training(tmp_path, capsys):
    task_1, task_2, _ = _folders(tmp_path)
    path = tmp_path / "m.safetensors"
    assert main(["new", str(path), "--backbone", "seca-test"]) == 0
    before = path.read_bytes()
    assert main(["learn", str(path), "--data", str(task_1), "--eval", str(task_2)]) == 2
    assert "holds none of the classes" in capsys.readouterr().err
    assert main(["learn", str(path), "--data", str(task_1), "--eval", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "folder").mkdir()
    assert main(["learn", str(path), "--data", str(task_1), "--out", str(tmp_path / "folder")]) == 2
    assert "is a folder; give the path of the file to write" in capsys.readouterr().err
    assert path.read_bytes() == before and not list((tmp_path / "folder").iterdir())
    # learned without --eval: the history holds the task but no accuracy, and the report says how to get one
    assert main(["learn", str(path), "--data", str(task_1), "--epochs", "1"]) == 0
    assert read_metadata(path)["history"][0]["eval"] is None
    capsys.readouterr()
    assert main(["report", str(path)]) == 2
    assert "--eval" in capsys.readouterr().err


def test_the_python_api_grows_a_model_from_nothing(tmp_path):
    task_1, task_2, test = _folders(tmp_path)
    model = seca.new("seca-test", method="zero-shot")
    assert model.classes == [] and model.method == "zero-shot" and model.history == []
    with pytest.raises(SecaError, match="knows no class"):
        model.evaluate(test)
    model.learn(task_1, progress=False)
    model.learn(task_2, progress=False, eval_data=test)
    assert model.classes == sorted(TASK_1, key=lambda n: n.replace(" ", "_")) + sorted(
        TASK_2, key=lambda n: n.replace(" ", "_")
    )
    assert model.history[0]["eval"] is None and model.history[1]["eval"]["images"] == 15
    report = model.evaluate(test, known_only=True)
    assert report["left_out"] == [] and report["accuracy"] == pytest.approx(model.history[1]["eval"]["accuracy"])
    reloaded = seca.load(model.save(tmp_path / "zs.safetensors"))
    assert reloaded.history == model.history
    other = write_shapes_folder(tmp_path / "other", ["yellow arrow", "red star"])
    with pytest.raises(SecaError, match="none of the 2 class folders"):
        model.evaluate(other, known_only=True)


def test_a_runs_model_carries_its_history_and_learn_extends_it(small_run, tmp_path, capsys):
    results = json.loads((small_run / "results.json").read_text())
    meta = read_metadata(small_run / "model.safetensors")
    history = meta["history"]
    assert [e["task"] for e in history] == list(range(5)) and all(e["images"] == 32 for e in history)
    assert [e["eval"]["accuracy"] for e in history] == pytest.approx(results["acc_per_step"])
    assert [e["eval"]["per_task"] for e in history] == results["acc_matrix"]
    # the yardsticks of each step: chance among the classes seen, the most frequent class of their test images
    assert results["chance"] == [25.0, 12.5, 8.33, 6.25, 5.0] == [e["eval"]["chance"] for e in history]
    assert results["majority"] == [e["eval"]["majority"] for e in history]
    assert all(c <= m < 100 for c, m in zip(results["chance"], results["majority"]))
    from_history = history_results(meta, "model")
    for key in ("last", "avg", "forgetting", "bwt"):
        assert from_history[key] == pytest.approx(results[key])

    grown = tmp_path / "grown.safetensors"
    test = write_shapes_folder(tmp_path / "test", [results["class_names"][0], *TASK_2, "black arrow"], per_class=2)
    new = write_shapes_folder(tmp_path / "new", TASK_2, per_class=3, split="train")
    assert (
        main(
            [
                "learn",
                str(small_run / "model.safetensors"),
                "--data",
                str(new),
                "--out",
                str(grown),
                "--eval",
                str(test),
                "--epochs",
                "1",
            ]
        )
        == 0
    )
    # one class of the run's first task and the three new ones are evaluated; black arrow is not known
    assert "on 8 images of 4 classes" in capsys.readouterr().out
    evaluation = read_metadata(grown)["history"][-1]["eval"]
    assert evaluation["left_out"] == ["black arrow"] and evaluation["task_images"] == [2, 0, 0, 0, 0, 6]
    assert [a is None for a in evaluation["per_task"]] == [False, True, True, True, True, False]
    assert main(["report", str(grown), "--to", str(grown)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["report", str(grown), "--to", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "summary.md").read_text().count("cpu-small") == 0


def test_history_results_by_hand(tmp_path):
    meta = {
        "method": "seca",
        "benchmark": "custom",
        "backbone": {"model": "m", "pretrained": None},
        "config": {"seed": 3},
        "class_names": list("abcd"),
        "learner": {"tasks": [{"classes": [0, 1]}, {"classes": [2]}, {"classes": [3]}]},
        "history": [
            {
                "task": 0,
                "classes": ["a", "b"],
                "images": 10,
                "seconds": 1.0,
                "data": "d",
                "eval": eval_record("t", [8], [10], 2),
            },
            {
                "task": 1,
                "classes": ["c"],
                "images": 5,
                "seconds": 1.0,
                "data": "d",
                "eval": eval_record("t", [6, 3], [10, 5], 3),
            },
            {
                "task": 2,
                "classes": ["d"],
                "images": 5,
                "seconds": 1.0,
                "data": "d",
                "eval": eval_record("t", [5, 4, 1], [10, 5, 5], 4),
            },
        ],
    }
    r = history_results(meta, "m")
    assert r["acc_matrix"] == [[80.0], [60.0, 60.0], [50.0, 80.0, 20.0]]
    assert r["acc_per_step"] == pytest.approx([80.0, 60.0, 50.0])
    assert r["last"] == 50.0 and r["avg"] == round(190 / 3, 2)
    # forgetting: task 1 best 80 before the end, 50 at the end; task 2 best 60, 80 at the end -> (30 - 20) / 2
    assert r["forgetting"] == pytest.approx(5.0)
    assert r["bwt"] == pytest.approx(((50 - 80) + (80 - 60)) / 2)
    meta["history"][1]["eval"] = None  # a step learned without --eval: Avg, forgetting and BWT are undefined
    r = history_results(meta, "m")
    assert r["acc_matrix"][1] == [None, None] and r["last"] == 50.0
    assert r["avg"] is None and r["forgetting"] is None and r["bwt"] is None
    from seca.eval.report import write_report

    write_report(tmp_path, results=r)  # the plots and tables draw a step without evaluation as a gap
    summary = (tmp_path / "summary.md").read_text()
    assert "| 2 | c | 5 | 1.0 | not evaluated | - | - |" in summary and "| Avg | - |" in summary
    assert "| Last | 50.00 |" in summary and (tmp_path / "accuracy_curve.png").stat().st_size > 1000
    meta["history"][2]["eval"] = eval_record("t", [5, 0, 1], [10, 0, 5], 3)  # no image of task 2's class
    assert history_results(meta, "m")["acc_matrix"][2] == [50.0, None, 20.0]


def test_new_then_learn_matches_seca_run_on_the_same_folders(tmp_path, capsys):
    # the same seed gives the same initial weights, and a task's images arrive in the same order: the history
    # of a model grown with learn equals the run's accuracy matrix, number for number
    import yaml

    tasks = [sorted(TASK_1), sorted(TASK_2)]  # learn labels a task's folders in sorted-name order
    for split, count in (("train", 4), ("test", 3)):
        write_shapes_folder(tmp_path / "data" / split, TASK_1 + TASK_2, per_class=count, split=split)
    for k, names in enumerate(tasks):
        write_shapes_folder(tmp_path / f"task-{k + 1}", names, per_class=4, split="train")
    config = tmp_path / "own.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "extends": "cpu-small",
                "data": {"dataset": "imagefolder", "root": str(tmp_path / "data")},
                "scenario": {"tasks": tasks},
                "train": {"epochs": 1},
            }
        )
    )
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())

    model = tmp_path / "grown.safetensors"
    assert main(["new", str(model), "--backbone", "seca-test", "--set", "train.epochs=1"]) == 0
    for k in range(2):
        assert (
            main(
                [
                    "learn",
                    str(model),
                    "--data",
                    str(tmp_path / f"task-{k + 1}"),
                    "--eval",
                    str(tmp_path / "data" / "test"),
                ]
            )
            == 0
        )
    history = read_metadata(model)["history"]
    assert [e["eval"]["per_task"] for e in history] == results["acc_matrix"]
    assert seca.load(model).classes == results["class_names"]
    from seca.io.checkpoint import load_checkpoint

    grown, _ = load_checkpoint(model)
    ran, _ = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert grown.keys() == ran.keys() and all(torch.equal(grown[k], ran[k]) for k in grown)


# ---- a learner brings its training recipe ---------------------------------------------------------------------


def test_new_with_another_method_trains_with_its_recipe_and_learn_says_so(tmp_path, capsys, monkeypatch):
    from seca.methods import LEARNERS

    model = tmp_path / "rapf.safetensors"
    assert main(["new", str(model), "--backbone", "seca-test", "--method", "rapf"]) == 0  # cpu-small is SECA's
    printed = capsys.readouterr().out
    assert "each task trains: 15 epochs of batch 64, adam (lr rapf 0.001, weight decay 0), ×0.1 after epochs 4, 10" in (
        printed
    )
    train = read_metadata(model)["config"]["train"]  # the model file keeps the recipe
    recipe = LEARNERS["rapf"].recipe
    assert (train["epochs"], train["batch_size"], train["weight_decay"]) == (15, 64, 0.0)
    assert train["milestones"] == list(recipe["milestones"]) and train["lr"] == {"rapf": 1e-3}

    task = write_shapes_folder(tmp_path / "task", TASK_1, per_class=3, split="train")
    trained = []
    monkeypatch.setattr("seca.api.learn_task", lambda learner, task, how: trained.append(how.train) or 0)
    assert main(["learn", str(model), "--data", str(task), "--epochs", "2"]) == 0
    # the model's recipe, with --epochs 2: milestones 4 and 10 never come
    assert "training: 2 epochs of batch 64, adam (lr rapf 0.001, weight decay 0), constant\n" in capsys.readouterr().out
    assert (trained[0].epochs, trained[0].batch_size, trained[0].milestones) == (2, 64, (4, 10))


def test_new_with_the_presets_own_method_keeps_the_presets_recipe(tmp_path, capsys):
    model = tmp_path / "seca.safetensors"
    assert main(["new", str(model), "--backbone", "seca-test", "--method", "seca", "--set", "train.epochs=3"]) == 0
    assert "each task trains: 3 epochs of batch 16, adam (lr adapter 0.01, prompt 0.005, sg_akt 0.01, se_vpr 0.01" in (
        capsys.readouterr().out
    )
    train = read_metadata(model)["config"]["train"]
    assert (train["epochs"], train["batch_size"], train["milestones"]) == (3, 16, [1])  # cpu-small's, --set last
