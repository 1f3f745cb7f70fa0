"""The task loop: from a config to results.json, a saved model and a report.

For each task: the learner begins it, trains on its classes, ends it, is evaluated on the test data of
every class seen so far, and is checkpointed. The output folder receives the resolved ``config.yaml``
first, ``log.jsonl`` as the run goes, ``checkpoints/task-NN.safetensors`` after every task, and at the
end ``results.json``, ``model.safetensors`` and the report (all written atomically). ``resume=True``
continues an interrupted run from its last checkpoint and ends with the same results.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
import yaml
from tqdm import tqdm

from .. import __version__, distributed
from ..clip.backbone import load_backbone
from ..config import ExperimentConfig, dump_yaml, to_dict, validate
from ..data.datasets import ImageFiles, build_datasets, without_bad_images
from ..data.scenario import ClassIncrementalScenario, class_order, tasks_by_name
from ..errors import SecaError
from ..eval.history import eval_record, history_entry
from ..eval.metrics import summarize
from ..eval.report import format_step, format_table, write_report
from ..io.checkpoint import load_checkpoint, save_checkpoint
from ..io.files import atomic_write_json, atomic_write_text, writable
from ..io.locks import FolderLock
from ..io.logs import RunLog, summary_writer_class
from ..methods import Learner, build_learner, check_method
from .data import TaskImages
from .device import amp_dtype, resolve_device, seed_everything, set_threads
from .evaluate import evaluate_tasks
from .train import learn_task, task_seed

# Keys that may differ between an interrupted run and its resumption: they do not change results.
RESUME_FREE_KEYS = {"train.progress", "train.log_every", "train.tensorboard", "train.checkpoints", "data.num_workers",
                    "train.threads", "method.stem_cache_gb", "train.dist_timeout"}


def check_output(out: Path, overwrite: bool = False) -> None:
    """Refuse an output folder that cannot be written, or holds a run that --overwrite alone may replace."""
    writable(out, "--out", folder=True)
    if overwrite:
        return
    if (Path(out) / "results.json").exists():
        raise SecaError(f"'{out}' already holds results.json; pass --overwrite or choose another --out")
    interrupted = latest_checkpoint(out)
    if interrupted is not None:
        raise SecaError(f"'{out}' holds an interrupted run (saved after task {int(interrupted.stem[5:])}); continue it "
                        "by adding --resume to the same command, or pass --overwrite to start again")


# What a run writes into its folder. An earlier run's are set aside in PREVIOUS when a new run starts there,
# and deleted only when the new run has finished: a new run that dies loses nothing of the old one.
RUN_FILES = ("config.yaml", "log.jsonl", "results.json", "model.safetensors", "summary.md", "accuracy_matrix.png",
             "accuracy_curve.png", "checkpoints", "tensorboard")
PREVIOUS = ".previous"


def prepare_output(out: Path, overwrite: bool = False, lock: Optional[FolderLock] = None) -> Path:
    out = writable(out, "--out", folder=True)
    out.mkdir(parents=True, exist_ok=True)
    if lock is not None:  # before the folder is read: a run that started there at the same moment is refused
        lock.take()
    check_output(out, overwrite)
    earlier = [out / name for name in RUN_FILES if (out / name).exists()]
    if earlier:
        shutil.rmtree(out / PREVIOUS, ignore_errors=True)
        (out / PREVIOUS).mkdir()
        for path in earlier:
            os.replace(path, out / PREVIOUS / path.name)
    return out


def checkpoint_path(out: Path, task_index: int) -> Path:
    return Path(out) / "checkpoints" / f"task-{task_index + 1:02d}.safetensors"


def latest_checkpoint(out: Path) -> Optional[Path]:
    found = sorted((Path(out) / "checkpoints").glob("task-*.safetensors"))
    return found[-1] if found else None


def config_differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """The keys at which two plain configs differ in a way that changes results (``a`` now, ``b`` in the run)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in config_differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    key = prefix.rstrip(".")
    return [] if a == b or key in RESUME_FREE_KEYS else [f"{key} ({a!r} now, {b!r} in the run)"]


