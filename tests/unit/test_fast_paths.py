"""The fast paths of spec §7b compute what the plain computation computes.

Shared-prefix text encoding against whole sequences (features and prompt gradients), the incremental
inference text cache against a full re-encode, the frozen image stem and the class-token-only last block
against the whole forward, the stacked pool against one snapshot at a time.
"""

import dataclasses

import open_clip
import pytest
import torch
import torch.nn.functional as F

from seca.clip.backbone import ClipBackbone
from seca.clip.text import PromptedClassTexts
from seca.data.scenario import ClassIncrementalScenario
from seca.data.sets import packaged_table
from seca.engine.configure import method_config
from seca.errors import SecaError
from seca.methods import Batch, TaskData, build_learner
from seca.peft.adapter import StackedAdapters


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max()) if b.abs().max() > 0 else float((a - b).abs().max())


def random_prompts(count, width, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.Parameter(torch.randn(count, 8, width, generator=g) * 0.02)


def assert_prefix_sharing_is_exact(backbone, names):
    shared = PromptedClassTexts(backbone, names)
    whole = PromptedClassTexts(backbone, names, shared_prefix=False)
    assert shared.shared_prefix and not whole.shared_prefix
    prompts = random_prompts(3, backbone.text_width)
    fast, slow = shared.encode_prompts(prompts), whole.encode_prompts(prompts)
    assert fast.shape == (3, len(names), backbone.embed_dim)
    assert relative_difference(fast, slow) <= 1e-5
    weights = torch.randn(fast.shape, generator=torch.Generator().manual_seed(1))  # a loss that uses every feature
    (fast_grad,) = torch.autograd.grad((fast * weights).sum(), prompts)
    (slow_grad,) = torch.autograd.grad((slow * weights).sum(), prompts)
    assert fast_grad.abs().sum() > 0
    assert relative_difference(fast_grad, slow_grad) <= 1e-5


def test_shared_prefix_equals_whole_sequences_on_the_test_clip(tiny_backbone):
    assert_prefix_sharing_is_exact(tiny_backbone, ["red star", "blue circle", "dark_green hexagon", "a b c d e"])


@pytest.fixture(scope="module")
def vit_b_16_text_backbone():
    """ViT-B/16's text tower (12 layers, width 512, 77 tokens) with random weights, beside a tiny image tower."""
    text_cfg = open_clip.get_model_config("ViT-B-16")["text_cfg"]
    vision_cfg = {"image_size": 32, "patch_size": 16, "width": 64, "layers": 1, "head_width": 32}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.CLIP(embed_dim=512, vision_cfg=vision_cfg, text_cfg=text_cfg)
    return ClipBackbone(model, None, open_clip.get_tokenizer("ViT-B-16"), "ViT-B-16 text", None)


def test_shared_prefix_equals_whole_sequences_on_the_vit_b_16_text_tower(vit_b_16_text_backbone):
    names = packaged_table("class_names")["imagenet_r"]
    longest = sorted(names, key=len)[-6:]  # the longest ImageNet-R names and a few short ones
    assert_prefix_sharing_is_exact(vit_b_16_text_backbone, longest + names[:6])


def test_placeholders_through_the_shared_prefix_give_open_clip_text_features(vit_b_16_text_backbone):
    backbone = vit_b_16_text_backbone
    names = ["goldfish", "great white shark", "cocker_spaniels"]
    texts = PromptedClassTexts(backbone, names)
    theirs = backbone.model.encode_text(backbone.tokenize(["X X X X X X X X " + n.replace("_", " ") for n in names]))
    assert relative_difference(texts.encode(placeholder_prompt(texts)), theirs) <= 1e-5


def test_a_text_encoder_without_a_causal_mask_is_encoded_whole(tiny_backbone):
    model = tiny_backbone.model
    saved = model.attn_mask
    try:
        model.attn_mask = None
        backbone = dataclasses.replace(tiny_backbone)  # re-reads the text tower
        texts = PromptedClassTexts(backbone, ["red star", "blue circle"])
        assert not backbone.text.can_share_prefix and not texts.shared_prefix
        assert texts.tokens.shape[1] == backbone.text.context_length  # nothing can be cut either
    finally:
        model.attn_mask = saved


def test_rows_are_cut_at_their_own_end_token(tiny_backbone):
    texts = PromptedClassTexts(tiny_backbone, ["red star", "a b c d e f"])
    prompt = random_prompts(1, tiny_backbone.text_width)[0]
    alone = texts.encode(prompt, slice(0, 1))  # 12 positions instead of the 16 the long name needs
    together = texts.encode(prompt)[:1]
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-6)


