"""The backbone's hook points: adapters placed as spec §2 says, prompts that reproduce plain CLIP text."""

import math

import pytest
import torch
import torch.nn.functional as F

from seca.clip.backbone import load_backbone
from seca.clip.text import PromptedClassTexts
from seca.errors import SecaError
from seca.peft.adapter import Adapter, AdapterSet, resolve_blocks
from seca.peft.prompt import TaskPrompts


def _reference_block(block, x, adapter=None):
    """One residual attention block written out by hand from its weights."""

    def ln(mod, t):
        return F.layer_norm(t, mod.normalized_shape, mod.weight, mod.bias, mod.eps)

    attn = block.attn
    b, n, d = x.shape
    h = attn.num_heads
    q, k, v = (ln(block.ln_1, x) @ attn.in_proj_weight.T + attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(b, n, h, d // h).transpose(1, 2) for t in (q, k, v))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // h), dim=-1)
    attended = (weights @ v).transpose(1, 2).reshape(b, n, d)
    x = x + attended @ attn.out_proj.weight.T + attn.out_proj.bias
    hidden = F.gelu(ln(block.ln_2, x) @ block.mlp.c_fc.weight.T + block.mlp.c_fc.bias)
    mlp = hidden @ block.mlp.c_proj.weight.T + block.mlp.c_proj.bias
    side = 0 if adapter is None else torch.relu(x @ adapter.down.weight.T) @ adapter.up.weight.T * adapter.scale
    return x + mlp + side


def _reference_image_features(backbone, images, adapters):
    visual = backbone.model.visual
    x = visual._embeds(images)
    for i, block in enumerate(backbone.blocks):
        x = _reference_block(block, x, adapters.adapter_for(i) if adapters is not None else None)
    token = x[:, 0]
    ln = visual.ln_post
    return token, F.layer_norm(token, ln.normalized_shape, ln.weight, ln.bias, ln.eps) @ visual.proj


@pytest.fixture()
def images():
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_frozen_backbone_matches_open_clip(tiny_backbone, images):
    torch.testing.assert_close(tiny_backbone.encode_image(images), tiny_backbone.model.encode_image(images))
    assert not any(p.requires_grad for p in tiny_backbone.model.parameters())


def test_fresh_adapter_leaves_image_features_unchanged(tiny_backbone, images):
    adapters = tiny_backbone.new_adapters(range(tiny_backbone.num_blocks), 16, 0.1, 0.1)
    adapters.train()  # even with dropout active: the zero up-projection adds nothing
    torch.testing.assert_close(tiny_backbone.encode_image(images, adapters), tiny_backbone.encode_image(images))


def test_adapted_features_equal_a_hand_written_computation(tiny_backbone, images):
    torch.manual_seed(3)
    adapters = tiny_backbone.new_adapters([0, 1], 16, 0.1, 0.1).eval()
    for adapter in adapters.adapters.values():
        torch.nn.init.normal_(adapter.up.weight, std=0.5)
    token, projected = _reference_image_features(tiny_backbone, images, adapters)
    got = tiny_backbone.encode_image(images, adapters)
    torch.testing.assert_close(got, projected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        tiny_backbone.encode_image(images, adapters, output="class_token"), token, atol=1e-5, rtol=1e-4
    )
    torch.testing.assert_close(tiny_backbone.project_class_token(token), projected, atol=1e-5, rtol=1e-4)
    # and the adapter does change the feature
    assert (got - tiny_backbone.encode_image(images)).abs().max() > 1e-3


def test_adapters_only_in_chosen_blocks(tiny_backbone, images):
    torch.manual_seed(4)
    adapters = tiny_backbone.new_adapters([1], 16, 0.1, 0.0).eval()
    torch.nn.init.normal_(adapters.adapter_for(1).up.weight, std=0.5)
    assert adapters.adapter_for(0) is None
    _, expected = _reference_image_features(tiny_backbone, images, adapters)
    torch.testing.assert_close(tiny_backbone.encode_image(images, adapters), expected, atol=1e-5, rtol=1e-4)


def test_gradients_reach_adapters_not_clip(tiny_backbone, images):
    adapters = tiny_backbone.new_adapters([0, 1], 16, 0.1, 0.0)
    tiny_backbone.encode_image(images, adapters).sum().backward()
    assert all(p.grad is not None for p in adapters.parameters())
    assert all(p.grad is None for p in tiny_backbone.model.parameters())


def test_adapter_shape_and_init():
    adapter = Adapter(64, bottleneck=16, scale=0.1, dropout=0.1)
    assert adapter.down.weight.shape == (16, 64) and adapter.up.weight.shape == (64, 16)
    assert adapter.down.bias is None and adapter.up.bias is None
    assert torch.count_nonzero(adapter.up.weight) == 0
    bound = 1 / math.sqrt(64)  # kaiming_uniform(a=sqrt(5)) on fan_in 64
    assert adapter.down.weight.abs().max() <= bound
    x = torch.randn(5, 64)
    torch.nn.init.ones_(adapter.up.weight)
    adapter.eval()
    expected = torch.relu(x @ adapter.down.weight.T).sum(-1, keepdim=True).expand(-1, 64) * 0.1
    torch.testing.assert_close(adapter(x), expected)


def test_snapshot_is_frozen_and_independent():
    adapters = AdapterSet(8, [0, 2], bottleneck=4)
    snapshot = adapters.frozen_copy()
    torch.nn.init.ones_(adapters.adapter_for(0).up.weight)
    assert torch.count_nonzero(snapshot.adapter_for(0).up.weight) == 0
    assert not any(p.requires_grad for p in snapshot.parameters())


def test_resolve_blocks():
    assert resolve_blocks("all", 4) == (0, 1, 2, 3)
    assert resolve_blocks([3, -1, 0], 4) == (0, 3)
    with pytest.raises(SecaError, match="blocks 0..3"):
        resolve_blocks([4], 4)
    with pytest.raises(SecaError, match="'all' or a list"):
        resolve_blocks("some", 4)


def test_prompted_text_with_placeholder_embeddings_equals_open_clip(tiny_backbone):
    names = ["red star", "blue circle", "dark_green hexagon"]
    texts = PromptedClassTexts(tiny_backbone, names, length=8)
    ours = texts.encode(placeholder_prompt(texts))
    theirs = tiny_backbone.model.encode_text(
        tiny_backbone.tokenize(["X X X X X X X X " + n.replace("_", " ") for n in names])
    )
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_text_sequences_are_cut_after_the_end_token(tiny_backbone):
    texts = PromptedClassTexts(tiny_backbone, ["red star", "blue circle"], length=8)
    # start + 8 placeholders + 2 name tokens + end = 12 of the 16 positions
    assert texts.tokens.shape[1] == 12


def test_prompt_replaces_the_placeholders_and_gets_gradients(tiny_backbone):
    texts = PromptedClassTexts(tiny_backbone, ["red star", "blue circle", "pink heart"], length=8)
    prompts = TaskPrompts(tiny_backbone.text_width, length=8, init_std=0.02)
    prompt = prompts.add_task(torch.Generator().manual_seed(0))
    features = texts.encode(prompt, slice(1, 3))
    assert features.shape == (2, tiny_backbone.embed_dim)
    assert not torch.allclose(features, texts.encode(placeholder_prompt(texts), slice(1, 3)))
    features.sum().backward()
    assert prompt.grad is not None and prompt.grad.abs().sum() > 0


def test_task_prompts_freeze_earlier_prompts():
    prompts = TaskPrompts(16, length=8, init_std=0.02)
    first = prompts.add_task(torch.Generator().manual_seed(0))
    second = prompts.add_task(torch.Generator().manual_seed(1))
    assert not first.requires_grad and second.requires_grad and len(prompts) == 2
    assert second.shape == (8, 16)
    assert 0.01 < float(second.detach().std()) < 0.03


def test_template_texts_equal_open_clip(tiny_backbone):
    texts = ["a good photo of a red star.", "a good photo of a blue circle."]
    torch.testing.assert_close(
        tiny_backbone.encode_texts(texts),
        tiny_backbone.model.encode_text(tiny_backbone.tokenize(texts)),
        atol=1e-5,
        rtol=1e-4,
    )


def test_unknown_model_name():
    with pytest.raises(SecaError, match="unknown CLIP model 'ViT-B-61'.*did you mean"):
        load_backbone("ViT-B-61")


def test_missing_weights_file():
    with pytest.raises(SecaError, match="is not a file"):
        load_backbone("seca-test", "/nonexistent/weights.safetensors")
    with pytest.raises(SecaError, match="is not a file"):
        load_backbone("ViT-B-16", "/nonexistent/ViT-B-16.bin")


def test_unknown_pretrained_tag():
    with pytest.raises(SecaError, match="not a pretrained tag of ViT-B-16 .*openai"):
        load_backbone("ViT-B-16", "opneai")


def test_offline_download_says_how_to_pass_a_local_file():
    # conftest forces the Hugging Face hub offline, so the download fails at once
    with pytest.raises(SecaError, match="backbone.pretrained to the local file"):
        load_backbone("ViT-B-16", "openai")


def placeholder_prompt(texts):
    """The embeddings of the placeholder tokens themselves: with them as the prompt, ``encode`` is plain CLIP."""
    return texts.embeddings[0, 1 : 1 + texts.length].clone()
