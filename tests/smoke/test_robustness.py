"""Bad input is refused up front with one line; images that cannot be used are named; learn is a transaction."""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import seca
from seca.cli import main
from seca.config import ExperimentConfig, load_raw, rules, set_key, to_dict
from seca.data.images import open_image
from seca.engine.configure import resolve, schema
from seca.errors import SecaError

from ..conftest import FAST_RUN, write_shapes_folder

NEW = ["purple star", "pink heart"]


def _refused(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=0", "'train.epochs' must be at least 1, got 0"),
        ("train.epochs=-3", "'train.epochs' must be at least 1, got -3"),
        ("train.batch_size=0", "'train.batch_size' must be at least 1"),
        ("train.batch_size=-4", "'train.batch_size' must be at least 1"),
        ("train.lr.adapter=0", "'train.lr.adapter' must be above 0"),
        ("train.milestones=[3,2]", "'train.milestones' must be a list of increasing epochs"),
        ("method.sg_akt.pool_size=0", "'method.sg_akt.pool_size' must be at least 1"),
        ("method.classifier.text_weight=1.5", "'method.classifier.text_weight' must be between 0 and 1"),
        ("method.sg_akt.teacher=best", "'method.sg_akt.teacher' must be one of avg, clip, none, sg-akt, vanilla"),
        ("scenario.increment=0", "'scenario.increment' must be at least 1"),
        ("data.max_pixels=0", "'data.max_pixels' must be at least 1"),
        ("seeds=[]", "config key 'seeds' is empty"),
        ("seeds=[1,1]", "config key 'seeds' lists seed 1 twice"),
    ],
)
def test_run_refuses_values_out_of_range_before_any_work(tmp_path, capsys, override, message):
    assert message in _refused(capsys, "run", "cpu-small", "--out", str(tmp_path / "out"), "--set", override)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "M", "x.png", "--batch-size", "0"], "--batch-size: must be at least 1, got 0"),
        (["predict", "M", "x.png", "--top-k", "0"], "--top-k: must be at least 1"),
        (["learn", "M", "--data", "D", "--epochs", "0"], "--epochs: must be at least 1, got 0"),
        (["evaluate", "M", "--data", "D", "--batch-size", "-1"], "--batch-size: must be at least 1"),
        (["evaluate", "M", "--data", "D", "--top", "two"], "--top: must be a whole number, got 'two'"),
    ],
)
def test_cli_arguments_are_checked_by_their_types(capsys, argv, message):
    assert message in _refused(capsys, *argv)


def test_bad_paths_are_found_before_the_model_loads(small_run, tmp_path, capsys):
    model = str(small_run / "model.safetensors")
    file = tmp_path / "file.txt"
    file.write_text("x")
    assert "neither an image file nor a folder" in _refused(capsys, "predict", "missing.safetensors", "nope.png")
    assert "checkpoint 'missing.safetensors' not found" in _refused(
        capsys, "learn", "missing.safetensors", "--data", str(tmp_path / "none")
    )
    assert "is not a folder" in _refused(
        capsys, "learn", model, "--data", str(tmp_path / "none"), "--out", str(tmp_path / "m.safetensors")
    )
    assert "is not a folder" in _refused(capsys, "evaluate", "missing.safetensors", "--data", str(tmp_path / "x"))
    assert "is a file, not a folder" in _refused(capsys, "run", "cpu-small", "--out", str(file / "out"))
    assert "is a file; give a folder" in _refused(capsys, "run", "cpu-small", "--out", str(file))
    assert "is a file; give a folder" in _refused(
        capsys, "evaluate", model, "--data", str(tmp_path), "--confusion", "--out", str(file)
    )
    new = write_shapes_folder(tmp_path / "new", NEW, split="train")
    assert "is a file, not a folder" in _refused(
        capsys, "learn", model, "--data", str(new), "--out", str(file / "m.safetensors")
    )
    assert "learn overrides train.* keys only" in _refused(
        capsys,
        "learn",
        model,
        "--data",
        str(new),
        "--out",
        str(tmp_path / "m.safetensors"),
        "--set",
        "method.name=h-peft",
    )
    assert "'train.batch_size' must be at least 1" in _refused(
        capsys,
        "learn",
        model,
        "--data",
        str(new),
        "--out",
        str(tmp_path / "m.safetensors"),
        "--set",
        "train.batch_size=0",
    )


