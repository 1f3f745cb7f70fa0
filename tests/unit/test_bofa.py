"""BOFA's parts against numbers worked out by hand (docs/specs/bofa.md); the learner contract is in
tests/smoke/test_contract.py, its agreement with the official code in docs/specs/bofa.md §10."""

import math

import pytest
import torch
import torch.nn.functional as F

from seca.data.scenario import Task
from seca.engine.configure import method_config
from seca.methods.base import Batch, TaskData
from seca.methods.bofa import (
    BOFA,
    BOFAConfig,
    bofa_scores,
    chosen_mix,
    discriminant,
    hybrid_prototypes,
    merge_precision,
    mix_counts,
    safe_bridge,
    within_precision,
)

D64 = torch.float64


def test_a_hybrid_prototype_mixes_the_unit_image_and_text_features_without_renormalising():
    image, text = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 2.0]])  # unit: (.6, .8) and (0, 1)
    assert torch.allclose(hybrid_prototypes(image, text, 0.25), torch.tensor([[0.15, 0.95]]))  # .25 image + .75 text
    assert torch.allclose(hybrid_prototypes(image, text, 1.0), torch.tensor([[0.6, 0.8]]))


def test_the_mix_search_weighs_the_text_by_lambda_and_keeps_the_first_best():
    # two classes; images prototypes swapped (every image wrong), texts right: λ' = 0 scores 0, λ' = 1 scores 2
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    image, text = torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    counts = mix_counts(features, labels, image, text)
    # (1 - λ') image + λ' text: class 0's prototype is (λ', 1 - λ'); image 0 goes right once λ' > .5
    expected = [0.0] * 11 + [2.0] * 10  # λ' = .5 ties: argmax keeps class 0 for both images, one right
    expected[10] = 1.0
    assert counts.tolist() == expected
    assert chosen_mix(counts) == pytest.approx(0.55)  # the first of the ten best
    assert chosen_mix(torch.zeros(21)) == 0.0  # all equal: the first, 0 (searched again next task)


def test_the_within_class_precision_shrinks_the_scatter_by_its_trace_over_n_minus_1():
    scatter = torch.tensor([[2.0, 0.0], [0.0, 0.0]], dtype=D64)  # N = 3: tr / (N - 1) = 1
    assert torch.allclose(within_precision(scatter, 3), torch.diag(torch.tensor([1 / 3, 1.0], dtype=D64)))


def test_precisions_merge_by_class_counts_with_the_between_means_term():
    old, new = torch.eye(2, dtype=D64), 3 * torch.eye(2, dtype=D64)
    old_means = torch.tensor([[1.0, 0.0]], dtype=D64)  # K = 1
    new_means = torch.tensor([[0.0, 0.0], [0.0, 2.0]], dtype=D64)  # mean (0, 1); C = 3; δ = (1, -1)
    # 1/3 I + 2/3 · 3 I + (1 · 2 / 27) δδᵀ / D (D = 2: the stored precision is Q / D)
    between = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=D64) / 27
    expected = torch.eye(2, dtype=D64) * (1 / 3 + 2) + between
    assert torch.allclose(merge_precision(old, new, old_means, new_means), expected)


def test_the_discriminant_scores_each_class_by_its_unit_mean_under_the_precision():
    unit_means = torch.tensor([[1.0, 0.0], [0.0, 0.5]], dtype=D64)
    precision = torch.diag(torch.tensor([1.0, 2.0], dtype=D64))  # Q / D: Q = diag(2, 4)
    weight, bias = discriminant(unit_means, precision)
    assert torch.allclose(weight, torch.tensor([[2.0, 0.0], [0.0, 2.0]], dtype=D64))  # μ̂ Q
    # ln(1/2) - ½ μ̂ Q μ̂ᵀ: class 0: ½ · 2 = 1; class 1: ½ · .25 · 4 = .5
    assert torch.allclose(bias, torch.tensor([math.log(0.5) - 1.0, math.log(0.5) - 0.5], dtype=D64))


def test_the_safe_bridge_keeps_only_the_change_along_the_old_tasks_least_variance_directions():
    moment = torch.diag(torch.tensor([5.0, 1.0, 3.0], dtype=D64))  # least variance: the second input coordinate
    original = torch.zeros(2, 3, dtype=D64)
    weight = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=D64)
    assert torch.allclose(
        safe_bridge(weight, original, moment, 1), torch.tensor([[0.0, 2.0, 0.0], [0.0, 5.0, 0.0]], dtype=D64)
    )
    # rank 2: the second and third coordinates; rank 3 (or more) keeps the whole change
    assert torch.allclose(safe_bridge(weight, original, moment, 2), weight * torch.tensor([0.0, 1.0, 1.0], dtype=D64))
    assert torch.allclose(safe_bridge(weight, original + 1, moment, 5), weight)


