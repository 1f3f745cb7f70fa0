"""The SECA learner end to end on a tiny CLIP: which parts learn, the loss weights, caches, variants."""

import dataclasses

import pytest
import torch

from seca.config import TrainConfig
from seca.data.scenario import ClassIncrementalScenario
from seca.engine.configure import method_config
from seca.engine.train import make_optimizer
from seca.errors import SecaError
from seca.methods import Batch, TaskData, build_learner
from seca.methods.seca import SECAClassifierConfig
from seca.methods.seca_parts.teachers import TEACHERS, SGAKTConfig
from seca.methods.seca_parts.visual_heads import VISUAL_HEADS

CLASSES = ["red star", "blue star", "red circle", "blue circle", "green heart", "green star"]
PER_CLASS = 4


def make_method(name="seca", teacher="sg-akt", branches="hybrid", visual="se-vpr", **sg):
    return method_config(
        name=name,
        sg_akt=SGAKTConfig(teacher=teacher, **sg),
        classifier=SECAClassifierConfig(branches=branches, visual=visual),
    )


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.randn(len(CLASSES) * PER_CLASS, 3, 32, 32, generator=g)


def task_data(task, images):
    labels = torch.arange(task.start, task.stop).repeat_interleave(PER_CLASS)
    x = images[task.start * PER_CLASS : task.stop * PER_CLASS]

    def batches():
        for i in range(0, len(labels), 4):
            yield Batch(x[i : i + 4], labels[i : i + 4], torch.arange(i, min(i + 4, len(labels))))

    return TaskData(task, len(labels), batches)


def run(learner, images, tasks=3, steps=2, stop_before_last_end=False):
    """Train ``steps`` batches per task; returns (scenario, data of the last task)."""
    scenario = ClassIncrementalScenario(list(range(len(CLASSES))), 2, 2)
    data = None
    for task in list(scenario)[:tasks]:
        data = task_data(task, images)
        learner.begin_task(task, data)
        optimizer = make_optimizer(learner, TrainConfig(lr=learner.learning_rates()))
        learner.train()
        for batch, _ in zip(data.batches(), range(steps)):
            loss = learner.training_step(batch)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if stop_before_last_end and task.index == tasks - 1:
            break
        learner.end_task(task, data)
    learner.eval()
    return scenario, data


def new_learner(tiny_backbone, method, seed=0):
    torch.manual_seed(seed)
    return build_learner(tiny_backbone, CLASSES, method, seed=seed)


def test_in_task_3_only_current_adapter_prompt_sg_akt_and_se_vpr_learn(tiny_backbone, images):
    learner = new_learner(tiny_backbone, make_method())
    _, data = run(learner, images, tasks=3, stop_before_last_end=True)
    learner.train()
    learner.zero_grad(set_to_none=True)
    batch = next(iter(data.batches()))
    losses = learner.training_step(batch)
    assert {"ce_text", "ce_visual", "reg", "agg", "kd"} <= set(losses)
    losses["loss"].backward()

    def has_grad(params):
        return all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)

    assert has_grad(learner.adapters.parameters())
    assert has_grad([learner.prompts.current])
    assert has_grad(learner.teacher.aggregator.parameters())
    assert has_grad(learner.visual.refiner.parameters())
    assert all(p.grad is None for p in list(learner.prompts)[:-1])
    assert all(p.grad is None for p in learner.teacher.pool.parameters())
    assert all(p.grad is None for p in tiny_backbone.model.parameters())
    groups = {g["name"] for g in learner.parameter_groups()}
    assert groups == {"adapter", "prompt", "sg_akt", "se_vpr"}


def test_kd_weight_is_beta_times_task_index(tiny_backbone, images):
    learner = new_learner(tiny_backbone, make_method(beta=2.5))
    _, data = run(learner, images, tasks=3, stop_before_last_end=True)
    learner.eval()
    losses = learner.training_step(next(iter(data.batches())))
    others = sum(v for k, v in losses.items() if k not in ("loss", "kd"))
    expected = others + 2.5 * 2 * losses["kd"]
    assert float(losses["loss"].detach()) == pytest.approx(float(expected), rel=1e-5)


def test_no_distillation_in_the_first_task(tiny_backbone, images):
    learner = new_learner(tiny_backbone, make_method())
    scenario = ClassIncrementalScenario(list(range(6)), 2, 2)
    data = task_data(scenario[0], images)
    learner.begin_task(scenario[0], data)
    losses = learner.training_step(next(iter(data.batches())))
    assert set(losses) == {"loss", "ce_text", "ce_visual"}


