"""RAPF's parts against numbers worked out by hand (docs/specs/rapf.md); the learner contract is in
tests/smoke/test_contract.py, its agreement with the official code in docs/specs/rapf.md §10."""

import math

import pytest
import torch

from seca.data.scenario import Task
from seca.engine.configure import method_config
from seca.methods.base import Batch, TaskData
from seca.methods.rapf import RAPF, fuse, hard_pairs, hinge, shrink_covariance


def test_shrinkage_adds_the_mean_diagonal_and_the_mean_nonzero_off_diagonal_entry():
    cov = torch.tensor([[2.0, 1.0, 0.0], [1.0, 4.0, 0.5], [0.0, 0.5, 6.0]], dtype=torch.float64)
    # mean diagonal (2 + 4 + 6) / 3 = 4; non-zero off-diagonal entries 1, 1, .5, .5: mean .75 (the zeros do not count)
    expected = torch.tensor([[6.0, 1.75, 0.75], [1.75, 8.0, 1.25], [0.75, 1.25, 10.0]], dtype=torch.float64)
    assert torch.equal(shrink_covariance(cov), expected)


def test_hard_pairs_are_old_new_pairs_nearer_than_the_threshold_with_global_labels():
    old = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    angle = math.radians(30)  # |t_a - t_b| = 2 sin(15°) = 0.518 for 30° apart
    new = torch.tensor([[math.cos(angle), math.sin(angle)], [-1.0, 0.0]])
    assert hard_pairs(old, new, 0.55, first_new=2).tolist() == [[0, 2]]
    assert hard_pairs(old, new, 0.50, first_new=2).tolist() == []
    assert sorted(hard_pairs(old, new, 1.5, first_new=2).tolist()) == [[0, 2], [1, 2], [1, 3]]  # |(0,1)-(-1,0)| = 1.41


def test_hinge_pushes_a_sample_nearer_the_new_class_text_than_its_own():
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # class 0 (old), class 1 (new)
    pairs = torch.tensor([[0, 1]])
    near_old = torch.tensor([[2.0, 0.0]])  # cos to new 0, to old 1: max(0, 0 - 1 + .1) = 0
    between = torch.tensor([[1.0, 1.0]])  # cos .7071 to each: max(0, .1) = .1
    near_new = torch.tensor([[0.0, 3.0]])  # 1 - 0 + .1 = 1.1
    assert hinge(near_old, text, pairs, 0.1).item() == pytest.approx(0.0)
    assert hinge(between, text, pairs, 0.1).item() == pytest.approx(0.1)
    assert hinge(torch.cat([near_old, between, near_new]), text, pairs, 0.1).item() == pytest.approx(1.2 / 3)


def test_fusion_keeps_the_largest_change_in_full_and_the_rest_from_the_bias():
    # W_old = diag(2, 1): U = I, S = (2, 1), V = I, so P = W_new and B = W_old; |P - B| = [[0, .4], [.2, .8]]
    old = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    new = torch.tensor([[2.0, 0.4], [0.2, 1.8]])
    # mask = min(|P - B| / .8 + .5, 1) = [[.5, 1], [.75, 1]]; W = mask P + (1 - mask) B
    expected = torch.tensor([[2.0, 0.4], [0.15, 1.8]], dtype=torch.float64)
    assert torch.allclose(fuse(old, new, 0.5), expected, atol=1e-12)
    assert torch.allclose(fuse(old, new, 1.0), new.double(), atol=1e-12)  # a bias of 1 keeps the whole update


def test_fusion_turns_with_a_rotation_of_both_weights():
    """Rotating both weights rotates the old singular basis with them, and so the result: no dependence on the
    basis (or the signs) the SVD returns beyond that."""
    torch.manual_seed(0)
    old, new = torch.randn(6, 6), torch.randn(6, 6)
    rotation, _ = torch.linalg.qr(torch.randn(6, 6))
    assert torch.allclose(
        fuse(rotation @ old, rotation @ new, 0.7), rotation.double() @ fuse(old, new, 0.7), atol=1e-10
    )


class _Backbone:
    """CLIP's two embeddings as fixed tables: images are their own 4-d embeddings."""

    embed_dim = 4
    device = torch.device("cpu")
    logit_scale = 100.0

    def encode_image(self, images):
        return images

    def encode_texts(self, texts):
        return torch.eye(4)[[int(t.split()[-1].rstrip(".")) for t in texts]] + 0.1


def _task_data(task, images, labels):
    def batches():
        yield Batch(images, labels, torch.arange(len(labels)))

    return TaskData(task, len(labels), batches)


def test_a_task_replays_old_classes_in_turn_and_stores_their_statistics():
    config = method_config(name="rapf")
    learner = RAPF(_Backbone(), ["class 0", "class 1", "class 2", "class 3"], config, seed=0)
    first = Task(0, ("class 0", "class 1"), 0, 2)
    images = torch.tensor([[1.0, 0, 0, 0], [1.2, 0, 0, 0], [0, 1.0, 0, 0], [0, 0.8, 0, 0]])
    data = _task_data(first, images, torch.tensor([0, 0, 1, 1]))
    learner.begin_task(first, data)
    losses = learner.training_step(Batch(images, torch.tensor([0, 0, 1, 1]), torch.arange(4)))
    assert set(losses) == {"ce", "loss"}  # the first task: real images only
    learner.end_task(first, data)
    assert torch.allclose(learner.gaussians.means, torch.tensor([[1.1, 0, 0, 0], [0, 0.9, 0, 0]], dtype=torch.float64))
    # class 0's covariance: var of (1, 1.2) = .02 in the first coordinate, plus 1e-4 on the diagonal
    covariance = learner.gaussians.cholesky[0] @ learner.gaussians.cholesky[0].T
    assert covariance[0, 0].item() == pytest.approx(0.02 + 1e-4) and covariance[1, 1].item() == pytest.approx(1e-4)

    second = Task(1, ("class 2", "class 3"), 2, 4)
    new = torch.tensor([[0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    learner.begin_task(second, _task_data(second, new, torch.tensor([2, 3])))
    losses = learner.training_step(Batch(new, torch.tensor([2, 3]), torch.arange(2)))  # batch 0: shuffles, turn 0
    assert set(losses) == {"ce", "loss"}  # no text of the new classes is near an old one's: no hinge
    turns = [learner._replayed_classes().tolist() for _ in range(2)]
    # 2 old classes, 5 per batch: batch b replays positions 5b .. 5b + 4 of the shuffled order, wrapping around
    order = learner._order.tolist()
    assert sorted(order) == [0, 1]
    assert turns == [[order[p % 2] for p in range(b * 5, b * 5 + 5)] for b in (1, 2)]
    draws, labels = learner._draw(torch.tensor([1, 0]), 10)
    assert draws.shape == (20, 4) and labels.tolist() == [1] * 10 + [0] * 10


def test_a_rapf_run_ends_with_a_saved_model(tmp_path):
    from seca.cli import main

    out = tmp_path / "rapf"
    assert main(["run", "cpu-small", "--out", str(out), "--set", "method.name=rapf", "--set", "train.epochs=1"]) == 0
    assert (out / "model.safetensors").is_file()
