"""The evaluation order (train.eval_order): each task in batches of its own, or every seen class's test images
through one loader in the data set's order, as the reference evaluates. With one maximum per image the two
give the same predictions; with one maximum per batch (hybrid_max: batch) the mixed batches decide, and the
accuracy equals a hand computation of the reference's scores over those batches."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import seca
from seca.cli import main
from seca.engine.data import TaskImages, in_dataset_order
from seca.engine.evaluate import evaluate_tasks, predicted_labels

from ..conftest import FAST_RUN, write_shapes_folder

BATCH = 8


class Images(Dataset):
    """Random images whose labels cycle through every seen class: in the data set's order, tasks interleave."""

    def __init__(self, count: int, tasks: int, per_task: int, size: int):
        self.images = torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(7))
        i = np.arange(count)
        self.labels = (i % tasks) * per_task + (i // tasks) % per_task  # image i is of task i % tasks

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


@pytest.fixture(scope="module")
def learner(small_run):
    model = seca.load(small_run / "model.safetensors", device="cpu")
    return model.learner


def _test_sets(learner):
    data = Images(60, len(learner.tasks), learner.tasks[0].num_classes, learner.backbone.image_size)
    sets = []
    for task in learner.tasks:
        items = np.flatnonzero((data.labels >= task.start) & (data.labels < task.stop))
        sets.append(TaskImages(data, items, data.labels[items]))
    return data, sets


def _with_hybrid_max(learner, value):
    c = learner.config
    learner.config = dataclasses.replace(c, classifier=dataclasses.replace(c.classifier, hybrid_max=value))


def _reference_predictions(learner, images: torch.Tensor) -> torch.Tensor:
    """Spec §6 with ONE maximum per batch and branch, written out: the reference's score of each image."""
    with torch.no_grad():
        f = learner.image_features(images)
        t = learner.config.temperature
        text_logits = t * torch.einsum("be,pce->bpc", f, learner.inference_text_features())
        p_text = (text_logits - text_logits.max()).exp().mean(dim=1)
        visual_logits = t * f @ learner.stored_prototypes.T
        p_visual = (visual_logits - visual_logits.max()).exp()
        return (0.5 * p_text + 0.5 * p_visual).argmax(dim=1)


def test_the_dataset_order_is_the_data_sets_own_and_its_batches_mix_tasks(learner):
    data, sets = _test_sets(learner)
    merged, membership = in_dataset_order(sets)
    assert merged.indices.tolist() == list(range(len(data)))
    assert membership.tolist() == [next(k for k, s in enumerate(sets) if i in s.indices) for i in range(len(data))]
    assert len(set(membership[:BATCH].tolist())) == len(sets)  # the first batch holds images of every task


def test_with_one_maximum_per_image_both_orders_predict_the_same(learner):
    _, sets = _test_sets(learner)
    _with_hybrid_max(learner, "image")
    by_task = predicted_labels(learner, sets, BATCH, torch.device("cpu"), order="task")
    by_dataset = predicted_labels(learner, sets, BATCH, torch.device("cpu"), order="dataset")
    assert all(torch.equal(a, b) for a, b in zip(by_task, by_dataset))


def test_with_one_maximum_per_batch_the_accuracy_is_the_references_over_mixed_batches(learner):
    data, sets = _test_sets(learner)
    _with_hybrid_max(learner, "batch")
    try:
        confusion = torch.zeros(learner.num_seen, learner.num_seen, dtype=torch.long)
        correct, total = evaluate_tasks(learner, sets, BATCH, torch.device("cpu"), confusion=confusion, order="dataset")
        # by hand: the data set in its own order, cut into batches of BATCH, each scored as the reference does
        predicted = torch.cat(
            [_reference_predictions(learner, data.images[i : i + BATCH]) for i in range(0, len(data), BATCH)]
        )
        truth = torch.as_tensor(data.labels)
        expected = [int((predicted == truth)[s.indices].sum()) for s in sets]
        assert (correct, total) == (expected, [len(s) for s in sets])
        assert int(confusion.trace()) == sum(expected) and int(confusion.sum()) == len(data)
        # the task order forms other batches, and the same hand computation over them gives its accuracy
        by_task = [
            int(
                (
                    torch.cat(
                        [
                            _reference_predictions(learner, data.images[s.indices[i : i + BATCH]])
                            for i in range(0, len(s), BATCH)
                        ]
                    )
                    == truth[s.indices]
                ).sum()
            )
            for s in sets
        ]
        assert evaluate_tasks(learner, sets, BATCH, torch.device("cpu"), order="task")[0] == by_task
        assert by_task != expected  # the point of the switch: mixed batches predict otherwise
    finally:
        _with_hybrid_max(learner, "image")


def test_a_run_and_seca_evaluate_take_the_order(tmp_path, capsys):
    runs = {}
    for order in ("task", "dataset"):
        out = tmp_path / order
        assert main(["run", "cpu-small", "--out", str(out), *FAST_RUN, "--set", f"train.eval_order={order}"]) == 0
        runs[order] = json.loads((out / "results.json").read_text())
    assert runs["task"]["acc_matrix"] == runs["dataset"]["acc_matrix"]  # hybrid_max: image, the default
    assert runs["task"]["confusion"] == runs["dataset"]["confusion"]

    model = tmp_path / "task" / "model.safetensors"
    folder = write_shapes_folder(tmp_path / "test", seca.load(model).classes[:6], per_class=4)
    reports = {}
    for order in ("task", "dataset"):
        for maximum in ("image", "batch"):
            capsys.readouterr()
            assert (
                main(
                    [
                        "evaluate",
                        str(model),
                        "--data",
                        str(folder),
                        "--json",
                        "--batch-size",
                        "5",
                        "--order",
                        order,
                        "--hybrid-max",
                        maximum,
                    ]
                )
                == 0
            )
            reports[order, maximum] = json.loads(capsys.readouterr().out)
    assert reports["task", "image"]["per_class"] == reports["dataset", "image"]["per_class"]
    assert main(["evaluate", str(model), "--data", str(folder), "--order", "random"]) == 2
    assert "invalid choice: 'random'" in capsys.readouterr().err