def test_an_output_without_write_permission_is_refused_before_training(small_run, tmp_path, capsys, monkeypatch):
    import seca.io.files

    locked = tmp_path / "locked"
    locked.mkdir()
    real = seca.io.files.os.access
    monkeypatch.setattr(seca.io.files.os, "access", lambda path, mode: real(path, mode) and Path(path) != locked)
    new = write_shapes_folder(tmp_path / "new", NEW, split="train")
    message = _refused(
        capsys,
        "learn",
        str(small_run / "model.safetensors"),
        "--data",
        str(new),
        "--out",
        str(locked / "m.safetensors"),
    )
    assert f"cannot be written: no permission to write in '{locked}'" in message


def test_an_interrupted_run_is_not_restarted_without_a_word(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "cpu-small", "--out", str(out), *FAST_RUN, "--set", "train.checkpoints=all"]) == 0
    (out / "results.json").unlink()  # as if killed after its last checkpoint
    (out / "model.safetensors").unlink()
    message = _refused(capsys, "run", "cpu-small", "--out", str(out), *FAST_RUN)
    assert "holds an interrupted run (saved after task 4)" in message and "--resume" in message
    assert (out / "checkpoints" / "task-04.safetensors").exists()


def _png(path, size=(32, 32), mode="RGB", color=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else 128).save(path)
    return path


