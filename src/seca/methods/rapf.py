"""RAPF: a linear adapter on CLIP's image embedding, Gaussian replay, text-guided separation, fused SVD updates.

Huang, Cao, Lu, Liu, "Class-Incremental Learning with CLIP: Adaptive Representation Adjustment and Parameter
Fusion", ECCV 2024 (arXiv 2407.14143); official code github.com/linlany/RAPF. docs/specs/rapf.md is the
specification this file implements, section by section (§ below), with the official code's defaults.

One 512 x 512 linear map A (no bias) acts on the frozen, un-normalised CLIP image embedding e(x); a class scores
``logit_scale * cos(A e(x), t_c)`` against its frozen text feature t_c. Each task trains A with cross-entropy on
the task's images and on pseudo-features drawn from stored Gaussians of old classes (§3.1), plus a hinge that
keeps samples of an old class nearer its own text than that of a new class whose text is close to it (§3.2).
After each task from the second, A's update is fused with its weight at the task's start in that weight's
singular basis (§4.2). Nothing trains inside CLIP, so e(x) is computed once per image (§9).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ABOVE_ZERO, TEMPLATE, at_least, one_of, section, setting
from ..data.scenario import Task
from ._precision import widen
from ._statistics import ClassGaussians, class_statistics
from .base import Batch, Learner, TaskData, register


@dataclass(frozen=True)
class RAPFConfig:
    """RAPF's settings (docs/specs/rapf.md §5; defaults: the official ImageNet-R 10-task configuration)."""

    template: str = setting("a good photo of a {}.", "RAPF: the text template of every class (§2)", TEMPLATE)
    threshold: float = setting(
        0.65,
        "RAPF: an old and a new class whose normalised text features are nearer than "
        "this (Euclidean) form a hard pair of the hinge (§3.2)",
        ABOVE_ZERO,
    )
    replay_classes_per_batch: int = setting(
        5,
        "RAPF: old classes replayed per batch, taken in turn from a list "
        "shuffled every epoch (§3.1; the official code: 5 on ImageNet-R)",
        at_least(1),
    )
    replay_samples_per_class: int = setting(
        10, "RAPF: pseudo-features per replayed class per batch (10 beta)", at_least(1)
    )
    hinge_samples_per_pair: int = setting(
        20, "RAPF: samples of the old class per hard pair per step (20 beta)", at_least(1)
    )
    hinge_margin: float = setting(0.1, "RAPF: the hinge's margin (§3.2)", at_least(0.0))
    shrinkage: bool = setting(
        True,
        "RAPF: sample from the covariance plus its mean diagonal on the diagonal and the "
        "mean non-zero off-diagonal entry off it (§3.1; off for CIFAR-100)",
    )
    covariance_eps: float = setting(1e-4, "RAPF: added to each class covariance's diagonal (§4.1)", ABOVE_ZERO)
    mix_bias: float = setting(
        0.7, "RAPF: the least fraction of an update entry kept by the fusion (§4.2)", at_least(0.0)
    )
    adapter_init: str = setting(
        "default",
        "RAPF: the adapter's initial weight: `default` (PyTorch's, as the official code) or `identity` (§6 item 3)",
        one_of("default", "identity"),
    )


def shrink_covariance(covariance: torch.Tensor) -> torch.Tensor:
    """Σ + mean(diag Σ) I + ō (11ᵀ − I), ō the mean of the non-zero off-diagonal entries (spec §3.1)."""
    dim = covariance.shape[-1]
    eye = torch.eye(dim, dtype=covariance.dtype, device=covariance.device)
    diagonal = torch.diagonal(covariance, dim1=-2, dim2=-1).mean(-1)
    off = covariance * (1 - eye)
    nonzero = (off != 0).sum((-2, -1)).clamp_min(1)
    off_mean = off.sum((-2, -1)) / nonzero
    return covariance + diagonal[..., None, None] * eye + off_mean[..., None, None] * (1 - eye)


def hard_pairs(old_text: torch.Tensor, new_text: torch.Tensor, threshold: float, first_new: int) -> torch.Tensor:
    """``[P, 2]`` (old label, new label) of every pair whose text features are nearer than ``threshold``."""
    distances = torch.cdist(old_text.float(), new_text.float())
    old, new = torch.nonzero(distances < threshold, as_tuple=True)
    return torch.stack([old, new + first_new], dim=1)


