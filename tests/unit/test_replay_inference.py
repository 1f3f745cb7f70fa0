"""Gaussian statistics of SECA++ (spec §7) and the hybrid inference score (spec §6), by hand."""

import math

import pytest
import torch

from seca.errors import SecaError
from seca.methods._scores import stable_exp
from seca.methods._statistics import ClassGaussians, class_statistics
from seca.methods.h_peft import text_branch


def test_class_statistics_by_hand():
    features = torch.tensor([[1.0, 2.0], [3.0, 2.0], [0.0, 0.0], [2.0, 4.0], [4.0, 8.0]])
    labels = torch.tensor([5, 5, 7, 7, 7, 8])
    features = torch.cat([features, torch.tensor([[9.0, 9.0]])])
    with pytest.raises(SecaError, match=r"no training image of class label\(s\) \[6\]"):
        class_statistics(features, labels, range(5, 9))
    keep = labels != 8
    means, covs = class_statistics(
        torch.cat([features[keep], features[~keep]]), torch.tensor([5, 5, 7, 7, 7, 6]), range(5, 8), eps=1e-4
    )
    assert means.tolist() == [[2.0, 2.0], [9.0, 9.0], [2.0, 4.0]]
    # class 5: x deviations (-1, 1), y (0, 0) -> var_x = 2/1 = 2 ; class 7: x (-2,0,2), y (-4,0,4);
    # class 6 has one image: eps * I
    expected = torch.tensor(
        [[[2.0001, 0.0], [0.0, 0.0001]], [[0.0001, 0.0], [0.0, 0.0001]], [[4.0001, 8.0], [8.0, 16.0001]]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(covs, expected)
    assert means.dtype == covs.dtype == torch.float64


def test_gaussian_draws_follow_the_stored_statistics():
    gaussians = ClassGaussians(2)
    gaussians.add(
        torch.tensor([[1.0, -1.0], [5.0, 5.0]]), torch.tensor([[[1.0, 0.5], [0.5, 2.0]], [[0.1, 0.0], [0.0, 0.1]]])
    )
    draws, labels = gaussians.sample(20000, torch.Generator().manual_seed(0))
    assert draws.shape == (40000, 2) and labels.tolist()[:2] == [0, 0] and labels.tolist()[-1] == 1
    first = draws[labels == 0]
    torch.testing.assert_close(first.mean(0), torch.tensor([1.0, -1.0], dtype=torch.float64), atol=0.05, rtol=0)
    torch.testing.assert_close(
        torch.cov(first.T), torch.tensor([[1.0, 0.5], [0.5, 2.0]], dtype=torch.float64), atol=0.06, rtol=0
    )
    only_first, only_labels = gaussians.sample(3, torch.Generator().manual_seed(0), num_classes=1)
    assert only_first.shape == (3, 2) and only_labels.tolist() == [0, 0, 0]


def test_draws_are_reproducible():
    gaussians = ClassGaussians(3)
    gaussians.add(torch.zeros(2, 3), torch.eye(3).repeat(2, 1, 1))
    a, _ = gaussians.sample(4, torch.Generator().manual_seed(1))
    b, _ = gaussians.sample(4, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_text_branch_by_hand():
    # one image f = [1, 0]; two prompts, two classes. cos values per (prompt, class): [[1, 0], [0.6, 0.8]]
    f = torch.tensor([[1.0, 0.0]])
    text = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.6, 0.8], [0.8, 0.6]]])
    # logits 20*cos: [[20, 0], [12, 16]]; max 20; exp(l - 20) averaged over the prompts
    expected = [(1 + math.exp(-8)) / 2, (math.exp(-20) + math.exp(-4)) / 2]
    assert text_branch(f, text, 20.0)[0].tolist() == pytest.approx(expected, rel=1e-5)


def test_hybrid_weights_follow_batch_maxima_only_in_batch_mode():
    logits = torch.tensor([[2.0, 1.0], [10.0, 0.0]])
    per_image = stable_exp(logits, "image")
    assert per_image[0].tolist() == pytest.approx([1.0, math.exp(-1)])
    per_batch = stable_exp(logits, "batch")  # one maximum (10) for the whole batch
    assert per_batch[0].tolist() == pytest.approx([math.exp(-8), math.exp(-9)])
    # per image, an image's scores do not depend on the rest of its batch
    assert stable_exp(logits[:1], "image")[0].tolist() == per_image[0].tolist()
