"""The exemplar memory (engine/memory.py): herding as PyCIL's, the budget, the references, and a run that trains with
it, resumes with it and keeps it in its files; every process of a distributed run the same memory."""

import json
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seca.cli import main
from seca.config import TrainConfig
from seca.engine.configure import load_config
from seca.engine.memory import Exemplar, ExemplarMemory, budget, herding
from seca.errors import SecaError
from seca.io.checkpoint import read_metadata
from seca.methods import LEARNERS, Learner, register
from seca.methods.base import Batch

from ..conftest import FAST_RUN, in_two_processes


def pycil_herding(vectors: np.ndarray, m: int) -> list[int]:
    """PyCIL's _construct_exemplar selection (models/base.py), with positions instead of images, in float64."""
    vectors = (vectors.T / (np.linalg.norm(vectors.T, axis=0) + 1e-8)).T
    class_mean = np.mean(vectors, axis=0)
    positions = list(range(len(vectors)))
    chosen, exemplar_vectors = [], []
    for k in range(1, m + 1):
        S = np.sum(exemplar_vectors, axis=0)
        mu_p = (vectors + S) / k
        i = np.argmin(np.sqrt(np.sum((class_mean - mu_p) ** 2, axis=1)))
        chosen.append(positions[i])
        exemplar_vectors.append(np.array(vectors[i]))
        vectors = np.delete(vectors, i, axis=0)
        del positions[i]
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_herding_chooses_as_pycil_does(seed):
    features = torch.randn(40, 12, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 3 + 1
    assert herding(features, 15) == pycil_herding(features.numpy(), 15)


def test_herding_by_hand():
    # rows a = 3 (1, 0), b = 0.5 (0, 1), c = (0.6, 0.8): normalised, their mean is (0.5333, 0.6). Alone, c's squared
    # distance to it is 0.0444 (a: 0.5778, b: 0.4444); then (c + a) / 2 = (0.8, 0.4) is at 0.1111, (c + b) / 2 =
    # (0.3, 0.9) at 0.1444: c, a, then b. m above n takes every row once.
    features = torch.tensor([[3.0, 0.0], [0.0, 0.5], [0.6, 0.8]])
    assert herding(features, 10) == [2, 0, 1]
    assert herding(features, 1) == [2]


def test_the_budget_is_a_total_shared_by_the_classes_seen_or_fixed_per_class():
    assert budget(TrainConfig(memory_size=2000), 10) == 200
    assert budget(TrainConfig(memory_size=2000), 30) == 66
    assert budget(TrainConfig(memory_per_class=20), 30) == 20
    assert budget(TrainConfig(), 30) == 0


def test_a_manifest_reads_back_and_damage_is_one_line():
    memory = ExemplarMemory("random", [Exemplar(3, "ab" * 16, item=7), Exemplar(1, "cd" * 16, file="/x/a.png")])
    again = ExemplarMemory.from_manifest(json.loads(json.dumps(memory.manifest())), "m.safetensors")
    assert again.exemplars() == memory.exemplars() and again.selection == "random"
    assert [e.label for e in again.exemplars()] == [1, 3]  # by label: the order they train in
    assert memory.summary() == {"images": 2, "classes": 2, "per_class": 1, "selection": "random", "files": 1}
    broken = memory.manifest()
    broken["exemplars"][0]["digest"] = "../../etc"
    with pytest.raises(SecaError, match="m.safetensors: its exemplar memory is damaged"):
        ExemplarMemory.from_manifest(broken, "m.safetensors")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"format": st.just(1), "selection": st.sampled_from(["herding", "random", "x"]), "exemplars": json_values}
        ),
        st.fixed_dictionaries(
            {
                "format": st.just(1),
                "selection": st.just("herding"),
                "exemplars": st.lists(
                    st.dictionaries(st.sampled_from(["label", "digest", "file", "item", "x"]), json_values)
                ),
            }
        ),
    )
)
def test_any_manifest_reads_or_is_refused_in_one_line(data):
    try:
        memory = ExemplarMemory.from_manifest(data, "m")
    except SecaError as e:
        assert "\n" not in str(e) and str(e).startswith("m: its exemplar memory is damaged")
        return
    for exemplar in memory.exemplars():  # what reads names an image and a digest
        assert exemplar.file or exemplar.item is not None
        assert len(exemplar.digest) == 32


