"""SG-AKT equations (spec §3) against numbers worked out by hand."""

import math

import pytest
import torch

from seca.errors import SecaError
from seca.methods.seca_parts.sg_akt import AdapterPool, RelevanceAggregator, distillation_kl
from seca.peft.adapter import AdapterSet


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def identity_aggregator(form):
    """Width 2, W_S = W_V = I, LayerNorms with unit weight and zero bias (their defaults)."""
    agg = RelevanceAggregator(text_dim=2, vision_width=2, form=form)
    with torch.no_grad():
        agg.query.weight.copy_(torch.eye(2))
        agg.key.weight.copy_(torch.eye(2))
    return agg


# In two dimensions a layer norm maps [a, b] (a > b) to [1, -1]: LN([1, 0]) = [1, -1], LN([0, 1]) = [-1, 1].
# Teachers V1 = [1, 0] and V2 = [0, 1] give keys k1 = [1, -1], k2 = [-1, 1]. A semantic vector [1, 0]
# gives q = [1, -1]: scores q.k = (2, -2), times lambda = 1/sqrt(2) -> softmax = (sigmoid(2 sqrt 2), ...).
TEACHERS = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # [B=1, P=2, W=2]
SEMANTIC = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])  # [B=1, T=3, 2]: prompts favour V1, V1, V2


def test_reference_relevance_is_softmax_per_prompt_then_mean():
    _, weights = identity_aggregator("reference")(SEMANTIC, TEACHERS)
    high = sigmoid(2 * math.sqrt(2))  # 0.9442
    expected_first = (high + high + (1 - high)) / 3  # 0.6481
    assert weights[0].tolist() == pytest.approx([expected_first, 1 - expected_first], abs=1e-4)


def test_paper_relevance_is_mean_of_scores_then_softmax():
    _, weights = identity_aggregator("paper")(SEMANTIC, TEACHERS)
    mean_gap = (2 + 2 - 2) / 3 - (-2 - 2 + 2) / 3  # mean score of V1 minus that of V2 = 4/3
    expected_first = sigmoid(mean_gap / math.sqrt(2))  # 0.7197
    assert weights[0].tolist() == pytest.approx([expected_first, 1 - expected_first], abs=1e-4)


def test_aggregation_mixes_normalised_teachers_then_normalises():
    # Width 3: LN([1,0,-1]) = [1,0,-1]/sqrt(2/3) and LN([0,1,-1]) = [0,1,-1]/sqrt(2/3). With weight a on the first,
    # the mix is proportional to [a, 1-a, -1] (mean 0), whose layer norm is [a, 1-a, -1] / sqrt(var).
    agg = RelevanceAggregator(text_dim=3, vision_width=3, form="paper")
    with torch.no_grad():
        agg.query.weight.zero_()  # equal scores -> a = 1/2 for both members
    teachers = torch.tensor([[[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]]])
    out, weights = agg(torch.randn(1, 2, 3), teachers)
    assert weights[0].tolist() == pytest.approx([0.5, 0.5])
    a = 0.5
    mix = [a, 1 - a, -1.0]
    var = sum(v * v for v in mix) / 3
    assert out[0].tolist() == pytest.approx([v / math.sqrt(var + 1e-5) for v in mix], abs=1e-4)


def test_aggregator_shapes_and_gradients():
    agg = RelevanceAggregator(text_dim=4, vision_width=6)
    semantic = torch.randn(5, 3, 4, requires_grad=True)
    out, weights = agg(semantic, torch.randn(5, 2, 6))
    assert out.shape == (5, 6) and weights.shape == (5, 2)
    torch.testing.assert_close(weights.sum(-1), torch.ones(5))
    out.sum().backward()
    assert semantic.grad is not None and all(p.grad is not None for p in agg.parameters())


def test_kl_at_temperature_20_by_hand():
    # two classes with text t1 = [1, 0], t2 = [0, 1]; student s = [1, 0], teacher u = [0.6, 0.8]
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    student, teacher = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.6, 0.8]])
    q1 = sigmoid(20 * (1.0 - 0.0))  # student's probability of class 1
    p1 = sigmoid(20 * (0.6 - 0.8))  # teacher's
    expected = p1 * math.log(p1 / q1) + (1 - p1) * math.log((1 - p1) / (1 - q1))
    assert float(distillation_kl(student, teacher, text, 20.0)) == pytest.approx(expected, rel=1e-4)


def test_kl_is_zero_for_identical_features_and_only_the_student_gets_gradient():
    text = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    student = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1).requires_grad_()
    teacher = student.detach().clone().requires_grad_()
    loss = distillation_kl(student, teacher, text)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6)
    distillation_kl(student, torch.nn.functional.normalize(torch.randn(3, 8), dim=-1), text).backward()
    assert student.grad is not None and teacher.grad is None


def pool_of(n, size=3, eviction="lowest"):
    pool = AdapterPool(size=size, eviction=eviction, momentum=0.5)
    for task in range(n):
        pool.add(AdapterSet(4, [0], bottleneck=2), task)
    return pool


def test_utility_is_an_ema_reset_per_task_and_updated_only_when_full():
    pool = pool_of(2, size=3)
    pool.update_utility(torch.tensor([[0.9, 0.1]]))
    assert pool.utility.tolist() == pytest.approx([1 / 3] * 3)  # not full: unchanged
    pool.add(AdapterSet(4, [0], bottleneck=2), 2)
    weights = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])  # batch mean (0.4, 0.3, 0.3)
    pool.update_utility(weights)
    assert pool.utility.tolist() == pytest.approx([0.5 / 3 + 0.2, 0.5 / 3 + 0.15, 0.5 / 3 + 0.15])
    pool.update_utility(torch.tensor([[1.0, 0.0, 0.0]]))
    first = 0.5 * (0.5 / 3 + 0.2) + 0.5
    assert pool.utility[0].item() == pytest.approx(first)
    pool.reset_utility()
    assert pool.utility.tolist() == pytest.approx([1 / 3] * 3)


@pytest.mark.parametrize(
    "eviction, utilities, evicted, remaining",
    [
        ("lowest", [0.5, 0.2, 0.3], 1, [0, 2, 3]),
        ("highest", [0.5, 0.2, 0.3], 0, [1, 2, 3]),
        ("oldest", [0.1, 0.2, 0.7], 0, [1, 2, 3]),
        ("lowest", [1 / 3, 1 / 3, 1 / 3], 0, [1, 2, 3]),  # ties: the first (oldest) member
    ],
)
def test_eviction_rules(eviction, utilities, evicted, remaining):
    pool = pool_of(3, size=3, eviction=eviction)
    pool.utility.copy_(torch.tensor(utilities))
    assert pool.add(AdapterSet(4, [0], bottleneck=2), 3) == evicted
    assert pool.sources == remaining and len(pool) == 3


def test_pool_members_are_frozen_and_keep_dropout_off_unless_asked():
    pool = pool_of(2)
    pool.train()
    assert all(not m.training for m in pool.members)
    assert not any(p.requires_grad for p in pool.parameters())
    noisy = AdapterPool(size=2, dropout=True)
    noisy.add(AdapterSet(4, [0], bottleneck=2), 0)
    noisy.train()
    assert noisy.members[0].training
    noisy.eval()
    assert not noisy.members[0].training


def test_bad_switches_are_refused():
    with pytest.raises(SecaError, match="eviction"):
        AdapterPool(eviction="random")
    with pytest.raises(SecaError, match="relevance"):
        RelevanceAggregator(2, 2, form="other")
