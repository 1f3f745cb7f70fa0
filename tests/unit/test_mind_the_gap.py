"""Mind the Gap's parts against numbers worked out by hand and against their naive (merged-weight) forms
(docs/specs/mind-the-gap.md); the learner contract is in tests/smoke/test_contract.py, its agreement with the
official code in docs/specs/mind-the-gap.md §10."""

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seca.data.scenario import Task
from seca.engine.configure import method_config
from seca.engine.train import cosine_epoch_rate
from seca.errors import SecaError
from seca.methods import build_learner
from seca.methods.base import Batch, TaskData
from seca.methods.mind_the_gap import MindTheGapConfig, agent_scores, mixed_scores
from seca.peft.lora import KVLora


def _learner(backbone, names=("a", "b", "c", "d"), seed=2, active=True, **settings):
    """A learner whose LoRA updates are all non-zero (B drawn too, so every key and value changes)."""
    config = method_config(name="mind-the-gap", mind_the_gap=MindTheGapConfig(**settings))
    learner = build_learner(backbone, list(names), config, seed=seed)
    if active:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in learner.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return learner.eval()


def _empty(task):
    return TaskData(task, 0, lambda: [])


def test_the_key_and_value_update_worked_by_hand():
    # width 2, one head, rank 1, alpha 1 (scale 1); q = k = v = identity projections, no bias, identity out
    attn = nn.MultiheadAttention(2, 1, batch_first=True)
    lora = KVLora(2, 1, 1.0, torch.Generator().manual_seed(0))
    with torch.no_grad():
        attn.in_proj_weight.copy_(torch.eye(2).repeat(3, 1))
        attn.in_proj_bias.zero_()
        attn.out_proj.weight.copy_(torch.eye(2))
        attn.out_proj.bias.zero_()
        lora.k_down.copy_(torch.tensor([[1.0, 0.0]]))  # the key gains (x1, 0): k = (2 x1, x2)
        lora.k_up.copy_(torch.tensor([[1.0], [0.0]]))
        lora.v_down.copy_(torch.tensor([[0.0, 1.0]]))  # the value gains (0, 2 x2): v = (x1, 3 x2)
        lora.v_up.copy_(torch.tensor([[0.0], [2.0]]))
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # two tokens
    # k = [(2, 0), (0, 1)], v = [(1, 0), (0, 3)]; query 0 = (1, 0): scores (2, 0) / sqrt(2)
    w = torch.tensor([2 / math.sqrt(2), 0.0]).softmax(0)
    # query 1 = (0, 1): scores (0, 1) / sqrt(2)
    u = torch.tensor([0.0, 1 / math.sqrt(2)]).softmax(0)
    expected = torch.tensor([[[w[0], 3 * w[1]], [u[0], 3 * u[1]]]])
    torch.testing.assert_close(lora(attn, x, x), expected)
    # a causal mask: token 0 sees only itself
    mask = torch.tensor([[0.0, -math.inf], [0.0, 0.0]])
    torch.testing.assert_close(lora(attn, x, x, mask)[0, 0], torch.tensor([1.0, 0.0]))


def test_a_fresh_update_is_plain_attention_its_scale_is_alpha_over_rank_and_a_is_xavier_uniform():
    lora = KVLora(768, 8, 1.0, torch.Generator().manual_seed(0))
    assert lora.scale == 1 / 8
    assert lora.k_up.abs().max() == 0 and lora.v_up.abs().max() == 0
    bound = math.sqrt(6 / (768 + 8))
    assert 0.95 * bound < lora.k_down.abs().max() <= bound and lora.v_down.shape == (8, 768)
    attn = nn.MultiheadAttention(768, 12, batch_first=True).eval()
    x = torch.randn(2, 5, 768)
    with torch.no_grad():
        torch.testing.assert_close(lora(attn, x, x), attn(x, x, x, need_weights=False)[0], rtol=1e-5, atol=1e-5)


def _merged(backbone, learner):
    """A copy of the whole CLIP with every update merged into its packed q/k/v weights (the naive form)."""
    model = copy.deepcopy(backbone.model)
    for blocks, updates in (
        (model.visual.transformer.resblocks, learner.image),
        (model.transformer.resblocks, learner.text),
    ):
        for index, block in enumerate(blocks):
            lora, width = updates.attention_for(index), block.attn.embed_dim
            with torch.no_grad():
                block.attn.in_proj_weight[width : 2 * width] += lora.scale * lora.k_up @ lora.k_down
                block.attn.in_proj_weight[2 * width :] += lora.scale * lora.v_up @ lora.v_down
    return model


