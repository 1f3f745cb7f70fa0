"""The contract every registered learner keeps, checked for each one the registry holds (as timm tests every
registered model): a method added to seca/methods/ is held to all of it without a line of its own.

- a training step changes the learner's own trainable parameters and nothing else (never the frozen CLIP);
- ``predict`` scores every class seen so far;
- ``embed`` gives finite features ``[n, d]`` of the n images given, the same twice;
- saved and restored, it predicts exactly the same;
- a run interrupted after its first task and resumed ends with the accuracy matrix of an uninterrupted run;
- a model grown with ``seca new`` and ``seca learn`` equals a ``seca run`` of the same config on the same folders,
  tensor for tensor;
- its statistics over a task's shards in a 2-process group equal those of one process over the whole task.
"""

import json
import shutil

import pytest
import torch
import yaml

from seca.cli import main
from seca.config import TrainConfig
from seca.data.scenario import ClassIncrementalScenario
from seca.engine.configure import method_config
from seca.engine.data import TaskImages, device_batches, loader
from seca.engine.train import make_optimizer, task_seed
from seca.io.checkpoint import load_checkpoint, read_metadata
from seca.methods import LEARNERS, TaskData, build_learner

from ..conftest import FAST_RUN, in_two_processes, write_shapes_folder

NAMES = sorted(LEARNERS)
CLASSES = ["red star", "blue star", "red circle", "blue circle", "green square", "pink heart"]
SEED = 3


def _learner(name, backbone, classes=CLASSES):
    torch.manual_seed(SEED)
    return build_learner(backbone, classes, method_config(name=name), seed=SEED)


def _items(per_class, image_size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(3, image_size, image_size, generator=g), c) for c, n in enumerate(per_class) for _ in range(n)]


def _task_images(items, task) -> TaskImages:
    positions = [i for i, (_, c) in enumerate(items) if task.start <= c < task.stop]
    return TaskImages(items, positions, [items[i][1] for i in positions])


def _task_data(learner, images: TaskImages, task) -> TaskData:
    return TaskData(task, len(images), device_batches(lambda: loader(images, 5), learner.device))


def _two_tasks(learner, items):
    """Tasks 1 and 2 of three, begun and ended without training; returns the scenario and task 2's data."""
    scenario = list(ClassIncrementalScenario(list(range(len(CLASSES))), 2, 2))
    for task in scenario[:2]:
        data = _task_data(learner, _task_images(items, task), task)
        learner.begin_task(task, data)
        learner.end_task(task, data)
    return scenario, data


@pytest.mark.parametrize("name", NAMES)
def test_a_training_step_changes_only_the_learners_own_parameters(name, tiny_backbone):
    frozen = {k: v.clone() for k, v in tiny_backbone.model.state_dict().items()}
    learner = _learner(name, tiny_backbone)
    items = _items([4] * len(CLASSES), tiny_backbone.image_size)
    scenario, _ = _two_tasks(learner, items)
    task = scenario[2]  # the third task: distillation, replay and regularisers all take part
    data = _task_data(learner, _task_images(items, task), task)
    learner.begin_task(task, data)
    if not learner.trains:
        assert learner.parameter_groups() == [] and not any(p.requires_grad for p in learner.parameters())
    else:
        trainable = {id(p) for group in learner.parameter_groups() for p in group["params"] if p.requires_grad}
        before = {n: p.detach().clone() for n, p in learner.named_parameters()}
        optimizer = make_optimizer(learner, TrainConfig(lr=learner.learning_rates()))
        learner.train()
        losses = learner.training_step(next(iter(data.batches())))
        assert torch.isfinite(losses["loss"]) and losses["loss"].requires_grad
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        changed = [n for n, p in learner.named_parameters() if not torch.equal(p.detach(), before[n])]
        assert changed, f"{name}: a step changed nothing"
        own = {n for n, p in learner.named_parameters() if id(p) in trainable}
        assert set(changed) <= own, f"{name} changed parameters it does not train: {set(changed) - own}"
    learner.end_task(task, data)
    assert not any(p.requires_grad for p in tiny_backbone.model.parameters())
    after = tiny_backbone.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in frozen.items()), f"{name} changed the frozen CLIP"


def _after_two_tasks(name, backbone):
    """The learner ``name`` after two tasks, in eval mode, and 7 of its images."""
    learner = _learner(name, backbone)
    items = _items([4] * len(CLASSES), backbone.image_size)
    _two_tasks(learner, items)
    learner.eval()
    return learner, torch.stack([image for image, _ in items[:7]])


@pytest.mark.parametrize("name", NAMES)
def test_predict_scores_every_seen_class_and_a_restored_learner_predicts_the_same(name, tiny_backbone):
    learner, images = _after_two_tasks(name, tiny_backbone)
    with torch.no_grad():
        scores = learner.predict(images)
    assert scores.shape == (7, 4) and learner.num_seen == 4
    assert torch.isfinite(scores).all() and (scores >= 0).all() and (scores.sum(dim=1) > 0).all()

    restored = _learner(name, tiny_backbone)
    state = {k: v.clone() for k, v in learner.state_dict().items()}
    restored.restore(state, json.loads(json.dumps(learner.structure())))  # as a checkpoint carries them
    restored.eval()
    with torch.no_grad():
        assert torch.equal(restored.predict(images), scores)


