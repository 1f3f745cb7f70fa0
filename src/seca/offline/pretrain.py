"""Pretrain the ``seca-shapes`` CLIP on the clean shapes domain (``backbone.pretrained: shapes``): a cache
file built deterministically on first use, so its text encoder carries real semantics (docs/offline.md)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..clip.archs import ARCHITECTURES
from ..clip.backbone import ClipBackbone, TextTower
from ..data.shapes import ShapesWorld
from ..errors import SecaError
from ..io.cache import cache_root
from ..io.files import atomic_write, atomic_write_json

ARCHITECTURE = "seca-shapes"
# Bump when the code of the recipe changes (captions, loss, augmentation); changes of the numbers in
# PretrainRecipe or of the architecture change the cache file's name by themselves (see recipe_tag).
RECIPE_VERSION = 1
ZERO_SHOT_TEMPLATE = "a good photo of a {}."
BUILD_MINUTES = "3 to 5"  # what ensure_shapes_clip announces: 2 min 46 s on 2 idle cores, 4 min 30 s on busy ones

# Captions of one class, all naming its colour and its shape, in varied word orders so that the text
# encoder learns to bind a colour word to a shape word wherever they stand. The zero-shot template
# ("a good photo of a ...") is deliberately not among them: measured accuracy is then a real transfer.
CAPTION_TEMPLATES: tuple[str, ...] = (
    "a photo of a {color} {shape}.",
    "a {color} {shape} on a plain background.",
    "a drawing of a {color} {shape}",
    "a small {color} {shape}",
    "a large {color} {shape}.",
    "a {color} {shape} shape",
    "a picture of a {color} {shape}.",
    "the {color} {shape}.",
    "a {shape} that is {color}.",
    "a {shape} coloured {color}",
    "one {color} {shape} in the middle.",
    "an image of a {color} {shape}",
    "a {color} {shape}",
    "{color} {shape}",
)


def sample_captions(world: ShapesWorld, labels: Sequence[int], rng: np.random.Generator) -> list[str]:
    """One caption per label, its template drawn from ``rng``."""
    picks = rng.integers(len(CAPTION_TEMPLATES), size=len(labels))
    return [
        CAPTION_TEMPLATES[p].format(color=c, shape=s)
        for p, (c, s) in zip(picks, (world.color_and_shape(int(y)) for y in labels))
    ]


def multi_positive_contrastive_loss(
    logits: torch.Tensor, image_labels: torch.Tensor, text_labels: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE over ``logits`` [images, captions] in which every same-class pair is a positive.

    Each direction is a cross-entropy against the uniform distribution over the row's positives:
    ``-1/|P(i)| * sum_{j in P(i)} log softmax_j(logits[i])`` (supervised-contrastive "outside" form),
    averaged over the rows that have a positive; the result is the mean of both directions.
    """
    positives = (image_labels[:, None] == text_labels[None, :]).to(logits.dtype)

    def one_direction(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        counts = targets.sum(1)
        has_positive = counts > 0
        log_probs = F.log_softmax(scores[has_positive], dim=1)
        per_row = -(targets[has_positive] * log_probs).sum(1) / counts[has_positive]
        return per_row.mean()

    return 0.5 * (one_direction(logits, positives) + one_direction(logits.T, positives.T))


@dataclass(frozen=True)
class PretrainRecipe:
    """The numbers of the pretraining recipe besides steps, batch size and seed (docs/offline.md)."""

    lr: float = 1e-3
    warmup_steps: int = 30
    weight_decay: float = 0.1
    # The inverse temperature of the contrastive loss. OpenAI's CLIP learns it from 1/0.07 and ends its
    # training at the clamp, 100; the continual-learning losses are set relative to that end point
    # (cross-entropies at the backbone's scale, distillation and inference at 20: spec §5). A small CLIP
    # trained for 600 steps only reaches ~18 when the scale is learned, so the recipe holds it at CLIP's
    # final value from the start (docs/offline.md, "The temperature regime").
    logit_scale_init: float = 100.0
    learn_logit_scale: bool = False  # True: learned from logit_scale_init, clamped at 100, as CLIP trains it
    pool_per_class: int = 128  # clean "pretrain" images per class, rendered once and reused across epochs
    captions_per_class: int = 1  # every step contrasts the batch with this many captions of every class;
    # 0: one caption per image instead (the usual CLIP batch)
    # Augmentation of the clean images: geometry and blur only. Nothing imitates the renditions' turned hues
    # and busy backgrounds, which stay an unseen domain for continual learning to adapt to.
    flip: bool = True  # mirror images (every class stays itself: a mirrored arrow is still an arrow)
    max_rotation: float = 180.0  # degrees of extra random rotation, on top of the renderer's own ±20
    zoom: tuple[float, float] = (0.45, 1.2)  # random rescaling of the whole image (0.45: smaller shapes)
    transform_fraction: float = 0.5  # share of the images that get the rotation and zoom; the rest stay as drawn
    blur_probability: float = 0.3  # chance of a mild Gaussian blur (sigma 0.8 pixel)


DEFAULT_STEPS = 600
DEFAULT_BATCH_SIZE = 128
DEFAULT_RECIPE = PretrainRecipe()


def recipe_tag(
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    recipe: PretrainRecipe = DEFAULT_RECIPE,
) -> str:
    """A name for the recipe and architecture: any change to either names (and so builds) a new file."""
    spec = {
        "version": RECIPE_VERSION,
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "recipe": dataclasses.asdict(recipe),
        "architecture": ARCHITECTURES[ARCHITECTURE],
        "captions": CAPTION_TEMPLATES,
    }
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
    return f"r{RECIPE_VERSION}-{digest}"


def default_cache_dir() -> Path:
    """``$SECA_CACHE`` if set, else ``~/.cache/seca`` (:func:`seca.io.cache.cache_root`)."""
    return cache_root()


def shapes_clip_path(cache_dir: str | Path | None = None) -> Path:
    """Where the default recipe's weights live in the cache (the name changes with the recipe)."""
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return folder / f"{ARCHITECTURE}-{recipe_tag()}.safetensors"


def sidecar_path(weights_path: str | Path) -> Path:
    return Path(weights_path).with_suffix(".json")


def ensure_shapes_clip(cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """The cached weights of the pretrained shapes CLIP, built first if they are not there yet."""
    path = shapes_clip_path(cache_dir)
    if not path.is_file():
        print(
            f"building the pretrained shapes CLIP into {path} (once; about {BUILD_MINUTES} minutes on 2 CPU cores)",
            file=sys.stderr,
            flush=True,
        )
        pretrain_shapes_clip(path, progress=progress)
    return path


# --------------------------------------------------------------------------------------------------
# Data: a pool of clean images as uint8 tensors, augmented on the fly


def _render_pool(world: ShapesWorld, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = np.stack(
        [
            np.asarray(world.image(label, index, "clean", "pretrain"))
            for label in range(world.num_classes)
            for index in range(per_class)
        ]
    )
    labels = torch.arange(world.num_classes).repeat_interleave(per_class)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(2 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def _augment(images: torch.Tensor, recipe: PretrainRecipe, generator: torch.Generator) -> torch.Tensor:
    """Mild geometric and blur augmentation of a float batch in [0, 1]; all randomness from ``generator``."""
    n = images.shape[0]
    if recipe.flip:
        mirrored = torch.rand(n, generator=generator) < 0.5
        images = torch.where(mirrored[:, None, None, None], images.flip(-1), images)
    if recipe.max_rotation > 0 or recipe.zoom != (1.0, 1.0):
        angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(recipe.max_rotation)
        low, high = recipe.zoom
        zoom = low + torch.rand(n, generator=generator) * (high - low)
        kept = torch.rand(n, generator=generator) >= recipe.transform_fraction
        angle, zoom = angle.masked_fill(kept, 0.0), zoom.masked_fill(kept, 1.0)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [torch.stack([cos, -sin, torch.zeros(n)], 1), torch.stack([sin, cos, torch.zeros(n)], 1)], 1
        )
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        # The shapes seldom reach the border, so repeating it extends the plain background.
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if recipe.blur_probability > 0:
        kernel = _gaussian_kernel(0.8)
        k = len(kernel)
        channels = images.shape[1]
        blurred = F.pad(images, [k // 2] * 4, mode="replicate")
        blurred = F.conv2d(blurred, kernel.view(1, 1, 1, k).repeat(channels, 1, 1, 1), groups=channels)
        blurred = F.conv2d(blurred, kernel.view(1, 1, k, 1).repeat(channels, 1, 1, 1), groups=channels)
        chosen = torch.rand(n, generator=generator) < recipe.blur_probability
        images = torch.where(chosen[:, None, None, None], blurred, images)
    return images


# --------------------------------------------------------------------------------------------------
# Training


def _lr_at(step: int, steps: int, recipe: PretrainRecipe) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, steps - recipe.warmup_steps)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices only; gains, biases, embeddings of positions and the temperature stay undecayed."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        matrix = p.ndim >= 2 and "positional_embedding" not in name and "class_embedding" not in name
        (decay if matrix else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def pretrain_shapes_clip(
    out_path: str | Path,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    progress: bool = True,
    recipe: PretrainRecipe = DEFAULT_RECIPE,
    eval_per_class: int = 20,
) -> dict:
    """Train ``seca-shapes`` from scratch on clean images, write its weights and a JSON sidecar; return the sidecar.

    Same arguments on the same machine give the same weights, byte for byte. ``eval_per_class`` images
    per class of each domain's "test" split measure the zero-shot accuracies recorded in the sidecar.
    """
    import open_clip
    from open_clip.tokenizer import SimpleTokenizer
    from safetensors.torch import save_file

    if steps < 1 or batch_size < 2:
        raise SecaError(f"pretraining needs at least 1 step and a batch of 2 (got {steps} steps, batch {batch_size})")
    out_path = Path(out_path)
    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))  # same thread count, same sums, same bytes
    try:
        with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG as it was
            torch.manual_seed(seed)
            arch = ARCHITECTURES[ARCHITECTURE]
            model = open_clip.CLIP(**arch)
            with torch.no_grad():
                model.logit_scale.fill_(math.log(recipe.logit_scale_init))
            model.logit_scale.requires_grad_(recipe.learn_logit_scale)
        image_size = arch["vision_cfg"]["image_size"]
        world = ShapesWorld(image_size=image_size)
        tokenizer = SimpleTokenizer(context_length=arch["text_cfg"]["context_length"])
        generator = torch.Generator().manual_seed(seed)
        caption_rng = np.random.default_rng(seed)

        pool, pool_labels = _render_pool(world, recipe.pool_per_class)
        mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
        text = TextTower(model)
        optimizer = torch.optim.AdamW(
            _parameter_groups(model, recipe.weight_decay), lr=recipe.lr, betas=(0.9, 0.98), eps=1e-6, fused=True
        )  # fused: ~5x faster step on CPU
        order = torch.randperm(len(pool), generator=generator)
        cursor = 0
        model.train()
        report_every = max(1, steps // 10)
        for step in range(steps):
            if cursor + batch_size > len(order):  # a new epoch over the pool
                order, cursor = torch.randperm(len(pool), generator=generator), 0
            picked = order[cursor : cursor + batch_size]
            cursor += batch_size
            images = _augment(pool[picked].float() / 255, recipe, generator)
            images = (images - mean) / std
            labels = pool_labels[picked]
            if recipe.captions_per_class > 0:
                text_labels = torch.arange(world.num_classes).repeat(recipe.captions_per_class)
            else:
                text_labels = labels
            tokens = tokenizer(sample_captions(world, text_labels.tolist(), caption_rng))
            tokens = tokens[:, : text.useful_length(tokens)]  # causal encoder: identical features, less work

            image_features = F.normalize(model.encode_image(images), dim=-1)
            text_features = F.normalize(text.encode_embeddings(text.embed(tokens), tokens), dim=-1)
            logits = model.logit_scale.exp() * image_features @ text_features.T
            loss = multi_positive_contrastive_loss(logits, labels, text_labels)

            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, steps, recipe)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            if progress and ((step + 1) % report_every == 0 or step + 1 == steps):
                print(
                    f"  step {step + 1}/{steps}  loss {loss.item():.3f}  {time.perf_counter() - started:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        train_seconds = time.perf_counter() - started

        model.eval()
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        backbone = ClipBackbone(
            model, open_clip.image_transform(image_size, is_train=False), tokenizer, ARCHITECTURE, str(out_path)
        )
        correct = {
            domain: zero_shot_correct(backbone, world, domain, "test", eval_per_class)
            for domain in ("clean", "renditions")
        }
        similarity = text_similarity_summary(backbone, world)
    finally:
        torch.set_num_threads(threads)

    summary = {
        "architecture": ARCHITECTURE,
        "recipe_version": RECIPE_VERSION,
        "tag": recipe_tag(steps, batch_size, seed, recipe),
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "recipe": dataclasses.asdict(recipe),
        "zero_shot_template": ZERO_SHOT_TEMPLATE,
        "eval_per_class": eval_per_class,
        # Counts first: every percentage shown is made once from them (2 decimals; format_zero_shot).
        "zero_shot_correct": correct,
        "zero_shot_images": eval_per_class * world.num_classes,
        "zero_shot_top1": {d: c / (eval_per_class * world.num_classes) for d, c in correct.items()},
        "text_similarity": similarity,
        "train_seconds": round(train_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
    }
    # The sidecar first: whoever sees the weights file (the cache's sign of completion) also finds it.
    atomic_write_json(sidecar_path(out_path), summary)
    atomic_write(out_path, lambda tmp: save_file(state, str(tmp), metadata={"tag": summary["tag"]}))
    if progress:
        print(
            f"  zero-shot top-1: {format_zero_shot(summary)} ({summary['seconds']:.0f} s)", file=sys.stderr, flush=True
        )
    return summary


def format_zero_shot(summary: dict) -> str:
    """``"clean 62.75%, renditions 21.35%"``: the zero-shot accuracies of a build's sidecar, each made once, with
    2 decimals, from its counts (``100 * correct / images``; a sidecar written before the counts were kept
    has the fractions only)."""
    images = summary.get("zero_shot_images")
    correct = summary.get("zero_shot_correct") or {}
    parts = []
    for domain, fraction in summary["zero_shot_top1"].items():
        value = 100 * correct[domain] / images if domain in correct and images else 100 * fraction
        parts.append(f"{domain} {value:.2f}%")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------------
# Measurement


def zero_shot_accuracy(
    backbone: ClipBackbone, world: ShapesWorld, domain: str, split: str, per_class: int, batch_size: int = 200
) -> float:
    """Zero-shot top-1 over all classes of ``world`` with ``"a good photo of a {}."``, on ``per_class`` images
    each: a fraction (:func:`zero_shot_correct` is the count of right answers it is made from)."""
    return zero_shot_correct(backbone, world, domain, split, per_class, batch_size) / (per_class * world.num_classes)


@torch.no_grad()
def zero_shot_correct(
    backbone: ClipBackbone, world: ShapesWorld, domain: str, split: str, per_class: int, batch_size: int = 200
) -> int:
    """How many of the ``per_class`` images of every class of ``world`` zero-shot CLIP classifies right."""
    classes = F.normalize(backbone.encode_texts([ZERO_SHOT_TEMPLATE.format(n) for n in world.class_names]), dim=-1)
    items = [(label, index) for label in range(world.num_classes) for index in range(per_class)]
    correct = 0
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        images = torch.stack([backbone.preprocess(world.image(label, index, domain, split)) for label, index in chunk])
        features = F.normalize(backbone.encode_image(images.to(backbone.device)), dim=-1)
        predicted = (features @ classes.T).argmax(1).cpu()
        correct += int((predicted == torch.tensor([label for label, _ in chunk])).sum())
    return correct


@torch.no_grad()
def text_similarity_summary(backbone: ClipBackbone, world: ShapesWorld) -> dict:
    """Mean cosine between class prompts that share the colour, share the shape, or share no word.

    A compositional text encoder puts "red star" nearer to "red circle" and "blue star" than to "blue circle".
    """
    features = F.normalize(backbone.encode_texts([ZERO_SHOT_TEMPLATE.format(n) for n in world.class_names]), dim=-1)
    cosine = (features @ features.T).cpu()
    colour = torch.arange(world.num_classes) // world.shapes
    shape = torch.arange(world.num_classes) % world.shapes
    same_colour = colour[:, None] == colour[None, :]
    same_shape = shape[:, None] == shape[None, :]
    different = ~torch.eye(world.num_classes, dtype=torch.bool)
    return {
        "same_colour": round(float(cosine[same_colour & ~same_shape].mean()), 4),
        "same_shape": round(float(cosine[same_shape & ~same_colour].mean()), 4),
        "no_shared_word": round(float(cosine[~same_colour & ~same_shape & different].mean()), 4),
    }
