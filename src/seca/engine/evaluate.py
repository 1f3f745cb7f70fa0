"""Accuracy of a learner on the test data of each seen task."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from tqdm import tqdm

from ..methods.base import Learner
from .data import TaskImages, loader
from .device import autocast


@torch.no_grad()
def evaluate_tasks(learner: Learner, test_sets: Sequence[TaskImages], batch_size: int, device: torch.device,
                   amp: torch.dtype | None = None, num_workers: int = 0, progress: bool = True,
                   confusion: Optional[torch.Tensor] = None) -> tuple[list[int], list[int]]:
    """(correct, total) test images per task, predicting over all classes seen so far.

    ``confusion``, a ``[true label, predicted label]`` count matrix, is added to when given.
    """
    learner.eval()
    correct, total = [], []
    bar = tqdm(total=sum(len(s) for s in test_sets), desc="evaluate", leave=False, disable=None if progress else True,
               dynamic_ncols=True, unit="img")
    for test_set in test_sets:
        right = 0
        for batch in loader(test_set, batch_size, None, num_workers, device.type == "cuda"):
            batch = batch.to(device)
            with autocast(device, amp):
                scores = learner.predict(batch.images)
            predicted = scores.argmax(dim=1)
            right += int((predicted == batch.labels).sum())
            if confusion is not None:
                confusion.index_put_((batch.labels.cpu(), predicted.cpu()), torch.ones_like(predicted.cpu()),
                                     accumulate=True)
            bar.update(batch.labels.shape[0])
        correct.append(right)
        total.append(len(test_set))
    bar.close()
    return correct, total