def fuse(old: torch.Tensor, new: torch.Tensor, bias: float) -> torch.Tensor:
    """The decomposed parameter fusion (spec §4.2), in float64: in the left singular basis U of ``old``, each entry
    of the update keeps the fraction min(|ΔP| / max |ΔP| + bias, 1) of itself."""
    old, new = old.double(), new.double()
    u, s, vh = torch.linalg.svd(old)
    moved = u.T @ new
    kept = s[:, None] * vh
    distance = (moved - kept).abs()
    mask = (distance / distance.max() + bias).clamp(max=1.0)
    return u @ (mask * moved + (1 - mask) * kept)


def hinge(features: torch.Tensor, text: torch.Tensor, pairs: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean of max(0, cos(ê, t_new) − cos(ê, t_old) + margin) over the samples ``features`` of each pair's old
    class (rows in pair order, as many per pair)."""
    per_pair = features.shape[0] // pairs.shape[0]
    pairs = pairs.repeat_interleave(per_pair, dim=0)
    unit = F.normalize(features, dim=-1)
    to_new = (unit * text[pairs[:, 1]]).sum(-1)
    to_old = (unit * text[pairs[:, 0]]).sum(-1)
    return (to_new - to_old + margin).clamp_min(0).mean()


@register
class RAPF(Learner):
    """RAPF (ECCV 2024): a linear adapter on CLIP's image embedding, Gaussian replay, text-guided hinge, SVD fusion."""

    name = "rapf"
    default_lr = {"rapf": 1e-3}
    renamed_lr = {"linear": "rapf"}  # its group's name before 0.2
    # the official ImageNet-R configuration (docs/specs/rapf.md §5): 15 epochs of batch 64, no weight decay
    recipe = {
        "epochs": 15,
        "batch_size": 64,
        "optimizer": "adam",
        "weight_decay": 0.0,
        "schedule": "multistep",
        "milestones": (4, 10),
        "gamma": 0.1,
    }

    @dataclass(frozen=True)
    class Config:
        rapf: RAPFConfig = section(RAPFConfig)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        dim = self.backbone.embed_dim
        self.linear = nn.Linear(dim, dim, bias=False).to(self.device)
        generator = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            if self.settings.adapter_init == "identity":
                self.linear.weight.copy_(torch.eye(dim))
            else:  # PyTorch's default: Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(dim), 1/sqrt(dim))
                bound = 1 / dim**0.5
                self.linear.weight.copy_(torch.empty(dim, dim).uniform_(-bound, bound, generator=generator))
        self.gaussians = ClassGaussians(dim).to(self.device)  # of the frozen embeddings, shrunk when sampled
        self.register_buffer("text_features", torch.empty(0, dim), persistent=False)
        self._features: torch.Tensor | None = None  # the task's frozen embeddings, by image position
        self._pairs = torch.empty(0, 2, dtype=torch.long)
        self._start_weight: torch.Tensor | None = None
        self._order = torch.empty(0, dtype=torch.long)
        self._seen = self._batch = 0
        self._generator: torch.Generator | None = None
        self._sampler: ClassGaussians | None = None
        self._size = 0

    @property
    def settings(self) -> RAPFConfig:
        return self.config.rapf

    # ---- a task ---------------------------------------------------------------------------------
    def begin_task(self, task: Task, data: TaskData) -> None:
        super().begin_task(task, data)
        self._encode_texts()
        self._features, self._size = self._embed_task(data), data.size
        old = task.start
        self._pairs = (
            hard_pairs(self.text_features[:old], self.text_features[old : task.stop], self.settings.threshold, old)
            if old
            else torch.empty(0, 2, dtype=torch.long, device=self.device)
        )
        self._start_weight = self.linear.weight.detach().clone() if old else None
        self._generator = self.task_rng(task, stream=1)
        self._seen, self._batch = 0, 0
        if old:
            self._sampler = ClassGaussians(self.backbone.embed_dim).to(self.device)  # the shrunk factors, once a task
            covariances = self.gaussians.cholesky @ self.gaussians.cholesky.transpose(1, 2)
            self._sampler.add(
                self.gaussians.means, shrink_covariance(covariances) if self.settings.shrinkage else covariances
            )

    @torch.no_grad()
    def _embed_task(self, data: TaskData) -> torch.Tensor:
        """e(x) of every training image of the task, once (§9): training never runs the image encoder."""
        return widen(data.frozen_embeddings(self.backbone)[0])

    def _image_features(self, batch: Batch) -> torch.Tensor:
        """e(x) of the batch's images, from those of the task."""
        return self._features[batch.index]

    def parameter_groups(self) -> list[dict]:
        return [{"name": "rapf", "params": [self.linear.weight]}]

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        task = self.task
        if self._seen == 0:  # an epoch begins: the old classes' turn order is shuffled (§3.1)
            self._order = torch.randperm(task.start, generator=self._generator)
            self._batch = 0
        self._seen = (self._seen + batch.labels.shape[0]) % self._size
        features, labels = self._image_features(batch), batch.labels
        edge = None
        if task.start:
            chosen = self._replayed_classes()
            draws, draw_labels = self._draw(chosen, self.settings.replay_samples_per_class)
            features, labels = torch.cat([features, draws]), torch.cat([labels, draw_labels])
            if len(self._pairs):
                edge, _ = self._draw(self._pairs[:, 0], self.settings.hinge_samples_per_pair)
        adapted = self.linear(torch.cat([features, edge]) if edge is not None else features)
        logits = self.backbone.logit_scale * F.normalize(adapted[: len(labels)], dim=-1) @ self.text_features.T
        ce = F.cross_entropy(logits, labels)
        losses = {"ce": ce}
        if edge is not None:
            losses["hinge"] = hinge(adapted[len(labels) :], self.text_features, self._pairs, self.settings.hinge_margin)
        losses["loss"] = sum(losses.values())
        return losses

    def _replayed_classes(self) -> torch.Tensor:
        """Batch b of an epoch replays the k old classes at positions b·k, b·k + 1, ... of the shuffled order."""
        k, old = self.settings.replay_classes_per_batch, self.task.start
        positions = (self._batch * k + torch.arange(k)) % old
        self._batch += 1
        return self._order[positions]

    def _draw(self, classes: torch.Tensor, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class`` pseudo-features of each of ``classes`` (in order; repeats allowed) and their labels."""
        classes = classes.to(self._sampler.means.device)
        noise = torch.randn(
            len(classes), per_class, self.backbone.embed_dim, generator=self._generator, dtype=torch.float64
        ).to(self._sampler.means.device)
        draws = self._sampler.means[classes, None, :] + noise @ self._sampler.cholesky[classes].transpose(1, 2)
        return draws.reshape(-1, draws.shape[-1]).float(), classes.repeat_interleave(per_class)

    @torch.no_grad()
    def end_task(self, task: Task, data: TaskData) -> None:
        labels = torch.empty(data.size, dtype=torch.long, device=self.device)
        for batch in data.batches():
            labels[batch.index] = batch.labels
        means, covariances = class_statistics(self._features, labels, task.labels, self.settings.covariance_eps)
        self.gaussians.add(means, covariances)
        if self._start_weight is not None:  # §4.2: the same on every process (the SVD is of the same weights)
            self.linear.weight.copy_(fuse(self._start_weight, self.linear.weight, self.settings.mix_bias))
        self._features = self._start_weight = None
        self._sampler = None

    # ---- inference and restoring ---------------------------------------------------------------------
    def frozen_kind(self) -> str:
        return "embedding"  # e(x): the linear adapter works on the frozen encoder's feature (§2)

    def adapted(self, frozen: torch.Tensor) -> torch.Tensor:
        """The normalised adapted feature A e(x) of frozen embeddings e(x) (§2): what a class's text is compared to."""
        return F.normalize(self.linear(widen(frozen)), dim=-1)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The normalised A e(x): the linear adapter's output on the frozen CLIP embedding."""
        return self.adapted(self.frozen_input(images))

    @torch.no_grad()
    def predict_frozen(self, frozen: torch.Tensor) -> torch.Tensor:
        adapted = self.adapted(frozen)
        logits = self.backbone.logit_scale * adapted @ self.text_features[: self.num_seen].T
        return (logits - logits.amax(dim=1, keepdim=True)).exp()  # per image: softmax up to its sum

    def after_restore(self) -> None:
        for task in self.tasks:  # task by task, as during training: the same numbers to the last bit
            self._encode_texts(task.stop)

    def _encode_texts(self, stop: int | None = None) -> None:
        names = self.class_names[self.text_features.shape[0] : self.num_seen if stop is None else stop]
        if names:
            texts = [self.settings.template.format(name) for name in names]
            with torch.no_grad():
                new = F.normalize(widen(self.backbone.encode_texts(texts)), dim=-1)
            self.text_features = torch.cat([self.text_features, new.to(self.text_features)])
