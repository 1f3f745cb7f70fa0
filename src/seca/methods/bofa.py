"""BOFA: CLIP's image projection (the bridge layer) fine-tuned, its updates kept in a low-rank subspace orthogonal to
earlier tasks' features, hybrid image-text prototypes and a linear discriminant at test.

Li, Hu, Zhou, Ye, Zhan, "BOFA: Bridge-Layer Orthogonal Low-Rank Fusion for CLIP-Based Class-Incremental Learning",
AAAI 2026 (arXiv 2511.11421); official code: C3Box (LAMDA-CL/C3Box, models/bofa.py, utils/inc_net.py BofaAdapter,
backbone/linears.py OLF). docs/specs/bofa.md is the specification this file implements, section by section (§ below).

Nothing inside CLIP trains: W, a copy of the projection (E x D), maps the frozen encoder's pooled feature x (the class
token after ``ln_post``) into the joint space. Each task trains W with cross-entropy against prototypes mixing each
class's mean image feature under the original projection with its text feature (§3.1); from the second task the
task's bridge is W₀ + (W − W₀) A Aᵀ, A the least-variance directions of the earlier tasks' x (§3.3), and the bridges
of all tasks are averaged (§4.2). A test image scores a mix of the averaged bridge's cosine to the prototypes and a
linear discriminant over x̂ (§4.4). x is computed once per image (§9).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..clip.backbone import FrozenStem
from ..config import FRACTION, TEMPLATES, at_least, section, setting
from ..data.scenario import Task
from ..distributed import all_sum
from ._precision import widen
from ._recipes import LAMDA_SGD
from ._scores import stable_exp
from ._statistics import class_means
from .base import Batch, Learner, TaskData, register

MOMENT_RIDGE = 1e-4  # added to each task's second moment (OLF.update_old_features)
MIX_GRID = 21  # λ candidates, torch.linspace(0, 1, 21) (search_lambda_for_prompt)


@dataclass(frozen=True)
class BOFAConfig:
    """BOFA's settings (docs/specs/bofa.md §5; defaults: the official exps/bofa.json)."""

    templates: tuple[str, ...] = setting(
        ("a photo of a {}.",),
        "BOFA: the class text templates; the first makes the training prototypes and the λ search, the mean of all "
        "the test prototypes (§3.1, §4.4; the presets hold C3Box's utils/templates.json list of their data set)",
        TEMPLATES,
    )
    rank: int = setting(
        64, "BOFA: the rank of the safe subspace a task's update is projected onto (`Kt`, §3.3)", at_least(1)
    )
    stat: float = setting(
        0.1, "BOFA: the weight of the linear discriminant in the test score, the prototypes' 1 − stat (§4.4)", FRACTION
    )


# ---- the method's parts (spec §3-§4) -----------------------------------------------------------------------


def hybrid_prototypes(image: torch.Tensor, text: torch.Tensor, mix: float) -> torch.Tensor:
    """λ n(image) + (1 − λ) n(text), row by row, not renormalised (§3.1, §4.4)."""
    return mix * F.normalize(image, dim=-1) + (1 - mix) * F.normalize(text, dim=-1)


