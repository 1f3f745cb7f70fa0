"""MoE-Adapters' parts against numbers worked out by hand and against their naive forms
(docs/specs/moe-adapters.md); the learner contract is in tests/smoke/test_contract.py, its agreement with the
official code in docs/specs/moe-adapters.md §10."""

import math

import pytest
import torch
import torch.nn.functional as F

from seca.data.scenario import Task
from seca.engine.configure import method_config
from seca.engine.train import cosine_rate
from seca.errors import SecaError
from seca.methods import build_learner
from seca.methods.base import Batch, TaskData
from seca.methods.moe_adapters import Mixture, MoEAdaptersConfig


def _mixture(experts=2, top_k=2, width=2, bottleneck=1, **settings) -> Mixture:
    config = MoEAdaptersConfig(experts=experts, top_k=top_k, bottleneck=bottleneck, **settings)
    return Mixture(width, config, torch.Generator().manual_seed(0)).eval()


def test_an_expert_mixture_worked_by_hand():
    mixture = _mixture()
    with torch.no_grad():
        mixture.down.copy_(torch.tensor([[[1.0], [1.0]], [[1.0], [-1.0]]]))  # expert 0 reads x1 + x2, expert 1 x1 - x2
        mixture.up.copy_(torch.tensor([[[1.0, -1.0]], [[2.0, 2.0]]]))
        mixture.up_bias.copy_(torch.tensor([[0.0, 0.0], [0.5, 0.5]]))
    x = torch.tensor([[[1.0, 2.0], [3.0, 1.0]]])  # one sequence of two tokens
    # token 0: expert 0: relu(3) (1, -1) = (3, -3); expert 1: relu(-1) = 0, so the bias (.5, .5)
    # token 1: expert 0: relu(4) (1, -1) = (4, -4); expert 1: relu(2) (2, 2) + .5 = (4.5, 4.5)
    # a zero router: both gates .5; scale .1
    expected = 0.1 * 0.5 * torch.tensor([[[3.5, -2.5], [8.5, 0.5]]])
    assert torch.allclose(mixture(x), expected)
    # a router that prefers expert 1 by 1 on token 0's stream: gates (1, e) / (1 + e), for every token
    with torch.no_grad():
        mixture.router.copy_(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    g1 = math.e / (1 + math.e)
    expected = 0.1 * torch.tensor(
        [[[(1 - g1) * 3 + g1 * 0.5, (1 - g1) * -3 + g1 * 0.5], [(1 - g1) * 4 + g1 * 4.5, (1 - g1) * -4 + g1 * 4.5]]]
    )
    assert torch.allclose(mixture(x), expected)


def test_top_k_keeps_the_largest_gate_logits_and_softmaxes_only_them():
    mixture = _mixture(experts=3, top_k=2, width=3)
    with torch.no_grad():
        mixture.router.copy_(torch.eye(3))
    gates = mixture.gates(torch.tensor([[0.2, 0.5, -1.0], [2.0, 0.0, 1.0]]))
    top = torch.tensor([0.2, 0.5]).softmax(0)
    assert torch.allclose(gates[0], torch.tensor([top[0], top[1], 0.0]))
    assert torch.allclose(gates[1], torch.tensor([1 / (1 + math.exp(-1)), 0.0, 1 / (1 + math.e)]))
    one = _mixture(experts=3, top_k=1, width=3)
    with torch.no_grad():
        one.router.copy_(torch.eye(3))
    assert one.gates(torch.tensor([[0.2, 0.5, -1.0]])).tolist() == [[0.0, 1.0, 0.0]]


def test_gate_noise_is_scaled_by_the_softplus_of_the_noise_map_while_training_and_off_at_test():
    mixture = _mixture(experts=2, top_k=2, width=2)
    with torch.no_grad():
        mixture.noise.copy_(torch.tensor([[1.0, 0.0], [0.0, -2.0]]))
    first = torch.tensor([[1.0, 1.0]])
    assert torch.equal(mixture.gates(first), torch.tensor([[0.5, 0.5]]))  # eval: no noise, zero router
    mixture.train()
    torch.manual_seed(5)
    gates = mixture.gates(first)
    torch.manual_seed(5)
    noise = torch.randn(1, 2) * torch.tensor([math.log1p(math.e) + 0.01, math.log1p(math.exp(-2)) + 0.01])
    assert torch.allclose(gates, noise.softmax(dim=1))
    noisy_at_test = _mixture(test_gate_noise=True)
    with torch.no_grad():
        noisy_at_test.noise.copy_(mixture.noise)
    torch.manual_seed(5)
    assert torch.allclose(noisy_at_test.gates(first), gates)  # on at test too, as the official code is


def test_a_fresh_learner_is_zero_shot_clip_with_its_template(tiny_backbone):
    names = ["red star", "blue circle", "green square"]
    learner = build_learner(tiny_backbone, names, method_config(name="moe-adapters"), seed=1)
    task = Task(0, tuple(names), 0, 3)
    learner.begin_task(task, TaskData(task, 0, lambda: []))
    learner.end_task(task, TaskData(task, 0, lambda: []))
    learner.eval()
    images = torch.randn(4, 3, tiny_backbone.image_size, tiny_backbone.image_size)
    texts = F.normalize(tiny_backbone.encode_texts([f"a bad photo of a {n}." for n in names]), dim=-1)
    logits = tiny_backbone.logit_scale * F.normalize(tiny_backbone.encode_image(images), dim=-1) @ texts.T
    scores = learner.predict(images)
    torch.testing.assert_close(scores / scores.sum(1, keepdim=True), logits.softmax(1), rtol=1e-5, atol=1e-6)


def _trained(tiny_backbone, seed=2):
    """A learner whose experts and routers are all non-zero (so every part of every block acts)."""
    learner = build_learner(tiny_backbone, ["a", "b", "c", "d"], method_config(name="moe-adapters"), seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in learner.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return learner.eval()


def _naive_image(backbone, images, mixtures):
    """Every block on the whole sequence with open_clip's own parts, the mixture added after the MLP."""
    visual = backbone.model.visual
    x = visual._embeds(images)
    for index, block in enumerate(visual.transformer.resblocks):
        h = x + block.ls_1(block.attention(q_x=block.ln_1(x)))
        x = h + block.ls_2(block.mlp(block.ln_2(h))) + mixtures.adapter_for(index)(h)
    return visual.ln_post(x[:, 0]) @ visual.proj


def test_the_image_side_with_the_class_token_alone_in_the_last_block_equals_the_whole_sequence(tiny_backbone):
    learner = _trained(tiny_backbone)
    images = torch.randn(3, 3, tiny_backbone.image_size, tiny_backbone.image_size)
    with torch.no_grad():
        fast = tiny_backbone.encode_image(images, adapters=learner.image)
        naive = _naive_image(tiny_backbone, images, learner.image)
    assert fast.abs().max() > 0.1 and not torch.allclose(fast, tiny_backbone.encode_image(images), atol=1e-3)
    torch.testing.assert_close(fast, naive, rtol=1e-5, atol=1e-5)


def test_texts_cut_after_their_end_token_equal_the_whole_context(tiny_backbone):
    learner = _trained(tiny_backbone)
    tokens = tiny_backbone.tokenize(["a bad photo of a red star.", "a bad photo of a small blue circle."])
    text = tiny_backbone.text
    with torch.no_grad():
        cut = learner._encode(tokens[:, : text.useful_length(tokens)])
        whole = text.encode_embeddings(text.embed(tokens), tokens, adapters=learner.text)
        plain = text.encode_embeddings(text.embed(tokens), tokens)
    assert tokens.shape[1] > text.useful_length(tokens)
    assert not torch.allclose(whole, plain, atol=1e-3)  # the text experts act
    torch.testing.assert_close(cut, whole, rtol=1e-5, atol=1e-5)


def test_the_loss_is_the_cross_entropy_over_the_current_tasks_classes(tiny_backbone):
    learner = _trained(tiny_backbone)
    task0, task1 = Task(0, ("a", "b"), 0, 2), Task(1, ("c", "d"), 2, 4)
    for task in (task0, task1):
        learner.begin_task(task, TaskData(task, 0, lambda: []))
    images = torch.randn(3, 3, tiny_backbone.image_size, tiny_backbone.image_size)
    labels = torch.tensor([2, 3, 3])
    torch.manual_seed(0)
    losses = learner.training_step(Batch(images, labels, torch.arange(3)))
    learner.eval()  # the same forward without noise and dropout, by hand
    losses_eval = learner.training_step(Batch(images, labels, torch.arange(3)))
    with torch.no_grad():
        image = F.normalize(tiny_backbone.encode_image(images, adapters=learner.image), dim=-1)
        texts = F.normalize(learner._encode(learner._tokenize(["c", "d"])), dim=-1)
        expected = F.cross_entropy(tiny_backbone.logit_scale * image @ texts.T, torch.tensor([0, 1, 1]))
    assert set(losses) == {"ce", "loss"} and torch.isfinite(losses["loss"])
    torch.testing.assert_close(losses_eval["loss"].detach(), expected)


def test_more_experts_kept_than_there_are_is_refused_in_one_line(tiny_backbone):
    config = method_config(name="moe-adapters", moe_adapters=MoEAdaptersConfig(experts=2, top_k=3))
    with pytest.raises(SecaError, match=r"^moe-adapters: .*top_k 3 is more than its 2 experts; choose"):
        build_learner(tiny_backbone, ["a"], config)


def test_the_cosine_schedule_warms_up_linearly_then_falls_to_zero_at_the_last_step():
    assert cosine_rate(1e-3, 0, 40, 30) == pytest.approx(1e-3 / 30)
    assert cosine_rate(1e-3, 29, 40, 30) == pytest.approx(1e-3)
    assert cosine_rate(1e-3, 30, 40, 30) == pytest.approx(1e-3)  # the cosine's start
    assert cosine_rate(1e-3, 35, 40, 30) == pytest.approx(0.5e-3)  # halfway: (1 + cos(pi / 2)) / 2
    assert cosine_rate(1e-3, 40, 40, 30) == pytest.approx(0.0, abs=1e-18)
    assert cosine_rate(1e-3, 5, 10, 0) == pytest.approx(0.5e-3)  # no warm-up


def test_a_moe_adapters_run_follows_the_cosine_schedule_with_adamw(tmp_path):
    import json

    from seca.cli import main

    out = tmp_path / "moe"
    assert (
        main(
            [
                "run",
                "cpu-small",
                "--out",
                str(out),
                "--set",
                "method.name=moe-adapters",
                "--set",
                "train.epochs=1",
                "--set",
                "train.schedule=cosine",
                "--set",
                "train.warmup_steps=3",
                "--set",
                "train.optimizer=adamw",
                "--set",
                "train.log_every=1",
                "--set",
                "train.progress=false",
                "--set",
                "train.weight_decay=0",
            ]
        )
        == 0
    )
    steps = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    first = [r["lr"]["moe_adapters"] for r in steps if r.get("event") == "train_step" and r["task"] == 0]
    # 96 images of the first task, batch 16: 6 steps; warm-up 3 then a cosine over 3
    # (the rate logged is the one the step used)
    expected = [1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3, 0.75e-3, 0.25e-3]
    assert first == pytest.approx(expected)


def test_an_unsupported_setting_is_refused_before_any_work(tmp_path, capsys):
    from seca.cli import main

    out = tmp_path / "never"
    assert (
        main(
            [
                "run",
                "cpu-small",
                "--out",
                str(out),
                "--set",
                "method.name=moe-adapters",
                "--set",
                "method.moe_adapters.top_k=3",
            ]
        )
        != 0
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [
        "error: moe-adapters: method.moe_adapters.top_k 3 is more than its 2 experts; choose top_k "
        "between 1 and method.moe_adapters.experts"
    ]
    assert not out.exists()


def test_adamw_is_the_optimiser_when_asked():
    from seca.config import TrainConfig
    from seca.engine.train import make_optimizer

    class One(torch.nn.Module):
        name = "one"

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2))

        def parameter_groups(self):
            return [{"name": "w", "params": [self.w]}]

    adamw = make_optimizer(One(), TrainConfig(optimizer="adamw", weight_decay=0.5, lr={"w": 0.1}))
    adam = make_optimizer(One(), TrainConfig(weight_decay=0.5, lr={"w": 0.1}))
    assert type(adamw) is torch.optim.AdamW and type(adam) is torch.optim.Adam
    assert adamw.param_groups[0]["lr"] == 0.1 and adamw.param_groups[0]["weight_decay"] == 0.5


def test_the_texts_kept_for_inference_are_encoded_as_at_test_whatever_the_learners_mode(tiny_backbone):
    """Gate noise and dropout act while training; the texts a task's end keeps for inference have neither, even
    when the task ends with the learner still in training mode."""
    learner = _trained(tiny_backbone).train()
    task = Task(0, ("a", "b", "c", "d"), 0, 4)
    learner.begin_task(task, TaskData(task, 0, lambda: []))
    learner.end_task(task, TaskData(task, 0, lambda: []))
    assert learner.training
    learner.eval()
    with torch.no_grad():
        expected = F.normalize(learner._encode(learner._tokenize(["a", "b", "c", "d"])), dim=-1)
    torch.testing.assert_close(learner.text_features, expected)
