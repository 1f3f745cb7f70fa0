"""The exemplar memory: training images of old classes that a learner trains with again (rehearsal).

Off by default: seca's protocol stores no images. A learner that trains with exemplars (``Learner.exemplars``,
PROOF) gets a budget from ``train.memory_size`` (PyCIL's and C3Box's ``memory_size``: that many images in total,
``memory_size // classes`` per class, reduced as classes arrive) or ``train.memory_per_class`` (a fixed number per
class, C3Box's ``fixed_memory``); its recipe may set its published one. After each task the new classes' exemplars
are chosen among their training images by herding on the frozen CLIP features (iCaRL's rule, exactly as PyCIL's
``_construct_exemplar``: :func:`herding`) or at random, and the old classes' lists are cut to the new budget, their
first exemplars kept (``_reduce_exemplar``). The next task trains on its own images and the exemplars, shuffled
together.

The memory holds no pixels: each exemplar is a reference to its image (the file, or its item in the run's training
set) with the image's content digest, checked whenever the image is read again. A run keeps it in its checkpoints
(so ``--resume`` continues with the same memory), in ``exemplars.json`` and in ``model.safetensors``; a model file
keeps it in its metadata (``exemplars``), and ``seca report``, ``/health`` and results.json say that the model
keeps references to user images (docs/memory.md). Under torchrun the features of every process's shard are
gathered before the choice, so that every process keeps the same memory.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import distributed
from ..config import TrainConfig
from ..data.images import ImageFiles, item_digests
from ..data.scenario import Task
from ..errors import SecaError
from ..eval.history import exemplar_summary
from ..io.feature_store import content_digest
from ..methods.base import Learner, TaskData
from .data import TaskImages, device_batches, loader

FORMAT = 1
EPSILON = 1e-8  # PyCIL's, added to each feature's norm before herding
SELECTIONS = ("herding", "random")


@dataclass(frozen=True)
class Exemplar:
    """One kept image: its label, its content digest (hex), and where it is: a ``file``, and/or the ``item`` of the
    run's training set it is (a run over a data set held in memory, as the offline world, has items only)."""

    label: int
    digest: str
    file: str | None = None
    item: int | None = None


def budget(train: TrainConfig, classes: int) -> int:
    """Exemplars per class after a task that brings the classes seen to ``classes``: ``memory_per_class`` when set,
    else ``memory_size // classes``; 0: no memory."""
    if train.memory_per_class:
        return train.memory_per_class
    return train.memory_size // max(classes, 1) if train.memory_size else 0


def asked(train: TrainConfig) -> bool:
    """Whether ``train`` gives an exemplar memory a budget."""
    return bool(train.memory_size or train.memory_per_class)


def check_budget(train: TrainConfig, learner: type[Learner]) -> None:
    """Refuse, in one line, a budget the learner cannot use or one given twice."""
    if train.memory_size and train.memory_per_class:
        raise SecaError(
            f"train.memory_size ({train.memory_size}) and train.memory_per_class ({train.memory_per_class}) are both "
            "set: set one (a total shared by the classes seen, or a fixed number per class) and the other to 0"
        )
    if asked(train) and not learner.exemplars:
        key = "memory_size" if train.memory_size else "memory_per_class"
        raise SecaError(
            f"train.{key} gives an exemplar memory, and {learner.name} trains without stored images: set it to 0, "
            "or choose a learner that trains with exemplars (seca presets marks them)"
        )


def herding(features: torch.Tensor, m: int) -> list[int]:
    """The positions of ``m`` rows of ``features`` ``[n, d]`` chosen by herding, in the order chosen (all ``n``
    when ``m >= n``): each step takes the row that brings the mean of the rows taken nearest to the mean of all,
    the features L2-normalised first (PyCIL's ``_construct_exemplar``, in float64; ties go to the first row)."""
    n = features.shape[0]
    vectors = features.double()
    vectors = vectors / (vectors.norm(dim=1, keepdim=True) + EPSILON)
    mean = vectors.mean(0)
    taken = torch.zeros(n, dtype=torch.bool)
    chosen: list[int] = []
    total = torch.zeros_like(mean)
    for k in range(1, min(m, n) + 1):
        distance = ((mean - (vectors + total) / k) ** 2).sum(1).sqrt()
        distance[taken] = float("inf")
        i = int(torch.argmin(distance))
        chosen.append(i)
        taken[i] = True
        total = total + vectors[i]
    return chosen


