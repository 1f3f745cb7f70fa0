"""The task loop: from a config to results.json.

For each task: the learner begins it, trains on its classes, ends it, and is evaluated on the test data
of every class seen so far. The output folder receives the resolved ``config.yaml`` first, ``log.jsonl``
as the run goes, and ``results.json`` (written atomically) when it ends.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from tqdm import tqdm

from .. import __version__
from ..clip.backbone import load_backbone
from ..config import ExperimentConfig, dump_yaml, to_dict
from ..data.datasets import build_datasets
from ..data.scenario import ClassIncrementalScenario, class_order
from ..errors import SecaError
from ..eval.metrics import summarize
from ..eval.report import format_step, format_table
from ..io.files import atomic_write_json, atomic_write_text
from ..io.logs import JsonlLog
from ..methods import TaskData, build_learner
from .data import TaskImages, device_batches, loader
from .device import amp_dtype, resolve_device, seed_everything
from .evaluate import evaluate_tasks
from .train import fit_task


def check_output(out: Path, overwrite: bool = False) -> None:
    if (Path(out) / "results.json").exists() and not overwrite:
        raise SecaError(f"'{out}' already holds results.json; pass --overwrite or choose another --out")


def prepare_output(out: Path, overwrite: bool = False) -> Path:
    out = Path(out)
    check_output(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("log.jsonl", "results.json"):
        (out / stale).unlink(missing_ok=True)
    return out


def run_experiment(config: ExperimentConfig, out: Optional[Path] = None, overwrite: bool = False,
                   echo: Callable[[str], None] = tqdm.write) -> dict:
    """Run one class-incremental experiment; returns the results (also written to ``out``)."""
    seed_everything(config.seed)
    device = resolve_device(config.train.device)
    if out is not None:
        check_output(out, overwrite)

    # Everything that can fail on bad input is built before the output folder is touched.
    backbone = load_backbone(config.backbone.model, config.backbone.pretrained, config.backbone.cache_dir, device)
    d = config.data
    data = build_datasets(d.dataset, d.root, backbone.preprocess, d.download, d.shapes)
    s = config.scenario
    order = class_order(s.order, data.num_classes, d.dataset, s.trial,
                        config.seed if s.order_seed is None else s.order_seed)
    scenario = ClassIncrementalScenario(order, s.first_task, s.increment, data.num_classes)
    learner = build_learner(backbone, scenario.names_in_label_order(data.class_names), config.method, config.seed)
    amp = amp_dtype(config.train.amp, device)
    pin = device.type == "cuda"
    out = prepare_output(out, overwrite) if out is not None else None
    if out is not None:
        atomic_write_text(out / "config.yaml", dump_yaml(config))
    log = JsonlLog(out / "log.jsonl" if out is not None else None)
    train_labels = scenario.labels(data.train.targets)
    test_labels = scenario.labels(data.test.targets)
    echo(f"{learner.name} on {config.benchmark}: {data.num_classes} classes in {len(scenario)} tasks, "
         f"{backbone.model_name} ({backbone.pretrained or 'random weights'}) on {device}")
    log("start", method=learner.name, benchmark=config.benchmark, device=str(device), tasks=len(scenario),
        classes=data.num_classes)

    matrix: list[list[float]] = []
    test_sets: list[TaskImages] = []
    seconds = {"train": [], "eval": []}
    for task in scenario:
        train_idx = scenario.items_of(data.train.targets, [task])
        train_set = TaskImages(data.train, train_idx, train_labels[train_idx])
        test_idx = scenario.items_of(data.test.targets, [task])
        test_sets.append(TaskImages(data.test, test_idx, test_labels[test_idx]))
        if d.cache_images:
            train_set.materialize(config.train.eval_batch_size, d.num_workers)
            test_sets[-1].materialize(config.train.eval_batch_size, d.num_workers)
        batches = device_batches(
            lambda: loader(train_set, config.train.eval_batch_size, None, d.num_workers, pin), device)
        task_data = TaskData(task, len(train_set), batches)

        start = time.perf_counter()
        learner.begin_task(task, task_data)
        if learner.trains and config.train.epochs > 0:
            fit_task(learner, train_set, config.train, device, config.seed * 1_000 + task.index, d.num_workers, log)
        learner.end_task(task, task_data)
        seconds["train"].append(time.perf_counter() - start)

        start = time.perf_counter()
        correct, total = evaluate_tasks(learner, test_sets, config.train.eval_batch_size, device, amp,
                                        d.num_workers, config.train.progress)
        seconds["eval"].append(time.perf_counter() - start)
        row = [100.0 * c / n if n else 0.0 for c, n in zip(correct, total)]
        matrix.append(row)
        counts = total
        step_acc = 100.0 * sum(correct) / max(sum(total), 1)
        log("task_end", task=task.index, classes=task.stop, acc=step_acc, acc_row=row, correct=correct,
            total=total, train_seconds=seconds["train"][-1], eval_seconds=seconds["eval"][-1])
        echo(format_step(task.index, len(scenario), task.stop, step_acc, row, seconds["train"][-1],
                         seconds["eval"][-1]))

    results = {
        "method": learner.name,
        "benchmark": config.benchmark,
        "backbone": {"model": config.backbone.model, "pretrained": config.backbone.pretrained},
        "seed": config.seed,
        "class_order": scenario.order,
        "class_names": scenario.names_in_label_order(data.class_names),
        "tasks": [list(t.classes) for t in scenario],
        "test_counts": counts,
        "acc_matrix": matrix,
        **summarize(matrix, counts),
        "seconds": seconds,
        "device": str(device),
        "versions": {"seca": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "config": to_dict(config),
    }
    log("end", last=results["last"], avg=results["avg"])
    log.close()
    if out is not None:
        atomic_write_json(out / "results.json", results)
    echo(format_table(results))
    return results
