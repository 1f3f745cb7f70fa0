"""A model's own history: one entry per task it learned, kept in its checkpoint, and the report made from it.

``seca run`` records every task it trains (with the accuracy on the benchmark's test set); ``seca learn``
appends one entry per call, evaluated on the model's standing test set (the test images of earlier learns, kept
with the model) and on ``--eval DIR`` when given. An entry is::

    {"task": 1, "classes": ["five", ...], "images": 450, "seconds": 12.3, "data": "digits/task-2",
     "eval": {"data": "digits/test + kept test images", "accuracy": 91.0, "images": 360, "classes": 10,
              "known": 10, "chance": 10.0, "majority": 10.28, "per_task": [93.33, 88.67],
              "task_images": [180, 180], "task_correct": [168, 160], "left_out": [], "kept": 180,
              "warning": None}}   # or "eval": null

``per_task[j]`` is the accuracy (percent, 2 decimals, from ``task_correct[j]`` of ``task_images[j]``) on the
evaluated images of task j's classes, None where none was evaluated. ``chance`` and ``majority`` are the
yardsticks: guessing among the ``known`` classes, and always answering the most frequent class of the evaluated
images. ``warning`` says when the result is no better than them. :func:`history_matrix` makes the accuracy matrix
of the model's life from it, :func:`history_results` the results dictionary that the report's tables and plots
read, so a model grown with ``learn`` is reported like a ``seca run``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import SecaError
from .metrics import backward_transfer, chance, forgetting, majority, percent, rounded

# The fields of an entry's "eval" (and of SecaModel.evaluate's report, which holds them too).
EVAL_FIELDS = (
    "data",
    "accuracy",
    "images",
    "classes",
    "known",
    "chance",
    "majority",
    "per_task",
    "task_images",
    "task_correct",
    "left_out",
    "kept",
    "warning",
)


def eval_record(
    data: str,
    correct: Sequence[int],
    total: Sequence[int],
    classes: int,
    left_out: Sequence[str] = (),
    known: int | None = None,
    class_counts: Sequence[int] = (),
    kept: int = 0,
) -> dict[str, Any]:
    """The ``eval`` part of an entry from the correct and total images per task (every task seen so far), with its
    yardsticks: ``chance`` (guessing among the ``known`` classes the model chooses from, by default ``classes``)
    and ``majority`` (always answering the most frequent class of the evaluated images, ``class_counts`` per
    class). ``left_out``: the folders of ``data`` that were not evaluated (classes not learned yet); ``kept``: how
    many of the images came from the model's standing test set. Percentages are rounded once (2 decimals)."""
    images = sum(total)
    record = {
        "data": data,
        "accuracy": percent(sum(correct), images),
        "images": images,
        "classes": classes,
        "known": known or classes,
        "chance": chance(known or classes),
        "majority": majority(class_counts),
        "per_task": [percent(c, n) for c, n in zip(correct, total)],
        "task_images": list(total),
        "task_correct": list(correct),
        "left_out": list(left_out),
        "kept": kept,
    }
    return {**record, "warning": warning(record)}


# What to try when an evaluation is no better than a trivial answer (the CLI prints it after the warning).
ADVICE = (
    "try a backbone that fits these images (a real CLIP, docs/own-data.md), more training images per class, "
    "or more epochs"
)


def warning(record: dict[str, Any]) -> str | None:
    """What it means, in one sentence, when an evaluation is no better than a trivial answer: the last task's classes
    below chance, or the whole no better than always answering the most frequent class; None otherwise. (What to
    try is :data:`ADVICE`.)"""
    new, accuracy, floor, top = record["per_task"][-1], record["accuracy"], record["chance"], record["majority"]
    if new is not None and floor is not None and new < floor:
        return (
            f"the last task's classes (task {len(record['per_task'])}) scored {new:.2f}%, below chance ({floor:.2f}%, "
            f"guessing among {record['known']} classes): the model cannot tell them apart"
        )
    if accuracy is not None and top is not None and accuracy <= top and record["classes"] > 1:
        return (
            f"accuracy {accuracy:.2f}% is no better than always answering the most frequent class of these test "
            f"images ({top:.2f}%)"
        )
    return None


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