def model_metadata(config: ExperimentConfig, learner: Learner, order: list[int],
                   history: Sequence[dict] = ()) -> dict:
    """What a checkpoint says about the model besides its tensors; ``history`` is one entry per task learned
    (see :mod:`seca.eval.history`)."""
    return {
        "seca_version": __version__,
        "method": learner.name,
        "benchmark": config.benchmark,
        "backbone": {"model": config.backbone.model, "pretrained": config.backbone.pretrained},
        "class_names": learner.class_names[: learner.num_seen],
        "class_order": order[: learner.num_seen],
        "tasks": [list(t.classes) for t in learner.tasks],
        "config": to_dict(config),
        "learner": learner.structure(),
        "history": list(history),
    }


@dataclass
class Progress:
    """The results of the tasks finished so far (stored in every checkpoint, for --resume)."""

    acc_matrix: list[list[float]] = field(default_factory=list)
    test_counts: list[int] = field(default_factory=list)
    seconds: dict[str, list[float]] = field(default_factory=lambda: {"train": [], "eval": []})
    steps: int = 0  # optimisation steps so far
    history: list[dict] = field(default_factory=list)  # one entry per task (seca.eval.history)


def run_experiment(config: ExperimentConfig, out: Optional[Path] = None, overwrite: bool = False,
                   resume: bool = False, echo: Callable[[str], None] = tqdm.write) -> dict:
    """Run one class-incremental experiment; returns the results (also written to ``out``).

    ``resume`` continues the interrupted run in ``out`` from its last checkpoint, or starts it from the
    beginning when no task had finished (a job requeued with its own command line). The folder's lock is
    held from the start to the end (rank 0 holds it for every process): a second writer is refused.
    """
    with FolderLock(None if out is None else Path(out)) as lock:
        return _run_experiment(config, out, overwrite, resume, echo, lock)


