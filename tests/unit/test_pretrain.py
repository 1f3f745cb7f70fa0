"""The offline world's pretrained CLIP: captions, the multi-positive loss, a deterministic build, the cache."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from seca.cli import main
from seca.clip.backbone import load_backbone
from seca.data.shapes import COLORS, SHAPES, ShapesWorld
from seca.errors import SecaError
from seca.offline import pretrain
from seca.offline.pretrain import (
    CAPTION_TEMPLATES,
    PretrainRecipe,
    multi_positive_contrastive_loss,
    pretrain_shapes_clip,
    recipe_tag,
    sample_captions,
    shapes_clip_path,
    sidecar_path,
    zero_shot_accuracy,
)

TINY_RECIPE = PretrainRecipe(pool_per_class=2, warmup_steps=1)


def tiny_build(out_path, steps=2, batch_size=8, seed=0, progress=True, **_):
    """A few-second stand-in for the real build: the right architecture, hardly any training."""
    return pretrain_shapes_clip(
        out_path, steps=steps, batch_size=batch_size, seed=seed, progress=False, recipe=TINY_RECIPE, eval_per_class=1
    )


def test_every_caption_names_the_colour_and_the_shape_and_fits_the_context(tiny_backbone):
    world = ShapesWorld()
    for color in COLORS:
        for shape in SHAPES:
            captions = [t.format(color=color, shape=shape) for t in CAPTION_TEMPLATES]
            assert len(set(captions)) == len(captions) >= 10
            for caption in captions:
                words = caption.replace(".", " ").split()
                assert color in words and shape in words, caption
    labels = list(range(world.num_classes))
    sampled = sample_captions(world, labels, np.random.default_rng(0))
    assert sampled == sample_captions(world, labels, np.random.default_rng(0))
    assert len(set(sampled)) > 50  # templates vary between classes
    for label, caption in zip(labels, sampled):
        color, shape = world.color_and_shape(label)
        assert color in caption and shape in caption
    longest = max(
        (
            c
            for color in COLORS
            for shape in SHAPES
            for c in [t.format(color=color, shape=shape) for t in CAPTION_TEMPLATES]
        ),
        key=lambda c: len(tiny_backbone.tokenizer.encode(c)),
    )
    assert len(tiny_backbone.tokenizer.encode(longest)) + 2 <= 16  # start and end tokens in a 16-token context


def test_multi_positive_loss_equals_a_hand_computation():
    # 2 images (classes 0 and 1) against 3 captions (classes 0, 0, 1).
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    images, captions = torch.tensor([0, 1]), torch.tensor([0, 0, 1])
    e = math.e
    # image 0: positives are captions 0 and 1, each with weight 1/2; image 1: caption 2 alone.
    image_to_text = ((math.log(e**2 + e + 1) - (2 + 1) / 2) + (math.log(2 + e) - 1)) / 2
    # caption 0 and 1: image 0 is the positive; caption 2: image 1.
    text_to_image = ((math.log(e**2 + 1) - 2) + (math.log(e + 1) - 1) + (math.log(1 + e) - 1)) / 3
    expected = (image_to_text + text_to_image) / 2
    assert multi_positive_contrastive_loss(logits, images, captions).item() == pytest.approx(expected, rel=1e-6)


def test_rows_without_a_positive_are_left_out_of_the_loss():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # Caption 2 is of class 5, which no image shows; image 1 (class 1) has no caption.
    loss = multi_positive_contrastive_loss(logits, torch.tensor([0, 1]), torch.tensor([0, 0, 5]))
    e = math.e
    image_to_text = math.log(e**2 + e + 1) - 1.5
    text_to_image = ((math.log(e**2 + 1) - 2) + (math.log(e + 1) - 1)) / 2
    assert loss.item() == pytest.approx((image_to_text + text_to_image) / 2, rel=1e-6)


def test_a_short_pretraining_is_deterministic_and_writes_its_sidecar(tmp_path):
    rng_before = torch.get_rng_state()
    first = tiny_build(tmp_path / "a.safetensors")
    tiny_build(tmp_path / "b.safetensors")
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's global RNG is left alone
    tiny_build(tmp_path / "c.safetensors", seed=1)
    assert (tmp_path / "a.safetensors").read_bytes() != (tmp_path / "c.safetensors").read_bytes()

    sidecar = json.loads(sidecar_path(tmp_path / "a.safetensors").read_text())
    assert sidecar == {**first, "recipe": json.loads(json.dumps(first["recipe"]))}
    assert {"steps", "batch_size", "seed", "recipe_version", "zero_shot_top1", "seconds"} <= set(sidecar)
    assert sidecar["steps"] == 2 and sidecar["batch_size"] == 8 and sidecar["recipe"]["pool_per_class"] == 2
    assert set(sidecar["zero_shot_top1"]) == {"clean", "renditions"}
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_the_weights_load_into_the_architecture_and_zero_shot_accuracy_is_a_fraction(tmp_path):
    path = tmp_path / "w.safetensors"
    tiny_build(path)
    backbone = load_backbone("seca-shapes", str(path))
    state = load_file(str(path))
    assert all(torch.equal(v, state[k]) for k, v in backbone.model.state_dict().items())
    world = ShapesWorld(image_size=backbone.image_size)
    accuracy = zero_shot_accuracy(backbone, world, "clean", "test", per_class=1)
    assert 0.0 <= accuracy <= 1.0


def test_cache_path_follows_seca_cache_and_the_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("SECA_CACHE", str(tmp_path))
    assert shapes_clip_path().parent == tmp_path
    assert shapes_clip_path(tmp_path / "other").parent == tmp_path / "other"
    assert recipe_tag() in shapes_clip_path().name and shapes_clip_path().suffix == ".safetensors"
    assert recipe_tag(steps=7) != recipe_tag() and recipe_tag(recipe=PretrainRecipe(lr=0.5)) != recipe_tag()
    monkeypatch.delenv("SECA_CACHE")
    assert pretrain.default_cache_dir() == pretrain.Path.home() / ".cache" / "seca"


def test_the_shapes_tag_builds_once_into_the_cache_and_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SECA_CACHE", str(tmp_path))
    builds = []
    monkeypatch.setattr(pretrain, "pretrain_shapes_clip", lambda path, **kw: builds.append(path) or tiny_build(path))
    backbone = load_backbone("seca-shapes", "shapes")
    assert builds == [shapes_clip_path()] and shapes_clip_path().is_file()
    assert "building" in capsys.readouterr().err
    state = load_file(str(shapes_clip_path()))
    assert all(torch.equal(v, state[k]) for k, v in backbone.model.state_dict().items())
    assert backbone.pretrained == "shapes"
    load_backbone("seca-shapes", "shapes")
    assert len(builds) == 1  # the second load finds the cache
    with pytest.raises(SecaError, match="seca-shapes"):
        load_backbone("seca-test", "shapes")


def test_the_command_line_builds_and_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        pretrain, "pretrain_shapes_clip", lambda path, steps, seed: tiny_build(path, steps=steps, seed=seed)
    )
    assert main(["pretrain-shapes", "--out", str(tmp_path / "m.safetensors"), "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "m.safetensors" in out and "clean" in out and "renditions" in out
    assert (tmp_path / "m.safetensors").is_file()
    assert main(["pretrain-shapes", "--steps", "3"]) == 2  # the cache keeps the default recipe only
    assert main(["pretrain-shapes", "--out", str(tmp_path), "--steps", "1"]) == 2
    assert "error:" in capsys.readouterr().err


def test_the_logit_scale_is_held_at_clips_clamp_unless_learned(tmp_path):
    """The recipe ends where OpenAI's CLIP ends, at a scale of 100, so that cross-entropies at the backbone's scale
    and distillation at 20 stand in the paper's ratio (docs/offline.md, "The temperature regime")."""
    import math

    tiny_build(tmp_path / "held.safetensors")
    assert load_file(str(tmp_path / "held.safetensors"))["logit_scale"].item() == pytest.approx(math.log(100))
    learned = PretrainRecipe(pool_per_class=2, warmup_steps=1, logit_scale_init=1 / 0.07, learn_logit_scale=True)
    pretrain_shapes_clip(
        tmp_path / "learned.safetensors", steps=2, batch_size=8, progress=False, recipe=learned, eval_per_class=1
    )
    scale = load_file(str(tmp_path / "learned.safetensors"))["logit_scale"].item()
    assert scale != pytest.approx(math.log(1 / 0.07), abs=1e-6) and scale < math.log(100)
    assert recipe_tag(recipe=learned) != recipe_tag()


