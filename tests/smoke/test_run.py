"""End-to-end runs of `seca run` on the small CPU preset (a random two-block CLIP, generated images)."""

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file

from seca.cli import main
from seca.engine.configure import load_config, resolve

FAST = ["--set", "train.epochs=1", "--set", "data.shapes.train_per_class=8", "--set", "data.shapes.test_per_class=4"]


def run(tmp_path, *extra, name="run"):
    out = tmp_path / name
    code = main(["run", "cpu-small", "--out", str(out), *FAST, *extra])
    return code, out


def test_h_peft_run_writes_results_of_the_documented_shape(tmp_path):
    code, out = run(tmp_path, "--set", "method.name=h-peft")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    for key in (
        "method",
        "benchmark",
        "backbone",
        "seed",
        "class_order",
        "tasks",
        "acc_matrix",
        "acc_per_step",
        "last",
        "avg",
        "forgetting",
        "bwt",
        "seconds",
        "config",
        "test_counts",
    ):
        assert key in results, key
    assert results["method"] == "h-peft"
    assert results["backbone"] == {"model": "seca-test", "pretrained": None}
    assert len(results["tasks"]) == 5 and all(len(t) == 4 for t in results["tasks"])
    assert [c for t in results["tasks"] for c in t] == results["class_order"]
    assert [len(r) for r in results["acc_matrix"]] == [1, 2, 3, 4, 5]
    assert results["test_counts"] == [16] * 5
    assert len(results["acc_per_step"]) == 5 and results["last"] == results["acc_per_step"][-1]
    assert all(0 <= a <= 100 for row in results["acc_matrix"] for a in row)
    assert len(results["seconds"]["train"]) == len(results["seconds"]["eval"]) == 5
    # the resolved config is saved and loads back to the same config
    saved = resolve(yaml.safe_load((out / "config.yaml").read_text()))
    assert saved == resolve(results["config"]) and saved.train.epochs == 1
    events = [json.loads(line)["event"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert events.count("task_end") == 5 and "train_epoch" in events and events[-1] == "end"


def test_zero_shot_runs_without_training(tmp_path):
    code, out = run(tmp_path, "--set", "method.name=zero-shot")
    assert code == 0
    events = [json.loads(line)["event"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert "train_epoch" not in events and "train_step" not in events
    assert json.loads((out / "results.json").read_text())["method"] == "zero-shot"


def test_same_seed_same_result(tmp_path):
    _, a = run(tmp_path, name="a")
    _, b = run(tmp_path, name="b")
    _, c = run(tmp_path, "--set", "seed=1", name="c")
    assert json.loads((a / "results.json").read_text())["method"] == "seca"
    ra, rb, rc = (json.loads((d / "results.json").read_text()) for d in (a, b, c))
    assert ra["acc_matrix"] == rb["acc_matrix"]
    assert ra["class_order"] == rb["class_order"]
    assert rc["acc_matrix"] != ra["acc_matrix"]


def test_caching_images_does_not_change_results(tmp_path):
    """Each task's randomness is seeded after its data are prepared, so caching them cannot shift it."""
    _, cached = run(tmp_path, "--set", "data.cache_images=true", name="cached")
    _, streamed = run(tmp_path, "--set", "data.cache_images=false", name="streamed")
    a, b = (load_file(str(d / "model.safetensors")) for d in (cached, streamed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (
        json.loads((cached / "results.json").read_text())["acc_matrix"]
        == json.loads((streamed / "results.json").read_text())["acc_matrix"]
    )


def test_refuses_to_overwrite_results(tmp_path, capsys):
    run(tmp_path, "--set", "method.name=zero-shot")
    code, _ = run(tmp_path, "--set", "method.name=zero-shot")
    assert code == 2 and "--overwrite" in capsys.readouterr().err
    code, _ = run(tmp_path, "--set", "method.name=zero-shot", "--overwrite")
    assert code == 0


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epohcs=2", "unknown config key 'train.epohcs'; did you mean 'train.epochs'?"),
        ("method.name=ewc", "config key 'method.name' must be one of bofa, clg-cbm, engine, h-peft, mind-the-gap,"),
        ("scenario.increment=3", "task sizes must add up"),
        ("data.dataset=imagenet-r", "data.root is not set"),
        ("backbone.pretrained=/no/such/file.safetensors", "is not a file"),
    ],
)
def test_bad_input_gives_one_line_error_and_no_results(tmp_path, capsys, override, message):
    code, out = run(tmp_path, "--set", override)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (out / "results.json").exists()


@pytest.mark.parametrize("command", [["--help"], ["run", "--help"], ["prepare", "--help"], ["presets", "--help"]])
def test_help(command, capsys):
    assert main(command) == 0 and "usage: seca" in capsys.readouterr().out


def test_presets_are_listed(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "imagenet-r" in out and "cifar100" in out and "cpu-small" in out


def test_cpu_preset_is_small():
    cfg = load_config("cpu-small")
    assert cfg.backbone.model == "seca-test" and cfg.data.dataset == "shapes"


def test_bad_data_leaves_no_output_folder(tmp_path):
    code, out = run(tmp_path, "--set", "data.dataset=imagenet-r", "--set", "data.root=/no/such/place")
    assert code == 2 and not out.exists()


@pytest.mark.parametrize("method", ["seca", "seca++"])
def test_seca_runs_write_results_and_log_every_loss_term(tmp_path, method):
    code, out = run(tmp_path, "--set", f"method.name={method}", "--set", "train.log_every=1")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["method"] == method and len(results["acc_matrix"]) == 5
    steps = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    later = [s for s in steps if s["event"] == "train_step" and s["task"] > 0]
    expected = {"ce_text", "ce_visual", "reg", "agg", "kd"} | ({"replay"} if method == "seca++" else set())
    assert later and expected <= set(later[0])


def test_ablate_prints_a_table_and_reuses_finished_variants(tmp_path, capsys):
    args = [
        "ablate",
        "ablations/kd",
        "--base",
        "cpu-small",
        "--only",
        "none,sg-akt",
        "--out",
        str(tmp_path),
        *FAST,
        "--set",
        "scenario.first_task=10",
        "--set",
        "scenario.increment=10",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "variant" in out and "paper Last" in out and "65.09" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [r["variant"] for r in summary["rows"]] == ["none", "sg-akt"]
    assert (tmp_path / "none" / "results.json").exists() and (tmp_path / "summary.md").exists()
    assert main(args) == 0
    assert "reusing" in capsys.readouterr().out


def test_ablate_checks_every_variant_before_running(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: cpu-small\nvariants:\n  ok: {}\n  broken: {method.sg_akt.teachr: none}\n")
    assert main(["ablate", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "did you mean 'method.sg_akt.teacher'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_tensorboard_logging(tmp_path):
    code, out = run(
        tmp_path,
        "--set",
        "train.tensorboard=true",
        "--set",
        "train.log_every=1",
        "--set",
        "scenario.first_task=10",
        "--set",
        "scenario.increment=10",
    )
    assert code == 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/ce_text", "lr/adapter", "eval/accuracy_seen"} <= tags
    assert [e.step for e in events.Scalars("eval/accuracy_seen")] == [1, 2]


def test_tensorboard_missing_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("no tensorboard")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    code, out = run(tmp_path, "--set", "train.tensorboard=true", "--set", "method.name=zero-shot")
    assert code == 2 and "pip install 'seca[tensorboard]'" in capsys.readouterr().err
    assert not out.exists()


def _own_folders(root):
    """train/ and test/ with one folder per class, as a user's own data set would be."""
    from tests.conftest import write_shapes_folder

    names = ["red star", "blue star", "red circle", "blue circle", "green heart", "green star"]
    for split, per_class in (("train", 4), ("test", 2)):
        write_shapes_folder(root / split, names, per_class=per_class, split=split)
    return root


@pytest.mark.parametrize(
    "scenario, expected",
    [
        (
            ["--set", "scenario.tasks=[[red_star, green_heart], [blue_circle, blue_star, red_circle, green_star]]"],
            [["red star", "green heart"], ["blue circle", "blue star", "red circle", "green star"]],
        ),
        (
            ["--set", "scenario.first_task=2", "--set", "scenario.increment=2"],  # sorted folder names
            [["blue circle", "blue star"], ["green heart", "green star"], ["red circle", "red star"]],
        ),
    ],
)
def test_a_run_on_your_own_folders_takes_tasks_by_folder_name(tmp_path, scenario, expected):
    root = _own_folders(tmp_path / "data")
    code, out = run(
        tmp_path,
        "--set",
        "data.dataset=imagefolder",
        "--set",
        f"data.root={root}",
        "--set",
        "data.cache_images=false",
        *scenario,
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    names = results["class_names"]
    assert [[names[results["class_order"].index(c)] for c in task] for task in results["tasks"]] == expected
    assert results["test_counts"] == [2 * len(t) for t in expected]


def test_a_task_list_naming_a_missing_folder_fails_before_any_work(tmp_path, capsys):
    root = _own_folders(tmp_path / "data")
    code, out = run(
        tmp_path,
        "--set",
        "data.dataset=imagefolder",
        "--set",
        f"data.root={root}",
        "--set",
        "scenario.tasks=[[red_star, green_hart]]",
    )
    assert code == 2 and not out.exists()
    assert (
        "names 'green_hart', which is not a class of the data set; did you mean 'green heart'?"
        in capsys.readouterr().err
    )