# ---- a learner that trains with exemplars, recording what it trains on ---------------------------------------------


class Rehearsal(Learner):
    """A linear head over the frozen embedding that trains with exemplars (a test of the engine's memory)."""

    name = "test-rehearsal"
    exemplars = True
    default_lr = {"test_rehearsal": 1e-2}
    recipe = {"memory_per_class": 3}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.head = torch.nn.Linear(self.backbone.embed_dim, 32).to(self.device)  # room for every class a test adds
        self.trained_on: list[list[int]] = []
        self.memory_sizes: list[int] = []

    def begin_task(self, task, data):
        super().begin_task(task, data)
        self.trained_on.append([])
        self.memory_sizes.append(0 if data.memory is None else data.memory.size)

    def parameter_groups(self):
        return [{"name": "test_rehearsal", "params": list(self.head.parameters())}]

    def training_step(self, batch: Batch):
        self.trained_on[-1].extend(batch.labels.tolist())
        logits = self.head(self.backbone.encode_image(batch.images).float())[:, : self.num_seen]
        return {"loss": torch.nn.functional.cross_entropy(logits, batch.labels)}

    def predict(self, images):
        return self.head(self.backbone.encode_image(images).float())[:, : self.num_seen].softmax(-1)


@pytest.fixture
def rehearsal():
    register(Rehearsal)
    yield Rehearsal
    LEARNERS._entries.pop(Rehearsal.name)
    LEARNERS._sources.pop(Rehearsal.name)


def _run(out, *extra):
    return ["run", "cpu-small", "--out", str(out), *FAST_RUN, "--set", "method.name=test-rehearsal",
            "--set", "train.progress=false", *extra]  # fmt: skip


def test_a_learner_without_exemplars_refuses_a_budget_and_two_budgets_are_refused(rehearsal):
    with pytest.raises(SecaError, match="seca trains without stored images"):
        load_config("cpu-small", ["train.memory_per_class=5"])
    with pytest.raises(SecaError, match="set one"):
        load_config("cpu-small", ["train.memory_size=50", "train.memory_per_class=5"], method="test-rehearsal")
    assert load_config("cpu-small", method="test-rehearsal").train.memory_per_class == 3  # its recipe's budget
    assert load_config("cpu-small", method="seca").train.memory_per_class == 0


def test_a_run_trains_with_the_memory_keeps_it_and_resumes_with_it(rehearsal, tmp_path, monkeypatch):
    learners = []
    monkeypatch.setattr(Rehearsal, "end_task", lambda self, task, data: learners.append(self) or None)
    whole = tmp_path / "whole"
    assert main(_run(whole, "--set", "train.checkpoints=all")) == 0
    learner = learners[0]
    results = json.loads((whole / "results.json").read_text())
    tasks = results["tasks"]
    per_class = 3
    assert results["exemplars"] == {
        "images": per_class * len(results["class_names"]),
        "classes": len(results["class_names"]),
        "per_class": per_class,
        "selection": "herding",
        "files": 0,
    }
    # the first task trains on its own images; every later one on its own and 3 of each old class, every epoch
    assert learner.memory_sizes == [per_class * sum(map(len, tasks[:t])) for t in range(len(tasks))]
    for t, labels in enumerate(learner.trained_on):
        counts = np.bincount(labels, minlength=len(results["class_names"]))
        old = sum(map(len, tasks[:t]))
        assert (counts[:old] == per_class).all() and (counts[old : old + len(tasks[t])] == 8).all()
    # kept in the run folder and the model file, the same references
    manifest = json.loads((whole / "exemplars.json").read_text())
    assert read_metadata(whole / "model.safetensors")["exemplars"] == manifest
    items = [e["item"] for e in manifest["exemplars"]]
    assert len(set(items)) == len(items) and all(len(e["digest"]) == 32 for e in manifest["exemplars"])

    # stopped after its first task and resumed: the same memory and the same results
    stopped = tmp_path / "stopped"
    shutil.copytree(whole, stopped)
    for path in [stopped / "results.json", stopped / "model.safetensors", stopped / "exemplars.json",
                 *stopped.glob("checkpoints/task-0[2-9]*")]:  # fmt: skip
        path.unlink()
    assert main(_run(stopped, "--set", "train.checkpoints=all", "--resume")) == 0
    assert json.loads((stopped / "exemplars.json").read_text()) == manifest
    assert json.loads((stopped / "results.json").read_text())["acc_matrix"] == results["acc_matrix"]


