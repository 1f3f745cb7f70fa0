"""Accuracy of a learner on the test data of each seen task, evaluated in either of two orders.

``task`` (the default): each task's test images through their own loader, so a batch never mixes tasks.
``dataset``: one loader over every seen class's test images in the data set's own order, so batches mix
tasks, as the reference implementation evaluates (docs/method.md#checked-against-the-reference). The two give
the same predictions unless a prediction depends on its batch (``method.classifier.hybrid_max: batch``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..config import EVAL_ORDERS
from ..distributed import all_sum, world
from ..methods.base import Learner
from .data import TaskImages, dataset_order, in_dataset_order, loader
from .device import autocast
from .frozen import Frozen, FrozenInputs, concat


@torch.no_grad()
def predicted_labels(
    learner: Learner,
    test_sets: Sequence[TaskImages],
    batch_size: int,
    device: torch.device,
    amp: torch.dtype | None = None,
    num_workers: int = 0,
    progress: bool = True,
    order: str = "task",
    frozen: FrozenInputs | None = None,
) -> list[torch.Tensor]:
    """The predicted label of every image of each set (aligned with the set's items), over all seen classes.

    ``frozen`` keeps the learner's frozen inputs of each set (:mod:`seca.engine.frozen`): a set it has seen
    before is scored from them, without loading or encoding its images."""
    learner.eval()
    if order not in EVAL_ORDERS:
        raise ValueError(f"evaluation order must be one of {', '.join(EVAL_ORDERS)}, got {order!r}")
    bar = tqdm(
        total=sum(len(s) for s in test_sets),
        desc="evaluate",
        leave=False,
        disable=None if progress and world().main else True,
        dynamic_ncols=True,
        unit="img",
    )

    def predict(images: TaskImages, inputs: Frozen | None = None) -> torch.Tensor:
        out = []
        if inputs is not None:  # the same batches as the images would form, from their frozen inputs
            for start in range(0, len(images), batch_size):
                rows = slice(start, min(start + batch_size, len(images)))
                with autocast(device, amp):
                    out.append(learner.predict_frozen(inputs[rows].to(device, non_blocking=True)).argmax(dim=1).cpu())
                bar.update(rows.stop - rows.start)
        else:
            for batch in loader(images, batch_size, None, num_workers, device.type == "cuda"):
                with autocast(device, amp):
                    out.append(learner.predict(batch.images.to(device, non_blocking=True)).argmax(dim=1).cpu())
                bar.update(len(batch.labels))
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long)

    def inputs_of(images: TaskImages) -> Frozen | None:
        return frozen.of(images, batch_size, device, amp, num_workers) if frozen is not None else None

    if order == "task" or not test_sets:
        predictions = [predict(s, inputs_of(s)) for s in test_sets]
    else:
        merged, membership = in_dataset_order(test_sets)
        parts = [inputs_of(s) for s in test_sets]
        inputs = None
        if all(p is not None for p in parts):  # merged as the items are: in the data set's order
            inputs = concat(parts)[torch.as_tensor(dataset_order(test_sets))]
        together = predict(merged, inputs)
        # back to each set's own item order: the merged items of set k are its items, sorted by data set index
        predictions = []
        for k, s in enumerate(test_sets):
            mine = np.argsort(s.indices, kind="stable")
            labels = torch.empty(len(s), dtype=torch.long)
            labels[torch.as_tensor(mine)] = together[torch.as_tensor(np.flatnonzero(membership == k))]
            predictions.append(labels)
    bar.close()
    return predictions


def evaluate_tasks(
    learner: Learner,
    test_sets: Sequence[TaskImages],
    batch_size: int,
    device: torch.device,
    amp: torch.dtype | None = None,
    num_workers: int = 0,
    progress: bool = True,
    confusion: torch.Tensor | None = None,
    order: str = "task",
    frozen: FrozenInputs | None = None,
) -> tuple[list[int], list[int]]:
    """(correct, total) test images per set (per task), predicting over all classes seen so far.

    ``confusion``, a ``[true label, predicted label]`` count matrix, is added to when given. In a distributed
    run ``test_sets`` are this process's shards, and the counts (and the confusion) are summed over the
    processes: every process returns those of the whole test sets.
    """
    predictions = predicted_labels(learner, test_sets, batch_size, device, amp, num_workers, progress, order, frozen)
    correct = [int((p == torch.as_tensor(s.labels)).sum()) for p, s in zip(predictions, test_sets)]
    total = [len(s) for s in test_sets]
    if confusion is not None:
        local = torch.zeros_like(confusion)
        for p, s in zip(predictions, test_sets):
            local.index_put_((torch.as_tensor(s.labels), p), torch.ones_like(p), accumulate=True)
        confusion += all_sum(local)
    counts = all_sum(torch.tensor([correct, total], dtype=torch.long).reshape(2, -1))
    return counts[0].tolist(), counts[1].tolist()
