"""PROOF's parts against numbers worked out by hand and invariants (docs/specs/proof.md); the learner contract is in
tests/smoke/test_contract.py, its agreement with the official code in docs/specs/proof.md §10."""

import math

import pytest
import torch
import torch.nn.functional as F

from seca.data.scenario import Task
from seca.engine.configure import method_config, resolve
from seca.errors import SecaError
from seca.methods.base import Batch, TaskData
from seca.methods.proof import Fusion, Proof, ProofConfig, clip_loss

NAMES = ["class 0", "class 1", "class 2", "class 3"]


class _Backbone:
    """CLIP's two encoders as tables: an image is its own 4-d embedding; a text "tK class c" is row c of template K's
    table; ``encoded`` counts the images passed through the image encoder."""

    embed_dim = 4
    device = torch.device("cpu")
    logit_scale = 100.0

    def __init__(self, tables):
        self.tables = tables
        self.encoded = 0

    def encode_image(self, images):
        self.encoded += len(images)
        return images

    def encode_texts(self, texts):
        rows = []
        for text in texts:
            template, _, number = text.rstrip(".").split()
            rows.append(self.tables[int(template[1:])][int(number)])
        return torch.stack(rows)


def _learner(templates=("t0 class {}.",), **settings):
    tables = [torch.eye(4) * 3 + 0.5, torch.eye(4).flip(0) * 2 + 0.25]
    config = method_config(name="proof", proof=ProofConfig(templates=templates, **settings))
    names = [name.split()[-1] for name in NAMES]  # "{}" takes the number: "t0 class 2."
    return Proof(_Backbone(tables), names, config, seed=0)


def _data(task, features, labels, embeddings=None):
    def batches():
        yield Batch(features, labels, torch.arange(len(labels)))

    return TaskData(task, len(labels), batches, embeddings)


FIRST = Task(0, ("0", "1"), 0, 2)
SECOND = Task(1, ("2", "3"), 2, 4)


def test_clip_loss_is_the_mean_of_both_directions_cross_entropy():
    image = torch.eye(2)
    # logits = scale * I: each row's cross-entropy is log(1 + e^-scale), the same in both directions
    assert clip_loss(image, torch.eye(2), torch.tensor(1.0)).item() == pytest.approx(math.log(1 + math.exp(-1)))
    # both texts are text 0: logits 2 * [[1, 1], [0, 0]]. By image: log 2 for each row. By text (the transpose
    # [[2, 0], [2, 0]]): log(1 + e^-2) for row 0, 2 + log(1 + e^-2) for row 1
    text = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    by_image, by_text = math.log(2), 1 + math.log(1 + math.exp(-2))
    assert clip_loss(image, text, torch.tensor(2.0)).item() == pytest.approx((by_image + by_text) / 2)