def test_a_test_score_mixes_the_discriminant_and_the_bridge_cosine_by_stat():
    pooled = torch.tensor([[0.0, 2.0]])  # x̂ = (0, 1)
    bridge = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # n(W x) = (0, 1)
    prototypes = torch.tensor([[0.0, 0.5], [1.0, 0.0]])  # cosines .5, 0
    weight, bias = torch.tensor([[0.0, 4.0], [2.0, 0.0]]), torch.tensor([-1.0, 0.0])  # gda: 3, 0
    scores = bofa_scores(pooled, bridge, prototypes, weight, bias, 0.1)
    assert torch.allclose(scores, torch.tensor([[0.1 * 3 + 0.9 * 0.5, 0.0]]))


def _task_data(task, images, labels):
    def batches():
        yield Batch(images, labels, torch.arange(len(labels)))

    return TaskData(task, len(labels), batches)


def test_a_bofa_task_trains_its_bridge_against_log_scaled_prototypes_and_fuses_it(tiny_backbone):
    torch.manual_seed(0)
    config = method_config(name="bofa", bofa=BOFAConfig(templates=("a photo of a {}.", "art of the {}."), rank=4))
    names = ["red star", "blue star", "red circle", "blue circle"]
    learner = BOFA(tiny_backbone, names, config, seed=0)
    original = tiny_backbone.model.visual.proj.detach().T
    assert torch.equal(learner.weight.detach(), original)
    images = torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    first, second = Task(0, tuple(names[:2]), 0, 2), Task(1, tuple(names[2:]), 2, 4)
    labels = torch.tensor([0, 1] * 3)
    learner.begin_task(first, _task_data(first, images[:6], labels))
    pooled = learner._features
    assert torch.allclose(learner.means, torch.stack([pooled[0::2].mean(0), pooled[1::2].mean(0)]).double(), atol=1e-6)

    # the loss of a batch: cross-entropy of ln(CLIP's scale) · n(W x) · p over the seen classes (§3.1)
    losses = learner.training_step(Batch(images[:6], labels, torch.arange(6)))
    scale = float(tiny_backbone.model.logit_scale)  # the log of the scale: exp of it is CLIP's 1/temperature
    logits = scale * F.normalize(pooled @ original.T, dim=-1) @ learner._train_prototypes.T
    assert losses["ce"].item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    losses["loss"].backward()
    assert learner.weight.grad is not None and learner.weight.grad.abs().sum() > 0
    learner.end_task(first, _task_data(first, images[:6], labels))
    assert int(learner.tasks_fused) == 1 and torch.allclose(learner.fused_sum.float(), original)  # W_0 = W, untrained

    learner.begin_task(second, _task_data(second, images[6:], labels + 2))
    change = 0.01 * torch.randn(original.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        learner.weight.add_(change)
    old_moment = learner.moment_sum.clone()  # the first task's second moment, the only earlier one
    learner.end_task(second, _task_data(second, images[6:], labels + 2))
    _, vectors = torch.linalg.eigh(old_moment)
    safe = vectors[:, :4]
    expected = original.double() + (change.double() @ safe) @ safe.T  # W₀ + (W − W₀) A Aᵀ
    assert torch.allclose(learner.fused_sum - original.double(), expected, atol=1e-6)
    assert torch.allclose(learner._fused(), ((original.double() + expected) / 2).float(), atol=1e-6)
    scores = learner.predict(images[:3])
    assert scores.shape == (3, 4) and (scores.max(dim=1).values == 1).all()  # exp(score - its maximum)


def test_the_official_recipe_is_the_default_and_templates_must_each_have_one_slot():
    from seca.engine.configure import load_config
    from seca.errors import SecaError

    train = load_config("cpu-small", method="bofa").train
    assert (train.optimizer, train.momentum, train.lr, train.weight_decay) == ("sgd", 0.9, {"bofa": 0.05}, 0.05)
    assert (train.epochs, train.batch_size, train.schedule, train.min_lr_ratio) == (15, 128, "cosine_epoch", 0.0)
    with pytest.raises(SecaError, match="method.bofa.templates' must be a non-empty list of texts, each with one"):
        load_config("cpu-small", ["method.bofa.templates=['a photo']"], method="bofa")