def test_random_selection_and_a_total_budget_reduce_as_classes_arrive(rehearsal, tmp_path):
    out = tmp_path / "run"
    assert main(_run(out, "--set", "train.memory_per_class=0", "--set", "train.memory_size=24",
                     "--set", "train.memory_selection=random", "--set", "train.checkpoints=all")) == 0  # fmt: skip
    manifest = json.loads((out / "exemplars.json").read_text())
    labels = [e["label"] for e in manifest["exemplars"]]
    assert manifest["selection"] == "random" and np.bincount(labels).tolist() == [1] * 20  # 24 // 20 classes
    after_first = read_metadata(out / "checkpoints" / "task-01.safetensors")["exemplars"]["exemplars"]
    assert [e["label"] for e in after_first] == [c for c in range(4) for _ in range(6)]  # 24 // 4 classes
    for c in range(4):  # reduced to its first one
        first = [e["item"] for e in after_first if e["label"] == c]
        assert [e["item"] for e in manifest["exemplars"] if e["label"] == c] == first[:1]


def _memory_in_a_process():
    from seca.engine.loop import run_experiment

    register(Rehearsal)
    small = ["train.epochs=1", "data.shapes.train_per_class=7", "data.shapes.test_per_class=2", "train.progress=false"]
    config = load_config("cpu-small", small, method="test-rehearsal")
    from seca.engine import loop

    kept = {}
    original = loop.finish

    def finish(run):
        kept["memory"] = run.memory.manifest()
        return original(run)

    loop.finish = finish
    try:
        run_experiment(config, None, echo=lambda line: None)
    finally:
        loop.finish = original
    return kept["memory"]


def test_every_process_of_a_distributed_run_keeps_the_memory_of_one_process(rehearsal, tmp_path):
    one = _memory_in_a_process()
    two = in_two_processes(_memory_in_a_process, tmp_path)
    assert two[0] == two[1] == one


def test_a_model_keeps_file_references_learns_with_them_and_refuses_a_changed_image(rehearsal, tmp_path, capsys):
    from seca.api import load

    from ..conftest import write_shapes_folder

    tasks = [["orange star", "red circle"], ["blue square", "pink heart"], ["green cross", "black arrow"]]
    for k, names in enumerate(tasks):
        write_shapes_folder(tmp_path / f"task-{k + 1}", names, per_class=5, split="train", seed=k)
    write_shapes_folder(tmp_path / "test", [n for names in tasks for n in names], per_class=2)
    model = tmp_path / "m.safetensors"
    assert main(["new", str(model), "--backbone", "seca-test", "--method", "test-rehearsal"]) == 0
    for k in range(2):
        assert main(["learn", str(model), "--data", str(tmp_path / f"task-{k + 1}"), "--epochs", "1",
                     "--eval", str(tmp_path / "test")]) == 0  # fmt: skip
    manifest = read_metadata(model)["exemplars"]
    files = [e["file"] for e in manifest["exemplars"]]
    assert len(files) == 3 * 4 and all("item" not in e for e in manifest["exemplars"])
    assert {str(p.parent.parent.name) for p in map(__import__("pathlib").Path, files)} == {"task-1", "task-2"}
    assert load(model).exemplars == {"images": 12, "classes": 4, "per_class": 3, "selection": "herding", "files": 12}
    report = capsys.readouterr()
    assert main(["report", str(model)]) == 0
    assert "keeps 12 exemplar images of 4 classes" in capsys.readouterr().out

    before = model.read_bytes()
    __import__("pathlib").Path(files[0]).write_bytes(b"not the image")
    assert main(["learn", str(model), "--data", str(tmp_path / "task-3"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "has changed since it was chosen" in err and files[0] in err and len(err.strip().splitlines()) == 1
    assert model.read_bytes() == before  # nothing written
    del report
