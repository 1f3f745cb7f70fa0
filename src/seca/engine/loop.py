"""The task loop: from a config to results.json, a saved model and a report.

:func:`run_experiment` is three steps: :func:`set_up` (everything that can fail on bad input is checked
before the output folder is touched: the method, the data and every image file, the scenario, the backbone;
then the folder is started, or the checkpoint to resume from is read), :func:`run_task` for every task (the
learner begins it, trains on its classes, ends it, is evaluated on the test data of every class seen so far,
and is checkpointed), and :func:`finish` (results.json, the model and the report, all written atomically).
The output folder's files are those of :class:`seca.io.run_folder.RunFolder`. ``resume=True`` continues an
interrupted run from its last checkpoint, or starts it when no task had finished, and ends with the same
results as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from .. import distributed
from ..clip.backbone import ClipBackbone, load_backbone
from ..config import ExperimentConfig, dump_yaml, to_dict
from ..data.images import ImageFiles, without_bad_images
from ..data.protocols import LAMDA_SEED, class_order
from ..data.scenario import ClassIncrementalScenario, Task, tasks_by_name
from ..data.sets import DATASETS, BenchmarkData, load_dataset
from ..errors import SecaError
from ..eval.history import eval_record, history_entry
from ..eval.metrics import chance, majority, percent, summarize_counts
from ..eval.report import format_step, format_table, write_report
from ..io.checkpoint import load_checkpoint, model_metadata, save_checkpoint
from ..io.files import atomic_write_json
from ..io.locks import FolderLock
from ..io.logs import RunLog, summary_writer_class
from ..io.run_folder import RunFolder
from ..methods import Learner, build_learner
from ..version import __version__
from .configure import config_differences, validate
from .data import TaskImages
from .device import amp_dtype, resolve_device, seed_everything, set_threads
from .evaluate import evaluate_tasks
from .frozen import FrozenInputs
from .memory import ExemplarMemory, asked, write_exemplars
from .train import TaskTraining, learn_task, task_seed


@dataclass
class Progress:
    """The results of the tasks finished so far (stored in every checkpoint, for --resume)."""

    acc_matrix: list[list[float]] = field(default_factory=list)
    test_counts: list[int] = field(default_factory=list)
    correct: list[list[int]] = field(default_factory=list)  # test images right, [after task s][of task j]
    seconds: dict[str, list[float]] = field(default_factory=lambda: {"train": [], "eval": []})
    steps: int = 0  # optimisation steps so far
    history: list[dict] = field(default_factory=list)  # one entry per task (seca.eval.history)


@dataclass
class Run:
    """Everything one experiment works with, from :func:`set_up` to :func:`finish`."""

    config: ExperimentConfig
    folder: RunFolder | None  # None: nothing is written
    device: torch.device
    data: BenchmarkData
    scenario: ClassIncrementalScenario
    order: list[int]
    learner: Learner
    log: RunLog
    echo: Callable[[str], None]
    progress: Progress = field(default_factory=Progress)
    first_task: int = 0  # the first task to train (after a resume, the one after the checkpoint)
    train_labels: object | None = None  # every training item's label (class id -> its place in the order)
    test_labels: object | None = None
    test_sets: list[TaskImages] = field(default_factory=list)  # this process's test images of each task seen
    confusion: torch.Tensor | None = None  # after the last task
    frozen: FrozenInputs | None = None  # the frozen inputs of the test sets, each computed once
    memory: ExemplarMemory | None = None  # the exemplar memory, where the learner trains with one (engine/memory.py)

    def __post_init__(self):
        if self.frozen is None:
            self.frozen = FrozenInputs.for_tests(self.learner, self.config.train, self.echo)

    @property
    def writes(self) -> bool:
        return self.folder is not None and distributed.world().main


def run_experiment(
    config: ExperimentConfig,
    out: Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    echo: Callable[[str], None] = tqdm.write,
) -> dict:
    """Run one class-incremental experiment; returns the results (also written to ``out``).

    ``resume`` continues the interrupted run in ``out`` from its last checkpoint, or starts it from the
    beginning when no task had finished (a job requeued with its own command line). The folder's lock is
    held from the start to the end (rank 0 holds it for every process): a second writer is refused.
    """
    with FolderLock(None if out is None else Path(out)) as lock:
        run = set_up(config, out, overwrite, resume, echo, lock)
        for task in run.scenario:
            run_task(run, task)
        return finish(run)


def set_up(
    config: ExperimentConfig,
    out: Path | None,
    overwrite: bool,
    resume: bool,
    echo: Callable[[str], None],
    lock: FolderLock,
) -> Run:
    """Check everything, load the data and the backbone, build the learner; start the output folder or read
    the checkpoint to resume from."""
    config = validate(config)  # a config built in Python, not through resolve, is checked (and completed) as well
    seed_everything(config.seed)
    if distributed.launched():  # one of several processes (torchrun): see docs/distributed.md
        device = distributed.join(config.train.device, config.train.dist_timeout)
    else:
        device = resolve_device(config.train.device)
    w = distributed.world()
    if not w.main:
        echo = _silent  # rank 0 speaks and writes for the run
    if w.size > 1 and config.train.batch_size % w.size:
        raise SecaError(
            f"train.batch_size {config.train.batch_size} does not split over {w.size} processes: use a "
            f"multiple of {w.size} (it is the global batch; each process takes batch_size / {w.size})"
        )
    threads = set_threads(config.train.threads)
    if resume and out is None:
        raise SecaError("--resume needs the --out folder of the interrupted run")
    folder = None if out is None else RunFolder(out)
    if folder is not None:
        distributed.on_main(lock.take_if_there)  # a run in progress there is refused before any work
        if not resume:
            distributed.on_main(lambda: folder.check_new(overwrite))

    # Everything that can fail on bad input is built before the output folder is touched
    data, scenario, order, backbone, learner = build_parts(config, device, echo)
    if config.train.tensorboard:
        summary_writer_class()  # fails now, not after the output folder exists

    progress, first_task = Progress(), 0
    memory = ExemplarMemory(config.train.memory_selection) if asked(config.train) else None
    saved = distributed.on_main(lambda: _read_resume(config, folder, echo)) if resume else None
    if saved is not None:  # rank 0 has read the checkpoint and handed it to every process
        path, tensors, meta = saved
        learner.restore(tensors, meta["learner"])
        if memory is not None:  # the memory as it was, its images checked against their digests
            memory = ExemplarMemory.from_manifest(meta.get("exemplars"), str(path))
            memory.check(memory.images(data.train, None, data.class_names, config.data.max_pixels))
        progress, first_task = Progress(**meta["progress"], history=meta.get("history", [])), meta["task"] + 1
        if not progress.correct:  # a checkpoint of an earlier version: its counts from its accuracies
            n = progress.test_counts
            progress.correct = [[round(a * n[j] / 100) for j, a in enumerate(row)] for row in progress.acc_matrix]
        echo(f"resuming after task {first_task} of {len(scenario)} from {path}")
    elif folder is not None:
        if resume:
            echo(f"nothing to resume in '{folder.path}' (no task had finished): starting the run from the beginning")
        distributed.on_main(lambda: folder.start(dump_yaml(config), overwrite or resume, lock))
    log = RunLog(folder.path if folder is not None and w.main else None, tensorboard=config.train.tensorboard)
    cpu = f" ({threads} CPU thread{'s' if threads > 1 else ''})" if device.type == "cpu" else ""
    processes = f" in each of {w.size} processes" if w.size > 1 else ""
    echo(
        f"{learner.name} on {config.benchmark}: {data.num_classes} classes in {len(scenario)} tasks, "
        f"{backbone.model_name} ({backbone.pretrained or 'random weights'}) on {device}{cpu}{processes}"
    )
    log(
        "resume" if resume else "start",
        method=learner.name,
        benchmark=config.benchmark,
        device=str(device),
        threads=threads,
        processes=w.size,
        tasks=len(scenario),
        classes=data.num_classes,
        first_task=first_task,
    )
    return Run(
        config,
        folder,
        device,
        data,
        scenario,
        order,
        learner,
        log,
        echo,
        progress,
        first_task,
        scenario.labels(data.train.targets),
        scenario.labels(data.test.targets),
        memory=memory,
    )


def build_parts(
    config: ExperimentConfig, device: torch.device, echo: Callable[[str], None]
) -> tuple[BenchmarkData, ClassIncrementalScenario, list[int], ClipBackbone, Learner]:
    """The data, the scenario and its class order, the backbone and the learner of ``config``: first what is cheap
    to check (the method's name, the data and every image file, the scenario), then the backbone."""
    data = load_data(config, echo)
    scenario, order = build_scenario(config, data)
    backbone = load_backbone(config.backbone.model, config.backbone.pretrained, config.backbone.cache_dir, device)
    data.train.transform = data.test.transform = backbone.preprocess
    learner = build_learner(backbone, scenario.names_in_label_order(data.class_names), config.method, config.seed)
    return data, scenario, order, backbone, learner


def load_data(config: ExperimentConfig, echo: Callable[[str], None]) -> BenchmarkData:
    """The data set; image files on disk are each read once before any training."""
    d = config.data
    data = load_dataset(d)
    for note in data.notes:
        echo(note)
    if isinstance(data.train, ImageFiles):
        data = dataclasses.replace(
            data,
            train=without_bad_images(data.train, d.skip_bad_images, echo),
            test=without_bad_images(data.test, d.skip_bad_images, echo),
        )
    return data


def build_scenario(config: ExperimentConfig, data: BenchmarkData) -> tuple[ClassIncrementalScenario, list[int]]:
    s = config.scenario
    if s.tasks is not None:
        order, sizes = tasks_by_name(s.tasks, data.class_names)
        return ClassIncrementalScenario(order, num_classes=data.num_classes, sizes=sizes), order
    order = class_order(
        s.order,
        data.num_classes,
        DATASETS[config.data.dataset](),
        s.trial,
        config.seed,
        s.order_seed,
    )
    return ClassIncrementalScenario(order, s.first_task, s.increment, data.num_classes), order


def run_task(run: Run, task: Task) -> None:
    """One task: train it (unless it finished before a resume), evaluate on every seen class, checkpoint."""
    config, scenario, data, progress = run.config, run.scenario, run.data, run.progress
    test_idx = scenario.items_of(data.test.targets, [task])
    run.test_sets.append(TaskImages(data.test, test_idx, run.test_labels[test_idx]).shard())  # this process's part
    if task.index < run.first_task:
        return
    train_idx = scenario.items_of(data.train.targets, [task])
    train_set = TaskImages(data.train, train_idx, run.train_labels[train_idx]).shard(task_seed(config.seed, task))
    if config.data.cache_images:
        train_set.keep_images(config.train.eval_batch_size, config.data.num_workers)
        run.test_sets[-1].keep_images(config.train.eval_batch_size, config.data.num_workers)

    exemplars = None
    if run.memory is not None and len(run.memory):  # this process's part of the exemplars, trained on with the task
        exemplars = run.memory.images(data.train, None, data.class_names, config.data.max_pixels)
        exemplars = exemplars.shard(task_seed(config.seed, task) + 7)

    start = time.perf_counter()
    how = TaskTraining(
        train_set,
        config.train,
        run.device,
        config.seed,
        config.data.num_workers,
        run.log,
        first_step=progress.steps,
        memory=run.memory,
        exemplars=exemplars,
        run_items=True,
    )
    progress.steps = learn_task(run.learner, task, how)
    progress.seconds["train"].append(time.perf_counter() - start)

    start = time.perf_counter()
    last = task.index == len(scenario) - 1
    run.confusion = torch.zeros(task.stop, task.stop, dtype=torch.long) if last else None
    correct, total = evaluate_tasks(
        run.learner,
        run.test_sets,
        config.train.eval_batch_size,
        run.device,
        amp_dtype(config.train.amp, run.device),
        config.data.num_workers,
        config.train.progress,
        run.confusion,
        config.train.eval_order,
        run.frozen,
    )
    progress.seconds["eval"].append(time.perf_counter() - start)
    row = [percent(c, n) if n else 0.0 for c, n in zip(correct, total)]
    progress.acc_matrix.append(row)
    progress.correct.append(list(correct))
    progress.test_counts = total
    step_acc = percent(sum(correct), max(sum(total), 1))
    progress.history.append(
        history_entry(
            task.index,
            run.learner.class_names[task.start : task.stop],
            len(train_idx),
            progress.seconds["train"][-1],
            f"{config.benchmark} train",
            eval_record(
                f"{config.benchmark} test", correct, total, task.stop, class_counts=_test_class_counts(run, task)
            ),
        )
    )
    run.log(
        "task_end",
        task=task.index,
        classes=task.stop,
        acc=step_acc,
        acc_row=row,
        correct=correct,
        total=total,
        train_seconds=progress.seconds["train"][-1],
        eval_seconds=progress.seconds["eval"][-1],
    )
    run.echo(
        format_step(
            task.index,
            len(scenario),
            task.stop,
            step_acc,
            row,
            progress.seconds["train"][-1],
            progress.seconds["eval"][-1],
        )
    )
    if run.writes and config.train.checkpoints != "none" and not last:
        _save_task_checkpoint(run, task.index)


def how_made(config: ExperimentConfig, scenario: ClassIncrementalScenario, data: BenchmarkData) -> dict:
    """How a number was made, as results.json and every table name it: the data set, the protocol (the class order
    and its seed, the task sizes as B-m Inc-n), the train/test split and the class-name set of the prompts."""
    s = config.scenario
    sizes = [len(t.classes) for t in scenario]
    if s.tasks is not None:
        order, seed = "tasks by name", None
    elif isinstance(s.order, str):
        order = s.order
        seed = s.order_seed if s.order_seed is not None else LAMDA_SEED if order == "lamda" else config.seed
        seed = seed if order in ("lamda", "seeded") else None
    else:
        order, seed = "explicit", None
    first, later = sizes[0], sorted(set(sizes[1:]))
    base = 0 if later == [first] else first
    tasks = f"B{base}-Inc{later[0]}" if len(later) == 1 else f"B{first}-Inc" + "/".join(map(str, sizes[1:]))
    return {
        "dataset": config.data.dataset,
        "protocol": {
            "order": order,
            "order_seed": seed,
            "trial": s.trial if order == "reference" else None,
            "tasks": tasks if sizes[1:] else f"B{first}",
        },  # fmt: skip
        "split": data.split,
        "names": data.names,
    }


def _test_class_counts(run: Run, task: Task) -> list[int]:
    """The test images of each class seen after ``task`` (of the whole test set, whatever the process)."""
    seen = list(run.scenario)[: task.index + 1]
    labels = np.asarray(run.test_labels)[run.scenario.items_of(run.data.test.targets, seen)]
    return np.bincount(labels, minlength=task.stop)[: task.stop].tolist()


def finish(run: Run) -> dict:
    """results.json, the model and the report; the run folder is whole."""
    config, progress, learner = run.config, run.progress, run.learner
    results = {
        "method": learner.name,
        "benchmark": config.benchmark,
        "backbone": {"model": config.backbone.model, "pretrained": config.backbone.pretrained},
        "seed": config.seed,
        "class_order": run.scenario.order,
        "class_names": run.scenario.names_in_label_order(run.data.class_names),
        "tasks": [list(t.classes) for t in run.scenario],
        **how_made(config, run.scenario, run.data),
        "test_counts": progress.test_counts,
        **summarize_counts(progress.correct, progress.test_counts),
        "chance": [chance(t.stop) for t in run.scenario],  # the yardsticks of each step, in %
        "majority": [majority(_test_class_counts(run, t)) for t in run.scenario],
        "exemplars": None if run.memory is None else run.memory.summary(),  # references to training images kept
        "confusion": run.confusion.tolist(),  # after the last task: [true label][predicted label] test images
        "seconds": progress.seconds,
        "device": str(run.device),
        "versions": {"seca": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "config": to_dict(config),
    }
    run.log("end", last=results["last"], avg=results["avg"])
    run.log.close()
    if run.writes:
        meta = model_metadata(config, learner, run.order, progress.history)
        if run.memory is not None:
            meta["exemplars"] = run.memory.manifest()
            write_exemplars(run.folder.exemplars, run.memory)
        save_checkpoint(run.folder.model, learner.state_dict(), meta)
        atomic_write_json(run.folder.results, results)
        write_report(run.folder.path)
        run.folder.finish(config.train.checkpoints)
    run.echo(format_table(results))
    return results


def _save_task_checkpoint(run: Run, task_index: int) -> None:
    state = {k: v for k, v in dataclasses.asdict(run.progress).items() if k != "history"}  # the history is beside it
    meta = {
        **model_metadata(run.config, run.learner, run.order, run.progress.history),
        "task": task_index,
        "progress": state,
    }
    if run.memory is not None:
        meta["exemplars"] = run.memory.manifest()
    path = run.folder.checkpoint(task_index)
    save_checkpoint(path, run.learner.state_dict(), meta)
    run.folder.keep_checkpoints(path, run.config.train.checkpoints)


def _silent(message: str) -> None:
    """The echo of every process but rank 0."""


def _read_resume(
    config: ExperimentConfig, folder: RunFolder, echo: Callable[[str], None]
) -> tuple[Path, dict, dict] | None:
    """(path, tensors on the CPU, metadata) of the checkpoint an interrupted run in ``folder`` continues from: the
    newest that reads whole (its digest checked); one that does not is named in one line and the one before it
    tried. None when no task of it had finished (nothing there, a run stopped before its first checkpoint, or no
    checkpoint readable): the run starts from the beginning, and ends as an uninterrupted one would."""
    if folder.finished:
        raise SecaError(f"the run in '{folder.path}' has finished (results.json exists); there is nothing to resume")
    checkpoints = folder.checkpoints_newest_first()
    for path in checkpoints:
        try:
            tensors, meta = load_checkpoint(path, torch.device("cpu"))
            break
        except SecaError as e:
            echo(f"cannot resume from {path.name} ({e}); trying the checkpoint before it")
    else:
        if checkpoints:
            echo(f"no checkpoint of '{folder.path}' can be read: the run starts again from its first task")
        _check_started_config(config, folder)
        return None
    differences = config_differences(config, meta["config"])
    if differences:
        raise SecaError(
            f"the config differs from the interrupted run's at {differences[0]}"
            f"{f' and {len(differences) - 1} more keys' if len(differences) > 1 else ''}; "
            "resume with the same config and --set options"
        )
    return path, tensors, meta


def _check_started_config(config: ExperimentConfig, folder: RunFolder) -> None:
    """Refuse to start a run of ``config`` over a run of another config that stopped before its first task."""
    try:
        started = yaml.safe_load(folder.config.read_text())
    except (OSError, yaml.YAMLError):
        return  # no run, or not a seca run's config: nothing of a run would be lost
    differences = config_differences(config, started) if isinstance(started, dict) else []
    if differences:
        raise SecaError(
            f"'{folder.path}' holds the start of a run of another config (at {differences[0]}); resume "
            "with the same config and --set options, or pass --overwrite to replace it"
        )
