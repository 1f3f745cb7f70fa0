"""The epoch loop of one task: Adam, AdamW or SGD over the learner's parameter groups, a step or cosine schedule (per
step or per epoch), AMP on CUDA."""

from __future__ import annotations

import dataclasses
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.data import RandomSampler, Sampler
from tqdm import tqdm

from ..config import TrainConfig
from ..data.scenario import Task
from ..distributed import ShardBatches, all_sum, data_parallel, process_sizes, world
from ..errors import SecaError
from ..methods.base import Learner, TaskData
from .data import TaskImages, device_batches, loader
from .device import amp_dtype, autocast
from .frozen import FrozenInputs
from .memory import ExemplarMemory, budget, memory_data


@dataclass(frozen=True)
class TaskTraining:
    """How one task is trained, besides the learner and the task: this process's ``images`` of the task (in a
    distributed run, its shard), the ``train`` settings, the ``device``, the run's ``seed``, data-loader
    ``workers``, the ``log`` that hears every step and epoch, and the step number the run continues from."""

    images: TaskImages
    train: TrainConfig
    device: torch.device
    seed: int
    workers: int = 0
    log: Callable[..., None] | None = None  # log(event, **fields): a run's RunLog, or seca serve's progress
    first_step: int = 0
    # the exemplar memory (a learner that trains with exemplars, given a budget): updated in place after the task;
    # ``exemplars`` is this process's part of its images now, trained on with the task's; ``run_items``: the task's
    # images are items of a run's training set, kept as references beside their files
    memory: ExemplarMemory | None = None
    exemplars: TaskImages | None = None
    run_items: bool = False


def random_sampler(dataset: TaskImages, seed: int, epoch: int) -> Sampler:
    """The default training order: a permutation drawn from (seed, epoch)."""
    return RandomSampler(dataset, generator=torch.Generator().manual_seed(seed * 10_007 + epoch))


def make_optimizer(learner: Learner, train: TrainConfig) -> torch.optim.Optimizer:
    """The task's optimiser over the learner's parameter groups, each at its rate in ``train.lr`` (a resolved config
    holds the learner's defaults there: seca.engine.configure)."""
    groups = []
    for group in learner.parameter_groups():
        name = group["name"]
        rate = train.lr.get(name)
        if rate is None:
            raise SecaError(
                f"{learner.name} trains a part '{name}' that has no learning rate: set train.lr.{name} "
                f"(a config from seca.engine.configure.resolve has {type(learner).__name__}.default_lr "
                "there)"
            )
        params = [p for p in group["params"] if p.requires_grad]
        if params:
            groups.append({"name": name, "params": params, "lr": rate})
    if train.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=train.momentum, weight_decay=train.weight_decay)
    kind = torch.optim.AdamW if train.optimizer == "adamw" else torch.optim.Adam
    return kind(groups, weight_decay=train.weight_decay)


def cosine_rate(base: float, step: int, steps: int, warmup: int) -> float:
    """The rate of step ``step`` (from 0) of ``steps``: linear warm-up over ``warmup`` steps, then a half cosine
    that reaches zero at step ``steps`` (open_clip's ``cosine_lr``, which MoE-Adapters uses)."""
    if step < warmup:
        return base * (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup))) * base