def test_the_backbone_finds_pretrained_tags_through_the_registry_not_an_import(monkeypatch):
    """clip/ depends on nothing above it: the offline world registers its tag (item 7 of issue 11)."""
    import ast
    from pathlib import Path

    import seca.clip.backbone as backbone_module
    from seca.clip import archs
    from seca.clip.archs import PRETRAINED_TAGS, pretrained_weights, register_pretrained
    from seca.registry import Registry

    for module in Path(backbone_module.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):  # nothing from the layers above clip/
                above = ("offline", "methods", "engine", "eval", "api", "cli", "data")
                assert (node.module or "").split(".")[-1 if node.level else 1 :][:1] not in [
                    [a] for a in above
                ] and not any(part in above for part in (node.module or "").split(".")), (module.name, node.module)
    assert PRETRAINED_TAGS["shapes"] == ("seca-shapes", "seca.offline.pretrain:ensure_shapes_clip")
    assert pretrained_weights("openai", "seca-test") is None  # not a registered tag: left to the caller
    monkeypatch.setattr(archs, "PRETRAINED_TAGS", Registry("pretrained tag"))  # the test's own tags only
    register_pretrained("unit-test-tag", "seca-test", "os.path:curdir")
    with pytest.raises(TypeError):  # the provider is called: os.path.curdir is a string, not a function
        pretrained_weights("unit-test-tag", "seca-test")
    with pytest.raises(SecaError, match="exist for model 'seca-test' only"):
        pretrained_weights("unit-test-tag", "seca-shapes")
    with pytest.raises(ValueError, match="the pretrained tag name 'unit-test-tag' is taken by os.path:curdir"):
        register_pretrained("unit-test-tag", "seca-test", "os:getcwd")
    with pytest.raises(ValueError):
        register_pretrained("x", "no-such-architecture", "os:getcwd")