def _run_experiment(config: ExperimentConfig, out: Optional[Path], overwrite: bool, resume: bool,
                    echo: Callable[[str], None], lock: FolderLock) -> dict:
    validate(config)  # a config built in Python, not through from_dict, is checked as well
    seed_everything(config.seed)
    if distributed.launched():  # one of several processes (torchrun): see docs/distributed.md
        device = distributed.join(config.train.device, config.train.dist_timeout)
    else:
        device = resolve_device(config.train.device)
    w = distributed.world()
    if not w.main:
        echo = _silent  # rank 0 speaks and writes for the run
    if w.size > 1 and config.train.batch_size % w.size:
        raise SecaError(f"train.batch_size {config.train.batch_size} does not split over {w.size} processes: use a "
                        f"multiple of {w.size} (it is the global batch; each process takes batch_size / {w.size})")
    threads = set_threads(config.train.threads)
    if resume and out is None:
        raise SecaError("--resume needs the --out folder of the interrupted run")
    if out is not None:
        distributed.on_main(lock.take_if_there)  # a run in progress there is refused before any work
    if out is not None and not resume:
        distributed.on_main(lambda: check_output(out, overwrite))

    # Everything that can fail on bad input is built before the output folder is touched: first what is cheap
    # (the method's name, the data and every image file, the scenario), then the backbone.
    check_method(config.method.name)
    d = config.data
    data = build_datasets(d.dataset, d.root, None, d.download, d.shapes, d.max_pixels)
    if isinstance(data.train, ImageFiles):  # image files on disk: every one is read once before any training
        data = dataclasses.replace(data, train=without_bad_images(data.train, d.skip_bad_images, echo),
                                   test=without_bad_images(data.test, d.skip_bad_images, echo))
    s = config.scenario
    if s.tasks is not None:
        order, sizes = tasks_by_name(s.tasks, data.class_names)
        scenario = ClassIncrementalScenario(order, num_classes=data.num_classes, sizes=sizes)
    else:
        order = class_order(s.order, data.num_classes, d.dataset, s.trial,
                            config.seed if s.order_seed is None else s.order_seed)
        scenario = ClassIncrementalScenario(order, s.first_task, s.increment, data.num_classes)
    backbone = load_backbone(config.backbone.model, config.backbone.pretrained, config.backbone.cache_dir, device)
    data.train.transform = data.test.transform = backbone.preprocess
    learner = build_learner(backbone, scenario.names_in_label_order(data.class_names), config.method, config.seed)
    amp = amp_dtype(config.train.amp, device)
    if config.train.tensorboard:
        summary_writer_class()  # fails now, not after the output folder exists

    progress, first_task = Progress(), 0
    saved = distributed.on_main(lambda: _read_resume(config, Path(out))) if resume else None
    if saved is not None:  # rank 0 has read the checkpoint and handed it to every process
        path, tensors, meta = saved
        learner.restore(tensors, meta["learner"])
        progress, first_task = Progress(**meta["progress"], history=meta.get("history", [])), meta["task"] + 1
        echo(f"resuming after task {first_task} of {len(scenario)} from {path}")
    elif out is not None:
        if resume:
            echo(f"nothing to resume in '{out}' (no task had finished): starting the run from the beginning")
        out = Path(out)
        distributed.on_main(lambda: _start_output(out, overwrite or resume, config, lock))
    log = RunLog(out if w.main else None, tensorboard=config.train.tensorboard)
    cpu = f" ({threads} CPU thread{'s' if threads > 1 else ''})" if device.type == "cpu" else ""
    processes = f" in each of {w.size} processes" if w.size > 1 else ""
    echo(f"{learner.name} on {config.benchmark}: {data.num_classes} classes in {len(scenario)} tasks, "
         f"{backbone.model_name} ({backbone.pretrained or 'random weights'}) on {device}{cpu}{processes}")
    log("resume" if resume else "start", method=learner.name, benchmark=config.benchmark, device=str(device),
        threads=threads, processes=w.size,
        tasks=len(scenario), classes=data.num_classes, first_task=first_task)

    train_labels = scenario.labels(data.train.targets)
    test_labels = scenario.labels(data.test.targets)
    test_sets: list[TaskImages] = []
    for task in scenario:
        test_idx = scenario.items_of(data.test.targets, [task])
        test_sets.append(TaskImages(data.test, test_idx, test_labels[test_idx]).shard())  # this process's part
        if task.index < first_task:
            continue
        train_idx = scenario.items_of(data.train.targets, [task])
        train_set = TaskImages(data.train, train_idx, train_labels[train_idx]).shard(task_seed(config.seed, task))
        if d.cache_images:
            train_set.materialize(config.train.eval_batch_size, d.num_workers)
            test_sets[-1].materialize(config.train.eval_batch_size, d.num_workers)

        start = time.perf_counter()
        progress.steps = learn_task(learner, task, train_set, config.train, device, config.seed, d.num_workers, log,
                                    first_step=progress.steps)
        progress.seconds["train"].append(time.perf_counter() - start)

        start = time.perf_counter()
        last = task.index == len(scenario) - 1
        confusion = torch.zeros(task.stop, task.stop, dtype=torch.long) if last else None
        correct, total = evaluate_tasks(learner, test_sets, config.train.eval_batch_size, device, amp,
                                        d.num_workers, config.train.progress, confusion, config.train.eval_order)
        progress.seconds["eval"].append(time.perf_counter() - start)
        row = [100.0 * c / n if n else 0.0 for c, n in zip(correct, total)]
        progress.acc_matrix.append(row)
        progress.test_counts = total
        step_acc = 100.0 * sum(correct) / max(sum(total), 1)
        names = learner.class_names[task.start:task.stop]
        progress.history.append(history_entry(
            task.index, names, len(train_idx), progress.seconds["train"][-1], f"{config.benchmark} train",
            eval_record(f"{config.benchmark} test", correct, total, task.stop)))
        log("task_end", task=task.index, classes=task.stop, acc=step_acc, acc_row=row, correct=correct,
            total=total, train_seconds=progress.seconds["train"][-1], eval_seconds=progress.seconds["eval"][-1])
        echo(format_step(task.index, len(scenario), task.stop, step_acc, row, progress.seconds["train"][-1],
                         progress.seconds["eval"][-1]))
        if out is not None and w.main and config.train.checkpoints != "none" and task.index < len(scenario) - 1:
            _save_task_checkpoint(config, Path(out), learner, order, task.index, progress)

    results = {
        "method": learner.name,
        "benchmark": config.benchmark,
        "backbone": {"model": config.backbone.model, "pretrained": config.backbone.pretrained},
        "seed": config.seed,
        "class_order": scenario.order,
        "class_names": scenario.names_in_label_order(data.class_names),
        "tasks": [list(t.classes) for t in scenario],
        "test_counts": progress.test_counts,
        "acc_matrix": progress.acc_matrix,
        **summarize(progress.acc_matrix, progress.test_counts),
        "confusion": confusion.tolist(),  # after the last task: [true label][predicted label] test images
        "seconds": progress.seconds,
        "device": str(device),
        "versions": {"seca": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "config": to_dict(config),
    }
    log("end", last=results["last"], avg=results["avg"])
    log.close()
    if out is not None and w.main:
        tensors = learner.state_dict()
        save_checkpoint(Path(out) / "model.safetensors", tensors,
                        model_metadata(config, learner, order, progress.history))
        atomic_write_json(Path(out) / "results.json", results)
        if config.train.checkpoints != "all":
            for old in (Path(out) / "checkpoints").glob("task-*.safetensors"):
                old.unlink()
        write_report(Path(out))
        shutil.rmtree(Path(out) / PREVIOUS, ignore_errors=True)  # the new run is whole: the old one may go
    echo(format_table(results))
    return results


def _save_task_checkpoint(config: ExperimentConfig, out: Path, learner: Learner, order: list[int],
                          task_index: int, progress: Progress) -> None:
    state = {k: v for k, v in dataclasses.asdict(progress).items() if k != "history"}  # the history is beside it
    meta = {**model_metadata(config, learner, order, progress.history), "task": task_index, "progress": state}
    path = checkpoint_path(out, task_index)
    save_checkpoint(path, learner.state_dict(), meta)
    if config.train.checkpoints == "last":
        for old in path.parent.glob("task-*.safetensors"):
            if old != path:
                old.unlink()


def _silent(message: str) -> None:
    """The echo of every process but rank 0."""


def _start_output(out: Path, overwrite: bool, config: ExperimentConfig, lock: FolderLock) -> None:
    prepare_output(out, overwrite, lock)
    atomic_write_text(out / "config.yaml", dump_yaml(config))


def _read_resume(config: ExperimentConfig, out: Path) -> Optional[tuple[Path, dict, dict]]:
    """(path, tensors on the CPU, metadata) of the checkpoint an interrupted run in ``out`` continues from;
    None when no task of it had finished (nothing there, or a run stopped before its first checkpoint)."""
    if (out / "results.json").exists():
        raise SecaError(f"the run in '{out}' has finished (results.json exists); there is nothing to resume")
    path = latest_checkpoint(out)
    if path is None:
        _check_started_config(config, out)
        return None
    tensors, meta = load_checkpoint(path, torch.device("cpu"))
    differences = config_differences(to_dict(config), meta["config"])
    if differences:
        raise SecaError(f"the config differs from the interrupted run's at {differences[0]}"
                        f"{f' and {len(differences) - 1} more keys' if len(differences) > 1 else ''}; "
                        "resume with the same config and --set options")
    return path, tensors, meta


def _check_started_config(config: ExperimentConfig, out: Path) -> None:
    """Refuse to start a run of ``config`` over a run of another config that stopped before its first task."""
    try:
        started = yaml.safe_load((out / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return  # no run, or not a seca run's config: nothing of a run would be lost
    differences = config_differences(to_dict(config), started) if isinstance(started, dict) else []
    if differences:
        raise SecaError(f"'{out}' holds the start of a run of another config (at {differences[0]}); resume "
                        "with the same config and --set options, or pass --overwrite to replace it")
