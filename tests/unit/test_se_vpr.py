"""SE-VPR equations (spec §4) against numbers worked out by hand."""

import math

import pytest
import torch

from seca.methods.seca_parts.se_vpr import PrototypeRefiner, prototype_drift, squared_distances


def test_squared_distances():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    torch.testing.assert_close(squared_distances(x), torch.tensor([[0.0, 25, 1], [25, 0, 20], [1, 20, 0]]))


def refiner_with_identity_h(dim=3):
    refiner = PrototypeRefiner(dim)
    with torch.no_grad():
        refiner.project.weight.copy_(torch.eye(dim))
    return refiner


def test_gamma_defaults_to_twice_root_dim():
    assert PrototypeRefiner(512).gamma == pytest.approx(2 * math.sqrt(512))
    assert PrototypeRefiner(8, gamma=3.0).gamma == 3.0


def test_affinity_matrix_by_hand():
    # LN of [1,0,-1] is [1,0,-1]*c and of [0,1,-1] is [0,1,-1]*c with c = 1/sqrt(2/3): squared distance
    # between them c^2 * 2 = 3; between [1,0,-1] and [-1,0,1] it is c^2 * 8 = 12.
    text = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0], [-1.0, 0.0, 1.0]])
    refiner = refiner_with_identity_h()
    gamma = refiner.gamma  # 2 sqrt(3)
    d01, d02 = 3.0, 12.0
    d12 = (1.5) * ((0 + 1) ** 2 + (1 - 0) ** 2 + (-1 - 1) ** 2)  # c^2 * |[1,1,-2]|^2 = 1.5 * 6 = 9
    row0 = [math.exp(0), math.exp(-d01 / gamma), math.exp(-d02 / gamma)]
    expected0 = [v / sum(row0) for v in row0]
    affinity = refiner.affinity(text)
    assert affinity[0].tolist() == pytest.approx(expected0, abs=1e-4)
    row2 = [math.exp(-d02 / gamma), math.exp(-d12 / gamma), 1.0]
    assert affinity[2].tolist() == pytest.approx([v / sum(row2) for v in row2], abs=1e-4)
    torch.testing.assert_close(affinity.sum(-1), torch.ones(3))


def test_refined_prototypes_are_affinity_mixes_of_normalised_prototypes():
    text = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])
    refiner = refiner_with_identity_h()
    prototypes = torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]]) / math.sqrt(2)
    a = math.exp(-3.0 / refiner.gamma)
    w_self, w_other = 1 / (1 + a), a / (1 + a)
    # LN_C maps both prototypes to their centred, unit-variance forms; the mix of row 0 is proportional to
    # [w_self, w_other, -1]; LN_post normalises it; the final L2 normalisation gives a unit vector.
    mix = torch.tensor([w_self, w_other, -1.0])
    expected = torch.nn.functional.normalize(mix - mix.mean(), dim=0)
    refined = refiner(prototypes, text)
    torch.testing.assert_close(refined[0], expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(refined.norm(dim=-1), torch.ones(2))


def test_refiner_gradients_reach_projector_norms_and_text():
    refiner = PrototypeRefiner(6)
    text = torch.randn(4, 6, requires_grad=True)
    refiner(torch.randn(4, 6), text)[:, 0].sum().backward()
    assert text.grad is not None and refiner.project.weight.grad is not None
    assert torch.isfinite(refiner.project.weight.grad).all()


def test_prototype_drift_is_mean_one_minus_cosine():
    stored = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    current = torch.tensor([[1.0, 0.0], [1.0, 1.0]]) / torch.tensor([[1.0], [math.sqrt(2)]])
    assert float(prototype_drift(stored, current)) == pytest.approx((0 + (1 - 1 / math.sqrt(2))) / 2)