def test_both_encoders_equal_open_clip_with_the_updates_merged_into_its_weights(tiny_backbone):
    """The image side's class token alone in the last block, and texts cut after their end token, change
    nothing: the features are open_clip's own forward of the merged weights."""
    learner = _learner(tiny_backbone)
    merged = _merged(tiny_backbone, learner)
    images = torch.randn(3, 3, tiny_backbone.image_size, tiny_backbone.image_size)
    tokens = tiny_backbone.tokenize(["a good photo of a red star.", "a good photo of a small blue circle."])
    with torch.no_grad():
        ours_image = tiny_backbone.encode_image(images, adapters=learner.image)
        ours_text = learner._encode(tokens[:, : tiny_backbone.text.useful_length(tokens)])
        naive_image, naive_text = merged.encode_image(images), merged.encode_text(tokens)
        plain_image = tiny_backbone.encode_image(images)
    assert not torch.allclose(ours_image, plain_image, atol=1e-3)  # the updates act
    torch.testing.assert_close(ours_image, naive_image, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours_text, naive_text, rtol=1e-5, atol=1e-5)


def test_the_loss_is_the_cross_entropy_over_the_current_tasks_classes_and_trains_both_encoders(tiny_backbone):
    learner = _learner(tiny_backbone, active=False)  # as built: B = 0, so only the B factors get gradients
    task0, task1 = Task(0, ("a", "b"), 0, 2), Task(1, ("c", "d"), 2, 4)
    for task in (task0, task1):
        learner.begin_task(task, _empty(task))
    images = torch.randn(3, 3, tiny_backbone.image_size, tiny_backbone.image_size)
    labels = torch.tensor([2, 3, 3])
    loss = learner.training_step(Batch(images, labels, torch.arange(3)))["loss"]
    loss.backward()
    with torch.no_grad():
        image = F.normalize(tiny_backbone.encode_image(images), dim=-1)
        texts = F.normalize(tiny_backbone.encode_texts(["a good photo of a c.", "a good photo of a d."]), dim=-1)
        expected = F.cross_entropy(tiny_backbone.logit_scale * image @ texts.T, torch.tensor([0, 1, 1]))
    torch.testing.assert_close(loss.detach(), expected)
    for updates in (learner.image, learner.text):
        lora = updates.attention_for(0)
        assert lora.k_up.grad.abs().max() > 0 and lora.v_up.grad.abs().max() > 0
        assert lora.k_down.grad.abs().max() == 0  # d/dA of σ (hA^T) B^T is zero while B = 0
    seen = _learner(tiny_backbone, active=False, ce_scope="seen")
    for task in (task0, task1):
        seen.begin_task(task, _empty(task))
    wide = seen.training_step(Batch(images, labels, torch.arange(3)))["loss"]
    with torch.no_grad():
        texts = F.normalize(tiny_backbone.encode_texts([f"a good photo of a {n}." for n in "abcd"]), dim=-1)
        expected = F.cross_entropy(tiny_backbone.logit_scale * image @ texts.T, labels)
    torch.testing.assert_close(wide.detach(), expected)


def test_the_agents_scores_are_plain_cosines_with_its_rows():
    rows = torch.tensor([[2.0, 0.0], [0.0, 0.5]])
    assert agent_scores(torch.tensor([[0.6, 0.8]]), rows)[0].tolist() == pytest.approx([0.6, 0.8])


def test_the_test_scores_mix_a_softmax_of_the_text_probabilities_with_the_agents_softmax_one_to_four():
    text = torch.tensor([[0.0, math.log(3.0)]])  # text probabilities (1/4, 3/4)
    agent = torch.zeros(1, 2)  # agent softmax (1/2, 1/2)
    low, high = 1 / (1 + math.exp(0.5)), math.exp(0.5) / (1 + math.exp(0.5))  # softmax of (1/4, 3/4)
    double = mixed_scores(text, agent, MindTheGapConfig())
    assert double[0].tolist() == pytest.approx([(low + 2) / 5, (high + 2) / 5])
    single = mixed_scores(text, agent, MindTheGapConfig(text_branch="softmax"))
    assert single[0].tolist() == pytest.approx([(0.25 + 2) / 5, (0.75 + 2) / 5])
    assert mixed_scores(text, None, MindTheGapConfig())[0].tolist() == pytest.approx([0.25, 0.75])