def test_cached_teachers_equal_recomputed_ones(tiny_backbone, images):
    learner = new_learner(tiny_backbone, make_method())
    _, data = run(learner, images, tasks=2, stop_before_last_end=True)
    learner.eval()
    batch = next(iter(data.batches()))
    assert learner._teacher_cache is not None
    cached = learner.training_step(batch)
    learner._teacher_cache = None
    recomputed = learner.training_step(batch)
    for key in ("kd", "agg", "loss"):
        assert float(cached[key].detach()) == pytest.approx(float(recomputed[key].detach()), rel=1e-5, abs=1e-7)


def test_cached_inference_text_equals_per_batch_encoding(tiny_backbone, images):
    learner = new_learner(tiny_backbone, make_method())
    run(learner, images, tasks=2)
    x = images[:6]
    cached = learner.predict(x)
    learner.config = dataclasses.replace(
        learner.config, classifier=dataclasses.replace(learner.config.classifier, cache_text=False)
    )  # every prompt re-encoded for every batch
    torch.testing.assert_close(learner.predict(x), cached)


def test_seca_without_its_modules_is_h_peft(tiny_backbone, images):
    plain = new_learner(tiny_backbone, method_config(name="h-peft"))
    run(plain, images, tasks=2)
    stripped = new_learner(tiny_backbone, make_method(teacher="none", branches="text"))
    run(stripped, images, tasks=2)
    torch.testing.assert_close(stripped.predict(images[:8]), plain.predict(images[:8]))


def test_stored_prototypes_keep_old_classes_for_seca_and_are_recomputed_for_seca_plus_plus(tiny_backbone, images):
    seca = new_learner(tiny_backbone, make_method())
    run(seca, images, tasks=2)
    first = seca.stored_prototypes[:2].clone()
    run_more = ClassIncrementalScenario(list(range(6)), 2, 2)[2]
    data = task_data(run_more, images)
    seca.begin_task(run_more, data)
    seca.train()
    seca.training_step(next(iter(data.batches())))["loss"].backward()
    seca.end_task(run_more, data)
    assert seca.stored_prototypes.shape == (6, tiny_backbone.embed_dim)
    torch.testing.assert_close(seca.stored_prototypes[:2], first)

    plus = new_learner(tiny_backbone, make_method(name="seca++"))
    run(plus, images, tasks=2)
    assert len(plus.gaussians) == 4
    before = plus.stored_prototypes[:2].clone()
    task = ClassIncrementalScenario(list(range(6)), 2, 2)[2]
    data = task_data(task, images)
    plus.begin_task(task, data)
    plus.train()
    losses = plus.training_step(next(iter(data.batches())))
    assert "replay" in losses
    optimizer = make_optimizer(plus, TrainConfig(lr=plus.learning_rates()))
    losses["loss"].backward()
    optimizer.step()
    plus.end_task(task, data)
    assert not torch.allclose(plus.stored_prototypes[:2], before)


def test_pool_evicts_past_its_size(tiny_backbone, images):
    learner = new_learner(tiny_backbone, make_method(pool_size=2, eviction="oldest"))
    run(learner, images, tasks=3)
    assert len(learner.teacher.pool) == 2 and learner.teacher.pool.sources == [1, 2]


@pytest.mark.parametrize("teacher", TEACHERS.names())
def test_every_teacher_variant_trains_and_predicts(tiny_backbone, images, teacher):
    learner = new_learner(tiny_backbone, make_method(teacher=teacher))
    run(learner, images, tasks=2, steps=1)
    scores = learner.predict(images[:5])
    assert scores.shape == (5, 4) and torch.isfinite(scores).all()


@pytest.mark.parametrize(
    "branches, visual",
    [("text", "se-vpr"), ("visual", "se-vpr")] + [("hybrid", head) for head in VISUAL_HEADS.names()],
)
def test_every_classifier_variant_trains_and_predicts(tiny_backbone, images, branches, visual):
    learner = new_learner(tiny_backbone, make_method(branches=branches, visual=visual))
    run(learner, images, tasks=2, steps=1)
    scores = learner.predict(images[:5])
    assert scores.shape == (5, 4) and torch.isfinite(scores).all()
    if branches != "text":
        assert learner.stored_prototypes.shape == (4, tiny_backbone.embed_dim)
        torch.testing.assert_close(learner.stored_prototypes.norm(dim=-1), torch.ones(4))


def test_hybrid_score_is_the_weighted_sum_of_branches(tiny_backbone, images):
    learner = new_learner(tiny_backbone, make_method())
    run(learner, images, tasks=2, steps=1)
    features = learner.image_features(images[:3])
    hybrid = learner.scores_from_features(features)
    c = learner.config
    for branches in ("text", "visual"):
        learner.config = dataclasses.replace(c, classifier=dataclasses.replace(c.classifier, branches=branches))
        if branches == "text":
            text = learner.scores_from_features(features)
        else:
            visual = learner.scores_from_features(features)
    learner.config = c
    torch.testing.assert_close(hybrid, 0.5 * text + 0.5 * visual)


