"""CLG-CBM's parts against numbers worked out by hand (docs/specs/clg-cbm.md); the learner contract is in
tests/smoke/test_contract.py, its agreement with the official code in docs/specs/clg-cbm.md §10."""

import json
import math

import pytest
import torch

from seca.data.scenario import Task
from seca.engine.configure import method_config
from seca.errors import SecaError
from seca.methods._class_texts import read_class_names, read_class_texts, read_indexed_class_texts
from seca.methods.base import Batch, TaskData
from seca.methods.clg_cbm import (
    CLGCBM,
    CLGCBMConfig,
    concept_statistics,
    mahalanobis_penalty,
    related_new_classes,
    select_concepts,
    similarity_loss,
    sparse_penalty,
)

CROSS = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)


def test_concept_statistics_are_the_mean_the_inverse_covariance_and_the_mean_squared_distance():
    mu, precision, mean = concept_statistics(CROSS)
    # unbiased covariance: sum of squares 2 over 3 = 2/3 on the diagonal; each point is at d² = 1.5
    assert torch.equal(mu, torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(precision, 1.5 * torch.eye(2, dtype=torch.float64))
    assert mean.item() == pytest.approx(1.5)  # = D (N - 1) / N = 2 * 3 / 4, for any N > D points


def test_fewer_concepts_than_dimensions_use_the_pseudo_inverse_within_their_span():
    points = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]], dtype=torch.float64)  # covariance diag(2, 0, 0)
    _, precision, mean = concept_statistics(points)
    assert torch.allclose(precision, torch.diag(torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)))
    assert mean.item() == pytest.approx(0.5)  # rank (N - 1) = 1, times (N - 1) / N


def test_the_mahalanobis_penalty_reads_row_directions_with_the_norm_held_constant():
    mu = torch.tensor([1.0, 0.0], dtype=torch.float64)
    precision = 1.5 * torch.eye(2, dtype=torch.float64)
    weight = torch.tensor([[0.0, 2.0]], dtype=torch.float64, requires_grad=True)
    # the row's direction (0, 1) is at d² = 1.5 |(-1, 1)|² = 3 from mu: |3 - 1.5| / 1.5 = 1
    penalty = mahalanobis_penalty(weight, mu, precision, torch.tensor(1.5, dtype=torch.float64), 1.0)
    assert penalty.item() == pytest.approx(1.0)
    penalty.backward()
    # d/dw of d²(w / c) with c = |w| = 2 held constant: 2 Σ⁻¹ (w/c - mu) / c = (-1.5, 1.5); over m̄ = 1.5: (-1, 1).
    # Had the norm been differentiated, the gradient would be orthogonal to w: (-1, 0).
    assert torch.allclose(weight.grad, torch.tensor([[-1.0, 1.0]], dtype=torch.float64))
    assert mahalanobis_penalty(torch.tensor([[5.0, 0.0]]), mu.float(), precision.float(), torch.tensor(1.5), 5.0) == (
        pytest.approx(1.5 / 1.5**5)
    )


