"""SECA and SECA++: semantic-enriched continual adaptation of a frozen CLIP (spec §2-§7).

He, Cheng, Xu, Wang, Wang, "Harnessing Textual Semantic Priors for Knowledge Transfer and Refinement in
CLIP-Driven Continual Learning", AAAI 2026 (arXiv 2508.01579).

SECA is H-PEFT (adapters + per-task prompts) plus two modules that use what the text encoder knows: SG-AKT
distils from a pool of earlier adapters, weighting each by the textual relevance of the image's class
(seca_parts/teachers.py, the network in seca_parts/sg_akt.py); SE-VPR refines frozen-CLIP class prototypes with
the classes' text affinities and serves as a visual classifier beside the text one (seca_parts/visual_heads.py,
the network in seca_parts/se_vpr.py). SECA++ adds Gaussian pseudo-feature replay (the class statistics of
_statistics.py, and ``ReplayConfig`` below). The paper's ablations choose the teacher
(``method.sg_akt.teacher``) and the visual head (``method.classifier.visual``); docs/method.md lists them:

    L = L_ce-T + L_ce-V + L_reg + L_agg + beta_s * L_SG-AKT  (+ L_gs for SECA++),  beta_s = beta * (s - 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..clip.backbone import FrozenStem
from ..config import ABOVE_ZERO, FRACTION, at_least, one_of, one_of_registered, section, setting
from ..data.scenario import Task
from ._precision import widen
from ._scores import stable_exp
from ._statistics import ClassGaussians, class_means, class_statistics
from .base import Batch, TaskData, register
from .h_peft import HPEFT, PromptClassifierConfig, text_branch
from .seca_parts.se_vpr import SEVPRConfig
from .seca_parts.sg_akt import distillation_kl
from .seca_parts.teachers import TEACHERS, SGAKTConfig, Teacher
from .seca_parts.visual_heads import VISUAL_HEADS, VisualHead


@dataclass(frozen=True)
class SECAClassifierConfig(PromptClassifierConfig):
    """How classes are scored at inference (spec §6)."""

    branches: str = setting("hybrid", "`hybrid`, `text` or `visual`", one_of("hybrid", "text", "visual"))
    visual: str = setting(
        "se-vpr", "the visual branch ([method.md](method.md#se-vpr))", one_of_registered(VISUAL_HEADS)
    )
    text_weight: float = setting(0.5, "weight of the text branch in the hybrid score", FRACTION)


@dataclass(frozen=True)
class ReplayConfig:
    """Gaussian pseudo-feature replay of SECA++ (spec §7)."""

    samples_per_class: int = setting(10, "SECA++: pseudo-features drawn per old class per step", at_least(1))
    stats_dropout: bool = setting(
        False, "SECA++: compute class statistics with adapter dropout active, as the reference"
    )
    covariance_eps: float = setting(1e-4, "SECA++: added to the covariance diagonal", ABOVE_ZERO)


def _mean_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """The cross-entropy averaged over the rows, each counting ``weights[i]`` times (all once if None)."""
    if weights is None:
        return F.cross_entropy(logits, targets)
    return (F.cross_entropy(logits, targets, reduction="none") * weights).sum() / weights.sum()


@register
class SECA(HPEFT):
    """SECA: H-PEFT with SG-AKT distillation and SE-VPR prototypes, a hybrid text and visual classifier."""

    name = "seca"
    replay = False  # SECA++ sets this

    @dataclass(frozen=True)
    class Config(HPEFT.Config):
        classifier: SECAClassifierConfig = section(SECAClassifierConfig)
        sg_akt: SGAKTConfig = section(SGAKTConfig)
        se_vpr: SEVPRConfig = section(SEVPRConfig)
        replay: ReplayConfig = section(ReplayConfig)

    @classmethod
    def learning_rates(cls) -> dict[str, float]:
        rates = super().learning_rates()
        for _, part in [*TEACHERS.items(), *VISUAL_HEADS.items()]:
            rates.update(part.default_lr)
        return rates

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        c, dim = self.config, self.backbone.embed_dim
        self.teacher: Teacher = TEACHERS[c.sg_akt.teacher](self.backbone, c.sg_akt)
        self.visual: VisualHead | None = (
            VISUAL_HEADS[c.classifier.visual](self.backbone, c) if c.classifier.branches != "text" else None
        )
        needs_statistics = self.replay or (self.visual is not None and self.visual.needs_adapted_means)
        self.gaussians = ClassGaussians(dim) if needs_statistics else None
        self.register_buffer("raw_prototypes", torch.empty(0, dim))  # frozen-CLIP class means, normalised
        self.register_buffer("adapted_means", torch.empty(0, dim))  # adapted class means, normalised

        # Fixed within a task, computed in begin_task (spec §7b); never saved.
        self._teacher_cache: torch.Tensor | None = None
        self._earlier_prompt_text: torch.Tensor | None = None
        self._replay_rng: torch.Generator | None = None

    # ---- what is used -------------------------------------------------------------------------
    @property
    def caches_teachers(self) -> bool:
        return self.config.sg_akt.cache_teachers and self.teacher.cacheable

    @property
    def needs_frozen_features(self) -> bool:
        return self.teacher.needs_frozen_features or (self.visual is not None and self.visual.needs_frozen_features)

    @property
    def stored_prototypes(self) -> torch.Tensor:
        """The visual classifier's prototypes of every seen class (empty without a visual branch)."""
        return self.visual.prototypes if self.visual is not None else self.raw_prototypes[:0]

    # ---- the protocol ---------------------------------------------------------------------------
    def begin_task(self, task: Task, data: TaskData) -> None:
        super().begin_task(task, data)  # a new prompt, then _precompute
        generator = lambda stream: self.task_rng(task, stream=stream)  # noqa: E731
        self.teacher.begin_task(task, generator)
        if self.visual is not None:
            self.visual.begin_task(task, generator)
        if self.replay:
            self._replay_rng = self.task_rng(task, stream=2)

    @torch.no_grad()
    def _precompute(self, task: Task, data: TaskData) -> None:
        """One pass over the task's images (spec §7b): their frozen stems, frozen-CLIP class means and
        teacher inputs; and the old prompts' text features of the new classes."""
        was_training = self.training
        self.eval()
        if task.index > 0 and self.teacher.reads_semantics:
            # S^(i) of the current classes under every earlier (frozen) prompt: [prompts - 1, classes, E]
            self._earlier_prompt_text = self.frozen_text(len(self.prompts) - 1, task.stop)[:, task.start :]
        cache_teachers = task.index > 0 and self.teacher.distils and self.caches_teachers
        if self.needs_frozen_features or cache_teachers or self.keeps_stems(data):
            frozen, teachers, labels = [], [], []
            for batch, stem in self.stem_pass(data):
                features = widen(self.backbone.encode_image(stem=stem)) if self.needs_frozen_features else None
                if features is not None:
                    frozen.append(features)
                if cache_teachers:
                    teachers.append(self.teacher_inputs(stem, features))
                labels.append(batch.labels)
            if self.needs_frozen_features:
                means = class_means(torch.cat(frozen), torch.cat(labels), task.labels)
                self.raw_prototypes = torch.cat([self.raw_prototypes, F.normalize(means, dim=-1)])
            self._teacher_cache = torch.cat(teachers) if cache_teachers else None
        self.train(was_training)

    def teacher_inputs(self, stem: FrozenStem, frozen: torch.Tensor | None = None) -> torch.Tensor:
        """The teacher's inputs of each image of ``stem`` (``frozen``: their frozen-CLIP features, if computed)."""
        return self.teacher.inputs(stem, frozen)

    def parameter_groups(self) -> list[dict]:
        groups = super().parameter_groups() + self.teacher.parameter_groups()
        return groups + (self.visual.parameter_groups() if self.visual is not None else [])

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        task, c, scale = self.task, self.config, self.ce_scale
        targets = batch.labels - task.start
        stem = self.batch_stem(batch)
        features = self.image_features(stem=stem)  # f(x): the adapted image features
        # Z: the current prompt's text features (of every seen class where SE-VPR or replay reads them)
        every_class = self.replay or (self.visual is not None and self.visual.needs_all_text)
        first = 0 if every_class else task.start
        text = self.class_text(self.prompts.current, first, task.stop)
        current_text = text[task.start - first :]

        losses = {"ce_text": F.cross_entropy(scale * features @ current_text.T, targets)}  # L_ce-T
        prototypes = None
        if self.visual is not None:  # L_ce-V (and L_reg)
            prototypes = self.visual.losses(features, targets, text, self.raw_prototypes, task, scale, losses)
        kd_weight = 0.0
        if self.teacher.distils and task.index > 0:  # L_SG-AKT (and L_agg)
            teacher = self._teacher_feature(batch, stem, current_text, targets, losses)
            losses["kd"] = distillation_kl(features, teacher, current_text, c.sg_akt.temperature)
            kd_weight = c.sg_akt.beta * task.index  # beta_s = beta (s - 1)
        if self.replay and task.index > 0:  # L_gs of SECA++
            losses["replay"] = self._replay_loss(features, batch.labels, text, prototypes, batch.share)

        total = sum(v for k, v in losses.items() if k != "kd") + kd_weight * losses.get("kd", 0.0)
        return {"loss": total, **{k: v.detach() for k, v in losses.items()}}

    def _teacher_feature(
        self,
        batch: Batch,
        stem: FrozenStem,
        current_text: torch.Tensor,
        targets: torch.Tensor,
        losses: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """The normalised projected teacher feature of each image (the teacher may add its own losses)."""
        inputs = self._teacher_cache[batch.index] if self._teacher_cache is not None else self.teacher_inputs(stem)
        semantic = self._semantic_vectors(current_text, targets) if self.teacher.reads_semantics else None
        return self.teacher.feature(inputs, semantic, current_text, targets, self.ce_scale, losses)

    def _semantic_vectors(self, current_text: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """S^(i): each image's class under every task prompt ``[B, prompts, E]``, the current one with gradient."""
        semantic = current_text[targets].unsqueeze(1)
        if self.config.sg_akt.detach_query:
            semantic = semantic.detach()
        if self._earlier_prompt_text is not None:
            semantic = torch.cat([self._earlier_prompt_text[:, targets].transpose(0, 1).to(semantic), semantic], 1)
        return semantic

    def _replay_loss(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        text: torch.Tensor,
        prototypes: torch.Tensor | None,
        share: float = 1.0,
    ) -> torch.Tensor:
        """L_gs of SECA++: draws from old classes' Gaussians join the (detached) batch, over all seen classes.

        The cross-entropy is a mean over the batch's images and the draws. When the batch is a ``share`` of
        the step's images (one process's part of a global batch), its images count ``1 / share`` each, so that
        the processes' weighted losses add up to the one-process mean (docs/distributed.md)."""
        r = self.config.replay
        draws, draw_labels = self.gaussians.sample(r.samples_per_class, self._replay_rng, num_classes=self.task.start)
        mixed = F.normalize(torch.cat([widen(features.detach()), draws.to(widen(features).dtype)]), dim=-1)
        targets = torch.cat([labels, draw_labels])
        weights = None
        if share != 1.0:
            weights = torch.ones(len(targets), device=mixed.device)
            weights[: len(labels)] = 1.0 / share
        loss = _mean_cross_entropy(self.ce_scale * mixed @ widen(text).T, targets, weights)
        if prototypes is not None:
            loss = loss + _mean_cross_entropy(self.ce_scale * mixed @ widen(prototypes).T, targets, weights)
        return loss

    @torch.no_grad()
    def end_task(self, task: Task, data: TaskData) -> None:
        self._teacher_cache = self._earlier_prompt_text = None
        was_training = self.training
        self.eval()
        self.teacher.end_task(task, self.adapters)
        if self.gaussians is not None:
            self._store_statistics(task, data)
        if self.visual is not None:
            finished = lambda: self.frozen_text(len(self.prompts), task.stop)[-1]  # noqa: E731 (kept for inference)
            self.visual.end_task(task, self.raw_prototypes, self.adapted_means, finished, every_class=self.replay)
        super().end_task(task, data)
        self.train(was_training)

    def _store_statistics(self, task: Task, data: TaskData) -> None:
        """Mean and covariance of the adapted features (projected, not normalised) of the task's classes."""
        self.adapters.train(self.config.replay.stats_dropout)
        features, labels = [], []
        for batch in data.batches():
            stem = self.batch_stem(batch)
            features.append(widen(self.backbone.encode_image(stem=stem, adapters=self.adapters)))
            labels.append(batch.labels)
        self.adapters.eval()
        means, covariances = class_statistics(
            torch.cat(features), torch.cat(labels), task.labels, self.config.replay.covariance_eps
        )
        self.gaussians.add(means, covariances)
        self.adapted_means = torch.cat([self.adapted_means, F.normalize(means.to(self.adapted_means.dtype), dim=-1)])

    # ---- saving and restoring ------------------------------------------------------------------
    def structure(self) -> dict:
        return {**super().structure(), "pool_sources": [], **self.teacher.structure()}

    def rebuild(self, structure: dict) -> None:
        super().rebuild(structure)
        self.teacher.rebuild(structure, self.adapters)
        if self.visual is not None:
            self.visual.rebuild(self.tasks)

    # Where the state of a checkpoint written before the teachers and heads were parts of their own lies now.
    MOVED = {
        "pool.": "teacher.pool.",
        "aggregator.": "teacher.aggregator.",
        "refiner.": "visual.refiner.",
        "linear_heads.": "visual.heads.",
        "stored_prototypes": "visual.prototypes",
    }

    def upgrade_state(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        upgraded = {}
        for name, value in tensors.items():
            old = next((prefix for prefix in self.MOVED if name.startswith(prefix)), None)
            if old is None:
                upgraded[name] = value
            elif self.visual is not None or not old.startswith("stored"):  # text-only models stored none
                upgraded[self.MOVED[old] + name[len(old) :]] = value
        return upgraded

    # ---- inference (spec §6) --------------------------------------------------------------------
    def scores_from_features(self, features: torch.Tensor) -> torch.Tensor:
        c = self.config.classifier
        t = self.config.temperature
        if c.branches == "text":
            return text_branch(features, self.inference_text_features(), t, c.hybrid_max)
        visual = stable_exp(t * features @ self.stored_prototypes.T.to(features), c.hybrid_max)
        if c.branches == "visual":
            return visual
        text = text_branch(features, self.inference_text_features(), t, c.hybrid_max)
        return c.text_weight * text + (1.0 - c.text_weight) * visual


@register
class SECAPlusPlus(SECA):
    """SECA++: SECA with Gaussian pseudo-feature replay of old classes (spec §7)."""

    name = "seca++"
    replay = True