def test_open_image_converts_every_mode_and_names_bad_files(tmp_path):
    grey16 = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
    grey16.save(tmp_path / "g16.png")
    assert open_image(tmp_path / "g16.png").getpixel((0, 0)) == (255, 255, 255)
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "clear.png")  # transparent: laid on white
    assert open_image(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)
    Image.new("CMYK", (4, 4), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg")
    assert open_image(tmp_path / "cmyk.jpg").mode == "RGB"
    Image.new("P", (4, 4), 3).save(tmp_path / "palette.gif")
    assert open_image(tmp_path / "palette.gif").size == (4, 4)

    whole = _png(tmp_path / "whole.png", (64, 64)).read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SecaError, match="cannot read image '.*cut.png'"):
        open_image(tmp_path / "cut.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(SecaError, match="cannot read image '.*text.png'"):
        open_image(tmp_path / "text.png")
    _png(tmp_path / "big.png", (300, 200))
    with pytest.raises(SecaError, match=r"300x200 pixels, more than the limit of 10000 \(data.max_pixels\)"):
        open_image(tmp_path / "big.png", max_pixels=10_000)


def test_a_decompression_bomb_never_reaches_the_decoder(tmp_path, capsys):
    # a 20000 x 20000 PNG is a few kilobytes; its header alone says it is 400 million pixels
    import zlib

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = (20000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    with pytest.raises(SecaError, match="too large to decode safely|more than the limit"):
        open_image(bomb)


def test_learn_stops_before_training_on_bad_images_or_skips_them(small_run, tmp_path, capsys):
    new = write_shapes_folder(tmp_path / "new", NEW, per_class=3, split="train")
    (new / "pink_heart" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    path = tmp_path / "m.safetensors"
    message = _refused(capsys, "learn", str(small_run / "model.safetensors"), "--data", str(new), "--out", str(path))
    assert "1 image file cannot be used" in message and "broken.png" in message and "--skip-bad-images" in message
    assert not path.exists()
    assert (
        main(
            [
                "learn",
                str(small_run / "model.safetensors"),
                "--data",
                str(new),
                "--out",
                str(path),
                "--skip-bad-images",
                "--epochs",
                "1",
            ]
        )
        == 0
    )
    assert "skipped: cannot read image" in capsys.readouterr().out
    assert seca.load(path).history[-1]["images"] == 6


def test_class_folders_that_differ_only_by_case_or_spacing_are_refused(small_run, tmp_path, capsys):
    for name in ("Cat", "cat"):
        _png(tmp_path / "a" / name / "0.png")
    for name in ("red_x", "red x"):
        _png(tmp_path / "b" / name / "0.png")
    model = str(small_run / "model.safetensors")
    for folder in ("a", "b"):
        message = _refused(capsys, "learn", model, "--data", str(tmp_path / folder), "--out", str(tmp_path / "m"))
        assert "name the same class" in message


def test_a_failed_learn_leaves_the_model_exactly_as_it_was(small_run, tmp_path, monkeypatch):
    model = seca.load(small_run / "model.safetensors")
    probe = sorted(str(p) for p in write_shapes_folder(tmp_path / "probe", ["red circle"], per_class=2).rglob("*.png"))
    before = model.probabilities(probe)
    model.save(tmp_path / "before.safetensors")
    new = write_shapes_folder(tmp_path / "new", NEW, per_class=3, split="train")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("seca.api.learn_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.learn(new, progress=False)
    monkeypatch.undo()
    assert model.classes == seca.load(small_run / "model.safetensors").classes
    assert torch.equal(model.probabilities(probe), before)
    model.save(tmp_path / "after.safetensors")
    assert (tmp_path / "after.safetensors").read_bytes() == (tmp_path / "before.safetensors").read_bytes()
    model.learn(new, epochs=1, progress=False)  # a retry is not refused as "already known"
    assert model.classes[-2:] == sorted(NEW, key=lambda n: n.replace(" ", "_"))


def test_sigterm_stops_a_run_saying_how_to_resume(tmp_path, capsys, monkeypatch):
    from seca.engine import loop

    calls = {"n": 0}
    real = loop.learn_task

    def terminated_in_task_2(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "learn_task", terminated_in_task_2)
    out = tmp_path / "run"
    original = signal.getsignal(signal.SIGTERM)
    assert main(["run", "cpu-small", "--out", str(out), *FAST_RUN]) == 130
    err = capsys.readouterr().err
    assert "interrupted: the run is saved after task 1" in err and "--resume" in err
    assert not (out / "results.json").exists()
    assert not list(out.rglob("*.tmp"))
    assert signal.getsignal(signal.SIGTERM) == original  # the handler is put back


def _valid_raw():
    return to_dict(resolve(load_raw("cpu-small")))


_values = st.one_of(
    st.integers(-5, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.none(),
    st.booleans(),
    st.lists(st.integers(-3, 30), max_size=4),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from(sorted(rules(ExperimentConfig, schema())) + ["scenario.tasks", "scenario.first_task"]),
    value=_values,
)
def test_any_config_value_validates_or_fails_with_the_projects_error(key, value):
    try:
        config = resolve(set_key(_valid_raw(), key, value))
    except SecaError:
        return
    assert json.loads(json.dumps(to_dict(config))) is not None  # what validated is a whole, plain config


@settings(max_examples=60, deadline=None)
@given(
    first=st.integers(-3, 30),
    increment=st.integers(-3, 30),
    order=st.one_of(
        st.sampled_from(["reference", "seeded", "identity", "random"]), st.lists(st.integers(-2, 25), max_size=22)
    ),
)
def test_scenario_arguments_validate_or_fail_with_the_projects_error(first, increment, order):
    from seca.data.protocols import class_order
    from seca.data.scenario import ClassIncrementalScenario
    from seca.data.sets import DATASETS

    try:
        ids = class_order(order if isinstance(order, str) else tuple(order), 20, DATASETS["shapes"](), 0, 0)
        scenario = ClassIncrementalScenario(ids, first, increment, 20)
    except SecaError:
        return
    assert sorted(c for task in scenario for c in task.classes) == list(range(20))


def _own_folders(root, per_class=3):
    for split, count in (("train", per_class), ("test", 2)):
        write_shapes_folder(
            root / split, ["red circle", "orange star", "purple star", "pink heart"], per_class=count, split=split
        )
    return root


def _own_run(root, out, *extra):
    return main(
        [
            "run",
            "cpu-small",
            "--out",
            str(out),
            *FAST_RUN,
            "--set",
            "data.dataset=imagefolder",
            "--set",
            f"data.root={root}",
            "--set",
            "scenario.first_task=2",
            "--set",
            "scenario.increment=2",
            *extra,
        ]
    )


def test_a_run_reads_every_image_before_training_and_can_skip_bad_ones(tmp_path, capsys, caplog):
    root = _own_folders(tmp_path / "data")
    (root / "train" / "pink_heart" / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    (root / "train" / "pink_heart" / "notes.txt").write_text("not an image")
    out = tmp_path / "run"
    message = _refused(
        capsys,
        *[
            "run",
            "cpu-small",
            "--out",
            str(out),
            *FAST_RUN,
            "--set",
            "data.dataset=imagefolder",
            "--set",
            f"data.root={root}",
        ],
    )
    assert "1 image file cannot be used" in message and "cut.png" in message and "skip_bad_images" in message
    assert "1 file in" in caplog.text and "notes.txt" in caplog.text  # files that are not images are named
    assert not (out / "config.yaml").exists()
    assert _own_run(root, out, "--skip-bad-images") == 0
    assert "skipped: cannot read image" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert sum(results["test_counts"]) == 8 and results["config"]["data"]["skip_bad_images"] is True


def test_overwrite_keeps_the_earlier_run_until_the_new_one_finishes(tmp_path, capsys, monkeypatch):
    root = _own_folders(tmp_path / "data")
    out = tmp_path / "run"
    assert _own_run(root, out) == 0
    finished = (out / "results.json").read_bytes()
    from seca.engine import loop

    def broken(*args, **kwargs):
        raise SecaError("the disk is full")

    monkeypatch.setattr(loop, "learn_task", broken)
    assert _own_run(root, out, "--overwrite") == 2
    assert (out / ".previous" / "results.json").read_bytes() == finished  # nothing of the old run is lost
    assert not (out / "summary.md").exists()  # and no stale report sits beside the new run's files
    monkeypatch.undo()
    assert _own_run(root, out, "--overwrite") == 0
    assert not (out / ".previous").exists() and (out / "results.json").exists()


def test_a_device_error_names_the_option_given(small_run, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    folder = write_shapes_folder(tmp_path, ["red circle"], per_class=1)
    message = _refused(capsys, "predict", str(small_run / "model.safetensors"), str(folder), "--device", "cuda")
    assert "device 'cuda' is not available: this machine has no CUDA GPU" in message and "train." not in message


def test_a_failed_write_leaves_no_partial_file_and_keeps_the_earlier_one(tmp_path, monkeypatch):
    import errno

    from seca.io.files import atomic_write, atomic_write_text

    target = tmp_path / "results.json"
    atomic_write_text(target, "earlier")

    def disk_full(tmp):
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(SecaError, match="could not write .*results.json': No space left on device; the earlier"):
        atomic_write(target, disk_full)
    assert target.read_text() == "earlier" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_loss_that_becomes_nan_stops_the_task_naming_the_step(small_run, tmp_path, monkeypatch):
    from seca.methods.seca import SECA

    real = SECA.training_step

    def poisoned(self, batch):
        losses = real(self, batch)
        return {**losses, "loss": losses["loss"] * float("nan")}

    monkeypatch.setattr(SECA, "training_step", poisoned)
    model = seca.load(small_run / "model.safetensors")
    classes = list(model.classes)
    with pytest.raises(SecaError, match=r"the loss became nan at step 1 \(task 6, epoch 1; loss=nan.*lower the"):
        model.learn(write_shapes_folder(tmp_path / "new", NEW, split="train"), epochs=1, progress=False)
    assert model.classes == classes  # and the model is as it was


def test_learn_is_deterministic(small_run, tmp_path):
    new = write_shapes_folder(tmp_path / "new", NEW, per_class=3, split="train")
    grown = []
    for _ in range(2):
        model = seca.load(small_run / "model.safetensors")
        model.learn(new, epochs=1, progress=False)
        grown.append(model.learner.state_dict())
    assert all(torch.equal(grown[0][k], grown[1][k]) for k in grown[0])


def test_predict_names_and_skips_unreadable_files_when_asked(small_run, tmp_path, capsys):
    folder = write_shapes_folder(tmp_path / "imgs", ["red circle"], per_class=2)
    (folder / "red_circle" / "bad.png").write_text("not an image")
    model = str(small_run / "model.safetensors")
    assert "cannot read image" in _refused(capsys, "predict", model, str(folder))
    assert main(["predict", model, str(folder), "--skip-bad-images"]) == 0
    captured = capsys.readouterr()
    answered = [line for line in captured.out.splitlines() if line.startswith(str(folder))]
    assert len(answered) == 2 and "skipped: cannot read image" in captured.err


def test_without_a_route_to_the_hub_weights_load_in_offline_mode(monkeypatch):
    import socket

    from huggingface_hub import constants

    from seca.clip.backbone import _offline_unless_reachable

    def unreachable(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with _offline_unless_reachable(True):
        assert constants.HF_HUB_OFFLINE is True  # no minute of retries: cached files or an error at once
    assert constants.HF_HUB_OFFLINE is False
    with _offline_unless_reachable(False):  # a local weights file: the hub is not asked at all
        assert constants.HF_HUB_OFFLINE is False


def test_output_into_a_closed_pipe_is_not_an_error(small_run, tmp_path):
    # `seca evaluate ... | head -1`: the reader goes away before the output is written
    import subprocess
    import sys

    folder = write_shapes_folder(tmp_path, ["red circle", "orange star"], per_class=1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "seca.cli", "evaluate", str(small_run / "model.safetensors"), "--data", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0 and "Traceback" not in err and "BrokenPipe" not in err


def test_a_config_built_in_python_is_checked_by_run_experiment_too(tmp_path):
    import dataclasses

    from seca.engine.configure import load_config
    from seca.engine.loop import run_experiment

    config = load_config("cpu-small")
    broken = dataclasses.replace(config, train=dataclasses.replace(config.train, checkpoints="some"))
    with pytest.raises(SecaError, match="'train.checkpoints' must be one of last, all, none"):
        run_experiment(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()