def test_each_center_takes_its_nearest_concept_not_yet_taken_lowest_index_on_a_tie():
    concepts = torch.eye(3)
    centers = torch.tensor([[1.0, 0.1, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    # row 0 -> concept 0; row 1 is nearest concept 0 (taken), then 1 and 2 tie at distance 2: the lower, 1
    assert select_concepts(centers, concepts, 3).tolist() == [0, 1, 2]
    assert select_concepts(centers, concepts, 2).tolist() == [0, 1]  # the first `count` rows' picks
    assert select_concepts(centers[[2, 1, 0]], concepts, 3).tolist() == [2, 0, 1]
    assert select_concepts(centers, concepts, 10).tolist() == [0, 1, 2]  # never more than the concepts


def test_the_alignment_loss_is_minus_the_mean_cosine_of_cubed_columns_over_the_batch():
    inputs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    concepts = torch.eye(2)
    assert similarity_loss(inputs, concepts, 3 * inputs).item() == pytest.approx(-1.0)  # positive scale per column
    assert similarity_loss(inputs, concepts, -inputs).item() == pytest.approx(1.0)
    # column 0 of the cubes: (1, 0, 1) against (1, 1, 0): cos = 1/2; column 1, (0, 1, 1) against (1, 0, 1): 1/2
    assert similarity_loss(inputs, concepts, torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])).item() == (
        pytest.approx(-0.5)
    )


def test_the_sparse_penalty_is_an_elastic_net():
    weight = torch.tensor([[1.0, -2.0]])
    assert sparse_penalty(weight, 1e-3, 0.99).item() == pytest.approx(1e-3 * 0.99 * 3 + 0.5 * 1e-3 * 0.01 * 5)


def test_an_old_class_is_related_to_the_new_class_whose_mean_is_nearest_its_name():
    names = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    means = torch.tensor([[0.1, 1.0], [3.0, 0.2]])
    assert related_new_classes(names, means).tolist() == [1, 0]


# ---- the concept files ------------------------------------------------------------------------------------------
def test_concepts_keyed_by_the_data_sets_class_index_are_read_through_its_names(tmp_path):
    concepts = tmp_path / "concepts.json"
    concepts.write_text(json.dumps({"0": ["red", "round"], "1": ["has fins"], "2": ["tall"]}))
    names = tmp_path / "label2class.json"
    names.write_text(json.dumps({"0": "apple", "1": "aquarium fish", "2": "tree"}))
    assert read_class_names(names, "k") == ["apple", "aquarium fish", "tree"]
    got = read_indexed_class_texts(concepts, names, ["tree", "aquarium_fish"], "c", "n")
    assert got == [["tall"], ["has fins"]]  # in the learner's label order, names matched as read_class_texts does
    listed = tmp_path / "names.json"
    listed.write_text(json.dumps(["apple", "aquarium fish", "tree"]))
    assert read_indexed_class_texts(concepts, listed, ["apple"], "c", "n") == [["red", "round"]]
    gap = tmp_path / "gap.json"
    gap.write_text(json.dumps({"0": "apple", "2": "tree"}))
    with pytest.raises(SecaError, match="every class index from 0 to 1"):
        read_class_names(gap, "n")
    short = tmp_path / "short.json"
    short.write_text(json.dumps(["apple"]))
    with pytest.raises(SecaError, match="names only 1 classes"):
        read_indexed_class_texts(concepts, short, ["apple"], "c", "n")
    with pytest.raises(SecaError, match="no text for 3 of the 3 classes"):  # by name, an index file matches nothing
        read_class_texts(concepts, ["apple", "aquarium fish", "tree"], "c")


def test_a_concept_file_keyed_by_index_without_its_names_is_refused(tmp_path):
    concepts = tmp_path / "concepts.json"
    concepts.write_text(json.dumps({"0": ["red"]}))
    config = method_config(name="clg-cbm", clg_cbm=CLGCBMConfig(concepts=str(concepts)))
    with pytest.raises(SecaError, match="keyed by class index; set method.clg_cbm.concept_names"):
        CLGCBM.check_config(config)


# ---- a learner over a table backbone ----------------------------------------------------------------------------
class _Backbone:
    """Texts and images as fixed 4-d tables: a text's feature is the sum of one-hot rows of its words."""

    embed_dim = 4
    device = torch.device("cpu")
    logit_scale = 100.0
    WORDS = {"red": 0, "blue": 1, "star": 2, "circle": 3}

    def encode_texts(self, texts):
        out = torch.full((len(texts), 4), 0.05)
        for i, text in enumerate(texts):
            for word in text.replace(".", "").split():
                if word in self.WORDS:
                    out[i, self.WORDS[word]] += 1.0
        return out

    def encode_image(self, images):
        return images


def _task_data(task, images, labels):
    def batches():
        yield Batch(images, labels, torch.arange(len(labels)))

    return TaskData(task, len(labels), batches)


def test_two_tasks_grow_the_bottleneck_and_replay_old_classes_through_related_new_ones():
    settings = CLGCBMConfig(pool=1, bottleneck_epochs=2, bottleneck_epochs_later=2, bottleneck_batch_size=4)
    names = ["red star", "blue circle", "red circle", "blue star"]
    learner = CLGCBM(_Backbone(), names, method_config(name="clg-cbm", clg_cbm=settings), seed=0)
    first = Task(0, tuple(names[:2]), 0, 2)
    g = torch.Generator().manual_seed(0)
    images = torch.tensor([[1.0, 0, 1, 0]] * 3 + [[0, 1.0, 0, 1]] * 3) + 0.1 * torch.rand(6, 4, generator=g)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    data = _task_data(first, images, labels)
    learner.begin_task(first, data)
    # offline concepts: each word of a class's name; the gate has one row per candidate, one output per class
    assert learner._candidates == ["red", "star", "blue", "circle"]
    assert learner.gate[0].weight.shape == (4, 4) and learner.gate[-1].weight.shape == (2, 4)
    losses = learner.training_step(Batch(images, labels, torch.arange(6)))
    assert set(losses) == {"ce", "mahalanobis", "loss"}
    learner.end_task(first, data)
    assert learner.gate is None and learner.parameter_groups() == []
    assert len(learner.concepts) == 2 and learner.explainer.shape == (2, 4) and learner.classifier.shape == (2, 2)
    assert torch.allclose(
        learner.gaussians.means[0], images[:3].div(images[:3].norm(dim=1, keepdim=True)).mean(0).double()
    )

    second = Task(1, tuple(names[2:]), 2, 4)
    new = torch.tensor([[1.0, 0, 0, 1]] * 2 + [[0, 1.0, 1, 0]] * 3)  # "red circle" x2, "blue star" x3
    new_labels = torch.tensor([2, 2, 3, 3, 3])
    data = _task_data(second, new, new_labels)
    learner.begin_task(second, data)
    seen = {}
    learner._fit_bottleneck = lambda task, inputs, targets: seen.update(inputs=inputs, targets=targets)
    learner.end_task(second, data)
    inputs, targets = seen["inputs"], seen["targets"]
    means = learner.gaussians.means.float()
    # each old class brings the rows of the new class whose mean is nearest its name ("a photo of a red star."),
    # moved by the difference of the two classes' means
    related = related_new_classes(learner._encode([f"a photo of a {n}." for n in names[:2]]), means[2:4]) + 2
    assert targets.tolist()[:5] == [2, 2, 3, 3, 3]
    for old in (0, 1):
        rows = inputs[targets == old]
        assert len(rows) == int((new_labels == related[old]).sum())
        assert torch.allclose(rows.mean(0), means[old], atol=1e-6)
    learner.classifier.data.normal_(generator=g)  # (the stubbed training left it at its initialisation)
    assert learner.classifier.shape == (4, 4) and learner.explainer.shape == (4, 4)
    scores = learner.predict(torch.cat([images, new]))
    assert scores.shape == (11, 4) and (scores > 0).all() and torch.allclose(scores.amax(1), torch.ones(11))
    assert learner.structure()["concepts"] == learner.concepts


def test_the_bottleneck_phase_follows_its_own_schedule():
    """60 epochs of Adam at 1e-3 with milestones 30/40/50 (official FB_*): the defaults, as the official exps."""
    s = CLGCBMConfig()
    assert (s.bottleneck_epochs, s.bottleneck_lr, s.bottleneck_milestones) == (60, 1e-3, (30, 40, 50))
    assert CLGCBM.recipe["epochs"] == 30 and CLGCBM.recipe["batch_size"] == 48 and CLGCBM.default_lr["clg_cbm"] == 1e-2
    assert math.isclose(s.sparse_lambda * s.sparse_alpha, 0.00099)
