"""One writer at a time: two learns on one model lose no update, a run in progress refuses a second writer,
a lock left by a killed process blocks no one, and a job killed before its first checkpoint is requeued
with its own command line (``--resume``) to the results of an uninterrupted run."""

import json
import signal
import subprocess
import sys
import textwrap

import pytest

import seca
from seca.cli import main
from seca.config import dump_yaml
from seca.engine.configure import load_config
from seca.errors import SecaError
from seca.io import locks
from seca.io.checkpoint import read_metadata

from ..conftest import write_shapes_folder

FIRST = ["orange star", "red circle"]  # the first task's classes, in label order (sorted folder names)


@pytest.fixture
def model(tmp_path):
    """A tiny model that knows two classes, and the training folders of two other single-class tasks."""
    path = tmp_path / "model.safetensors"
    assert main(["new", str(path), "--backbone", "seca-test", "--set", "train.epochs=1"]) == 0
    assert main(["learn", str(path), "--data", str(write_shapes_folder(tmp_path / "first", FIRST, split="train"))]) == 0
    navy = write_shapes_folder(tmp_path / "navy", ["blue square"], per_class=4, split="train")
    coral = write_shapes_folder(tmp_path / "coral", ["pink heart"], per_class=4, split="train")
    return path, navy, coral