def test_the_agent_starts_at_the_class_means_and_keeps_the_rows_of_earlier_tasks(tiny_backbone):
    learner = _learner(tiny_backbone, agent_epochs=0)
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    task = Task(0, ("a", "b"), 0, 2)
    means = learner._train_agent(task, torch.tensor([[0.5, 0.5], [0.6, 0.8]]), features, torch.tensor([0, 0, 1]))
    assert means.flatten().tolist() == pytest.approx([0.5, 0.5, 0.6, 0.8])  # not renormalised
    trained = _learner(tiny_backbone, agent_epochs=3, agent_batch_size=2)
    rows = trained._train_agent(task, means.clone(), features, torch.tensor([0, 0, 1]))
    assert not torch.allclose(rows, means)  # 3 epochs of 2 batches moved them
    # a whole learner over two tasks: one row per class, the first task's rows untouched by the second
    images = torch.randn(8, 3, tiny_backbone.image_size, tiny_backbone.image_size)
    full = _learner(tiny_backbone)
    task0, task1 = Task(0, ("a", "b"), 0, 2), Task(1, ("c", "d"), 2, 4)
    for task, labels in ((task0, [0, 1, 0, 1]), (task1, [2, 3, 2, 3])):
        batch = Batch(images[:4] if task is task0 else images[4:], torch.tensor(labels), torch.arange(4))
        data = TaskData(task, 4, lambda batch=batch: [batch])
        full.begin_task(task, data)
        full.end_task(task, data)
        if task is task0:
            first = full.agent.clone()
    assert full.agent.shape == (4, tiny_backbone.embed_dim)
    assert torch.equal(full.agent[:2], first)
    scores = full.predict(images)
    assert scores.shape == (8, 4) and torch.allclose(scores.sum(1), torch.ones(8))


def test_the_per_epoch_cosine_falls_to_a_hundredth_of_the_rate_as_torchs_cosine_annealing():
    assert cosine_epoch_rate(1e-3, 0, 2, 0.01) == pytest.approx(1e-3)
    assert cosine_epoch_rate(1e-3, 1, 2, 0.01) == pytest.approx(0.505e-3)  # (lr + lr/100) / 2
    assert cosine_epoch_rate(1e-3, 0, 1, 0.01) == pytest.approx(1e-3)
    optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1e-3)
    torch_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 10, eta_min=1e-5)
    for epoch in range(10):
        assert cosine_epoch_rate(1e-3, epoch, 10, 0.01) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12)
        optimizer.step()
        torch_schedule.step()


def test_a_run_anneals_the_rate_per_epoch(tmp_path):
    from seca.cli import main

    out = tmp_path / "mg"
    assert (
        main(
            [
                "run",
                "cpu-small",
                "--out",
                str(out),
                "--set",
                "method.name=mind-the-gap",
                "--set",
                "train.epochs=2",
                "--set",
                "train.schedule=cosine_epoch",
                "--set",
                "train.min_lr_ratio=0.01",
                "--set",
                "train.log_every=1",
                "--set",
                "train.progress=false",
                "--set",
                "data.shapes.train_per_class=8",
            ]
        )
        == 0
    )
    steps = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    rates = {
        (r["epoch"], round(r["lr"]["mind_the_gap"], 12))
        for r in steps
        if r.get("event") == "train_step" and r["task"] == 0
    }
    assert rates == {(0, 1e-3), (1, 0.505e-3)}


def test_a_mixture_without_weight_is_refused_in_one_line_before_any_work(tmp_path, capsys):
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
                "method.name=mind-the-gap",
                "--set",
                "method.mind_the_gap.mix_text=0",
                "--set",
                "method.mind_the_gap.mix_visual=0",
            ]
        )
        != 0
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: mind-the-gap: method.mind_the_gap.mix_text and mix_visual")
    assert not out.exists()


class _Drift:
    """A learner whose statistic takes the given values, one per call (before training, then after each epoch)."""

    num_seen = 3

    def __init__(self, values):
        self.values = iter(values)

    def gap_statistic(self, data):
        return next(self.values)


