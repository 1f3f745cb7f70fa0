"""The learner protocol: what the task loop asks of a continual-learning method, and the learners' registry.

A learner sees tasks one at a time. For each task the engine calls ``begin_task``, then
``training_step`` for every batch of every epoch (optimising ``parameter_groups``), then ``end_task``;
after that ``predict`` must score every class seen so far. A learner holds a reference to the frozen
backbone but never its weights: ``state_dict()`` is exactly what was learned.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..clip.backbone import ClipBackbone, FrozenStem
from ..config import RECIPE_KEYS, NoSettings
from ..data.scenario import Task
from ..registry import Registry
from ._precision import widen


@dataclass
class Batch:
    """Images (preprocessed), their labels (remapped, global) and their positions in the task's data.

    ``share`` is the fraction of the step's images that this batch holds: 1 in a single process; in a run
    over several processes, this process's part of the global batch (docs/distributed.md). A loss that is a
    mean over the batch's images needs nothing of it; one that mixes them with other terms in one mean (the
    replay of SECA++) weighs them by it.
    """

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    share: float = 1.0

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.images.to(device, non_blocking=True), self.labels.to(device), self.index.to(device), self.share
        )


@dataclass
class TaskData:
    """A task's training data as the learner may read it outside the training loop.

    ``batches()`` yields every training image of the task once, in a fixed order, as :class:`Batch`
    on the learner's device: enough to precompute per-image features (spec §7b) or class statistics.
    In a run over several processes they are this process's shard of the task; a statistic over the
    whole task sums over the shards with :func:`seca.distributed.all_sum`.
    """

    task: Task
    size: int
    batches: Callable[[], Iterable[Batch]]
    # the engine's way to the frozen CLIP features of the task's images (rows by position, on the device) and
    # their labels, read from the feature store when it holds them; None: encoded from batches()
    embeddings: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None
    # the exemplar memory's images of old classes (a learner with ``exemplars = True`` and a budget in
    # train.memory_size / train.memory_per_class; docs/memory.md), as a TaskData of its own (its ``task`` is the
    # current one, its labels those of old classes); None: no memory, or none kept yet. The training batches of
    # such a learner hold the task's images and these, shuffled together; ``batches()`` above yields the task's own.
    # A training batch's ``index`` k < ``size`` is the task's image k, k >= ``size`` the exemplar k - ``size``.
    memory: TaskData | None = None

    @torch.no_grad()
    def frozen_embeddings(self, backbone: ClipBackbone) -> tuple[torch.Tensor, torch.Tensor]:
        """(the frozen CLIP image feature of every training image, not normalised; its label), rows by position:
        what a learner over the frozen encoder (SimpleCIL, RAPF) computes of a task's images. Encoded once per
        image across runs where the engine keeps them (the feature store), else encoded now, batch by batch."""
        if self.embeddings is not None:
            return self.embeddings()
        features, labels = None, torch.empty(self.size, dtype=torch.long)
        for batch in self.batches():
            encoded = backbone.encode_image(batch.images)
            if features is None:
                features = encoded.new_empty((self.size, *encoded.shape[1:]))
            features[batch.index], labels[batch.index] = encoded, batch.labels.cpu()
        if features is None:
            features = torch.empty(0, backbone.embed_dim, device=backbone.device)
        return features, labels.to(features.device)


# Plain words for the loss terms that training_step reports (the web page shows them, the names on hover).
LOSS_WORDS = {
    "loss": "total loss",
    "ce": "fitting the new classes",
    "ce_text": "fitting the new classes (text side)",
    "ce_visual": "fitting the new classes (image side)",
    "kd": "keeping old knowledge",
    "agg": "fitting the new classes (teachers combined)",
    "reg": "keeping old class prototypes in place",
    "replay": "rehearsing old classes from their statistics",
    "hinge": "keeping new classes apart from old ones",
}


class Learner(nn.Module):
    """Base class of every method; subclasses set ``name`` and register with :func:`register`.

    ``Config`` declares the keys the learner reads under ``method.`` (a frozen dataclass of
    :func:`seca.config.setting` fields and :func:`seca.config.section` sub-sections); the ``method`` section of
    a config is the union of every registered learner's, and ``self.config`` is that section. ``default_lr``
    maps each parameter group the learner trains (:meth:`parameter_groups`) to its default learning rate,
    which ``train.lr.<group>`` overrides; a learner's only group is named after it (``rapf``). ``recipe`` holds
    its defaults for the other keys of its training recipe (``train.epochs``, ``train.milestones``, ...:
    :data:`seca.config.RECIPE_KEYS`), which a preset's values override. ``renamed_lr`` maps a group's earlier
    name to its name now, so that configs and models of earlier versions load. The class docstring's first line
    describes the method (``seca presets``, ``--help``).
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = NoSettings
    default_lr: ClassVar[dict[str, float]] = {}
    recipe: ClassVar[dict[str, Any]] = {}
    renamed_lr: ClassVar[dict[str, str]] = {}
    learns_from_images: ClassVar[bool] = True  # False: a task's classes are taken by name only (zero-shot)
    loss_words: ClassVar[dict[str, str]] = {}  # plain words for loss terms of its own, beside LOSS_WORDS
    # True: the learner trains with an exemplar memory when the config gives it a budget (train.memory_size or
    # train.memory_per_class; its recipe may set its published one): its training batches then mix the task's
    # images with the kept images of old classes (labels below task.start). False: a budget is refused.
    exemplars: ClassVar[bool] = False

    def __init__(self, backbone: ClipBackbone, class_names: Sequence[str], config: Any, seed: int = 0):
        super().__init__()
        self.backbone = backbone  # a plain attribute: not a submodule, so not in state_dict
        self.class_names = list(class_names)  # in label order (the scenario's class order)
        self.config = config
        self.seed = seed
        self.num_seen = 0
        self.task: Task | None = None
        self.tasks: list[Task] = []  # every task begun so far

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    # ---- the protocol ---------------------------------------------------------------------------
    def begin_task(self, task: Task, data: TaskData) -> None:
        """Prepare for ``task``: add its classes, create its parameters, precompute what is fixed."""
        self.task = task
        self.tasks.append(task)
        self.num_seen = task.stop

    @classmethod
    def check_config(cls, config: Any) -> None:
        """Refuse, with a one-line :class:`~seca.errors.SecaError` that names the method, the setting and what it
        supports, a setting this method cannot run with. ``config`` is the whole experiment configuration; called
        before any work (config validation), and with the ``method`` section alone when a learner is built."""

    @classmethod
    def learning_rates(cls) -> dict[str, float]:
        """The default learning rate of every parameter group this learner may train."""
        return dict(cls.default_lr)

    @classmethod
    def summary(cls) -> str:
        """One line on what the method is (the first line of its docstring)."""
        return (cls.__doc__ or cls.name).strip().splitlines()[0]

    def parameter_groups(self) -> list[dict]:
        """Optimiser parameter groups ``{"name", "params"}``; the learning rate is ``train.lr.<name>``."""
        return []

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The losses of one batch: ``"loss"`` (what is minimised) and any named terms it sums."""
        raise NotImplementedError(f"{type(self).__name__} does not train")

    def end_task(self, task: Task, data: TaskData) -> None:
        """Consolidate after training on ``task`` (snapshots, prototypes, cached inference features)."""

    def epoch_probe(self, data: TaskData) -> Any:
        """The method's way of choosing its epochs per task on the first task (``seca probe-epochs``), or None if it
        has none. Called after ``begin_task`` of the first task with its training data; returns an object with
        ``max_epochs`` (the probe trains at most this many), ``after_epoch(epoch) -> bool`` (called after each
        0-based epoch; True stops the probe) and ``report() -> dict`` (``"epochs"``, the choice, and what it
        measured)."""
        return None

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Non-negative scores ``[batch, num_seen]`` over all classes seen so far, proportional to the
        class probabilities (normalised, they are what ``seca predict`` reports); the arg-max is the prediction.

        A learner with a :meth:`frozen_kind` need not override it: it is :meth:`predict_frozen` of
        :meth:`frozen_input`."""
        if self.frozen_kind() is None:
            raise NotImplementedError(f"{type(self).__name__} implements neither predict nor frozen_kind")
        return self.predict_frozen(self.frozen_input(images))

    # ---- image features: what a user can read of how the learner sees an image ------------------------------
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``[batch, d]``: the image features :meth:`predict` scores ``images`` from, on the learner's device, in
        float32 (float64 if the encoder ran in float64), L2-normalised where its classifier compares normalised
        features (every packaged learner's does). A learner whose features are not the frozen CLIP's overrides it.

        The default is :meth:`frozen_embedding`: what zero-shot CLIP and SimpleCIL predict with."""
        return self.frozen_embedding(images)

    def frozen_embedding(self, images: torch.Tensor) -> torch.Tensor:
        """``[batch, d]``: the frozen CLIP's image features of ``images``, nothing learned in them, L2-normalised, on
        the learner's device in float32: the same for every learner over the same backbone. Not overridden."""
        return F.normalize(widen(self.backbone.encode_image(images)), dim=-1)

    # ---- frozen inputs (optional): what evaluation computes once per test image ----------------------------
    def frozen_kind(self) -> str | None:
        """What :meth:`predict` computes of an image with the frozen backbone alone, before anything learned;
        None (the default) when it has no such part.

        ``"embedding"``: the frozen CLIP image feature (``backbone.encode_image(images)``, not normalised), the
        same for every learner over the same backbone, so it is also kept across runs in the feature store
        (docs/performance.md); ``"stem@<block>"``: the image's :class:`~seca.clip.backbone.FrozenStem` up to
        ``block``, kept for one run. A learner that names one implements :meth:`predict_frozen` (and, for a kind
        other than ``"embedding"``, :meth:`frozen_input`); evaluation then computes each test image's frozen input
        once, at the first evaluation that sees it, and scores it with :meth:`predict_frozen` at every later one:
        the same numbers as :meth:`predict` on the images, without encoding them again. The kind is a pure function
        of the image: it must not change with the tasks learned."""
        return None

    def frozen_input(self, images: torch.Tensor) -> torch.Tensor | FrozenStem:
        """The frozen part of predicting ``images`` (see :meth:`frozen_kind`), batch-first."""
        if self.frozen_kind() == "embedding":
            return self.backbone.encode_image(images)
        raise NotImplementedError(f"{type(self).__name__} names a frozen kind but implements no frozen_input")

    def predict_frozen(self, frozen: torch.Tensor | FrozenStem) -> torch.Tensor:
        """:meth:`predict`'s scores from the images' :meth:`frozen_input`."""
        raise NotImplementedError(f"{type(self).__name__} has no frozen input")

    def extend_classes(self, names: Sequence[str]) -> None:
        """Make room for new classes after those known (``learn`` on a saved model)."""
        self.class_names = self.class_names[: self.num_seen] + list(names)

    # ---- saving and restoring ---------------------------------------------------------------------
    def structure(self) -> dict:
        """JSON-able facts that, with ``state_dict()``, rebuild this learner (see :meth:`restore`)."""
        return {
            "num_seen": self.num_seen,
            "class_names": self.class_names[: self.num_seen],
            "tasks": [
                {"index": t.index, "start": t.start, "stop": t.stop, "classes": list(t.classes)} for t in self.tasks
            ],
        }

    def restore(self, tensors: dict[str, torch.Tensor], structure: dict) -> None:
        """Become the learner that :meth:`structure` and ``state_dict()`` were taken from."""
        tensors = self.upgrade_state(dict(tensors))
        self.tasks = [Task(t["index"], tuple(t["classes"]), t["start"], t["stop"]) for t in structure["tasks"]]
        self.task = self.tasks[-1] if self.tasks else None
        self.num_seen = structure["num_seen"]
        self.rebuild(structure)
        buffers = dict(self.named_buffers())
        for name, value in tensors.items():  # buffers that grow with the classes take the saved shape
            if name in buffers and buffers[name].shape != value.shape:
                module_name, _, attr = name.rpartition(".")
                setattr(
                    self.get_submodule(module_name) if module_name else self,
                    attr,
                    value.to(buffers[name].device, buffers[name].dtype),
                )
        self.load_state_dict({k: v.to(self.device) for k, v in tensors.items()}, strict=True)
        self.after_restore()

    def upgrade_state(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The tensors of a checkpoint written by an earlier version, under today's names (the same if new)."""
        return tensors

    def rebuild(self, structure: dict) -> None:
        """Create the parameters and modules that the saved state holds (one prompt per task, ...)."""

    def after_restore(self) -> None:
        """Recompute what is derived from the restored state (inference caches)."""

    @property
    def trains(self) -> bool:
        return bool(self.parameter_groups())

    def task_rng(self, task: Task, stream: int = 0) -> torch.Generator:
        """A generator seeded by (seed, task, stream): parameter init independent of other random draws."""
        return torch.Generator().manual_seed((self.seed * 1_000_003 + task.index * 1_009 + stream) % 2**63)


LEARNERS: Registry[type[Learner]] = Registry("learner")


def register(cls: type[Learner]) -> type[Learner]:
    """Class decorator: make a learner available under ``cls.name`` (``method.name`` in configs).

    Registering the same class again (its module imported twice, as a plugin) is harmless; another class under
    a taken name is refused, naming both."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name; set name = '...' (what method.name selects)")
    if not dataclasses.is_dataclass(cls.Config):
        raise ValueError(f"{cls.__name__}.Config must be a frozen dataclass of the keys it reads under method.")
    unknown = sorted(set(cls.recipe) - set(RECIPE_KEYS) | ({"lr"} & set(cls.recipe)))
    if unknown:
        raise ValueError(
            f"{cls.__name__}.recipe sets '{unknown[0]}', which is not a key of a training recipe; it may "
            f"set {', '.join(k for k in RECIPE_KEYS if k != 'lr')} (learning rates: default_lr)"
        )
    return LEARNERS.register(cls)
