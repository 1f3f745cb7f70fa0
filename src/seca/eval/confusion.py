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

from .metrics import percent


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
        {"true": rows[i], "predicted": columns[j], "images": n, "share": percent(n, int(totals[i]))}
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


# The figure's layout, by the number of classes n (the larger of rows and columns): every class is named up to
# NAMED_MAX, every k-th one beyond (k the smallest that names at most NAMED_MAX; the axis label says so); the cells
# carry their share in % up to ANNOTATED_MAX classes.
NAMED_MAX = 40
ANNOTATED_MAX = 12
NAME_CHARS = 28  # longer class names are cut, with "…", in the tick labels (confusion.csv has them whole)


def _short(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def _named(count: int, step: int) -> list[int]:
    """The positions named among ``count`` ticks: every ``step``-th, from the first."""
    return list(range(0, count, step))


def plot_confusion(
    counts: Sequence[Sequence[int]],
    rows: Sequence[str],
    columns: Sequence[str],
    task_bounds: Sequence[int],
    path: Path,
    title: str,
) -> None:
    """The matrix as shares of each true class (rows sum to 1), with lines between the tasks' blocks of
    predicted classes; the newest task's block of columns is shaded apart from the old tasks'.

    Laid out for 2 to a few hundred classes with nothing cut off (constrained layout, a title wrapped to the
    figure's width, the colour bar's label inside): every class named up to :data:`NAMED_MAX` classes, every
    k-th beyond (the axis label says so); each cell's share in % (2 decimals, from the counts) up to
    :data:`ANNOTATED_MAX` classes."""
    import textwrap

    from .plots import _pyplot

    plt = _pyplot()
    matrix = np.asarray(counts, dtype=np.int64)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = matrix / np.maximum(totals, 1)
    n = max(len(rows), len(columns), 1)
    step = 1 if n <= NAMED_MAX else -(-n // NAMED_MAX)
    tick_size = 8 if n <= 10 else 7 if n <= 25 else 6
    label_inches = max((len(_short(c)) for c in [*rows, *columns]), default=4) * tick_size * 0.6 / 72
    side = float(np.clip(0.5 * n, 3.2, 6.0)) if n <= ANNOTATED_MAX else float(np.clip(4.0 + 0.125 * n, 6.0, 9.0))
    width, height = side + label_inches + 2.2, side + label_inches + 1.6
    fig, ax = plt.subplots(figsize=(width, height), dpi=120, layout="constrained")
    image = ax.imshow(shares, vmin=0, vmax=1, cmap="magma_r", aspect="auto", interpolation="nearest")
    line_width = 0.8 if n <= 50 else 0.5
    for bound in task_bounds[1:-1]:
        ax.axvline(bound - 0.5, color="tab:blue", linewidth=line_width)
    row_tasks = np.searchsorted(task_bounds, [columns.index(r) for r in rows], side="right")
    for i in np.flatnonzero(np.diff(row_tasks)):  # between rows of different tasks
        ax.axhline(i + 0.5, color="tab:blue", linewidth=line_width)
    newest = ""
    if len(task_bounds) > 2:
        ax.axvspan(task_bounds[-2] - 0.5, task_bounds[-1] - 0.5, color="tab:blue", alpha=0.12, linewidth=0)
        newest = "; shaded: the newest task"
    if n <= ANNOTATED_MAX:
        for i in range(len(rows)):
            for j in range(len(columns)):
                share = 100.0 * int(matrix[i, j]) / int(totals[i, 0]) if totals[i, 0] else None
                ax.text(
                    j,
                    i,
                    "-" if share is None else f"{share:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if shares[i, j] > 0.55 else "black",
                )
    x_named, y_named = _named(len(columns), step), _named(len(rows), step)
    ax.set_xticks(x_named, [_short(columns[j]) for j in x_named], rotation=90, fontsize=tick_size)
    ax.set_yticks(y_named, [_short(rows[i]) for i in y_named], fontsize=tick_size)
    if step > 1:
        ax.set_xticks(range(len(columns)), minor=True)
        ax.set_yticks(range(len(rows)), minor=True)
        ax.tick_params(which="minor", length=1.5)
    which = "" if step == 1 else f"\n1 class in {step} named; confusion.csv has all"
    ax.set_xlabel(f"predicted class (in task order; lines between tasks{newest}){which}", fontsize=9)
    ax.set_ylabel("true class (in task order)", fontsize=9)
    ax.set_title(textwrap.fill(title, width=max(24, int((side + label_inches) * 72 / (10 * 0.6)))), fontsize=10)
    bar = fig.colorbar(image, ax=ax, shrink=min(1.0, 0.6 + 0.1 * side / 3), aspect=max(12, 3 * side))
    bar.set_label("share of the true class's images", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    fig.savefig(path, format="png", bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
