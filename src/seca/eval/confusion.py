"""Where the errors go: the most confused class pairs, and the confusion matrix as CSV and as a figure.

``counts[i][j]`` is the number of test images of class ``rows[i]`` predicted as class ``columns[j]``.
Columns are every class the model knows, in label order (so in task order); rows are the classes
evaluated, a subset of them.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def most_confused(
    counts: Sequence[Sequence[int]], rows: Sequence[str], columns: Sequence[str], top: int = 10
) -> list[dict]:
    """The ``top`` (true, predicted) pairs of different classes with the most images, largest first; each
    with its count and its share of the true class's images (ties: the order of the rows, then columns)."""
    matrix = np.asarray(counts, dtype=np.int64)
    totals = matrix.sum(axis=1)
    pairs = [
        (int(matrix[i, j]), i, j)
        for i in range(len(rows))
        for j in range(len(columns))
        if rows[i] != columns[j] and matrix[i, j] > 0
    ]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return [
        {"true": rows[i], "predicted": columns[j], "images": n, "share": 100.0 * n / int(totals[i])}
        for n, i, j in pairs[:top]
    ]


def write_confusion_csv(
    path: Path, counts: Sequence[Sequence[int]], rows: Sequence[str], columns: Sequence[str]
) -> None:
    """One row per true class, one column per predicted class, with a header row and column of names."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *columns])
        for name, row in zip(rows, counts):
            writer.writerow([name, *(int(v) for v in row)])


def plot_confusion(
    counts: Sequence[Sequence[int]],
    rows: Sequence[str],
    columns: Sequence[str],
    task_bounds: Sequence[int],
    path: Path,
    title: str,
) -> None:
    """The matrix as shares of each true class (rows sum to 1), with lines between the tasks' blocks of
    predicted classes; the newest task's block is labelled apart from the old tasks'."""
    from .plots import _pyplot

    plt = _pyplot()
    matrix = np.asarray(counts, dtype=np.float64)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = min(12.0, 2.0 + 0.18 * max(len(rows), len(columns)))
    fig, ax = plt.subplots(figsize=(side + 1.5, side), dpi=120)
    image = ax.imshow(shares, vmin=0, vmax=1, cmap="magma_r", aspect="auto", interpolation="nearest")
    for bound in task_bounds[1:-1]:
        ax.axvline(bound - 0.5, color="tab:blue", linewidth=0.8)
    row_tasks = np.searchsorted(task_bounds, [columns.index(r) for r in rows], side="right")
    for i in np.flatnonzero(np.diff(row_tasks)):  # between rows of different tasks
        ax.axhline(i + 0.5, color="tab:blue", linewidth=0.8)
    if len(task_bounds) > 2:
        newest = task_bounds[-2]
        ax.axvspan(newest - 0.5, task_bounds[-1] - 0.5, color="tab:blue", alpha=0.08)
        ax.text(newest - 0.5, -0.8, "newest task →", fontsize=8, color="tab:blue", ha="left", va="bottom")
    if len(columns) <= 60:
        ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=6)
        ax.set_yticks(range(len(rows)), rows, fontsize=6)
    ax.set_xlabel("predicted class (in task order; lines between tasks)")
    ax.set_ylabel("true class (in task order)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class's images")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
