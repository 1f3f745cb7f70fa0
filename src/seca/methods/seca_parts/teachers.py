"""The teachers of SECA's distillation (spec §3): where the target of L_SG-AKT comes from.

One class per value of ``method.sg_akt.teacher``: none (sequential fine-tuning), the frozen zero-shot CLIP,
the newest adapter snapshot, the uniform mean of the pool, and SG-AKT's relevance-weighted mean of the pool.
A teacher turns an image's frozen stem into its *inputs* (a pure function of the image when no dropout runs,
so SECA keeps them for the whole task, spec §7b), and the inputs into the projected, normalised teacher
feature. A new teacher is one class here, registered with :func:`teacher`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...clip.backbone import ClipBackbone, FrozenStem
from ...config import ABOVE_ZERO, FRACTION, at_least, one_of, one_of_registered, setting
from ...data.scenario import Task
from ...peft.adapter import AdapterSet
from ...registry import Registry
from .._precision import widen
from .sg_akt import AdapterPool, RelevanceAggregator

TEACHERS: Registry[type[Teacher]] = Registry("teacher")
teacher = TEACHERS.register  # class decorator: a teacher selectable as method.sg_akt.teacher: <its name>


@dataclass(frozen=True)
class SGAKTConfig:
    """Semantic-guided adaptive knowledge transfer (spec §3)."""

    teacher: str = setting(
        "sg-akt",
        "where the distillation target comes from ([method.md](method.md#sg-akt))",
        one_of_registered(TEACHERS),
    )
    pool_size: int = setting(5, "adapter snapshots kept in the pool", at_least(1))
    eviction: str = setting(
        "lowest",
        "which member leaves a full pool: `lowest` utility (reference), `highest` (paper's text), `oldest`",
        one_of("lowest", "highest", "oldest"),
    )
    relevance: str = setting(
        "reference",
        "`reference` (softmax per prompt, then mean) or `paper` (mean of scores, then softmax)",
        one_of("reference", "paper"),
    )
    utility_momentum: float = setting(0.5, "EMA momentum of the members' utilities", FRACTION)
    teacher_dropout: bool = setting(
        False, "run snapshots with adapter dropout, as the reference (disables teacher caching)"
    )
    beta: float = setting(1.0, "β in β_s = β(s−1), the weight of the distillation loss", at_least(0))
    temperature: float = setting(20.0, "temperature of the distillation KL", ABOVE_ZERO)
    cache_teachers: bool = setting(
        True,
        "compute teacher features once per task instead of at every step (the same results up to floating-point order)",
    )
    detach_query: bool = setting(
        False,
        "diagnostic: the current prompt's semantic vector enters the relevance query "
        "detached, so L_agg (and the relevance weights) no longer train the prompt",
    )
    agg_loss: bool = setting(
        True,
        "diagnostic: `false` leaves L_agg out; nothing else trains the relevance network, "
        "which keeps its initial weights",
    )
    reset_aggregator: bool = setting(
        False,
        "diagnostic: a fresh relevance network (initialised as at the start, "
        "from the seed and the task) at the start of every task",
    )


class Teacher(nn.Module):
    """The interface: ``inputs`` per image (cacheable), ``feature`` per batch, and the task's start and end.

    ``distils``: whether there is a target at all. ``needs_frozen_features``: ``inputs`` reads the frozen CLIP's
    image features, which SECA then computes once per image. ``reads_semantics``: ``feature`` takes the semantic
    vectors S^(i) of each image's class. ``default_lr``: the learning rate of each parameter group it trains.
    """

    name: ClassVar[str] = ""
    distils: ClassVar[bool] = True
    needs_frozen_features: ClassVar[bool] = False
    reads_semantics: ClassVar[bool] = False
    default_lr: ClassVar[dict[str, float]] = {}

    def __init__(self, backbone: ClipBackbone, config: SGAKTConfig):
        super().__init__()
        self._backbone = [backbone]  # a list: not a submodule (the frozen CLIP is never the learner's state)
        self.config = config

    @property
    def backbone(self) -> ClipBackbone:
        return self._backbone[0]

    @property
    def cacheable(self) -> bool:
        """Whether ``inputs`` is a pure function of the image (no dropout), so it may be kept for the task."""
        return True

    def begin_task(self, task: Task, generator: Callable[[int], torch.Generator]) -> None:
        """At a task's start; ``generator(stream)`` gives the task's seeded generators."""

    def inputs(self, stem: FrozenStem, frozen: torch.Tensor | None = None) -> torch.Tensor:
        """What the teacher needs of each image, from its frozen stem (``frozen``: its frozen-CLIP feature, if
        computed already). No gradient."""
        raise NotImplementedError

    def feature(
        self,
        inputs: torch.Tensor,
        semantic: torch.Tensor | None,
        text: torch.Tensor,
        targets: torch.Tensor,
        scale: float,
        losses: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """The normalised projected teacher feature of each image ``[B, E]``; a teacher that trains adds its own
        loss terms to ``losses``. ``text``: the current prompt's text features of the current classes."""
        raise NotImplementedError

    def end_task(self, task: Task, adapters: AdapterSet) -> None:
        """After a task: keep what later tasks distil from."""

    def parameter_groups(self) -> list[dict]:
        return []

    def structure(self) -> dict:
        return {}

    def rebuild(self, structure: dict, adapters: AdapterSet) -> None:
        """Recreate the modules that a saved state holds."""

    def project(self, token: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """A class token mapped like a student feature: CLIP's final norm and projection, L2-normalised."""
        return F.normalize(self.backbone.project_class_token(token.to(like.dtype)), dim=-1)


@teacher
class NoTeacher(Teacher):
    """No distillation: sequential fine-tuning."""

    name = "none"
    distils = False


@teacher
class ClipTeacher(Teacher):
    """The frozen zero-shot CLIP's image feature (CLIP-KD)."""

    name = "clip"
    needs_frozen_features = True

    def inputs(self, stem: FrozenStem, frozen: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            frozen = self.backbone.encode_image(stem=stem) if frozen is None else frozen
            return F.normalize(widen(frozen), dim=-1)

    def feature(self, inputs, semantic, text, targets, scale, losses) -> torch.Tensor:
        return inputs


class PoolTeacher(Teacher):
    """A teacher from the pool of frozen adapter snapshots (spec §3): each member's class token V^(p)."""

    def __init__(self, backbone: ClipBackbone, config: SGAKTConfig):
        super().__init__(backbone, config)
        self.pool = AdapterPool(config.pool_size, config.eviction, config.utility_momentum, config.teacher_dropout)

    @property
    def cacheable(self) -> bool:
        return not self.config.teacher_dropout

    def begin_task(self, task, generator) -> None:
        self.pool.reset_utility()

    def inputs(self, stem: FrozenStem, frozen: torch.Tensor | None = None) -> torch.Tensor:
        """Every snapshot's class token ``[B, P, W]``, normalised. The snapshots run together, stacked in one batch
        (a bounded number of rows at a time), unless their dropout is on (``teacher_dropout``): then one after
        another, as the reference draws it."""
        with torch.no_grad():
            members = list(self.pool.members)
            if any(member.training for member in members):
                tokens = torch.stack(
                    [
                        self.backbone.encode_image(stem=stem, adapters=member, output="class_token")
                        for member in members
                    ],
                    dim=1,
                )
            else:
                tokens = self.backbone.stacked_class_tokens(stem, members)
            return F.normalize(widen(tokens), dim=-1)

    def end_task(self, task: Task, adapters: AdapterSet) -> None:
        self.pool.add(adapters.frozen_copy(), task.index)

    def structure(self) -> dict:
        return {"pool_sources": list(self.pool.sources)}

    def rebuild(self, structure: dict, adapters: AdapterSet) -> None:
        while len(self.pool) < len(structure["pool_sources"]):
            self.pool.members.append(adapters.frozen_copy())
        self.pool.sources = list(structure["pool_sources"])
        self.pool.train(self.training)


@teacher
class VanillaTeacher(PoolTeacher):
    """The newest snapshot alone (Vanilla-KD)."""

    name = "vanilla"

    def feature(self, inputs, semantic, text, targets, scale, losses) -> torch.Tensor:
        return self.project(inputs[:, -1], text)


@teacher
class AverageTeacher(PoolTeacher):
    """The uniform mean of the pool's class tokens (Avg-KD)."""

    name = "avg"

    def feature(self, inputs, semantic, text, targets, scale, losses) -> torch.Tensor:
        return self.project(inputs.mean(dim=1), text)


@teacher
class SGAKTTeacher(PoolTeacher):
    """SG-AKT: the pool's class tokens weighted by the textual relevance of the image's class (spec §3)."""

    name = "sg-akt"
    reads_semantics = True
    default_lr = {"sg_akt": 1e-3}

    def __init__(self, backbone: ClipBackbone, config: SGAKTConfig):
        super().__init__(backbone, config)
        self.aggregator = RelevanceAggregator(backbone.embed_dim, backbone.vision_width, config.relevance)

    def begin_task(self, task, generator) -> None:
        super().begin_task(task, generator)
        if self.config.reset_aggregator and task.index > 0:
            self.aggregator.reset_parameters(generator(3))

    def feature(self, inputs, semantic, text, targets, scale, losses) -> torch.Tensor:
        token, member_weights = self.aggregator(semantic, inputs)  # V^agg, and a_p for the utility
        self.pool.update_utility(member_weights)
        feature = self.project(token, text)
        if self.config.agg_loss:  # L_agg: the aggregated teacher must classify the image itself
            losses["agg"] = F.cross_entropy(scale * feature @ text.detach().T, targets)
        return feature

    def parameter_groups(self) -> list[dict]:
        return [{"name": "sg_akt", "params": list(self.aggregator.parameters())}]
