"""SECA and SECA++: semantic-enriched continual adaptation of a frozen CLIP (spec §2-§7).

He, Cheng, Xu, Wang, Wang, "Harnessing Textual Semantic Priors for Knowledge Transfer and Refinement in
CLIP-Driven Continual Learning", AAAI 2026 (arXiv 2508.01579).

SECA is H-PEFT (adapters + per-task prompts) plus two modules that use what the text encoder knows:
SG-AKT (sg_akt.py) distils from a pool of earlier adapters, weighting each by the textual relevance of
the image's class; SE-VPR (se_vpr.py) refines frozen-CLIP class prototypes with the classes' text
affinities and serves as a visual classifier beside the text one. SECA++ adds Gaussian pseudo-feature
replay (replay.py). Every variant the paper ablates is a config switch (docs/method.md):

    L = L_ce-T + L_ce-V + L_reg + L_agg + beta_s * L_SG-AKT  (+ L_gs for SECA++),  beta_s = beta * (s - 1)
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..clip.backbone import FrozenStem
from ..data.scenario import Task
from ..errors import SecaError
from .base import Batch, TaskData, register
from .h_peft import HPEFT
from .inference import stable_exp, text_branch
from .precision import widen
from .replay import ClassGaussians, class_means, class_statistics
from .se_vpr import PrototypeRefiner, prototype_drift
from .sg_akt import AdapterPool, RelevanceAggregator, distillation_kl

TEACHERS = ("none", "clip", "vanilla", "avg", "sg-akt")
BRANCHES = ("hybrid", "text", "visual")
VISUAL_CLASSIFIERS = ("se-vpr", "centroid-clip", "centroid-adapted", "linear")


def _check(value: str, choices: tuple[str, ...], key: str) -> None:
    if value not in choices:
        raise SecaError(f"method.{key} must be one of {', '.join(choices)}; got '{value}'")


def _mean_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: Optional[torch.Tensor]) -> torch.Tensor:
    """The cross-entropy averaged over the rows, each counting ``weights[i]`` times (all once if None)."""
    if weights is None:
        return F.cross_entropy(logits, targets)
    return (F.cross_entropy(logits, targets, reduction="none") * weights).sum() / weights.sum()


@register
class SECA(HPEFT):
    name = "seca"
    replay = False  # SECA++ sets this

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        c = self.config
        _check(c.sg_akt.teacher, TEACHERS, "sg_akt.teacher")
        _check(c.classifier.branches, BRANCHES, "classifier.branches")
        _check(c.classifier.visual, VISUAL_CLASSIFIERS, "classifier.visual")
        if c.classifier.hybrid_max not in ("image", "batch"):
            raise SecaError(f"method.classifier.hybrid_max must be image or batch; got '{c.classifier.hybrid_max}'")
        dim, width = self.backbone.embed_dim, self.backbone.vision_width
        teacher, visual = c.sg_akt.teacher, c.classifier.visual if c.classifier.branches != "text" else None

        # SG-AKT (spec §3): a pool of snapshots for the pool-based teachers, the relevance network for SG-AKT.
        self.pool = (AdapterPool(c.sg_akt.pool_size, c.sg_akt.eviction, c.sg_akt.utility_momentum,
                                 c.sg_akt.teacher_dropout) if teacher in ("vanilla", "avg", "sg-akt") else None)
        self.aggregator = RelevanceAggregator(dim, width, c.sg_akt.relevance) if teacher == "sg-akt" else None
        # The visual classifier (spec §4, §6): SE-VPR's refiner, or a linear head, or plain centroids.
        self.visual_classifier = visual
        self.refiner = PrototypeRefiner(dim, c.se_vpr.gamma) if visual == "se-vpr" else None
        self.linear_heads = nn.ParameterList() if visual == "linear" else None
        needs_stats = self.replay or visual == "centroid-adapted"
        self.gaussians = ClassGaussians(dim) if needs_stats else None
        self.register_buffer("raw_prototypes", torch.empty(0, dim))  # frozen-CLIP class means, normalised
        self.register_buffer("adapted_means", torch.empty(0, dim))  # adapted class means (centroid-adapted)
        self.register_buffer("stored_prototypes", torch.empty(0, dim))  # the visual classifier, normalised

        # Fixed within a task, computed in begin_task (spec §7b); never saved.
        self._teacher_cache: Optional[torch.Tensor] = None
        self._earlier_prompt_text: Optional[torch.Tensor] = None
        self._replay_rng: Optional[torch.Generator] = None

    # ---- what is used -------------------------------------------------------------------------
    @property
    def teacher(self) -> str:
        return self.config.sg_akt.teacher

    @property
    def caches_teachers(self) -> bool:
        s = self.config.sg_akt
        return s.cache_teachers and not (s.teacher_dropout and self.teacher in ("vanilla", "avg", "sg-akt"))

    @property
    def needs_frozen_features(self) -> bool:
        return self.refiner is not None or self.visual_classifier == "centroid-clip" or self.teacher == "clip"

    # ---- the protocol ---------------------------------------------------------------------------
    def begin_task(self, task: Task, data: TaskData) -> None:
        super().begin_task(task, data)  # a new prompt, then _precompute
        if self.pool is not None:
            self.pool.reset_utility()
        if self.aggregator is not None and self.config.sg_akt.reset_aggregator and task.index > 0:
            self.aggregator.reset_parameters(self.task_rng(task, stream=3))
        if self.linear_heads is not None:
            for head in self.linear_heads:
                head.requires_grad_(False)
            bound = 1.0 / self.backbone.embed_dim ** 0.5  # nn.Linear's default initialisation
            weight = torch.empty(task.num_classes, self.backbone.embed_dim).uniform_(
                -bound, bound, generator=self.task_rng(task, stream=1))
            self.linear_heads.append(nn.Parameter(weight.to(self.device)))
        if self.replay:
            self._replay_rng = self.task_rng(task, stream=2)

    @torch.no_grad()
    def _precompute(self, task: Task, data: TaskData) -> None:
        """One pass over the task's images (spec §7b): their frozen stems, frozen-CLIP class means and
        teacher features; and the old prompts' text features of the new classes."""
        was_training = self.training
        self.eval()
        if task.index > 0 and self.teacher == "sg-akt":
            # S^(i) of the current classes under every earlier (frozen) prompt: [prompts - 1, classes, E]
            self._earlier_prompt_text = self.frozen_text(len(self.prompts) - 1, task.stop)[:, task.start:]
        cache_teachers = task.index > 0 and self.teacher != "none" and self.caches_teachers
        if self.needs_frozen_features or cache_teachers or self.keeps_stems(data):
            frozen, teachers, labels = [], [], []
            for batch, stem in self.stem_pass(data):
                if self.needs_frozen_features:
                    frozen.append(widen(self.backbone.encode_image(stem=stem)))
                if cache_teachers and self.teacher != "clip":
                    teachers.append(self._teacher_inputs(stem))
                labels.append(batch.labels)
            if self.needs_frozen_features:
                frozen = torch.cat(frozen)
                means = class_means(frozen, torch.cat(labels), task.labels)
                self.raw_prototypes = torch.cat([self.raw_prototypes, F.normalize(means, dim=-1)])
                if cache_teachers and self.teacher == "clip":
                    teachers = [F.normalize(frozen, dim=-1)]
            self._teacher_cache = torch.cat(teachers) if cache_teachers else None
        self.train(was_training)

    def _teacher_inputs(self, stem: FrozenStem) -> torch.Tensor:
        """Per image (given by its frozen stem): the frozen-CLIP feature (``clip``) or every snapshot's class
        token V^(p) ``[B, P, W]``, normalised. No gradient.

        The snapshots run together, stacked in one batch (a bounded number of rows at a time), unless
        their dropout is on (``teacher_dropout``): then one after another, as the reference draws it.
        """
        with torch.no_grad():
            if self.teacher == "clip":
                return F.normalize(widen(self.backbone.encode_image(stem=stem)), dim=-1)
            members = list(self.pool.members)
            if any(member.training for member in members):
                tokens = torch.stack([self.backbone.encode_image(stem=stem, adapters=member, output="class_token")
                                      for member in members], dim=1)
            else:
                tokens = self.backbone.stacked_class_tokens(stem, members)
            return F.normalize(widen(tokens), dim=-1)

    def parameter_groups(self) -> list[dict]:
        groups = super().parameter_groups()
        if self.aggregator is not None:
            groups.append({"name": "sg_akt", "params": list(self.aggregator.parameters())})
        visual = list(self.refiner.parameters()) if self.refiner is not None else []
        if self.linear_heads is not None:
            visual.append(self.linear_heads[-1])
        if visual:
            groups.append({"name": "se_vpr", "params": visual})
        return groups

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        task, c = self.task, self.config
        targets = batch.labels - task.start
        scale = self.ce_scale
        stem = self.batch_stem(batch)
        features = self.image_features(stem=stem)
        # Z: every seen class under the current prompt (SE-VPR and replay need all; else only the current)
        first = 0 if (self.refiner is not None or self.replay) else task.start
        text = self.class_text(self.prompts.current, first, task.stop)
        current_text = text[task.start - first:]

        losses = {"ce_text": F.cross_entropy(scale * features @ current_text.T, targets)}
        prototypes = None
        if self.refiner is not None:
            prototypes = self.refiner(self.raw_prototypes[: task.stop], text)
            losses["ce_visual"] = F.cross_entropy(scale * features @ prototypes[task.start:].T.to(features), targets)
            if c.se_vpr.regularize and task.index > 0:
                losses["reg"] = prototype_drift(self.stored_prototypes[: task.start], prototypes[: task.start])
        elif self.linear_heads is not None:
            head = F.normalize(self.linear_heads[-1], dim=-1)
            losses["ce_visual"] = F.cross_entropy(scale * features @ head.T.to(features), targets)

        kd_weight = 0.0
        if self.teacher != "none" and task.index > 0:
            teacher = self._teacher_feature(batch, stem, current_text, targets, losses)
            losses["kd"] = distillation_kl(features, teacher, current_text, c.sg_akt.temperature)
            kd_weight = c.sg_akt.beta * task.index  # beta_s = beta (s - 1)
        if self.replay and task.index > 0:
            losses["replay"] = self._replay_loss(features, batch.labels, text, prototypes, batch.share)

        total = sum(v for k, v in losses.items() if k != "kd") + kd_weight * losses.get("kd", 0.0)
        return {"loss": total, **{k: v.detach() for k, v in losses.items()}}

    def _teacher_feature(self, batch: Batch, stem: FrozenStem, current_text: torch.Tensor, targets: torch.Tensor,
                         losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """The normalised projected teacher feature of each image (adds L_agg for SG-AKT)."""
        c = self.config.sg_akt
        inputs = self._teacher_cache[batch.index] if self._teacher_cache is not None else self._teacher_inputs(stem)
        if self.teacher == "clip":
            return inputs
        if self.teacher == "vanilla":
            token = inputs[:, -1]  # the most recent snapshot
        elif self.teacher == "avg":
            token = inputs.mean(dim=1)
        else:
            # semantic vectors S^(i): the image's class under every task prompt, the current one with gradient
            semantic = current_text[targets].unsqueeze(1)
            if c.detach_query:
                semantic = semantic.detach()
            if self._earlier_prompt_text is not None:
                semantic = torch.cat([self._earlier_prompt_text[:, targets].transpose(0, 1).to(semantic), semantic], 1)
            token, member_weights = self.aggregator(semantic, inputs)
            self.pool.update_utility(member_weights)
        teacher = F.normalize(self.backbone.project_class_token(token.to(current_text.dtype)), dim=-1)
        if self.teacher == "sg-akt" and c.agg_loss:
            logits = self.ce_scale * teacher @ current_text.detach().T
            losses["agg"] = F.cross_entropy(logits, targets)
        return teacher

    def _replay_loss(self, features: torch.Tensor, labels: torch.Tensor, text: torch.Tensor,
                     prototypes: Optional[torch.Tensor], share: float = 1.0) -> torch.Tensor:
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
        if self.pool is not None:
            self.pool.add(self.adapters.frozen_copy(), task.index)
        if self.gaussians is not None:
            self._store_statistics(task, data)
        self._store_prototypes(task)
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
        means, covariances = class_statistics(torch.cat(features), torch.cat(labels), task.labels,
                                              self.config.replay.covariance_eps)
        self.gaussians.add(means, covariances)
        self.adapted_means = torch.cat([self.adapted_means, F.normalize(means.to(self.adapted_means.dtype), dim=-1)])

    def _store_prototypes(self, task: Task) -> None:
        """The visual classifier after ``task`` (spec §4): refined prototypes of the new classes (all of
        them for SECA++), or centroids, or the linear head's normalised weights."""
        if self.visual_classifier is None:
            return
        if self.visual_classifier == "se-vpr":
            text = self.frozen_text(len(self.prompts), task.stop)[-1]  # the finished prompt; kept for inference
            refined = self.refiner(self.raw_prototypes[: task.stop], text)
            keep = refined if self.replay else refined[task.start:]
            base = self.stored_prototypes[:0] if self.replay else self.stored_prototypes
            self.stored_prototypes = torch.cat([base, keep.to(base)])
        elif self.visual_classifier == "centroid-clip":
            self.stored_prototypes = self.raw_prototypes[: task.stop].clone()
        elif self.visual_classifier == "centroid-adapted":
            self.stored_prototypes = self.adapted_means[: task.stop].clone()
        else:
            head = F.normalize(self.linear_heads[-1].detach(), dim=-1)
            self.stored_prototypes = torch.cat([self.stored_prototypes, head.to(self.stored_prototypes)])

    # ---- saving and restoring ------------------------------------------------------------------
    def structure(self) -> dict:
        return {**super().structure(), "pool_sources": list(self.pool.sources) if self.pool is not None else []}

    def rebuild(self, structure: dict) -> None:
        super().rebuild(structure)
        if self.pool is not None:
            while len(self.pool) < len(structure["pool_sources"]):
                self.pool.members.append(self.adapters.frozen_copy())
            self.pool.sources = list(structure["pool_sources"])
            self.pool.train(self.training)
        if self.linear_heads is not None:
            for task in self.tasks[len(self.linear_heads):]:
                self.linear_heads.append(nn.Parameter(torch.empty(task.num_classes, self.backbone.embed_dim,
                                                                  device=self.device), requires_grad=False))

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
    """SECA with Gaussian pseudo-feature replay of old classes (spec §7)."""

    name = "seca++"
    replay = True