def random_choice(n: int, m: int, generator: torch.Generator) -> list[int]:
    """``m`` of ``n`` positions drawn without replacement (all ``n``, shuffled, when ``m >= n``)."""
    return torch.randperm(n, generator=generator)[:m].tolist()


class ExemplarMemory:
    """The exemplars of every class seen, by label, each class's in the order chosen."""

    def __init__(self, selection: str = "herding", exemplars: Sequence[Exemplar] = ()):
        if selection not in SELECTIONS:
            raise SecaError(f"exemplar selection '{selection}' is unknown; use one of {', '.join(SELECTIONS)}")
        self.selection = selection
        self.by_class: dict[int, list[Exemplar]] = {}
        for exemplar in exemplars:
            self.by_class.setdefault(exemplar.label, []).append(exemplar)

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_class.values())

    def exemplars(self) -> list[Exemplar]:
        """Every exemplar, by label, each class's in the order chosen: the order they train in."""
        return [e for label in sorted(self.by_class) for e in self.by_class[label]]

    def copy(self) -> ExemplarMemory:
        return ExemplarMemory(self.selection, self.exemplars())

    # ---- what is written ---------------------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        """The memory as JSON-able data (a checkpoint's and a model file's ``exemplars``, a run's exemplars.json)."""
        rows = [{k: v for k, v in dataclasses.asdict(e).items() if v is not None} for e in self.exemplars()]
        return {"format": FORMAT, "selection": self.selection, "exemplars": rows}

    def summary(self) -> dict[str, Any]:
        """What a user is told: how many images of how many classes, at most how many per class, chosen how."""
        return exemplar_summary(self.manifest())

    @classmethod
    def from_manifest(cls, data: object, where: str) -> ExemplarMemory:
        """The memory ``manifest()`` wrote, checked entry by entry (``where`` names the file, for the errors)."""

        def bad(why: str) -> SecaError:
            return SecaError(f"{where}: its exemplar memory is damaged ({why}); it cannot be used")

        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("exemplars"), list):
            raise bad(f"not an exemplar list of format {FORMAT}")
        if data.get("selection") not in SELECTIONS:
            raise bad(f"unknown selection {str(data.get('selection'))[:40]!r}")
        exemplars = []
        for n, row in enumerate(data["exemplars"]):
            if not isinstance(row, dict) or set(row) - {"label", "digest", "file", "item"}:
                raise bad(f"entry {n + 1} is not an exemplar")
            label, digest, file, item = row.get("label"), row.get("digest"), row.get("file"), row.get("item")
            if type(label) is not int or label < 0:
                raise bad(f"entry {n + 1} has no label")
            if not isinstance(digest, str) or len(digest) != 32 or any(c not in "0123456789abcdef" for c in digest):
                raise bad(f"entry {n + 1} has no digest")
            if (file is not None and (not isinstance(file, str) or not file or "\0" in file)) or (
                item is not None and (type(item) is not int or item < 0)
            ):
                raise bad(f"entry {n + 1} names no image")
            if file is None and item is None:
                raise bad(f"entry {n + 1} names no image")
            exemplars.append(Exemplar(label, digest, file, item))
        return cls(data["selection"], exemplars)

    # ---- the images ---------------------------------------------------------------------------------------------
    def images(
        self,
        run_train: Any | None,
        transform: Callable | None,
        class_names: Sequence[str],
        max_pixels: int,
        check: bool = False,
    ) -> TaskImages:
        """The exemplars as a set of images (position k: the k-th of :meth:`exemplars`). Items of the run's training
        set ``run_train`` are taken from it (a run, or a model whose data set the caller loaded); the others are
        read from their files. ``check``: every image's digest is compared with the one kept (a resumed run, a
        model's next task): an image changed or gone is refused in one line."""
        exemplars = self.exemplars()
        labels = [e.label for e in exemplars]
        if run_train is not None and all(e.item is not None for e in exemplars):
            if any(e.item >= len(run_train) for e in exemplars):
                raise SecaError(
                    "the exemplar memory names images the data set does not hold (it has changed since they were "
                    "chosen); run with the data set they came from"
                )
            images = TaskImages(run_train, [e.item for e in exemplars], labels)
        else:
            unreachable = [e for e in exemplars if e.file is None]
            if unreachable:
                raise SecaError(
                    f"{len(unreachable)} exemplars are items of the data set the model was first trained on and no "
                    "files: learn on with that data set at hand (seca run), or start the model again"
                )
            files = ImageFiles([Path(e.file) for e in exemplars], labels, class_names, transform, max_pixels)
            images = TaskImages(files, range(len(exemplars)), labels)
        if check:
            self.check(images)
        return images

    def check(self, images: TaskImages) -> None:
        """Refuse, in one line, an exemplar whose image is gone or is not the image chosen (its digest)."""
        for exemplar, digest in zip(self.exemplars(), digests_of(images, range(len(images)))):
            if digest != exemplar.digest:
                where = exemplar.file or f"item {exemplar.item} of the training set"
                what = "is missing or unreadable" if digest == "" else "has changed since it was chosen"
                raise SecaError(
                    f"the exemplar '{where}' (class {exemplar.label}) {what}: put the image back as it was; the memory "
                    "keeps references to training images, not their pixels (docs/memory.md)"
                )

    # ---- after a task -------------------------------------------------------------------------------------------
    def update(
        self,
        task: Task,
        data: TaskData,
        images: TaskImages,
        per_class: int,
        seed: int,
        backbone: Any,
        items_are_refs: bool,
    ) -> None:
        """After ``task``: cut every old class's exemplars to ``per_class`` (their first ones, as PyCIL's
        ``_reduce_exemplar``), then choose ``per_class`` of each new class among ``images`` (this process's part of
        the task; ``data`` gives their frozen features). ``items_are_refs``: ``images``' items are the run's
        training set, worth keeping as references (a run), else only their files are (a model's ``learn``)."""
        for label in list(self.by_class):
            if label < task.start:
                self.by_class[label] = self.by_class[label][:per_class]
        features, labels = data.frozen_embeddings(backbone)
        items = torch.as_tensor(images.indices, dtype=torch.long, device=features.device)
        features, labels, items = distributed.gather_rows(features.float(), labels.long(), items)
        order = torch.argsort(items.cpu(), stable=True)  # the task's images in their data set's order, as one process
        features, labels, items = features.cpu()[order], labels.cpu()[order], items.cpu()[order]
        generator = torch.Generator().manual_seed((seed * 1_000_003 + task.index * 7_919 + 17) % 2**63)
        base = images.base
        for label in range(task.start, task.stop):
            rows = torch.nonzero(labels == label).flatten()
            if not len(rows) or per_class <= 0:
                continue
            if self.selection == "herding":
                picked = herding(features[rows], per_class)
            else:
                picked = random_choice(len(rows), per_class, generator)
            chosen = items[rows[picked]].tolist()
            files = getattr(base, "files", None)
            self.by_class[label] = [
                Exemplar(
                    label,
                    digest,
                    str(Path(files[item]).resolve()) if files is not None else None,
                    item if items_are_refs or files is None else None,
                )
                for item, digest in zip(chosen, digests_of(TaskImages(base, chosen, [label] * len(chosen)),
                                                           range(len(chosen))))
            ]  # fmt: skip


def digests_of(images: TaskImages, positions: Sequence[int]) -> list[str]:
    """The hex content digest of each item ``positions`` of ``images`` ("" for a file that cannot be read): the
    feature store's digest where the data set gives one (the file's bytes, the offline world's pixels), else that of
    the preprocessed image."""
    indices = [int(images.indices[p]) for p in positions]
    digests = item_digests(images.base, indices)
    if digests is None:
        digests = [content_digest(images.base[i][0].numpy().tobytes()) for i in indices]
    return [d.hex() for d in digests]


def memory_data(task: Task, images: TaskImages, device: torch.device, batch_size: int, workers: int) -> TaskData:
    """The exemplars as the :class:`TaskData` a learner reads (``TaskData.memory``)."""
    batches = device_batches(lambda: loader(images, batch_size, None, workers, device.type == "cuda"), device)
    return TaskData(task, len(images), batches)


def write_exemplars(path: Path, memory: ExemplarMemory) -> None:
    """A run's exemplars.json (atomically)."""
    from ..io.files import atomic_write_text

    atomic_write_text(path, json.dumps(memory.manifest(), indent=1) + "\n")