def history_matrix(history: Sequence[dict | None], tasks: int) -> dict[str, Any]:
    """The accuracy matrix of a model's life from its history: row s after task s, entry j on task j's test images
    (None where not measured); ``acc_per_step``, the accuracy on all seen classes (None unless every seen task was
    measured at that step); each step's ``chance`` and ``majority``; Last, Avg, forgetting and BWT as ``seca run``
    reports them (None where the matrix is not whole). What ``seca report`` and the server's /history give."""
    by_task = {entry["task"]: entry for entry in history if entry}
    matrix, exact, steps, exact_steps, floors, tops = [], [], [], [], [], []
    for s in range(tasks):
        evaluation = (by_task.get(s) or {}).get("eval")
        row = list(evaluation["per_task"][: s + 1]) if evaluation else [None] * (s + 1)
        row += [None] * (s + 1 - len(row))
        matrix.append(row)
        whole = evaluation is not None and all(a is not None for a in row)
        steps.append(evaluation["accuracy"] if whole else None)
        exact.append(row)
        exact_steps.append(steps[-1])
        if whole and "task_correct" in evaluation:  # the unrounded accuracies, from the counts: rounded once below
            correct, total = evaluation["task_correct"][: s + 1], evaluation["task_images"][: s + 1]
            exact[-1] = [100.0 * c / n for c, n in zip(correct, total)]
            exact_steps[-1] = 100.0 * sum(correct) / sum(total)
        floors.append((evaluation or {}).get("chance"))
        tops.append((evaluation or {}).get("majority") if whole else None)
    complete = all(a is not None for a in steps)
    return {
        "acc_matrix": matrix,
        "acc_per_step": steps,
        "chance": floors,
        "majority": tops,
        "last": steps[-1] if steps else None,
        "avg": rounded(sum(exact_steps) / len(exact_steps)) if complete and steps else None,
        "forgetting": rounded(forgetting(exact)) if complete and steps else None,
        "bwt": rounded(backward_transfer(exact)) if complete and steps else None,
    }


def history_results(meta: dict[str, Any], source: str) -> dict[str, Any]:
    """The results of the model whose checkpoint metadata is ``meta`` (``source`` names it in errors), from its
    history (:func:`history_matrix`), shaped as a ``seca run``'s results.json for the report's tables and plots."""
    tasks = meta["learner"]["tasks"]
    if not tasks:
        raise SecaError(f"the model '{source}' has learned no task yet; teach it with `seca learn {source} --data DIR`")
    history = meta.get("history", [])
    if not any(entry and entry.get("eval") for entry in history):
        raise SecaError(
            f"the model '{source}' holds no accuracy to report: no task was learned with --eval; "
            "pass --eval DIR to `seca learn`, or measure it now with `seca evaluate`"
        )
    by_task = {entry["task"]: entry for entry in history if entry}
    config = meta["config"]
    return {
        "kind": "history",
        "method": meta["method"],
        "benchmark": meta["benchmark"],
        "backbone": meta["backbone"],
        "seed": config["seed"],
        "class_names": meta["class_names"],
        "tasks": [list(t["classes"]) for t in tasks],
        **history_matrix(history, len(tasks)),
        "history": [by_task.get(s) for s in range(len(tasks))],
        "exemplars": exemplar_summary(meta.get("exemplars")),
    }


def exemplar_summary(manifest: Any) -> dict[str, Any] | None:
    """What a model's exemplar memory keeps (images, classes, per class, selection, files), from its metadata's
    ``exemplars`` (engine/memory.py); None when it keeps none or the list does not read."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("exemplars"), list):
        return None
    rows = [r for r in manifest["exemplars"] if isinstance(r, dict)]
    counts: dict[Any, int] = {}
    for row in rows:
        counts[row.get("label")] = counts.get(row.get("label"), 0) + 1
    return {
        "images": len(rows),
        "classes": len(counts),
        "per_class": max(counts.values(), default=0),
        "selection": manifest.get("selection"),
        "files": sum(isinstance(r.get("file"), str) for r in rows),
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
