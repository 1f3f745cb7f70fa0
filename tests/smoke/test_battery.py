"""What an outside battery of bad input found in the command line and the files it writes (issue 30), each
reproduced: the server's are in test_serve.py. Each now ends in one line (exit status 2) with nothing lost."""

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

import seca
from seca.cli import main
from seca.io import locks
from seca.io.checkpoint import read_metadata

from ..conftest import FAST_RUN, write_shapes_folder
from .test_serve import _broken_images

FIRST = ["orange star", "red circle"]


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "models" / "real.safetensors"
    assert main(["new", str(path), "--backbone", "seca-test", "--set", "train.epochs=1"]) == 0
    assert main(["learn", str(path), "--data", str(write_shapes_folder(tmp_path / "first", FIRST, split="train"))]) == 0
    return path


def test_an_image_any_decoder_refuses_is_one_line_or_skipped(model, tmp_path, capsys):
    bad = tmp_path / "bad"
    task = write_shapes_folder(tmp_path / "task", ["blue square"], per_class=3, split="train")
    for name, data in _broken_images().items():
        (task / "blue_square" / name).write_bytes(data)
        (bad / name).parent.mkdir(exist_ok=True)
        (bad / name).write_bytes(data)
    capsys.readouterr()
    assert main(["predict", str(model), str(bad / "idat.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read image" in err and "idat.png" in err
    before = model.read_bytes()
    assert main(["learn", str(model), "--data", str(task)]) == 2
    assert capsys.readouterr().err.startswith("error: 3 image files cannot be used") and model.read_bytes() == before
    assert main(["learn", str(model), "--data", str(task), "--skip-bad-images"]) == 0
    printed = capsys.readouterr()
    assert printed.out.count("skipped: cannot read image") == 3 and "learned task 2: 1 new class (" in printed.out


@pytest.mark.parametrize(
    "setting, words",
    [
        ("method.rapf.template=a photo of {x}.", "'method.rapf.template' must be a text with one {}"),
        ("method.moe_adapters.dropout=1.5", "'method.moe_adapters.dropout' must be at least 0 and below 1"),
        ("method.rapf.threshold=0.5", "'method.rapf.threshold' is a setting of rapf, and the method run is seca"),
    ],
)
def test_a_config_is_checked_whole_before_anything_is_written(setting, words, tmp_path, capsys):
    method = setting.split(".")[1].replace("_", "-") if "threshold" not in setting else "seca"
    out = tmp_path / "run"
    assert (
        main(["run", "cpu-small", "--out", str(out), *FAST_RUN, "--set", f"method.name={method}", "--set", setting])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert not out.exists()


# ---- files: through a symbolic link, read-only, their permissions ------------------------------------------


def test_a_link_and_its_target_share_one_lock_and_the_link_stays_a_link(model, tmp_path):
    link = model.parent / "link.safetensors"
    link.symlink_to(model.name)
    assert locks.lock_files(link, folder=False) == locks.lock_files(model, folder=False)
    task = write_shapes_folder(tmp_path / "task", ["blue square"], per_class=3, split="train")
    assert main(["learn", str(link), "--data", str(task)]) == 0
    assert link.is_symlink() and os.readlink(link) == model.name
    assert read_metadata(model)["class_names"] == [*FIRST, "blue square"]


def test_two_learns_through_a_link_and_its_target_lose_no_task(model, tmp_path):
    link = model.parent / "link.safetensors"
    link.symlink_to(model.name)
    tasks = [
        write_shapes_folder(tmp_path / name, [name], per_class=3, split="train")
        for name in ("pink heart", "cyan square")
    ]
    runs = [
        subprocess.Popen([sys.executable, "-m", "seca", "learn", str(path), "--data", str(task), "--wait"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for path, task in ((link, tasks[0]), (model, tasks[1]))
    ]  # fmt: skip
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
    assert link.is_symlink()
    assert sorted(read_metadata(model)["class_names"][2:]) == ["cyan square", "pink heart"]


def test_a_read_only_model_is_refused_before_any_training_and_a_mode_is_kept(model, tmp_path, capsys):
    task = write_shapes_folder(tmp_path / "task", ["blue square"], per_class=3, split="train")
    model.chmod(0o444)
    before = model.read_bytes()
    capsys.readouterr()
    assert main(["learn", str(model), "--data", str(task)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is read-only (mode 0444); nothing was written" in err
    assert model.read_bytes() == before and stat.S_IMODE(model.stat().st_mode) == 0o444
    with pytest.raises(seca.errors.SecaError, match="is read-only"):
        seca.load(model).save(model)
    model.chmod(0o640)
    assert main(["learn", str(model), "--data", str(task)]) == 0
    assert stat.S_IMODE(model.stat().st_mode) == 0o640 and read_metadata(model)["class_names"][-1] == "blue square"


# ---- resume ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["all", "last"])
def test_a_damaged_last_checkpoint_falls_back_to_the_one_before(policy, tmp_path, capsys):
    run = ["run", "cpu-small", *FAST_RUN, "--set", f"train.checkpoints={policy}", "--set", "train.progress=false"]
    whole = tmp_path / "whole"
    assert main([*run, "--out", str(whole), "--set", "train.checkpoints=all"]) == 0
    expected = json.loads((whole / "results.json").read_text())["acc_matrix"]
    stopped = tmp_path / "stopped"  # stopped after task 3; with `last` the checkpoints of tasks 2 and 3 are left
    shutil.copytree(whole, stopped)
    for path in [stopped / "results.json", stopped / "model.safetensors", *stopped.glob("checkpoints/task-0[4-9]*")]:
        path.unlink()
    if policy == "last":
        (stopped / "checkpoints" / "task-01.safetensors").unlink()
    newest = stopped / "checkpoints" / "task-03.safetensors"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated
    capsys.readouterr()
    assert main([*run, "--out", str(stopped), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "cannot resume from task-03.safetensors (" in out and "trying the checkpoint before it" in out
    assert "resuming after task 2 of 5" in out
    assert json.loads((stopped / "results.json").read_text())["acc_matrix"] == expected


def test_with_last_a_run_keeps_two_checkpoints(tmp_path, monkeypatch):
    from seca.engine import loop

    kept = []
    real = loop.run_task

    def watched(run, task):
        real(run, task)
        kept.append(sorted(p.name for p in run.folder.checkpoints.glob("*.safetensors")))

    monkeypatch.setattr(loop, "run_task", watched)
    assert main(["run", "cpu-small", *FAST_RUN, "--out", str(tmp_path / "run"), "--set", "train.progress=false"]) == 0
    assert kept[2] == ["task-02.safetensors", "task-03.safetensors"]
    assert not list((tmp_path / "run" / "checkpoints").glob("*.safetensors"))  # a finished run keeps none


def test_the_api_learns_images_given_by_class_with_names_never_read_as_paths(model, tmp_path):
    grown = seca.load(model)
    folder = write_shapes_folder(tmp_path / "task", ["blue square"], per_class=4, split="train") / "blue_square"
    files = sorted(folder.iterdir())
    grown.learn({"train": files[:2], "../up": files[2:]}, progress=False)
    assert grown.classes == [*FIRST, "../up", "train"]
    assert grown.history[-1]["data"] == "4 images of 2 classes, given by class"
    with pytest.raises(seca.errors.SecaError, match=r"class 'Red Circle' is already known to the model \(as 'red cir"):
        grown.learn({"Red_Circle": files}, progress=False)
    report = grown.evaluate({"TRAIN": files[:2]})  # another spelling of a known class: evaluated as that class
    assert list(report["per_class"]) == ["train"]