# ---- the incremental inference text cache ----------------------------------------------------------

CLASSES = ["red star", "blue star", "red circle", "blue circle", "green heart", "green star"]


def tiny_task_data(task, images, per_class=2):
    labels = torch.arange(task.start, task.stop).repeat_interleave(per_class)
    x = images[: len(labels)]
    return TaskData(task, len(labels), lambda: iter([Batch(x, labels, torch.arange(len(labels)))]))


def learn_tasks(learner, images, tasks):
    for task in tasks:
        data = tiny_task_data(task, images)
        learner.begin_task(task, data)
        with torch.no_grad():  # move the new prompt and the adapters away from their initial values
            for p in learner.parameters():
                if p.requires_grad:
                    p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(task.index)))
        learner.end_task(task, data)


@pytest.fixture()
def images():
    return torch.randn(12, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_incremental_text_cache_equals_a_full_re_encode(tiny_backbone, images):
    learner = build_learner(tiny_backbone, CLASSES, method_config(name="h-peft"))
    learn_tasks(learner, images, ClassIncrementalScenario(list(range(6)), 2, 2))
    cached = learner.inference_text_features()
    full = torch.stack([F.normalize(learner.texts.encode(p.detach()), dim=-1) for p in learner.prompts])
    assert cached.shape == (3, 6, tiny_backbone.embed_dim)
    torch.testing.assert_close(cached, full, rtol=1e-5, atol=1e-6)
    learner.config = dataclasses.replace(
        learner.config, classifier=dataclasses.replace(learner.config.classifier, cache_text=False)
    )  # every prompt re-encoded per batch, as the reference
    torch.testing.assert_close(learner.inference_text_features(), cached, rtol=1e-5, atol=1e-6)


def test_text_cache_encodes_each_prompt_class_pair_once(tiny_backbone, images, monkeypatch):
    learner = build_learner(tiny_backbone, CLASSES, method_config())  # SECA: SG-AKT reads old prompts at the start
    scenario = ClassIncrementalScenario(list(range(6)), 2, 2)
    learn_tasks(learner, images, scenario[:2])
    encoded = []
    original = learner.texts.encode_prompts

    def counting(prompts, rows=None):
        out = original(prompts, rows)
        if not torch.is_grad_enabled():
            encoded.append(out.shape[0] * out.shape[1])
        return out

    monkeypatch.setattr(learner.texts, "encode_prompts", counting)
    learn_tasks(learner, images, scenario[2:])
    # task 3: 2 old prompts x 2 new classes at its start, then the finished prompt x all 6 classes
    assert sum(encoded) == 2 * 2 + 6
    learner.predict(images[:4])
    learner.predict(images[4:8])
    assert sum(encoded) == 10  # inference encodes nothing


def test_a_restored_model_rebuilds_the_text_cache_exactly(tiny_backbone, images):
    learner = build_learner(tiny_backbone, CLASSES, method_config())
    learn_tasks(learner, images, ClassIncrementalScenario(list(range(6)), 2, 2))
    restored = build_learner(tiny_backbone, CLASSES, method_config())
    restored.restore(learner.state_dict(), learner.structure())
    assert torch.equal(restored.inference_text_features(), learner.inference_text_features())


# ---- the image side ---------------------------------------------------------------------------------


def trained_adapters(backbone, blocks=None, seed=0):
    adapters = backbone.new_adapters(range(backbone.num_blocks) if blocks is None else blocks, 16, 0.1, 0.1)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapters.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return adapters


def whole_forward(backbone, images, adapters):
    """The image encoder over every token of every block, written out with open_clip's own blocks."""
    x = backbone.model.visual._embeds(images)
    for index, block in enumerate(backbone.blocks):
        adapter = adapters.adapter_for(index) if adapters is not None else None
        if adapter is None:
            x = block(x)
            continue
        x = x + block.ls_1(block.attention(q_x=block.ln_1(x)))
        x = x + block.ls_2(block.mlp(block.ln_2(x))) + adapter(x)
    return x[:, 0]


@pytest.mark.parametrize("blocks", [None, [1]])
def test_continuing_from_the_frozen_stem_is_bit_identical(tiny_backbone, images, blocks):
    adapters = trained_adapters(tiny_backbone, blocks)
    stem = tiny_backbone.stem(images, adapters.first_block)
    assert stem.block == adapters.first_block and len(stem) == len(images)
    torch.manual_seed(3)
    adapters.train()
    from_images = tiny_backbone.encode_image(images, adapters)
    torch.manual_seed(3)
    assert torch.equal(tiny_backbone.encode_image(stem=stem, adapters=adapters), from_images)
    assert torch.equal(tiny_backbone.encode_image(stem=stem), tiny_backbone.encode_image(images))  # plain CLIP


def test_the_last_block_on_the_class_token_alone_equals_the_whole_block(tiny_backbone, images):
    adapters = trained_adapters(tiny_backbone)
    adapters.train()  # dropout on: the class token's mask must be the one the whole sequence draws
    torch.manual_seed(7)
    expected = whole_forward(tiny_backbone, images, adapters)
    after_expected = torch.rand(4)
    torch.manual_seed(7)
    got = tiny_backbone.encode_image(images, adapters, output="class_token")
    assert torch.equal(torch.rand(4), after_expected)  # the same random draws, so later ones match too
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_stacked_snapshots_equal_one_snapshot_at_a_time(tiny_backbone, images):
    members = [trained_adapters(tiny_backbone, seed=s).eval() for s in range(3)]
    stem = tiny_backbone.stem(images, 0)
    stacked = tiny_backbone.encode_image(stem=stem.repeat(3), adapters=StackedAdapters(members), output="class_token")
    for m, member in enumerate(members):
        torch.testing.assert_close(
            stacked.view(3, len(images), -1)[m], whole_forward(tiny_backbone, images, member), rtol=1e-5, atol=1e-6
        )


def two_task_learner(backbone, images, **method):
    torch.manual_seed(0)
    learner = build_learner(backbone, CLASSES, method_config(**method))
    scenario = ClassIncrementalScenario(list(range(6)), 2, 2)
    learn_tasks(learner, images, scenario[:1])
    data = tiny_task_data(scenario[1], images)
    learner.begin_task(scenario[1], data)
    return learner, next(iter(data.batches()))


def test_a_training_step_on_kept_stems_equals_one_on_the_images(tiny_backbone, images):
    kept, batch = two_task_learner(tiny_backbone, images)
    recomputed, _ = two_task_learner(tiny_backbone, images, stem_cache_gb=0.0)
    assert kept._stems is not None and recomputed._stems is None
    results = []
    for learner in (kept, recomputed):
        learner.train()
        torch.manual_seed(11)
        losses = learner.training_step(batch)
        losses["loss"].backward()
        results.append((losses, {n: p.grad.clone() for n, p in learner.named_parameters() if p.grad is not None}))
    (kept_losses, kept_grads), (losses, grads) = results
    assert kept_losses.keys() == losses.keys() and kept_grads.keys() == grads.keys() and "kd" in losses
    for key in losses:
        assert torch.equal(kept_losses[key], losses[key]), key
    for name in grads:
        assert torch.equal(kept_grads[name], grads[name]), name


def test_cached_teachers_are_stacked_snapshots(tiny_backbone, images):
    learner, batch = two_task_learner(
        tiny_backbone, images, sg_akt=dataclasses.replace(method_config().sg_akt, teacher="avg")
    )
    stem = tiny_backbone.stem(batch.images, 0)
    one_by_one = torch.stack(
        [whole_forward(tiny_backbone, batch.images, m) for m in learner.teacher.pool.members], dim=1
    )
    torch.testing.assert_close(learner._teacher_cache, F.normalize(one_by_one, dim=-1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(learner.teacher_inputs(stem), learner._teacher_cache)


def test_stems_over_the_memory_budget_are_recomputed_each_step(tiny_backbone, images):
    learner, _ = two_task_learner(tiny_backbone, images, stem_cache_gb=1e-9)
    assert learner._stems is None
    assert tiny_backbone.stem_bytes(0, 4) == 2 * 4 * tiny_backbone.image_tokens * tiny_backbone.vision_width * 4


def test_a_negative_stem_budget_is_refused(tiny_backbone):
    with pytest.raises(SecaError, match="method.stem_cache_gb must be 0 or more"):
        build_learner(tiny_backbone, CLASSES, method_config(stem_cache_gb=-1.0))


def test_one_frozen_prototype_per_seen_class(tiny_backbone, images):
    learner, _ = two_task_learner(tiny_backbone, images)
    assert learner.raw_prototypes.shape == (4, tiny_backbone.embed_dim)


def placeholder_prompt(texts):
    """The embeddings of the placeholder tokens themselves: with them as the prompt, ``encode`` is plain CLIP."""
    return texts.embeddings[0, 1 : 1 + texts.length].clone()