def test_fusion_without_values_is_the_layer_norm_of_its_tokens():
    fusion = Fusion(4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        fusion.value.zero_()
        fusion.out.weight.zero_()
        fusion.out.bias.zero_()
    image, shared = torch.randn(3, 4), torch.randn(5, 4)
    fused = fusion(image, shared, 0.0)
    tokens = torch.cat([image[:, None], shared.expand(3, 5, 4)], dim=1)
    assert torch.allclose(fused, F.layer_norm(tokens, (4,)), atol=1e-6)


def test_fusion_computes_the_shared_tokens_once_as_full_attention_over_each_sequence():
    fusion = Fusion(4, torch.Generator().manual_seed(1))
    image, shared = torch.randn(3, 4), torch.randn(5, 4)
    tokens = torch.cat([image[:, None], shared.expand(3, 5, 4)], dim=1)
    q, k, v = tokens @ fusion.query.T, tokens @ fusion.key.T, tokens @ fusion.value.T
    attention = torch.softmax(q @ k.transpose(1, 2) / 2.0, dim=2)  # sqrt(4) = 2
    expected = F.layer_norm(fusion.out(attention @ v) + tokens, (4,), fusion.norm.weight, fusion.norm.bias)
    assert torch.allclose(fusion(image, shared, 0.0), expected, atol=1e-6)


def test_prototypes_are_class_means_of_the_normalised_frozen_embeddings_of_the_tasks_own_images():
    learner = _learner()
    images = torch.tensor([[3.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 2.0, 0], [0, 0, 0, 5.0]])
    learner.begin_task(FIRST, _data(FIRST, images, torch.tensor([0, 0, 1, 1])))
    # normalised: e1, e2 (class 0), e3, e4 (class 1): means (.5, .5, 0, 0) and (0, 0, .5, .5), not renormalised
    expected = torch.tensor([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    assert torch.allclose(learner.prototypes, expected)


def test_each_task_trains_its_own_image_projection_and_prompt_and_every_text_projection():
    learner = _learner()
    learner.begin_task(FIRST, _data(FIRST, torch.eye(4)[:2], torch.tensor([0, 1])))
    learner.end_task(FIRST, _data(FIRST, torch.eye(4)[:2], torch.tensor([0, 1])))
    learner.begin_task(SECOND, _data(SECOND, torch.eye(4)[2:], torch.tensor([2, 3])))
    trains = {name for name, p in learner.named_parameters() if p.requires_grad}
    assert trains == {
        "image_projections.1.weight",
        "image_projections.1.bias",
        "text_projections.0.weight",
        "text_projections.0.bias",
        "text_projections.1.weight",
        "text_projections.1.bias",
        "prompts.1",
        "fusion.query",
        "fusion.key",
        "fusion.value",
        "fusion.out.weight",
        "fusion.out.bias",
        "fusion.norm.weight",
        "fusion.norm.bias",
        "logit_scale",
    }
    assert learner.prompts[1].shape == (3, 4) and len(learner.image_projections) == 2


def test_frozen_text_projections_and_frozen_decay_switches():
    frozen = _learner(train_old_text_projections=False)
    decayed = _learner(frozen_decay=True)
    for learner in (frozen, decayed):
        learner.begin_task(FIRST, _data(FIRST, torch.eye(4)[:2], torch.tensor([0, 1])))
        learner.begin_task(SECOND, _data(SECOND, torch.eye(4)[2:], torch.tensor([2, 3])))
    assert not frozen.text_projections[0].weight.requires_grad and frozen.text_projections[1].weight.requires_grad
    # frozen_decay: the old image projection and prompt stay in the optimiser with a gradient of exactly zero
    losses = decayed.training_step(Batch(torch.eye(4)[2:], torch.tensor([2, 3]), torch.arange(2)))
    losses["loss"].backward()
    for p in (decayed.image_projections[0].weight, decayed.image_projections[0].bias, decayed.prompts[0]):
        assert p.grad is not None and torch.equal(p.grad, torch.zeros_like(p))
    assert decayed.image_projections[1].weight.grad.abs().sum() > 0 and decayed.prompts[1].grad.abs().sum() > 0


def test_a_batch_with_exemplars_reads_the_task_and_the_memory_from_the_cache():
    learner = _learner()
    learner.begin_task(FIRST, _data(FIRST, torch.eye(4)[:2] * 2, torch.tensor([0, 1])))
    learner.end_task(FIRST, None)
    cached = torch.tensor([[0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    data = _data(SECOND, torch.zeros(2, 4), torch.tensor([2, 3]), embeddings=lambda: (cached, torch.tensor([2, 3])))
    data.memory = _data(SECOND, torch.tensor([[7.0, 0, 0, 0], [0, 9.0, 0, 0]]), torch.tensor([0, 1]))
    learner.begin_task(SECOND, data)
    learner.backbone.encoded = 0
    # the engine's joined set: positions 0, 1 the task's images, 2, 3 the exemplars (classes 0, 1). The images of
    # the rows are zeros except one exemplar whose position (5) is past the set: only it is encoded now
    batch = Batch(
        torch.tensor([[0.0] * 4, [0.0] * 4, [5.0, 0, 0, 0], [0.0] * 4]),
        torch.tensor([3, 1, 0, 2]),
        torch.tensor([1, 3, 5, 0]),
    )
    features = learner._batch_features(batch)
    assert torch.equal(features, torch.tensor([[0, 0, 0, 1.0], [0, 9.0, 0, 0], [5.0, 0, 0, 0], [0, 0, 1.0, 0]]))
    assert learner.backbone.encoded == 1
    losses = learner.training_step(batch)
    assert set(losses) == {"ce", "clip", "proto", "loss"} and torch.isfinite(losses["loss"])
    assert losses["loss"].item() == pytest.approx((losses["ce"] + losses["clip"] + losses["proto"]).item())
    # the prototypes stay those of each task's own images: the exemplars changed nothing
    assert torch.allclose(learner.prototypes, torch.eye(4))  # e1..e4: each class one normalised image


def test_a_test_averages_the_normalised_projected_texts_of_every_template():
    learner = _learner(templates=("t0 class {}.", "t1 class {}."))
    learner.begin_task(FIRST, _data(FIRST, torch.eye(4)[:2], torch.tensor([0, 1])))
    with torch.no_grad():
        learner.text_projections[0].weight.copy_(torch.eye(4))
        learner.text_projections[0].bias.zero_()
    # class 0: template 0 gives (3.5, .5, .5, .5), template 1 gives (.25, .25, .25, 2.25); each normalised, averaged,
    # normalised again
    t0 = F.normalize(torch.tensor([3.5, 0.5, 0.5, 0.5]), dim=0)
    t1 = F.normalize(torch.tensor([0.25, 0.25, 0.25, 2.25]), dim=0)
    assert torch.allclose(learner._test_parts()["texts"][0], F.normalize((t0 + t1) / 2, dim=0), atol=1e-6)


def test_scores_depend_on_the_batch_only_with_the_batch_mean():
    scores = {}
    for mean in ("batch", "image"):
        learner = _learner(fusion_mean=mean)
        learner.begin_task(FIRST, _data(FIRST, torch.eye(4)[:2] + 0.1, torch.tensor([0, 1])))
        learner.eval()
        frozen = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
        whole = learner.predict_frozen(frozen)
        alone = torch.cat([learner.predict_frozen(frozen[i : i + 1]) for i in range(5)])
        assert whole.shape == (5, 2) and (whole >= 0).all()
        scores[mean] = (whole, alone)
    assert torch.allclose(*scores["image"], atol=1e-6)
    assert not torch.allclose(*scores["batch"], atol=1e-6)


def test_a_test_image_enters_unnormalised_unless_asked():
    for normalize in (False, True):
        learner = _learner(normalize_test_image=normalize)
        learner.begin_task(FIRST, _data(FIRST, torch.eye(4)[:2], torch.tensor([0, 1])))
        frozen = torch.randn(3, 4, generator=torch.Generator().manual_seed(2))
        norms = learner._test_image(frozen).norm(dim=-1)
        projected = learner.project_images(frozen).norm(dim=-1)
        assert torch.allclose(norms, torch.ones(3) if normalize else projected)


def test_the_recipe_is_c3boxs_and_templates_are_checked():
    config = resolve({"method": {"name": "proof"}})
    train = config.train
    assert (train.optimizer, train.momentum, train.weight_decay, train.batch_size, train.epochs) == (
        "sgd",
        0.9,
        0.05,
        64,
        10,
    )
    assert (train.schedule, train.min_lr_ratio, train.memory_per_class, train.lr["proof"]) == (
        "cosine_epoch",
        0.0,
        20,
        1e-3,
    )
    with pytest.raises(SecaError, match="method.proof.templates"):
        resolve({"method": {"name": "proof", "proof": {"templates": ["no slot"]}}})