def cosine_epoch_rate(base: float, epoch: int, epochs: int, min_ratio: float) -> float:
    """The rate of epoch ``epoch`` (from 0) of ``epochs``: torch's ``CosineAnnealingLR`` with ``T_max = epochs`` and
    ``eta_min = min_ratio · base``, stepped once per epoch (Mind the Gap's LoRA schedule)."""
    floor = min_ratio * base
    return floor + (base - floor) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def fit_task(
    learner: Learner,
    how: TaskTraining,
    sampler: Callable[[TaskImages, int, int], Sampler] = random_sampler,
    after_epoch: Callable[[int], bool] | None = None,
) -> int:
    """Train ``learner`` on the current task for ``how.train.epochs`` epochs, drawing each epoch's order from
    ``sampler(images, seed, epoch)``; ``how.seed`` is the task's seed.

    ``after_epoch(epoch)`` (0-based), if given, is called after each epoch; it returns True to stop there (an
    epoch probe, ``seca probe-epochs``).

    In a distributed run ``how.images`` is this process's shard, which it trains on with its part of the global
    batch ``train.batch_size`` (:class:`ShardBatches`) through DistributedDataParallel. Steps are numbered on from
    ``how.first_step`` (the run's count so far); returns the next step number.
    """
    dataset, train, device, seed = how.images, how.train, how.device, how.seed
    num_workers, log = how.workers, how.log
    optimizer = make_optimizer(learner, train)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(train.milestones), gamma=train.gamma)
    base_rates = [group["lr"] for group in optimizer.param_groups]
    dtype = amp_dtype(train.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    task = learner.task
    w = world()
    if w.size > 1:
        sizes = process_sizes(len(dataset))
        if min(sizes) == 0:
            raise SecaError(
                f"task {task.index + 1} has {sum(sizes)} training images, fewer than the {w.size} "
                "processes; start fewer processes"
            )
        step_of = data_parallel(learner, device)
    else:
        step_of = learner.training_step
    step = how.first_step
    task_step, task_steps = 0, None
    for epoch in range(train.epochs):
        learner.train()
        if train.schedule == "cosine_epoch":
            for group, base in zip(optimizer.param_groups, base_rates):
                group["lr"] = cosine_epoch_rate(base, epoch, train.epochs, train.min_lr_ratio)
        if w.size > 1:
            plan = ShardBatches(sizes, w.rank, train.batch_size, seed, epoch)
            batches = loader(
                dataset, train.batch_size, num_workers=num_workers, pin_memory=device.type == "cuda", batches=plan
            )
            shares = plan.shares
        else:
            batches = loader(
                dataset, train.batch_size, sampler(dataset, seed, epoch), num_workers, device.type == "cuda"
            )
            shares = None
        if task_steps is None:  # every epoch has as many steps (all processes too: ShardBatches)
            task_steps = len(batches) * train.epochs
        sums: dict[str, float] = defaultdict(float)
        seen, start = 0, time.perf_counter()
        bar = tqdm(
            batches,
            desc=f"task {task.index + 1} epoch {epoch + 1}/{train.epochs}",
            leave=False,
            disable=None if train.progress and w.main else True,
            dynamic_ncols=True,
        )
        for number, batch in enumerate(bar):
            if shares is not None:
                batch.share = shares[number]
            batch = batch.to(device)
            if train.schedule == "cosine":
                for group, base in zip(optimizer.param_groups, base_rates):
                    group["lr"] = cosine_rate(base, task_step, task_steps, train.warmup_steps)
            with autocast(device, dtype):
                losses = step_of(batch)
            loss = losses["loss"]
            if not torch.isfinite(loss):
                terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
                raise SecaError(
                    f"the loss became {loss.item()} at step {step + 1} (task {task.index + 1}, epoch "
                    f"{epoch + 1}; {terms}); nothing of this task was kept: lower the learning rates "
                    "(train.lr.*) or turn off fp16 (train.amp=bf16 or off)"
                )
            if shares is not None:  # DDP averages over processes: weigh each by its part of the step's images
                loss = loss * (w.size * batch.share)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

            n = batch.labels.shape[0]
            seen += n
            for key, value in losses.items():
                sums[key] += float(value.detach()) * n
            step += 1
            task_step += 1
            rate = seen / max(time.perf_counter() - start, 1e-9)
            if step % max(train.log_every, 1) == 0 and log is not None:
                log(
                    "train_step",
                    task=task.index,
                    epoch=epoch,
                    step=step,
                    images_per_s=round(rate, 1),
                    lr={g["name"]: g["lr"] for g in optimizer.param_groups},
                    **{k: float(v.detach()) for k, v in losses.items()},
                )
            bar.set_postfix({**{k: f"{v / seen:.3f}" for k, v in sums.items()}, "img/s": f"{rate:.0f}"}, refresh=False)
        if train.schedule == "multistep":
            schedule.step()
        # every process's images of the epoch, and the means of the loss terms over them
        totals = all_sum(torch.tensor([seen, *sums.values()], dtype=torch.float64)).tolist()
        seen = int(totals[0])
        means = {key: v / max(seen, 1) for key, v in zip(sums, totals[1:])}
        if log is not None:
            log(
                "train_epoch",
                task=task.index,
                epoch=epoch,
                images=seen,
                seconds=round(time.perf_counter() - start, 3),
                **means,
            )
        if after_epoch is not None and after_epoch(epoch):
            break
    learner.eval()
    return step


def task_seed(seed: int, task: Task) -> int:
    """The seed of one task's randomness: each task reseeds, so a resumed run repeats an uninterrupted one."""
    return seed * 1_000 + task.index


def learn_task(learner: Learner, task: Task, how: TaskTraining) -> int:
    """One task from start to end: reseed, ``begin_task``, train (for learners that train), ``end_task``.

    The same for ``seca run`` and for ``learn`` on a saved model; ``how.seed`` is the run's seed. Returns the
    next optimisation step number.
    """
    images, train, device, num_workers = how.images, how.train, how.device, how.workers
    seed = task_seed(how.seed, task)
    # The processes of a distributed run share the task's seed (shards, shuffles, parameters drawn from
    # task_rng, replay draws) but not the global stream, from which each draws dropout masks for its own images.
    torch.manual_seed(seed + 1_000_003 * world().rank)
    batches = device_batches(
        lambda: loader(images, train.eval_batch_size, None, num_workers, device.type == "cuda"), device
    )
    exemplars = how.exemplars if how.memory is not None and how.exemplars is not None and len(how.exemplars) else None
    memory = None if exemplars is None else memory_data(task, exemplars, device, train.eval_batch_size, num_workers)
    task_data = TaskData(task, len(images), batches, _embeddings(learner, images, train, device, num_workers), memory)
    learner.begin_task(task, task_data)
    step = how.first_step
    if learner.trains and train.epochs > 0:
        together = images if exemplars is None else images.joined(exemplars)  # positions from len(images): exemplars
        step = fit_task(learner, dataclasses.replace(how, seed=seed, images=together))
    learner.end_task(task, task_data)
    if how.memory is not None:
        per_class = budget(train, task.stop)
        how.memory.update(task, task_data, images, per_class, how.seed, learner.backbone, how.run_items)
    return step


def _embeddings(
    learner: Learner, images: TaskImages, train: TrainConfig, device: torch.device, num_workers: int
) -> Callable[[], tuple[torch.Tensor, torch.Tensor]] | None:
    """The frozen CLIP features of the task's images and their labels, by position, through the feature store
    (:attr:`TaskData.embeddings`); None when the store is off (the learner encodes them itself)."""
    if not train.feature_store:
        return None

    def embeddings() -> tuple[torch.Tensor, torch.Tensor]:
        frozen = FrozenInputs.embeddings(learner.backbone, train)
        features = frozen.of(images, train.eval_batch_size, device, None, num_workers)
        if features is None:  # no image (an empty shard)
            features = torch.empty(0, learner.backbone.embed_dim)
        return features.to(device), torch.as_tensor(images.labels, device=device)

    return embeddings