@pytest.mark.parametrize("name", NAMES)
def test_embed_gives_finite_features_of_every_image_given_the_same_twice(name, tiny_backbone):
    learner, images = _after_two_tasks(name, tiny_backbone)
    with torch.no_grad():
        features = learner.embed(images)
        assert features.dim() == 2 and features.shape[0] == 7 and features.shape[1] > 0, features.shape
        assert features.dtype == torch.float32 and torch.isfinite(features).all()
        assert torch.equal(learner.embed(images), features)


def _run(name, out, *extra):
    return [
        "run",
        "cpu-small",
        "--out",
        str(out),
        *FAST_RUN,
        "--set",
        f"method.name={name}",
        "--set",
        "train.progress=false",
        *extra,
    ]


@pytest.mark.parametrize("name", NAMES)
def test_a_run_interrupted_after_its_first_task_resumes_to_the_same_results(name, tmp_path):
    whole = tmp_path / "whole"
    assert main(_run(name, whole, "--set", "train.checkpoints=all")) == 0
    expected = json.loads((whole / "results.json").read_text())["acc_matrix"]
    stopped = tmp_path / "stopped"  # the same run, stopped after its first task's checkpoint
    shutil.copytree(whole, stopped)
    for path in [stopped / "results.json", stopped / "model.safetensors", *stopped.glob("checkpoints/task-0[2-9]*")]:
        path.unlink()
    assert [p.name for p in (stopped / "checkpoints").iterdir()] == ["task-01.safetensors"]
    assert main(_run(name, stopped, "--set", "train.checkpoints=all", "--resume")) == 0
    assert json.loads((stopped / "results.json").read_text())["acc_matrix"] == expected


@pytest.mark.parametrize("name", NAMES)
def test_a_model_grown_with_new_and_learn_equals_a_run(name, tmp_path):
    tasks = [["orange star", "red circle"], ["blue square", "pink heart"]]  # sorted: learn's label order
    for split, count in (("train", 4), ("test", 3)):
        write_shapes_folder(tmp_path / "data" / split, tasks[0] + tasks[1], per_class=count, split=split)
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
                "method": {"name": name},
            }
        )
    )
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())

    model = tmp_path / "grown.safetensors"
    assert main(["new", str(model), "--backbone", "seca-test", "--preset", str(config)]) == 0
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
    assert [e["eval"]["per_task"] for e in read_metadata(model)["history"]] == results["acc_matrix"]
    grown, _ = load_checkpoint(model)
    ran, _ = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert grown.keys() == ran.keys() and all(torch.equal(grown[k], ran[k]) for k in grown)


# ---- statistics over shards -------------------------------------------------------------------------------

PER_CLASS = [7, 6, 5, 8, 6, 7]  # odd sizes: the two shards of a task differ


def _statistics() -> dict:
    """Every learner's state after two tasks begun and ended on this process's shards (all data in one process)."""
    from seca.clip.backbone import load_backbone

    torch.set_num_threads(1)
    backbone = load_backbone("seca-test", None)
    items = _items(PER_CLASS, backbone.image_size)
    scenario = list(ClassIncrementalScenario(list(range(len(CLASSES))), 2, 2))
    out = {}
    for name in NAMES:
        learner = _learner(name, backbone)
        for task in scenario[:2]:
            mine = _task_images(items, task).shard(task_seed(SEED, task))
            data = _task_data(learner, mine, task)
            learner.begin_task(task, data)
            learner.end_task(task, data)
        out[name] = {k: v.detach().clone() for k, v in learner.state_dict().items()}
    return out


@pytest.fixture(scope="module")
def two_and_one(tmp_path_factory):
    return in_two_processes(_statistics, tmp_path_factory.mktemp("ranks")), _statistics()


@pytest.mark.parametrize("name", NAMES)
def test_statistics_over_two_shards_equal_one_process(name, two_and_one):
    ranks, one = two_and_one
    for rank in ranks:
        assert rank[name].keys() == one[name].keys()
        for key, value in one[name].items():
            torch.testing.assert_close(rank[name][key], value, rtol=1e-5, atol=1e-5, msg=f"{name}: {key}")


@pytest.mark.parametrize("name", NAMES)
def test_a_frozen_input_is_the_same_before_and_after_learning_and_scores_as_the_images_do(name, tiny_backbone):
    learner = _learner(name, tiny_backbone)
    kind = learner.frozen_kind()
    if kind is None:
        pytest.skip(f"{name} has no frozen input: evaluation encodes its test images each time")
    items = _items([4] * len(CLASSES), tiny_backbone.image_size)
    images = torch.stack([image for image, _ in items[:7]])
    learner.eval()
    with torch.no_grad():
        before = learner.frozen_input(images)
        _two_tasks(learner, items)
        learner.eval()
        assert learner.frozen_kind() == kind
        after = learner.frozen_input(images)
        scores = learner.predict(images)
        assert torch.equal(learner.predict_frozen(before), scores)  # kept from before the tasks, scored after

    def tensors(frozen):
        return (frozen,) if isinstance(frozen, torch.Tensor) else (frozen.residual, frozen.output)

    assert all(torch.equal(a, b) for a, b in zip(tensors(before), tensors(after)))
