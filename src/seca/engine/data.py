"""From a data set and a scenario to the batches of one task: subsets, remapped labels, loaders."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, SequentialSampler

from .. import distributed
from ..methods.base import Batch


class TaskImages(Dataset):
    """Items ``indices`` of ``base`` with their remapped ``labels``; each item is (image, label, position)."""

    def __init__(self, base: Dataset, indices: Sequence[int], labels: Sequence[int]):
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self._images: torch.Tensor | None = None
        self._keep: tuple[int, int] | None = None  # (batch size, workers): load and keep the images at first use

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image = self._images[i] if self._images is not None else self.base[int(self.indices[i])][0]
        return image, int(self.labels[i]), i

    def subset(self, positions: Sequence[int]) -> TaskImages:
        """The items at ``positions``, numbered 0.. in that order."""
        part = TaskImages(self.base, self.indices[positions], self.labels[positions])
        if self._images is not None:
            part._images = self._images[torch.as_tensor(positions, dtype=torch.long)]
        return part

    def shard(self, seed: int | None = None) -> TaskImages:
        """This process's part of the items in a distributed run (all of them in one process): dealt from a
        permutation drawn from ``seed`` (training, :func:`~seca.distributed.shard_positions`), or in order
        (``None``: evaluation)."""
        w = distributed.world()
        if w.size == 1:
            return self
        if seed is None:
            return self.subset(np.arange(w.rank, len(self), w.size))
        return self.subset(distributed.shard_positions(len(self), seed, w.rank, w.size))

    def materialize(self, batch_size: int = 256, num_workers: int = 0) -> TaskImages:
        """Load and preprocess every image once and keep the tensors (training uses no augmentation)."""
        if self._images is None and len(self):
            loader = DataLoader(self, batch_size=batch_size, num_workers=num_workers, collate_fn=collate)
            with torch.random.fork_rng(devices=[]):  # a loader draws its seed: loading now must not move the stream
                self._images = torch.cat([batch.images for batch in loader])
        return self

    def keep_images(self, batch_size: int = 256, num_workers: int = 0) -> TaskImages:
        """Keep the preprocessed images from their first use on (:meth:`materialize` then, ``data.cache_images``): a
        set whose images are never loaded, because its frozen features were found in the feature store, costs
        nothing."""
        self._keep = (batch_size, num_workers)
        return self

    def joined(self, other: TaskImages) -> TaskImages:
        """This set's items, then ``other``'s (a task's images and the exemplar memory's): one set, positions
        ``len(self)..`` being ``other``'s."""
        labels = np.concatenate([self.labels, other.labels])
        if other.base is self.base:
            joined = TaskImages(self.base, np.concatenate([self.indices, other.indices]), labels)
        else:
            parts = [(self.base, int(i)) for i in self.indices] + [(other.base, int(i)) for i in other.indices]
            joined = TaskImages(Items(parts), range(len(parts)), labels)
        if self._images is not None and other._images is not None:
            joined._images = torch.cat([self._images, other._images])
        joined._keep = self._keep
        return joined

    def loaded(self) -> TaskImages:
        """The set, its images loaded now if it keeps them (:meth:`keep_images`)."""
        return self.materialize(*self._keep) if self._keep is not None else self


class Items(Dataset):
    """Items of several data sets as one: item k is ``parts[k] = (data set, index)``, with its digest where that data
    set gives one (:func:`seca.data.images.item_digests`)."""

    def __init__(self, parts: Sequence[tuple[Dataset, int]]):
        self.parts = list(parts)

    def __len__(self) -> int:
        return len(self.parts)

    def __getitem__(self, i: int):
        base, index = self.parts[i]
        return base[index]

    def digest(self, i: int) -> bytes:
        from ..data.images import item_digests

        base, index = self.parts[i]
        found = item_digests(base, [index])
        return found[0] if found else b""


def in_dataset_order(sets: Sequence[TaskImages]) -> tuple[TaskImages, np.ndarray]:
    """The items of ``sets`` (over one data set) as one set in the data set's own order, and the set each item
    came from: how the reference evaluates, with one loader over every seen class's test images."""
    base = sets[0].base
    if any(s.base is not base for s in sets):
        raise ValueError("in_dataset_order: the sets must be parts of one data set")
    sets = [s.loaded() for s in sets]
    indices, order = np.concatenate([s.indices for s in sets]), dataset_order(sets)
    merged = TaskImages(base, indices[order], np.concatenate([s.labels for s in sets])[order])
    if sets and all(s._images is not None for s in sets):
        merged._images = torch.cat([s._images for s in sets])[torch.as_tensor(order)]
    membership = np.concatenate([np.full(len(s), k, dtype=np.int64) for k, s in enumerate(sets)])[order]
    return merged, membership


def dataset_order(sets: Sequence[TaskImages]) -> np.ndarray:
    """Where each item of :func:`in_dataset_order`'s merged set comes from, among the items of ``sets`` one after
    the other."""
    return np.argsort(np.concatenate([s.indices for s in sets]), kind="stable")


def collate(items: list) -> Batch:
    images, labels, index = zip(*items)
    return Batch(torch.stack(images), torch.tensor(labels), torch.tensor(index))


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)


def loader(
    dataset: TaskImages,
    batch_size: int,
    sampler: Sampler | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
    batches: Sampler[list[int]] | None = None,
) -> DataLoader:
    """A loader of :class:`Batch`; ``sampler`` decides the order (sequential by default), or ``batches``
    (lists of positions, as one process of a distributed run takes them) the batches themselves."""
    dataset = dataset.loaded()
    workers = 0 if dataset._images is not None else num_workers
    batching = (
        {"batch_sampler": batches}
        if batches is not None
        else {"batch_size": batch_size, "sampler": sampler or SequentialSampler(dataset)}
    )
    return DataLoader(
        dataset,
        **batching,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        worker_init_fn=_seed_worker if workers else None,
        persistent_workers=False,
    )


def device_batches(make_loader: Callable[[], DataLoader], device: torch.device) -> Callable[[], Iterator[Batch]]:
    """A re-iterable source of batches already on ``device``."""

    def batches() -> Iterator[Batch]:
        for batch in make_loader():
            yield batch.to(device)

    return batches
