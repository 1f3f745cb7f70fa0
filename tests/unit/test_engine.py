"""ENGINE (docs/specs/engine.md): its statistics, scores and losses on numbers worked out by hand, and its behaviour."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from seca.data.scenario import Task
from seca.engine.configure import method_config
from seca.errors import SecaError
from seca.methods import Batch, TaskData, build_learner
from seca.methods.engine import (
    EngineConfig,
    contrastive,
    discriminant,
    merge_statistics,
    rerank_scores,
    shrunk_inverse,
    task_statistics,
)

CLASSES = ["red star", "blue star", "red circle", "blue circle"]


def test_task_statistics_are_class_means_and_scatter_of_normalised_features():
    features = torch.tensor([[3.0, 4.0], [4.0, 3.0], [0.0, 2.0]])  # normalised: (.6,.8), (.8,.6), (0,1)
    means, scatter, images = task_statistics(features, torch.tensor([0, 0, 1]), [0, 1])
    torch.testing.assert_close(means, torch.tensor([[0.7, 0.7], [0.0, 1.0]], dtype=torch.float64))
    # class 0's two points are ±(0.1, -0.1) from their mean; class 1's one point is its mean
    torch.testing.assert_close(scatter, torch.tensor([[0.02, -0.02], [-0.02, 0.02]], dtype=torch.float64))
    assert float(images) == 3


def test_shrunk_inverse_is_width_times_the_inverse_of_the_ridged_scatter():
    scatter = torch.diag(torch.tensor([2.0, 4.0], dtype=torch.float64))  # trace 6, 4 images: ridge 6 / 3 = 2
    torch.testing.assert_close(
        shrunk_inverse(scatter, 4), torch.diag(torch.tensor([2 / 4, 2 / 6], dtype=torch.float64))
    )


def test_merge_weighs_the_matrices_by_classes_and_adds_the_gap_of_the_mean_means():
    old, new = torch.eye(2, dtype=torch.float64), 3 * torch.eye(2, dtype=torch.float64)
    old_means = torch.tensor([[1.0, 0.0]], dtype=torch.float64)  # k = 1 old class, t = 4 classes
    new_means = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 3.0]], dtype=torch.float64)  # mean (0, 1)
    gap = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64)  # (1, -1)(1, -1)^T
    expected = 0.25 * old + 0.75 * new + (0.25 * 3 / 16) * gap
    torch.testing.assert_close(merge_statistics(old_means, old, new_means, new), expected)


def test_discriminant_is_the_normalised_linear_score():
    means = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    precision = 2 * torch.eye(2, dtype=torch.float64)
    pooled = torch.tensor([[5.0, 0.0]])  # x̂ = (1, 0): scores 2 - 1 + log .5 and 0 - 1 + log .5
    raw = torch.tensor([[1 + math.log(0.5), -1 + math.log(0.5)]], dtype=torch.float64)
    torch.testing.assert_close(discriminant(pooled, means, precision), F.normalize(raw, dim=-1))


def test_rerank_scores_only_the_top_classes_with_the_mean_of_their_pair_texts():
    # 3 classes, one draw; image (1, 0); top classes 2 then 0
    pair = torch.zeros(1, 3, 3, 2)
    pair[0, 2, 0] = torch.tensor([3.0, 4.0])  # class 2 against class 0: cosine .6
    pair[0, 0, 2] = torch.tensor([0.0, 1.0])  # class 0 against class 2: cosine 0
    scores = rerank_scores(torch.tensor([[1.0, 0.0]]), torch.tensor([[2, 0]]), pair, 3)
    torch.testing.assert_close(scores, torch.tensor([[0.0, 0.0, 0.6]]))
    # one class in the top: nothing to set it apart from, no re-ranking
    assert torch.equal(rerank_scores(torch.tensor([[1.0, 0.0]]), torch.tensor([[1]]), pair, 3), torch.zeros(1, 3))


def test_contrastive_is_cross_entropy_against_the_diagonal():
    logits = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    expected = (-math.log(math.exp(2) / (math.exp(2) + 1)) + math.log(2)) / 2
    assert contrastive(logits).item() == pytest.approx(expected)


def _data(backbone, task, per_class=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(task.start, task.stop).repeat_interleave(per_class)
    images = torch.randn(len(labels), 3, backbone.image_size, backbone.image_size, generator=g)

    def batches():
        yield Batch(images, labels, torch.arange(len(labels)))

    return TaskData(task, len(labels), batches), Batch(images, labels, torch.arange(len(labels)))


def _learner(backbone, **engine):
    return build_learner(backbone, CLASSES, method_config(name="engine", engine=EngineConfig(**engine)), seed=1)


def test_each_task_adds_adapters_and_freezes_the_earlier_ones(tiny_backbone):
    learner = _learner(tiny_backbone)
    tasks = [Task(0, (0, 1), 0, 2), Task(1, (2, 3), 2, 4)]
    for task in tasks:
        data, _ = _data(tiny_backbone, task)
        learner.begin_task(task, data)
        learner.end_task(task, data)
    assert len(learner.image_adapters) == len(learner.text_adapters) == 2
    assert not any(p.requires_grad for p in learner.image_adapters[0].parameters())
    trained = {id(p) for g in learner.parameter_groups() for p in g["params"]}
    assert trained == {id(p) for m in (learner.image_adapters[1], learner.text_adapters[1]) for p in m.parameters()}
    assert learner.prototypes.shape == (4, tiny_backbone.embed_dim) and learner.means.shape[0] == 4
    assert learner.scatters.shape[0] == 2 and learner.task_sizes.tolist() == [6.0, 6.0]


def test_a_step_replays_every_old_class_once_and_repeats_with_the_seed(tiny_backbone):
    def step():
        learner = _learner(tiny_backbone)
        first, second = Task(0, (0, 1), 0, 2), Task(1, (2, 3), 2, 4)
        data, _ = _data(tiny_backbone, first)
        learner.begin_task(first, data)
        learner.end_task(first, data)
        data, batch = _data(tiny_backbone, second, seed=1)
        learner.begin_task(second, data)
        told = []
        encode = learner.backbone.encode_texts
        learner.backbone.encode_texts = lambda texts: told.append(list(texts)) or encode(texts)
        try:
            losses = learner.training_step(batch)
        finally:
            learner.backbone.encode_texts = encode
        return losses, told[0]

    (losses, texts), (again, texts_again) = step(), step()
    assert set(losses) == {"loss", "clip", "descriptions", "noise"}
    # 6 images of the task and one noisy mean of each of the 2 old classes; offline descriptions: a word of the name
    assert len(texts) == 8 and texts[-2].startswith("red star with ") and texts[-1].startswith("blue star with ")
    assert texts[0].split(" with ")[1] in ("red", "circle")
    assert texts == texts_again and torch.equal(losses["loss"], again["loss"])
    expected = losses["clip"] + 2 * losses["descriptions"] + 2 * losses["noise"]
    torch.testing.assert_close(losses["loss"].detach(), expected)


def test_pairwise_descriptions_are_read_for_the_rerank(tiny_backbone, tmp_path):
    path = tmp_path / "des.json"
    described = {name: {other: [f"{name} not {other}"] for other in CLASSES if other != name} for name in CLASSES}
    path.write_text(json.dumps(described))
    learner = _learner(tiny_backbone, descriptions=str(path))
    learner._described(CLASSES)
    assert learner._pair_descriptions("red star", "blue circle") == ["red star not blue circle"]
    assert len(learner._descriptions["red star"][0]) == 3  # every aspect's texts, joined, for training
    with pytest.raises(SecaError, match="method.engine.descriptions"):
        _learner(tiny_backbone, descriptions=str(tmp_path / "missing.json"))


def test_predict_is_the_exponentiated_mix_and_does_not_depend_on_the_batch(tiny_backbone):
    learner = _learner(tiny_backbone, stat=0.5, rerank=0.5, rerank_top=2)
    task = Task(0, (0, 1, 2), 0, 3)
    data, batch = _data(tiny_backbone, task)
    learner.begin_task(task, data)
    learner.end_task(task, data)
    learner.eval()
    with torch.no_grad():
        scores, mixed = learner.scores(learner.frozen_input(batch.images))
        torch.testing.assert_close(scores, (100 * (mixed - mixed.amax(1, keepdim=True))).exp())
        alone = learner.predict(batch.images[:1])
    torch.testing.assert_close(alone, learner.predict(batch.images)[:1])  # up to the encoder's rounding by batch
