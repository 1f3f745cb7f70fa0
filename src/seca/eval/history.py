"""A model's own history: one entry per task it learned, kept in its checkpoint, and the report made from it.

``seca run`` records every task it trains (with the accuracy on the benchmark's test set); ``seca learn``
appends one entry per call (with the accuracy on ``--eval DIR`` when given). An entry is::

    {"task": 0, "classes": ["zero", ...], "images": 450, "seconds": 12.3, "data": "digits/task-1",
     "eval": {"data": "digits/test", "accuracy": 91.0, "images": 180, "classes": 5,
              "per_task": [91.0], "task_images": [180], "left_out": ["five", ...]}}   # or "eval": null

``per_task[j]`` is the accuracy (percent) on the evaluated images of task j's classes, None where the
evaluated folder held none of them. :func:`history_results` turns the history into the results dictionary
that the report's tables and plots read, so a model grown with ``learn`` is reported like a ``seca run``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import SecaError
from .metrics import backward_transfer, forgetting

# The fields of an entry's "eval" (and of SecaModel.evaluate's report, which holds them too).
EVAL_FIELDS = ("data", "accuracy", "images", "classes", "per_task", "task_images", "left_out")


def eval_record(
    data: str, correct: Sequence[int], total: Sequence[int], classes: int, left_out: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``eval`` part of an entry from the correct and total images per task (every task seen so far);
    ``left_out``: the folders of ``data`` that were not evaluated (classes not learned yet)."""
    images = sum(total)
    return {
        "data": data,
        "accuracy": 100.0 * sum(correct) / images if images else None,
        "images": images,
        "classes": classes,
        "per_task": [100.0 * c / n if n else None for c, n in zip(correct, total)],
        "task_images": list(total),
        "left_out": list(left_out),
    }


def history_entry(
    task: int, classes: Sequence[str], images: int, seconds: float, data: str, evaluation: dict | None = None
) -> dict[str, Any]:
    return {
        "task": task,
        "classes": list(classes),
        "images": images,
        "seconds": seconds,
        "data": data,
        "eval": evaluation,
    }


def history_results(meta: dict[str, Any], source: str) -> dict[str, Any]:
    """The results of the model whose checkpoint metadata is ``meta`` (``source`` names it in errors), from its
    history: the accuracy matrix and per-step accuracy of the evaluated tasks (None where a task was learned
    without evaluation), Last, and Avg, forgetting and BWT where every step was evaluated on every task."""
    tasks = meta["learner"]["tasks"]
    if not tasks:
        raise SecaError(f"the model '{source}' has learned no task yet; teach it with `seca learn {source} --data DIR`")
    by_task = {entry["task"]: entry for entry in meta.get("history", [])}
    matrix, steps = [], []
    for s in range(len(tasks)):
        evaluation = (by_task.get(s) or {}).get("eval")
        matrix.append(list(evaluation["per_task"][: s + 1]) if evaluation else [None] * (s + 1))
        steps.append(evaluation["accuracy"] if evaluation else None)
    if all(a is None for a in steps):
        raise SecaError(
            f"the model '{source}' holds no accuracy to report: no task was learned with --eval; "
            "pass --eval DIR to `seca learn`, or measure it now with `seca evaluate`"
        )
    complete = all(a is not None for row in matrix for a in row)
    config = meta["config"]
    return {
        "kind": "history",
        "method": meta["method"],
        "benchmark": meta["benchmark"],
        "backbone": meta["backbone"],
        "seed": config["seed"],
        "class_names": meta["class_names"],
        "tasks": [list(t["classes"]) for t in tasks],
        "acc_matrix": matrix,
        "acc_per_step": steps,
        "last": steps[-1],
        "avg": sum(steps) / len(steps) if all(a is not None for a in steps) else None,
        "forgetting": forgetting(matrix) if complete else None,
        "bwt": backward_transfer(matrix) if complete else None,
        "history": [by_task.get(s) for s in range(len(tasks))],
    }


def format_history(results: dict[str, Any]) -> list[str]:
    """Markdown table rows, one per task: its new classes, training images and seconds, and the evaluation."""
    lines = [
        "| task | new classes | training images | seconds | evaluated on | images | accuracy (%) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s, entry in enumerate(results["history"]):
        if entry is None:
            lines.append(f"| {s + 1} | {len(results['tasks'][s])} | - | - | not recorded | - | - |")
            continue
        names = entry["classes"]
        shown = ", ".join(names[:4]) + (f", ... ({len(names)})" if len(names) > 4 else "")
        evaluation = entry.get("eval")
        where = (
            f"{evaluation['data']} | {evaluation['images']} | {evaluation['accuracy']:.2f}"
            if evaluation
            else "not evaluated | - | -"
        )
        lines.append(f"| {s + 1} | {shown} | {entry['images']} | {entry['seconds']:.1f} | {where} |")
    return lines
