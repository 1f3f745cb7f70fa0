"""ENGINE: linear adapters after both frozen CLIP encoders, fed with a language model's class descriptions, plus
a Gaussian discriminant of the frozen features and a re-ranking by pairwise descriptions at test.

Zhou, Li, Ning, Ye, Zhang, Zhan, "External Knowledge Injection for CLIP-Based Class-Incremental Learning", ICCV 2025
(arXiv 2503.08510); official code github.com/LAMDA-CL/ICCV25-ENGINE (the same code is C3Box's ``models/engine.py``).
docs/specs/engine.md is the specification this file implements, section by section (§ below), with the official
code's defaults.

Each task adds a linear map (with bias) after the frozen image embedding e(x) and one after the frozen text
embedding; the maps of earlier tasks are frozen and every map's output is summed: f(x) = Σ_i A_i e(x),
g(c) = Σ_i B_i t(c) (§2). A step minimises CLIP's symmetric contrastive loss between the images (and one noisy copy
of each old class's stored mean embedding) and their class texts, a contrastive loss between those class texts and
the frozen texts "<class> with <description>" of a description drawn at random (the text-side injection), and a
contrastive loss between the images and frozen features of noised copies of them (the image-side injection) (§3).
At test the cosine of f(x) to the class texts is mixed with a linear discriminant of the frozen, pre-projection
image features (class means and a shared shrunk inverse covariance, §4.1) and with a re-ranking of the top classes
by the frozen image feature's cosine to descriptions that set each top class apart from the others (§4.2).
Nothing trains inside CLIP: the image encoder's output is a frozen function of the image, computed once per
image (§9).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..clip.backbone import FrozenStem
from ..config import ABOVE_ZERO, FRACTION, TEMPLATES, Rule, at_least, section, setting
from ..data.scenario import Task
from ..distributed import all_sum
from ..errors import SecaError
from ._class_texts import _key, offline_class_texts, read_class_texts
from ._precision import widen
from ._recipes import LAMDA_SGD
from ._statistics import _check_counts, class_means, class_sums
from .base import Batch, Learner, TaskData, register


@dataclass(frozen=True)
class EngineConfig:
    """ENGINE's settings (docs/specs/engine.md §5; defaults: the official exps/engine/imagenetr_0_20.json, but for
    the templates, which the presets set)."""

    descriptions: str | None = setting(
        None,
        "ENGINE: the JSON file of the language model's class descriptions ({class: {other class: [texts]}}, the "
        "official chat/<data set>_des.json); null: texts made from the class names (offline rule, §6 item 1)",
    )
    templates: tuple[str, ...] = setting(
        ("a photo of a {}.",),
        "ENGINE: the class text templates; the first one trains, all are averaged at test (§3, §4; the presets hold "
        "the official utils/templates.json list of their data set)",
        TEMPLATES,
    )
    text_des: float = setting(2.0, "ENGINE: weight of the text-side (description) contrastive loss (§3.2)", at_least(0))
    image_aug: float = setting(
        2.0, "ENGINE: weight of the image-side (noised copy) contrastive loss (§3.3)", at_least(0)
    )
    image_noise: float = setting(
        0.25,
        "ENGINE: standard deviation of the pixel noise of the image-side loss (hard-coded 0.25, §3.3)",
        at_least(0),
    )
    sample_num: int = setting(
        0,
        "ENGINE: old classes replayed per step, drawn with replacement; 0: every old class once (§3.1)",
        at_least(0),
    )
    sample_noise: float = setting(
        0.25, "ENGINE: standard deviation of the noise added to an old class's mean embedding (§3.1)", at_least(0)
    )
    stat: float = setting(0.8, "ENGINE: weight of the linear discriminant in the test score (§4.3)", FRACTION)
    rerank: float = setting(0.8, "ENGINE: weight of the re-ranking in the rest of the test score (§4.3)", FRACTION)
    rerank_top: int = setting(5, "ENGINE: classes re-ranked per image (§4.2)", at_least(1))
    rerank_draws: int = setting(3, "ENGINE: descriptions drawn per class pair and averaged (§4.2)", at_least(1))
    loss_scale: float | None = setting(
        None,
        "ENGINE: the scale of the CLIP loss's logits; null: CLIP's logit_scale parameter itself, ln 100 "
        "(not its exponential), as the official code (§3.1)",
        Rule(lambda v: v is None or v > 0, "above 0, or null"),
    )
    temperature: float = setting(
        100.0, "ENGINE: predict's scores are exp(temperature × (score − its maximum)) (§4.3)", ABOVE_ZERO
    )


# ---- the class statistics of §4.1 --------------------------------------------------------------------------
def task_statistics(
    features: torch.Tensor, labels: torch.Tensor, classes
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(class means μ [K, W], scatter S [W, W] of the features about their class means, images N) of normalised
    features, in float64, over the whole task (every process's shard: the means are reduced first, then S)."""
    features = F.normalize(features.double(), dim=-1)
    sums, counts = class_sums(features, labels, classes)
    _check_counts(counts, classes)
    means = sums / counts.unsqueeze(1)
    centred = features - means[labels.long() - classes[0]]
    return means, all_sum(centred.T @ centred), counts.sum()


