"""``seca probe-epochs``: a method's own choice of the epochs per task, made on the first task of a benchmark.

Mind the Gap chooses its epoch count this way (docs/specs/mind-the-gap.md §4.4, the official ``epoch.py``): it
trains the first task with the config's schedule stretched to the probe's epochs and stops at the first epoch
that moves a statistic of the training data too far; the number printed is then written into the config's
``train.epochs``, as in the official workflow. Nothing is saved: the probe's training is thrown away.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from .. import distributed
from ..config import ExperimentConfig
from ..errors import SecaError
from ..methods import TaskData
from .configure import validate
from .data import TaskImages, device_batches, loader
from .device import resolve_device, seed_everything, set_threads
from .loop import build_parts
from .train import TaskTraining, fit_task, task_seed


def probe_epochs(config: ExperimentConfig, echo: Callable[[str], None] = print) -> dict:
    """Run the method's epoch probe on the first task of ``config``'s benchmark; its report (``"epochs"``: the
    choice). One process only."""
    if distributed.launched():
        raise SecaError("seca probe-epochs runs in one process; start it without torchrun")
    config = validate(config)
    seed_everything(config.seed)
    device = resolve_device(config.train.device)
    set_threads(config.train.threads)
    data, scenario, _, _, learner = build_parts(config, device, echo)
    task = scenario.tasks[0]
    train_labels = scenario.labels(data.train.targets)
    indices = scenario.items_of(data.train.targets, [task])
    images = TaskImages(data.train, indices, train_labels[indices])
    if config.data.cache_images:
        images.materialize(config.train.eval_batch_size, config.data.num_workers)
    seed = task_seed(config.seed, task)
    torch.manual_seed(seed)
    pin = device.type == "cuda"
    # the statistic's batches: the training batch size, in the data's order (the official loader shuffles them,
    # which only regroups the images of the batch means)
    statistic = TaskData(
        task,
        len(images),
        device_batches(lambda: loader(images, config.train.batch_size, None, config.data.num_workers, pin), device),
    )
    learner.begin_task(
        task,
        TaskData(
            task,
            len(images),
            device_batches(
                lambda: loader(images, config.train.eval_batch_size, None, config.data.num_workers, pin), device
            ),
        ),
    )
    probe = learner.epoch_probe(statistic)
    if probe is None:
        raise SecaError(f"{learner.name} has no epoch probe (mind-the-gap has one); its epochs are train.epochs")
    train = dataclasses.replace(config.train, epochs=probe.max_epochs)
    echo(
        f"{learner.name} on {config.benchmark}: the epoch probe on task 1 ({task.num_classes} classes, "
        f"{len(images)} images), at most {probe.max_epochs} epochs, schedule {train.schedule}"
    )
    fit_task(learner, TaskTraining(images, train, device, seed, config.data.num_workers), after_epoch=probe.after_epoch)
    return probe.report()