def _seca(*argv, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "seca", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _python(script: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


class Holder:
    """Another process that holds a lock (of a model file, or of a run folder) until the ``with`` block ends."""

    def __init__(self, target, folder: bool):
        kind = "run_folder" if folder else "model_file"
        self.proc = _python(f"""
            import sys
            from seca.io import locks
            with locks.{kind}({str(target)!r}):
                print("held", flush=True)
                sys.stdin.readline()
        """)

    def __enter__(self) -> "Holder":
        assert self.proc.stdout.readline() == "held\n", self.proc.stderr.read()
        return self

    def __exit__(self, *exc) -> None:
        self.proc.communicate("\n", timeout=60)


@pytest.mark.parametrize("wait", [False, True])
def test_two_learns_at_once_never_lose_a_task(model, wait):
    path, navy, coral = model
    flags = ["--wait"] if wait else []
    procs = {
        "blue square": _seca("learn", path, "--data", navy, *flags),
        "pink heart": _seca("learn", path, "--data", coral, *flags),
    }
    ends = {name: (p.wait(timeout=300), p.stderr.read()) for name, p in procs.items()}
    known = read_metadata(path)["class_names"]
    assert known[:2] == FIRST
    for name, (code, err) in ends.items():
        if code == 0:
            assert name in known, f"{name}'s learn said it saved, but the model lost it"
        else:
            assert code == 2 and "is being changed by pid" in err and name not in known, err
    if wait:
        assert all(code == 0 for code, _ in ends.values()), ends
        assert sorted(known[2:]) == ["blue square", "pink heart"]
    assert len(known) == 2 + sum(code == 0 for code, _ in ends.values())
    assert len(read_metadata(path)["history"]) == len(known) - 1  # one entry per task: the first, then one a class


def test_a_learn_is_refused_while_another_process_writes_and_waits_with_wait(model, capsys):
    path, navy, _ = model
    before = path.read_bytes()
    with Holder(path, folder=False) as holder:
        assert main(["learn", str(path), "--data", str(navy)]) == 2
        err = capsys.readouterr().err
        assert f"'{path}' is being changed by pid {holder.proc.pid}" in err and "add --wait" in err
        assert err.count("\n") == 1
        assert path.read_bytes() == before
        waiting = _seca("learn", path, "--data", navy, "--wait")
        assert waiting.stderr.readline().startswith(f"waiting: {path} is being written by pid {holder.proc.pid}")
        assert waiting.poll() is None and path.read_bytes() == before
    assert waiting.wait(timeout=300) == 0, waiting.stderr.read()
    assert read_metadata(path)["class_names"] == [*FIRST, "blue square"]


def test_the_api_saves_over_a_file_only_if_no_other_process_replaced_it(model):
    path, navy, coral = model
    first, second = seca.load(path), seca.load(path)
    first.learn(navy, progress=False)
    first.save(path)
    second.learn(coral, progress=False)
    before = path.read_bytes()
    with pytest.raises(SecaError, match="has changed since this model was read from it"):
        second.save(path)
    assert path.read_bytes() == before
    assert read_metadata(path)["class_names"] == [*FIRST, "blue square"]

    third = seca.load(path)
    assert third.save(path) == path  # the file it was read from, unchanged meanwhile
    third.learn(coral, progress=False, out=path)  # learns and saves under the lock
    assert read_metadata(path)["class_names"] == [*FIRST, "blue square", "pink heart"]
    with pytest.raises(SecaError, match="has changed since"):  # checked before training: nothing is learned
        first.learn(coral, progress=False, out=path)
    assert first.classes == [*FIRST, "blue square"]
    assert second.save(path.parent / "elsewhere.safetensors").is_file()  # another file is free to write


def test_the_api_is_refused_while_another_process_writes(model):
    path, navy, _ = model
    mine = seca.load(path)
    with Holder(path, folder=False) as holder:
        with pytest.raises(SecaError, match=f"is being changed by pid {holder.proc.pid}"):
            mine.learn(navy, progress=False, out=path)
        with pytest.raises(SecaError, match="is being changed by pid"):
            mine.save(path)
    assert mine.classes == FIRST  # refused before training


def test_a_lock_left_by_a_killed_process_blocks_no_one(model, capsys):
    path, navy, _ = model
    killed = _python(f"""
        import os, signal
        from seca.io import locks
        held = locks.model_file({str(path)!r})
        held.__enter__()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert killed.wait(timeout=60) == -signal.SIGKILL
    assert locks.holder(path, folder=False)["pid"] == killed.pid  # its name stays behind, its lock does not
    assert main(["learn", str(path), "--data", str(navy)]) == 0
    assert read_metadata(path)["class_names"] == [*FIRST, "blue square"]
    assert locks.holder(path, folder=False) is None  # the learn's own record is gone with its lock


def _visible(folder) -> list[str]:
    """The names in ``folder`` but the hidden ones (a lock file stays in place, empty)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _run(out, *extra):
    return ["run", "cpu-small", "--out", str(out), "--set", "train.progress=false", *extra]


# A `seca run` that a scheduler preempts: it stops (until killed) when its first task has trained, just before
# that task's checkpoint would be written.
PREEMPTED = """
    import sys, time
    import seca.engine.loop as loop
    def stop(*args, **kwargs):
        print("task 1 trained", flush=True)
        time.sleep(600)
    loop._save_task_checkpoint = stop
    from seca.cli import main
    sys.exit(main(sys.argv[1:]))
"""


def test_a_run_in_progress_is_refused_and_a_requeued_run_finishes_as_an_uninterrupted_one(tmp_path, capsys):
    reference = tmp_path / "reference"
    assert main(_run(reference)) == 0
    expected = json.loads((reference / "results.json").read_text())["acc_matrix"]

    out = tmp_path / "job"
    job = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PREEMPTED), *_run(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert any(line == "task 1 trained\n" for line in iter(job.stdout.readline, ""))  # stops at the line
        for command in (_run(out, "--resume"), _run(out), _run(out, "--overwrite")):
            assert main(command) == 2
            err = capsys.readouterr().err
            assert f"'{out}' is in progress, not interrupted: pid {job.pid}" in err, err
        job.send_signal(signal.SIGKILL)  # the scheduler preempts the job
        assert job.wait(timeout=60) == -signal.SIGKILL
    finally:
        job.kill()
    assert not list(out.glob("checkpoints/*")) and not (out / "results.json").exists()

    assert main(_run(out, "--resume")) == 0  # the requeue: the same command line, with --resume
    assert "nothing to resume" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["acc_matrix"] == expected

    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (empty, tmp_path / "not-yet"):  # an empty folder, or none: started from the beginning as well
        assert main(_run(folder, "--resume")) == 0
        assert json.loads((folder / "results.json").read_text())["acc_matrix"] == expected
    assert main(_run(empty, "--resume")) == 2  # a finished run is not started again
    assert "has finished (results.json exists)" in capsys.readouterr().err


def test_resume_refuses_the_start_of_a_run_of_another_config(tmp_path, capsys):
    out = tmp_path / "other"
    out.mkdir()
    (out / "config.yaml").write_text(dump_yaml(load_config("cpu-small", ["train.epochs=7"])))
    assert main(_run(out, "--resume")) == 2
    err = capsys.readouterr().err
    assert "holds the start of a run of another config (at train.epochs (2 now, 7 in the run))" in err
    assert _visible(out) == ["config.yaml"]


def test_seeds_and_ablations_in_progress_are_refused(tmp_path, capsys):
    seeds, ablation = tmp_path / "seeds", tmp_path / "ablation"
    seeds.mkdir()
    ablation.mkdir()
    with Holder(seeds, folder=True) as a, Holder(ablation, folder=True) as b:
        assert main(["run", "cpu-small", "--seeds", "0,1", "--out", str(seeds), "--resume"]) == 2
        assert f"is in progress, not interrupted: pid {a.proc.pid}" in capsys.readouterr().err
        assert main(["ablate", "ablations/kd", "--base", "cpu-small", "--out", str(ablation)]) == 2
        assert f"is in progress, not interrupted: pid {b.proc.pid}" in capsys.readouterr().err
    assert _visible(seeds) == _visible(ablation) == []