def shrunk_inverse(scatter: torch.Tensor, images: float) -> torch.Tensor:
    """The official ``update_stat``'s matrix of one task: W · (S + tr(S)/(N−1) I)⁺ (its ``cov()`` of the centred
    features times N − 1 is S; their mean is zero)."""
    width = scatter.shape[0]
    eye = torch.eye(width, dtype=scatter.dtype, device=scatter.device)
    return width * torch.linalg.pinv(scatter + torch.trace(scatter) / max(images - 1, 1) * eye)


def merge_statistics(
    means: torch.Tensor, precision: torch.Tensor, new_means: torch.Tensor, new_precision: torch.Tensor
) -> torch.Tensor:
    """The shared matrix after a task (official ``update_stat``): k/t P + (t−k)/t P' + k(t−k)/t³ (m − m')(m − m')ᵀ,
    k old and t seen classes, m and m' the means of the old and the new class means (the last term's coefficient
    as the official code writes it)."""
    k, t = means.shape[0], means.shape[0] + new_means.shape[0]
    gap = (means.mean(0) - new_means.mean(0)).unsqueeze(1)
    return (k / t) * precision + ((t - k) / t) * new_precision + ((k / t) * (t - k) / t**2) * (gap @ gap.T)


def discriminant(pooled: torch.Tensor, means: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """The L2-normalised (over classes) linear discriminant x̂ P μ_c − μ_c P μ_c / 2 + log(1/C) of pooled features."""
    unit = F.normalize(pooled.double(), dim=-1)
    weight = means @ precision
    bias = -0.5 * (weight * means).sum(-1) + math.log(1.0 / means.shape[0])
    return F.normalize(unit @ weight.T + bias, dim=-1)


def rerank_scores(
    unit_image: torch.Tensor, top: torch.Tensor, pair_texts: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """§4.2: ``[B, C]`` zero except at each image's top classes ``top`` ``[B, k]``: the mean over draws r of the cosine
    of ``unit_image`` to the normalised mean, over the other top classes s, of ``pair_texts[r, main, s]``."""
    batch, k = top.shape
    scores = unit_image.new_zeros(batch, num_classes)
    if k < 2:  # no other class to set a top class apart from
        return scores
    off = ~torch.eye(k, dtype=torch.bool, device=top.device)
    mains = top[:, :, None].expand(batch, k, k)
    seconds = top[:, None, :].expand(batch, k, k)
    logits = 0
    for texts in pair_texts:  # [C, C, D] per draw
        chosen = texts[mains, seconds] * off[None, :, :, None].to(texts.dtype)  # [B, k, k, D]
        mean = F.normalize(chosen.sum(2) / (k - 1), dim=-1)
        logits = logits + (mean * unit_image[:, None, :].to(mean.dtype)).sum(-1)
    return scores.scatter(1, top, (logits / len(pair_texts)).to(scores.dtype))


def contrastive(logits: torch.Tensor) -> torch.Tensor:
    """The official ``contrastive_loss``: cross-entropy of each row against the column of its own index."""
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


@register
class Engine(Learner):
    """ENGINE (ICCV 2025): per-task linear adapters on both CLIP embeddings, description injection, GDA, re-ranking."""

    name = "engine"
    default_lr = {"engine": 0.05}
    # the official recipe (exps/engine/*.json, C3Box exps/engine.json): SGD with momentum 0.9, weight decay 0.05,
    # batch 64, 10 epochs, CosineAnnealingLR per epoch to 0, no exemplars, fp32
    recipe = {
        **LAMDA_SGD,
        "epochs": 10,
        "batch_size": 64,
        "warmup_steps": 0,
        "memory_size": 0,
        "amp": "off",
    }
    loss_words = {
        "clip": "matching images and their class texts",
        "descriptions": "matching class texts to their descriptions (text side)",
        "noise": "matching images to their noised copies (image side)",
    }

    @dataclass(frozen=True)
    class Config:
        engine: EngineConfig = section(EngineConfig)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.check_config(self.config)
        dim, width = self.backbone.embed_dim, self.backbone.vision_width
        self.image_adapters = nn.ModuleList()
        self.text_adapters = nn.ModuleList()
        self.register_buffer("prototypes", torch.empty(0, dim))  # mean frozen e(x) per class (§3.1)
        self.register_buffer("means", torch.empty(0, width, dtype=torch.float64))  # §4.1
        # per task: the scatter of its normalised pooled features about their class means, and its image count (§4.1)
        self.register_buffer("scatters", torch.empty(0, width, width, dtype=torch.float64))
        self.register_buffer("task_sizes", torch.empty(0, dtype=torch.float64))
        self._precision: torch.Tensor | None = None  # the shared matrix P of the tasks so far, made from the above
        # frozen text features [classes, templates, D] of every seen class; the adapted test texts [classes, D]
        self.register_buffer("frozen_texts", torch.empty(0, len(self.settings.templates), dim), persistent=False)
        self.register_buffer("text_features", torch.empty(0, dim), persistent=False)
        self._pair_texts = torch.empty(0, 0, 0, dim)  # [draws, C, C, D]: §4.2's frozen texts, filled as needed
        self._descriptions: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
        self._features: torch.Tensor | None = None  # the task's frozen e(x), rows by image position
        self._generator: torch.Generator | None = None
        self._noise: torch.Generator | None = None

    @classmethod
    def check_config(cls, config) -> None:
        path = getattr(config, "method", config).engine.descriptions
        if path is not None and not Path(path).expanduser().is_file():
            raise SecaError(
                f"engine: method.engine.descriptions '{path}' is not a file; give the path of the JSON file of class "
                "descriptions (the official chat/<data set>_des.json), or null for texts made from the class names"
            )

    @property
    def settings(self) -> EngineConfig:
        return self.config.engine

    # ---- descriptions (§6 item 1) ---------------------------------------------------------------------------
    def _described(self, names) -> None:
        """Read the descriptions of ``names`` not read yet: (all texts of a class, its texts against each other
        class by that class's key)."""
        names = [n for n in names if n not in self._descriptions]
        if not names:
            return
        path = self.settings.descriptions
        if path is None:
            for name, texts in zip(names, offline_class_texts(names)):
                self._descriptions[name] = (texts, {})
            return
        flat = read_class_texts(path, names, "method.engine.descriptions")
        data = json.loads(Path(path).expanduser().read_bytes().decode("utf-8-sig"))
        by_key = {}
        for key, value in data.items():
            by_key.setdefault(key, value)
            by_key.setdefault(_key(key), value)
        for name, texts in zip(names, flat):
            value = by_key.get(name, by_key.get(_key(name)))
            pairs = {}
            if isinstance(value, dict):
                for other, listed in value.items():
                    listed = [listed] if isinstance(listed, str) else listed
                    kept = [" ".join(t.split()) for t in listed if t.strip()]
                    if kept:
                        pairs.setdefault(_key(other), kept)
            self._descriptions[name] = (texts, pairs)

    def _pair_descriptions(self, main: str, second: str) -> list[str]:
        """The texts that set ``main`` apart from ``second`` (the official ``des_dict[main][second]``), else all of
        ``main``'s texts."""
        texts, pairs = self._descriptions[main]
        return pairs.get(_key(second)) or texts

    # ---- a task ---------------------------------------------------------------------------------
    def begin_task(self, task: Task, data: TaskData) -> None:
        super().begin_task(task, data)
        self._described(self.class_names[: task.stop])
        for adapter in [*self.image_adapters, *self.text_adapters]:  # update_task: earlier adapters freeze
            adapter.requires_grad_(False)
        generator = self.task_rng(task, stream=0)
        self.image_adapters.append(self._new_adapter(generator))
        self.text_adapters.append(self._new_adapter(generator))
        self._encode_texts()
        pooled, self._features, labels = self._frozen_task(data)
        means, scatter, images = task_statistics(pooled, labels, task.labels)  # update_stat, before training (§4.1)
        self.means = torch.cat([self.means, means.to(self.means.device)])
        self.scatters = torch.cat([self.scatters, scatter[None].to(self.scatters.device)])
        self.task_sizes = torch.cat([self.task_sizes, images.reshape(1).to(self.task_sizes.device)])
        self._precision = None
        self._generator = self.task_rng(task, stream=1)
        noise_seed = int(torch.randint(2**62, (1,), generator=self.task_rng(task, stream=2)))
        self._noise = torch.Generator(device=self.device).manual_seed(noise_seed)

    def _new_adapter(self, generator: torch.Generator) -> nn.Linear:
        """nn.Linear(D, D) with PyTorch's default initialisation (MLP_Adapter), drawn from ``generator``."""
        dim = self.backbone.embed_dim
        adapter = nn.Linear(dim, dim).to(self.device)
        bound = 1 / math.sqrt(dim)  # Kaiming-uniform with a = sqrt(5), and the bias's U(-1/sqrt(fan_in), ...)
        with torch.no_grad():
            adapter.weight.copy_(torch.empty(dim, dim).uniform_(-bound, bound, generator=generator))
            adapter.bias.copy_(torch.empty(dim).uniform_(-bound, bound, generator=generator))
        return adapter

    @torch.no_grad()
    def _frozen_task(self, data: TaskData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pooled pre-projection features, e(x), labels) of every training image of the task, rows by position:
        one pass of the frozen encoder (§9)."""
        pooled = embedded = None
        labels = torch.empty(data.size, dtype=torch.long, device=self.device)
        for batch in data.batches():
            stem = self.frozen_input(batch.images)
            p, e = self._pooled(stem)
            if pooled is None:
                pooled = p.new_empty(data.size, p.shape[1])
                embedded = e.new_empty(data.size, e.shape[1])
            pooled[batch.index], embedded[batch.index], labels[batch.index] = p, e, batch.labels
        if pooled is None:  # no image on this process: its share of the sums is empty
            width, dim = self.backbone.vision_width, self.backbone.embed_dim
            pooled, embedded = torch.empty(0, width, device=self.device), torch.empty(0, dim, device=self.device)
        return pooled, embedded, labels

    def _pooled(self, stem: FrozenStem) -> tuple[torch.Tensor, torch.Tensor]:
        """(ln_post of the class token: the official ``visual_forward_``; its projection e(x)), in float32 or wider."""
        visual = self.backbone.model.visual
        pooled = widen(visual.ln_post(stem.output[:, 0]))
        return pooled, pooled @ widen(visual.proj).to(pooled.dtype)

    def parameter_groups(self) -> list[dict]:
        if not self.image_adapters:
            return []
        return [
            {
                "name": "engine",
                "params": [*self.image_adapters[-1].parameters(), *self.text_adapters[-1].parameters()],
            }
        ]

    @staticmethod
    def _sum(adapters: nn.ModuleList, features: torch.Tensor) -> torch.Tensor:
        """Σ_i A_i(features): the official ``Image_encode`` / ``Text_encode`` (before any task: the features)."""
        if not adapters:
            return features
        return torch.stack([adapter(features) for adapter in adapters]).sum(0)

    def with_old_prototypes(self, frozen: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's frozen embeddings and labels, then (from the second task) one noisy copy of the mean embedding
        of each replayed old class (§3.1): all of them, or ``sample_num`` drawn."""
        settings, task = self.settings, self.task
        if not task.start:
            return frozen, labels
        old = (
            torch.randint(task.start, (settings.sample_num,), generator=self._generator)
            if settings.sample_num
            else torch.arange(task.start)
        )
        prototypes = self.prototypes[old.to(self.prototypes.device)].to(frozen.dtype)
        noise = torch.randn(prototypes.shape, generator=self._generator, dtype=prototypes.dtype)
        frozen = torch.cat([frozen, prototypes + noise.to(prototypes.device) * settings.sample_noise])
        return frozen, torch.cat([labels, old.to(labels.device)])

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        frozen, labels = self.with_old_prototypes(self._features[batch.index], batch.labels)
        images = F.normalize(self._sum(self.image_adapters, frozen), dim=-1)
        texts = F.normalize(self._sum(self.text_adapters, self.frozen_texts[labels, 0].to(frozen.dtype)), dim=-1)
        return self.losses(batch, images, texts, labels)

    def losses(
        self, batch: Batch, images: torch.Tensor, texts: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The step's loss terms from its adapted image features (the batch's, then the replayed prototypes') and the
        adapted texts of their classes: the CLIP loss, and the description (§3.2) and noised-copy (§3.3) terms."""
        settings = self.settings
        logits = self._loss_scale() * images @ texts.T
        clip = (contrastive(logits) + contrastive(logits.T)) / 2
        losses, total = {"clip": clip}, clip
        if settings.text_des > 0:  # §3.2
            references = F.normalize(widen(self.backbone.encode_texts(self._batch_descriptions(labels))), dim=-1)
            losses["descriptions"] = contrastive(texts @ references.T.to(texts.dtype))
            total = total + settings.text_des * losses["descriptions"]
        if settings.image_aug > 0:  # §3.3
            noise = torch.randn(batch.images.shape, generator=self._noise, device=self.device)
            noised = (batch.images + noise.to(batch.images.dtype) * settings.image_noise).clamp(0, 1)
            with torch.no_grad():
                copies = F.normalize(widen(self.backbone.encode_image(noised)), dim=-1)
            losses["noise"] = contrastive(images[: batch.images.shape[0]] @ copies.T.to(images.dtype))
            total = total + settings.image_aug * losses["noise"]
        out = {k: v.detach() for k, v in losses.items()}
        out["loss"] = total
        return out

    def _loss_scale(self) -> float:
        if self.settings.loss_scale is not None:
            return self.settings.loss_scale
        return float(self.backbone.model.logit_scale)  # the parameter (ln 100), not its exponential (§3.1)

    def _batch_descriptions(self, labels: torch.Tensor) -> list[str]:
        """'<class> with <a description of it, lower-cased>' for each label, each drawn from the task's generator."""
        texts = []
        for label in labels.tolist():
            name = self.class_names[label]
            choices = self._descriptions[name][0]
            pick = int(torch.randint(len(choices), (1,), generator=self._generator))
            texts.append(f"{name} with {choices[pick].lower()}")
        return texts

    @torch.no_grad()
    def end_task(self, task: Task, data: TaskData) -> None:
        labels = torch.empty(data.size, dtype=torch.long, device=self.device)
        for batch in data.batches():
            labels[batch.index] = batch.labels
        means = class_means(self._features, labels, task.labels)  # §3.1: the task's prototypes
        self.prototypes = torch.cat([self.prototypes.to(means.dtype), means.to(self.prototypes.device)])
        self._features = self._generator = self._noise = None
        self._cache_texts()

    # ---- inference and restoring ---------------------------------------------------------------------
    def frozen_kind(self) -> str:
        return f"stem@{self.backbone.num_blocks - 1}"  # the last block's class token: nothing learned before it

    def frozen_input(self, images: torch.Tensor) -> FrozenStem:
        return self.backbone.stem(images, self.backbone.num_blocks - 1)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """f(x) = Σ_i A_i e(x), normalised: the adapted image feature the class texts are compared to."""
        return self._adapted(self._pooled(self.frozen_input(images))[1])

    def _adapted(self, embedded: torch.Tensor) -> torch.Tensor:
        return F.normalize(self._sum(self.image_adapters, embedded), dim=-1)

    @torch.no_grad()
    def predict_frozen(self, frozen: FrozenStem) -> torch.Tensor:
        return self.scores(frozen)[0]

    @torch.no_grad()
    def scores(self, frozen: FrozenStem) -> tuple[torch.Tensor, torch.Tensor]:
        """(exp(T (s − max s)), s): s = stat · GDA + (1 − stat) · (rerank · re-ranked + (1 − rerank) · cos) (§4.3)."""
        settings, seen = self.settings, self.num_seen
        pooled, embedded = self._pooled(frozen)
        cosine = self._adapted(embedded) @ self.text_features[:seen].T.to(embedded.dtype)
        gda = discriminant(pooled, self.means[:seen], self.precision()).to(cosine.dtype)
        if settings.rerank > 0 and settings.stat < 1:
            top = cosine.topk(min(settings.rerank_top, seen), dim=1).indices
            self._fill_pair_texts()
            reranked = rerank_scores(F.normalize(embedded, dim=-1), top, self._pair_texts.to(embedded.device), seen)
        else:  # weighed 0: no texts to encode
            reranked = torch.zeros_like(cosine)
        score = settings.stat * gda + (1 - settings.stat) * (
            settings.rerank * reranked.to(cosine.dtype) + (1 - settings.rerank) * cosine
        )
        return (settings.temperature * (score - score.amax(dim=1, keepdim=True))).exp(), score

    def precision(self) -> torch.Tensor:
        """P after the tasks so far: each task's shrunk inverse merged into the earlier ones' (§4.1), in task order."""
        if self._precision is None:
            precision = None
            for k, task in enumerate(self.tasks[: len(self.scatters)]):
                new = shrunk_inverse(self.scatters[k], float(self.task_sizes[k]))
                if precision is None:
                    precision = new
                else:
                    old = self.means[: task.start]
                    precision = merge_statistics(old, precision, self.means[task.start : task.stop], new)
            self._precision = precision
        return self._precision

    def _fill_pair_texts(self) -> None:
        """§4.2's frozen texts '<main> with <description of main against second>' of every seen pair, one chosen per
        (main, second, draw) by a generator seeded with the run's seed and the two names; encoded in chunks of one
        main against one task's classes, so a text's features never depend on when they were encoded."""
        seen, known = self.num_seen, self._pair_texts.shape[1]
        if known == seen:
            return
        draws, dim = self.settings.rerank_draws, self.backbone.embed_dim
        grown = torch.zeros(draws, seen, seen, dim, device=self.device)
        if known:
            grown[:, :known, :known] = self._pair_texts.to(self.device)
        names = self.class_names[:seen]
        self._described(names)
        for main in range(seen):
            for task in self.tasks:
                if main < known and task.stop <= known:
                    continue
                seconds = [s for s in range(task.start, min(task.stop, seen)) if s != main]
                if not seconds:
                    continue
                texts = []
                for r in range(draws):
                    for s in seconds:
                        options = self._pair_descriptions(names[main], names[s])
                        pick = random.Random(f"{self.seed}/{names[main]}/{names[s]}/{r}").randrange(len(options))
                        texts.append(f"{names[main]} with {options[pick].lower()}")
                encoded = widen(self.backbone.encode_texts(texts)).float().view(draws, len(seconds), dim)
                grown[:, main, seconds] = encoded
        self._pair_texts = grown

    def _encode_texts(self) -> None:
        """The frozen features of every template of the classes not encoded yet."""
        names = self.class_names[self.frozen_texts.shape[0] : self.num_seen]
        if names:
            templates = self.settings.templates
            texts = [t.format(name) for name in names for t in templates]
            new = widen(self.backbone.encode_texts(texts)).view(len(names), len(templates), -1)
            self.frozen_texts = torch.cat([self.frozen_texts.to(new.dtype), new.to(self.frozen_texts.device)])

    @torch.no_grad()
    def _cache_texts(self) -> None:
        """The test texts (official ``_eval_cnn``): per class, the normalised mean over templates of the normalised
        adapted template texts."""
        adapted = F.normalize(self._sum(self.text_adapters, self.frozen_texts[: self.num_seen]), dim=-1)
        self.text_features = F.normalize(adapted.mean(1), dim=-1)

    def rebuild(self, structure: dict) -> None:
        generator = torch.Generator().manual_seed(0)  # overwritten by the saved weights
        while len(self.image_adapters) < len(self.tasks):
            self.image_adapters.append(self._new_adapter(generator).requires_grad_(False))
            self.text_adapters.append(self._new_adapter(generator).requires_grad_(False))

    def after_restore(self) -> None:
        self._precision = None
        self._pair_texts = torch.empty(0, 0, 0, self.backbone.embed_dim)
        self.frozen_texts = self.frozen_texts[:0]
        for task in self.tasks:  # task by task, as during training: the same numbers to the last bit
            self.num_seen, stop = task.stop, self.num_seen
            self._encode_texts()
            self.num_seen = stop
        self._described(self.class_names[: self.num_seen])
        self._cache_texts()