@pytest.mark.parametrize(
    "after, epochs, crossed",
    [
        ([19.6, 18.5, 17.9, 17.0], 2, True),  # 20 -> 17.9 is 10.5 %: the third epoch crosses; two came before it
        ([17.5, 16.0], 1, True),  # the first epoch crosses: at least 1
        ([19.0, 17.9], 1, True),  # the second crosses: 1 before it
        ([19.5, 19.2, 18.1], 3, False),  # none of 3 crosses (18.1 is 9.5 %): the probe's most
    ],
)
def test_the_epoch_probe_stops_at_the_first_epoch_that_moves_the_statistic_by_more_than_a_tenth(after, epochs, crossed):
    """The cases of the official stopping rule (epoch.py:241-246), whose outputs the official code printed."""
    from seca.methods.mind_the_gap import GapProbe

    probe = GapProbe(_Drift([20.0, *after]), None, len(after), 0.1)
    stopped = next((epoch for epoch in range(len(after)) if probe.after_epoch(epoch)), None)
    report = probe.report()
    assert (report["epochs"], report["crossed"]) == (epochs, crossed)
    assert stopped == (len(probe.after) - 1 if crossed else None)


def test_the_gap_statistic_is_the_mean_over_batches_of_each_images_mean_non_target_logit(tiny_backbone):
    learner = _learner(tiny_backbone, names=("a", "b", "c"))
    task = Task(0, ("a", "b", "c"), 0, 3)
    learner.begin_task(task, _empty(task))
    images = torch.randn(5, 3, tiny_backbone.image_size, tiny_backbone.image_size)
    labels = torch.tensor([0, 1, 2, 0, 1])
    data = TaskData(
        task,
        5,
        lambda: [Batch(images[:3], labels[:3], torch.arange(3)), Batch(images[3:], labels[3:], torch.arange(2))],
    )
    with torch.no_grad():
        features = F.normalize(tiny_backbone.encode_image(images, adapters=learner.image), dim=-1)
        texts = F.normalize(learner._encode(learner._tokenize(["a", "b", "c"])), dim=-1)
        logits = (tiny_backbone.logit_scale * features @ texts.T).tolist()
    per_image = [sum(row[c] for c in range(3) if c != y) / 2 for row, y in zip(logits, labels.tolist())]
    expected = (sum(per_image[:3]) / 3 + sum(per_image[3:]) / 2) / 2  # batch means, then their mean
    assert learner.gap_statistic(data) == pytest.approx(expected, rel=1e-5)


def test_probe_epochs_trains_the_first_task_and_prints_the_choice(capsys):
    from seca.cli import main

    assert (
        main(
            [
                "probe-epochs",
                "cpu-small",
                "--set",
                "method.name=mind-the-gap",
                "--set",
                "train.progress=false",
                "--set",
                "train.lr.lora=0.05",
                "--set",
                "method.mind_the_gap.probe_epochs=4",
                "--set",
                "data.shapes.train_per_class=8",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert "the epoch probe on task 1 (4 classes, 32 images), at most 4 epochs" in lines[0]
    rows = [line.split() for line in lines if line.split() and line.split()[0].isdigit()]
    assert rows[0][0] == "0" and 2 <= len(rows) <= 5  # before training, then one row per epoch trained
    assert lines[-1].startswith("epochs: ") and "--set train.epochs=" in lines[-1]


def test_probe_epochs_is_refused_in_one_line_for_a_method_without_a_probe(capsys):
    from seca.cli import main

    assert main(["probe-epochs", "cpu-small", "--set", "method.name=rapf"]) != 0
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: rapf has no epoch probe (mind-the-gap has one); its epochs are train.epochs"
    ]


def test_a_model_learned_without_the_agent_is_refused_in_one_line_by_a_learner_with_it(tiny_backbone):
    without = _learner(tiny_backbone, agent=False)
    task = Task(0, ("a", "b"), 0, 2)
    images = torch.randn(4, 3, tiny_backbone.image_size, tiny_backbone.image_size)
    data = TaskData(task, 4, lambda: [Batch(images, torch.tensor([0, 1, 0, 1]), torch.arange(4))])
    without.begin_task(task, data)
    without.end_task(task, data)
    assert without.agent.shape == (0, tiny_backbone.embed_dim)
    scores = without.predict(images)  # the text probabilities alone
    assert torch.allclose(scores.sum(1), torch.ones(4))
    with_agent = _learner(tiny_backbone, active=False)
    with pytest.raises(SecaError, match=r"^mind-the-gap: this model's visual agent has 0 rows for 2 classes"):
        with_agent.restore(without.state_dict(), without.structure())
