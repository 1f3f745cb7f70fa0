"""The visual branch of SECA's classifier (spec §4, §6): one class per value of ``method.classifier.visual``.

Each head keeps ``prototypes`` ``[seen classes, E]`` (normalised) that inference scores images against, and
may learn during a task (adding L_ce-V, and L_reg for SE-VPR). SE-VPR refines the frozen-CLIP class means with
the classes' text affinities; the other heads are the paper's ablations: the frozen-CLIP centroids, the
centroids of adapted features, and a linear head per task. A new head is one class here, registered with
:func:`visual_head`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...clip.backbone import ClipBackbone
from ...data.scenario import Task
from ...registry import Registry
from .se_vpr import PrototypeRefiner, prototype_drift

VISUAL_HEADS: Registry[type[VisualHead]] = Registry("visual head")
visual_head = VISUAL_HEADS.register  # class decorator: a head selectable as method.classifier.visual: <its name>


class VisualHead(nn.Module):
    """The interface: ``losses`` during a task's steps, ``end_task`` to store the prototypes inference uses.

    ``needs_frozen_features``: it reads the frozen-CLIP class means (``raw`` below). ``needs_adapted_means``: it
    reads the class means of adapted features, taken after each class's task. ``needs_all_text``: its loss reads
    the current prompt's text features of every seen class, not only the current ones. ``default_lr``: the
    learning rate of each parameter group it trains.
    """

    name: ClassVar[str] = ""
    needs_frozen_features: ClassVar[bool] = False
    needs_adapted_means: ClassVar[bool] = False
    needs_all_text: ClassVar[bool] = False
    default_lr: ClassVar[dict[str, float]] = {}

    def __init__(self, backbone: ClipBackbone, config: Any):
        super().__init__()
        self.dim = backbone.embed_dim
        self.config = config  # the method section
        self.register_buffer("prototypes", torch.empty(0, backbone.embed_dim))

    def begin_task(self, task: Task, generator: Callable[[int], torch.Generator]) -> None:
        """At a task's start; ``generator(stream)`` gives the task's seeded generators."""

    def losses(
        self,
        features: torch.Tensor,
        targets: torch.Tensor,
        text: torch.Tensor,
        raw: torch.Tensor,
        task: Task,
        scale: float,
        losses: dict[str, torch.Tensor],
    ) -> torch.Tensor | None:
        """Add this head's loss terms for a batch of normalised ``features`` (``targets`` within the task) to
        ``losses``; returns the prototypes of every seen class with their gradient, if it learns them.
        ``text``: the current prompt's text features (every seen class if ``needs_all_text``); ``raw``: the
        frozen-CLIP class means of every seen class."""
        return None

    def end_task(
        self,
        task: Task,
        raw: torch.Tensor,
        adapted_means: torch.Tensor,
        finished_text: Callable[[], torch.Tensor],
        every_class: bool,
    ) -> None:
        """Store the prototypes after ``task``. ``finished_text()``: the finished prompt's text features of every
        seen class; ``every_class``: recompute old classes' prototypes too (SECA++)."""
        raise NotImplementedError

    def parameter_groups(self) -> list[dict]:
        return []

    def rebuild(self, tasks: list[Task]) -> None:
        """Recreate the parameters that a saved state holds."""

    def _append(self, new: torch.Tensor, every_class: bool = False) -> None:
        base = self.prototypes[:0] if every_class else self.prototypes
        self.prototypes = torch.cat([base, new.to(base)])


@visual_head
class SEVPRHead(VisualHead):
    """SE-VPR: frozen-CLIP class means refined by the classes' text affinities (spec §4)."""

    name = "se-vpr"
    needs_frozen_features = True
    needs_all_text = True
    default_lr = {"se_vpr": 1e-3}

    def __init__(self, backbone: ClipBackbone, config: Any):
        super().__init__(backbone, config)
        self.refiner = PrototypeRefiner(backbone.embed_dim, config.se_vpr.gamma)

    def losses(self, features, targets, text, raw, task, scale, losses):
        prototypes = self.refiner(raw[: task.stop], text)  # ĉ, with gradient into the prompt through Z
        losses["ce_visual"] = F.cross_entropy(scale * features @ prototypes[task.start :].T.to(features), targets)
        if self.config.se_vpr.regularize and task.index > 0:  # L_reg: old classes' prototypes stay where they were
            losses["reg"] = prototype_drift(self.prototypes[: task.start], prototypes[: task.start])
        return prototypes

    def end_task(self, task, raw, adapted_means, finished_text, every_class) -> None:
        refined = self.refiner(raw[: task.stop], finished_text())
        self._append(refined if every_class else refined[task.start :], every_class)

    def parameter_groups(self) -> list[dict]:
        return [{"name": "se_vpr", "params": list(self.refiner.parameters())}]


@visual_head
class CentroidClipHead(VisualHead):
    """The normalised frozen-CLIP class means (the paper's "centroid of CLIP features")."""

    name = "centroid-clip"
    needs_frozen_features = True

    def end_task(self, task, raw, adapted_means, finished_text, every_class) -> None:
        self.prototypes = raw[: task.stop].clone()


@visual_head
class CentroidAdaptedHead(VisualHead):
    """The normalised class means of adapted features, each taken after its class's task."""

    name = "centroid-adapted"
    needs_adapted_means = True

    def end_task(self, task, raw, adapted_means, finished_text, every_class) -> None:
        self.prototypes = adapted_means[: task.stop].clone()


@visual_head
class LinearHead(VisualHead):
    """A linear head per task: a cosine classifier trained with L_ce-V, its normalised rows stored."""

    name = "linear"
    default_lr = {"se_vpr": 1e-3}

    def __init__(self, backbone: ClipBackbone, config: Any):
        super().__init__(backbone, config)
        self.heads = nn.ParameterList()

    def begin_task(self, task, generator) -> None:
        for head in self.heads:
            head.requires_grad_(False)
        bound = 1.0 / self.dim**0.5  # nn.Linear's default initialisation
        weight = torch.empty(task.num_classes, self.dim).uniform_(-bound, bound, generator=generator(1))
        self.heads.append(nn.Parameter(weight.to(self.prototypes.device)))

    def losses(self, features, targets, text, raw, task, scale, losses):
        head = F.normalize(self.heads[-1], dim=-1)
        losses["ce_visual"] = F.cross_entropy(scale * features @ head.T.to(features), targets)
        return None

    def end_task(self, task, raw, adapted_means, finished_text, every_class) -> None:
        self._append(F.normalize(self.heads[-1].detach(), dim=-1))

    def parameter_groups(self) -> list[dict]:
        return [{"name": "se_vpr", "params": [self.heads[-1]]}]

    def rebuild(self, tasks: list[Task]) -> None:
        for task in tasks[len(self.heads) :]:
            self.heads.append(
                nn.Parameter(
                    torch.empty(task.num_classes, self.dim, device=self.prototypes.device), requires_grad=False
                )
            )