def mix_counts(features: torch.Tensor, labels: torch.Tensor, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Correct predictions of the unit ``features`` under the prototypes (1 − λ') n(image) + λ' n(text) for each λ' of
    the grid (§4.3; the search weighs the text by λ'), summed over every process."""
    grid = torch.linspace(0, 1, MIX_GRID)  # in the default dtype, as the official code
    image, text = F.normalize(image, dim=-1), F.normalize(text, dim=-1)
    counts = torch.stack(
        [((features @ ((1 - lam) * image + lam * text).T).argmax(1) == labels).sum() for lam in grid.to(image.device)]
    )
    return all_sum(counts.cpu().to(torch.float64))


def chosen_mix(counts: torch.Tensor) -> float:
    """The first λ' of the grid with the most correct predictions (strict ``>``), as the grid holds it."""
    grid = torch.linspace(0, 1, MIX_GRID)
    return float(grid[int(torch.argmax(counts))])


def within_precision(scatter: torch.Tensor, count: float) -> torch.Tensor:
    """Q/D = pinv(S + tr(S)/(N − 1) · I) of a task's within-class scatter S of N unit features (§4.1): Q without its
    factor D, which :func:`discriminant` applies (the same scores; stored on a scale where rounding stays small)."""
    dim = scatter.shape[0]
    eye = torch.eye(dim, dtype=scatter.dtype, device=scatter.device)
    return torch.linalg.pinv(scatter + torch.trace(scatter) / (count - 1) * eye)


def merge_precision(
    old: torch.Tensor, new: torch.Tensor, old_means: torch.Tensor, new_means: torch.Tensor
) -> torch.Tensor:
    """(K/C) Q_old + ((C−K)/C) Q_new + (K(C−K)/C³) δδᵀ, δ the difference of the mean unit class means (§4.1), with
    every Q divided by D (:func:`within_precision`)."""
    known, total = old_means.shape[0], old_means.shape[0] + new_means.shape[0]
    delta = (old_means.mean(0) - new_means.mean(0))[:, None]
    between = known * (total - known) / total**3 * (delta @ delta.T) / old_means.shape[1]
    return known / total * old + (total - known) / total * new + between


def discriminant(unit_means: torch.Tensor, precision: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(G [C, D], b [C]): class c scores x̂ G_cᵀ + b_c, G_c = μ̂_c Q, b_c = ln(1/C) − ½ μ̂_c Q μ̂_cᵀ (§4.1), from
    ``precision`` = Q/D."""
    weight = unit_means.shape[1] * (unit_means @ precision)
    bias = -torch.log(torch.tensor(float(unit_means.shape[0]), dtype=weight.dtype)) - (weight * unit_means).sum(1) / 2
    return weight, bias.to(weight.device)


def safe_bridge(weight: torch.Tensor, original: torch.Tensor, old_moment: torch.Tensor, rank: int) -> torch.Tensor:
    """W₀ + (W − W₀) A Aᵀ, A the ``rank`` eigenvectors of the earlier tasks' mean second moment with the smallest
    eigenvalues (§3.3)."""
    _, vectors = torch.linalg.eigh(old_moment)
    basis = vectors[:, :rank]
    return original + ((weight - original) @ basis) @ basis.T


def bofa_scores(
    pooled: torch.Tensor,
    bridge: torch.Tensor,
    prototypes: torch.Tensor,
    gda_weight: torch.Tensor,
    gda_bias: torch.Tensor,
    stat: float,
) -> torch.Tensor:
    """stat · (x̂ Gᵀ + b) + (1 − stat) · n(W_fus x) qᵀ (§4.4), in ``pooled``'s dtype."""
    dtype = pooled.dtype
    features = F.normalize(pooled @ bridge.to(dtype).T, dim=-1)
    update = features @ prototypes.to(dtype).T
    gda = F.normalize(pooled, dim=-1) @ gda_weight.to(dtype).T + gda_bias.to(dtype)
    return stat * gda + (1 - stat) * update


@register
class BOFA(Learner):
    """BOFA (AAAI 2026): CLIP's image projection tuned in a subspace orthogonal to old tasks; hybrid prototypes."""

    name = "bofa"
    default_lr = {"bofa": 0.05}
    # the official exps/bofa.json (docs/specs/bofa.md §5): SGD 0.9, weight decay 0.05, cosine over 15 epochs to 0
    recipe = {
        **LAMDA_SGD,
        "epochs": 15,
        "batch_size": 128,
        "memory_size": 0,
    }

    @dataclass(frozen=True)
    class Config:
        bofa: BOFAConfig = section(BOFAConfig)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        original = self._original()
        embed, width = original.shape
        self.weight = nn.Parameter(original.clone().contiguous())  # W, E x D, starts as CLIP's projection (§2)
        f64 = {"dtype": torch.float64, "device": self.device}
        self.register_buffer("fused_sum", torch.zeros(embed, width, **f64))  # Σ_t W_t (§4.2)
        self.register_buffer("tasks_fused", torch.zeros((), dtype=torch.long, device=self.device))
        self.register_buffer("moment_sum", torch.zeros(width, width, **f64))  # Σ_j M_j of the ended tasks (§4.1)
        self.register_buffer("means", torch.empty(0, width, **f64))  # μ_c
        self.register_buffer("unit_means", torch.empty(0, width, **f64))  # μ̂_c
        self.register_buffer("precision", torch.zeros(width, width, **f64))  # Q / D
        self.register_buffer("mix", torch.zeros((), **f64))  # λ (§4.3)
        self.register_buffer("text_train", torch.empty(0, embed), persistent=False)  # n(τ_c), first template
        self.register_buffer("text_test", torch.empty(0, embed), persistent=False)  # τ̄_c, every template
        self._features: torch.Tensor | None = None  # the task's pooled x, by image position
        self._train_prototypes: torch.Tensor | None = None
        self._cache: dict[str, torch.Tensor] = {}

    @property
    def settings(self) -> BOFAConfig:
        return self.config.bofa

    def _original(self) -> torch.Tensor:
        """W₀ = CLIP's projection, transposed (E x D)."""
        return widen(self.backbone.model.visual.proj.detach().T)

    def _pool(self, class_token: torch.Tensor) -> torch.Tensor:
        """x: the last block's class token through CLIP's final layer norm (``visual_forward_``, §2)."""
        return widen(self.backbone.model.visual.ln_post(class_token))

    # ---- a task ---------------------------------------------------------------------------------
    @torch.no_grad()
    def begin_task(self, task: Task, data: TaskData) -> None:
        super().begin_task(task, data)
        self._cache = {}
        features, labels = self._pooled_task(data)
        self._features = features
        self._add_statistics(task, features, labels)
        self._encode_texts()
        image = self._image_centres()
        if float(self.mix) == 0:  # searched at the first task, and again while the search says 0 (§4.3)
            fused = self._fused().to(features.dtype)
            counts = mix_counts(F.normalize(features @ fused.T, dim=-1), labels, image.to(fused.dtype), self.text_train)
            self.mix.fill_(chosen_mix(counts))
        self._train_prototypes = hybrid_prototypes(image.to(features.dtype), self.text_train, float(self.mix))

    def _pooled_task(self, data: TaskData) -> tuple[torch.Tensor, torch.Tensor]:
        """x of every training image of the task (this process's shard) and its label, rows by position."""
        features = torch.empty(data.size, self.weight.shape[1], dtype=self.weight.dtype, device=self.device)
        labels = torch.empty(data.size, dtype=torch.long, device=self.device)
        for batch in data.batches():
            pooled = self._pool(self.backbone.encode_image(batch.images, output="class_token"))
            features[batch.index], labels[batch.index] = pooled.to(features.dtype), batch.labels
        return features, labels

    def _add_statistics(self, task: Task, features: torch.Tensor, labels: torch.Tensor) -> None:
        """μ_c, μ̂_c of the task's classes and the merged precision Q (§4.1), exact over a run's processes."""
        x = features.double()
        unit = F.normalize(x, dim=-1)
        means = class_means(x, labels, task.labels)
        unit_means = class_means(unit, labels, task.labels)
        centred = unit - unit_means[labels - task.start]
        scatter = all_sum(centred.T @ centred)
        count = float(all_sum(torch.tensor(float(len(labels)), dtype=torch.float64)))
        new = within_precision(scatter, count)
        if len(self.unit_means):
            new = merge_precision(self.precision, new, self.unit_means, unit_means)
        self.precision = new
        self.means = torch.cat([self.means, means])
        self.unit_means = torch.cat([self.unit_means, unit_means])

    def _image_centres(self) -> torch.Tensor:
        """m_c = μ_c P₀ of every seen class (``get_cls_center``, §3.1), float64."""
        return self.means[: self.num_seen] @ self._original().double().T

    def parameter_groups(self) -> list[dict]:
        return [{"name": "bofa", "params": [self.weight]}]

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        pooled = self._features[batch.index]
        with torch.autocast(pooled.device.type, enabled=False):  # a small fp32 map, as the official code runs
            features = F.normalize(pooled @ self.weight.T.to(pooled.dtype), dim=-1)
            logits = self._log_scale() * features @ self._train_prototypes.to(pooled.dtype).T
            ce = F.cross_entropy(logits, batch.labels)
        return {"ce": ce, "loss": ce}

    def _log_scale(self) -> float:
        """CLIP's ``logit_scale`` parameter as the official code reads it: the log of the scale (§3.1, §6 item 5)."""
        return float(self.backbone.model.logit_scale)

    @torch.no_grad()
    def end_task(self, task: Task, data: TaskData) -> None:
        weight, original = self.weight.detach().double(), self._original().double()
        ended = int(self.tasks_fused)
        bridge = weight if ended == 0 else safe_bridge(weight, original, self.moment_sum / ended, self.settings.rank)
        self.fused_sum += bridge
        self.tasks_fused += 1
        x = self._features.double()
        count = float(all_sum(torch.tensor(float(len(x)), dtype=torch.float64)))
        eye = torch.eye(x.shape[1], dtype=torch.float64, device=x.device)
        self.moment_sum += all_sum(x.T @ x) / (count - 1) + MOMENT_RIDGE * eye
        self._features = self._train_prototypes = None
        self._refresh()

    # ---- inference and restoring ---------------------------------------------------------------------
    def _fused(self) -> torch.Tensor:
        """W_fus: the mean of the ended tasks' bridges; CLIP's projection before any (§4.2)."""
        ended = int(self.tasks_fused)
        return self._original() if ended == 0 else (self.fused_sum / ended).to(self.weight.dtype)

    def _refresh(self) -> None:
        """The test prototypes, the averaged bridge and the discriminant of the classes seen (§4.4)."""
        seen = self.num_seen
        dtype = self.weight.dtype
        prototypes = hybrid_prototypes(
            self._image_centres().to(dtype), self.text_test[:seen].to(dtype), float(self.mix)
        )
        weight, bias = discriminant(self.unit_means[:seen], self.precision)
        self._cache = {
            "bridge": self._fused(),
            "prototypes": prototypes,
            "weight": weight.to(dtype),
            "bias": bias.to(dtype),
        }

    def frozen_kind(self) -> str:
        return f"stem@{self.backbone.num_blocks - 1}"  # the class token of the last block: x before the bridge (§9)

    def frozen_input(self, images: torch.Tensor) -> FrozenStem:
        return self.backbone.stem(images, self.backbone.num_blocks - 1)

    def _pooled_frozen(self, frozen: FrozenStem) -> torch.Tensor:
        return self._pool(self.backbone.encode_image(stem=frozen, output="class_token"))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """n(W_fus x): the averaged bridge's output, what the prototypes are compared with."""
        pooled = self._pooled_frozen(self.frozen_input(images))
        return F.normalize(pooled @ self._fused().to(pooled.dtype).T, dim=-1)

    @torch.no_grad()
    def predict_frozen(self, frozen: FrozenStem) -> torch.Tensor:
        if not self._cache:
            self._refresh()
        c = self._cache
        pooled = self._pooled_frozen(frozen)
        scores = bofa_scores(pooled, c["bridge"], c["prototypes"], c["weight"], c["bias"], self.settings.stat)
        return stable_exp(scores)

    def after_restore(self) -> None:
        for task in self.tasks:  # task by task, as during training: the same numbers to the last bit
            self._encode_texts(task.stop)
        self._refresh()

    @torch.no_grad()
    def _encode_texts(self, stop: int | None = None) -> None:
        """n(τ_c) of the first template and τ̄_c of all templates, for classes not yet encoded (§3.1, §4.4)."""
        names = self.class_names[self.text_train.shape[0] : self.num_seen if stop is None else stop]
        if not names:
            return
        templates = self.settings.templates
        first = F.normalize(widen(self.backbone.encode_texts([templates[0].format(n) for n in names])), dim=-1)
        every = widen(self.backbone.encode_texts([t.format(n) for n in names for t in templates]))
        every = F.normalize(every.view(len(names), len(templates), -1), dim=-1).mean(1)
        self.text_train = torch.cat([self.text_train, first.to(self.text_train)])
        self.text_test = torch.cat([self.text_test, F.normalize(every, dim=-1).to(self.text_test)])
