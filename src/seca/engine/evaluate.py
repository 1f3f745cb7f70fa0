"""Accuracy of a learner on the test data of each seen task."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from tqdm import tqdm

from ..distributed import all_sum, world
from ..methods.base import Learner
from .data import TaskImages, loader
from .device import autocast


@torch.no_grad()
def evaluate_tasks(learner: Learner, test_sets: Sequence[TaskImages], batch_size: int, device: torch.device,
                   amp: torch.dtype | None = None, num_workers: int = 0, progress: bool = True,
                   confusion: Optional[torch.Tensor] = None) -> tuple[list[int], list[int]]:
    """(correct, total) test images per task, predicting over all classes seen so far.

    ``confusion``, a ``[true label, predicted label]`` count matrix, is added to when given. In a distributed
    run ``test_sets`` are this process's shards, and the counts (and the confusion) are summed over the
    processes: every process returns those of the whole test sets.
    """
    learner.eval()
    correct, total = [], []
    local = torch.zeros_like(confusion) if confusion is not None else None
    bar = tqdm(total=sum(len(s) for s in test_sets), desc="evaluate", leave=False,
               disable=None if progress and world().main else True, dynamic_ncols=True, unit="img")
    for test_set in test_sets:
        right = 0
        for batch in loader(test_set, batch_size, None, num_workers, device.type == "cuda"):
            batch = batch.to(device)
            with autocast(device, amp):
                scores = learner.predict(batch.images)
            predicted = scores.argmax(dim=1)
            right += int((predicted == batch.labels).sum())
            if local is not None:
                local.index_put_((batch.labels.cpu(), predicted.cpu()), torch.ones_like(predicted.cpu()),
                                 accumulate=True)
            bar.update(batch.labels.shape[0])
        correct.append(right)
        total.append(len(test_set))
    bar.close()
    if confusion is not None:
        confusion += all_sum(local)
    counts = all_sum(torch.tensor([correct, total], dtype=torch.long).reshape(2, -1))
    return counts[0].tolist(), counts[1].tolist()