def test_unknown_switch_values_are_refused(tiny_backbone):
    with pytest.raises(SecaError, match="method.sg_akt.teacher must be one of"):
        new_learner(tiny_backbone, make_method(teacher="ema"))
    with pytest.raises(SecaError, match="method.classifier.visual must be one of"):
        new_learner(tiny_backbone, make_method(visual="knn"))


# ---- SG-AKT's diagnostic switches and the cross-entropies' scale ------------------------------------


def test_detach_query_cuts_l_agg_from_the_current_prompt(tiny_backbone, images):
    grads = {}
    for detach in (False, True):
        learner = new_learner(tiny_backbone, make_method(detach_query=detach))
        _, data = run(learner, images, tasks=3, stop_before_last_end=True)  # two teachers: weights that vary
        learner.eval()
        batch = next(iter(data.batches()))
        task, targets = learner.task, batch.labels - learner.task.start
        stem = learner.batch_stem(batch)
        text = learner.class_text(learner.prompts.current, 0, task.stop)
        current = text[task.start :]
        losses = {}
        learner.zero_grad(set_to_none=True)
        learner._teacher_feature(batch, stem, current, targets, losses)
        losses["agg"].backward()
        grads[detach] = learner.prompts.current.grad
        aggregator_grad = learner.teacher.aggregator.query.weight.grad
        assert aggregator_grad is not None and aggregator_grad.abs().sum() > 0  # the network still learns
    assert grads[False] is not None and grads[False].abs().sum() > 0
    assert grads[True] is None or grads[True].abs().sum() == 0


def test_without_agg_loss_the_relevance_network_keeps_its_initial_weights(tiny_backbone, images):
    learner = new_learner(tiny_backbone, make_method(agg_loss=False))
    initial = {k: v.clone() for k, v in learner.teacher.aggregator.state_dict().items()}
    _, data = run(learner, images, tasks=3, stop_before_last_end=True)
    learner.eval()
    losses = learner.training_step(next(iter(data.batches())))
    assert "agg" not in losses and "kd" in losses  # SG-AKT still distils, through the untrained network
    for key, value in learner.teacher.aggregator.state_dict().items():
        assert torch.equal(value, initial[key]), key


def test_reset_aggregator_starts_every_task_with_a_fresh_network(tiny_backbone, images):
    learners = [new_learner(tiny_backbone, make_method(reset_aggregator=True)) for _ in range(2)]
    kept = new_learner(tiny_backbone, make_method())
    for learner in (*learners, kept):
        scenario, _ = run(learner, images, tasks=2)
    trained = {k: v.clone() for k, v in kept.teacher.aggregator.state_dict().items()}
    task = scenario[2]
    for learner in (*learners, kept):
        learner.begin_task(task, task_data(task, images))
    fresh = learners[0].teacher.aggregator
    assert torch.equal(fresh.ln_out.weight, torch.ones_like(fresh.ln_out.weight))
    assert torch.equal(fresh.ln_text.bias, torch.zeros_like(fresh.ln_text.bias))
    bound = 1 / fresh.query.in_features**0.5
    assert fresh.query.weight.abs().max() <= bound and fresh.query.weight.std() > bound / 3  # nn.Linear's draw
    for key, value in learners[1].teacher.aggregator.state_dict().items():  # drawn from (seed, task): reproducible
        assert torch.equal(value, fresh.state_dict()[key]), key
    assert not torch.equal(fresh.key.weight, kept.teacher.aggregator.key.weight)
    for key, value in kept.teacher.aggregator.state_dict().items():  # without the switch, the network carries on
        assert torch.equal(value, trained[key]), key


def test_ce_scale_sets_the_training_cross_entropies_scale(tiny_backbone, images):
    import torch.nn.functional as F

    scenario = ClassIncrementalScenario(list(range(6)), 2, 2)
    for scale, expected_scale in ((None, tiny_backbone.logit_scale), (7.0, 7.0)):
        method = dataclasses.replace(make_method(), ce_scale=scale)
        learner = new_learner(tiny_backbone, method)
        data = task_data(scenario[0], images)
        learner.begin_task(scenario[0], data)
        learner.eval()  # no dropout: the features below are the step's own
        batch = next(iter(data.batches()))
        losses = learner.training_step(batch)
        features = learner.image_features(stem=learner.batch_stem(batch))
        text = learner.class_text(learner.prompts.current, 0, 2)
        expected = F.cross_entropy(expected_scale * features @ text.T, batch.labels)
        assert float(losses["ce_text"]) == pytest.approx(float(expected.detach()), rel=1e-5)
    with pytest.raises(SecaError, match="method.ce_scale must be above 0"):
        new_learner(tiny_backbone, dataclasses.replace(make_method(), ce_scale=0.0))
