"""Continual-learning metrics as pure functions of the accuracy matrix (spec §8).

``matrix[s][j]`` is the accuracy (percent) after task s on the test data of task j, for j <= s (a
lower-triangular list of rows). ``counts[j]`` is the number of test images of task j, used to weight the
tasks when the accuracy on all seen classes is wanted.
"""

from __future__ import annotations

from collections.abc import Sequence

Matrix = Sequence[Sequence[float]]


def _check(matrix: Matrix) -> None:
    for s, row in enumerate(matrix):
        if len(row) != s + 1:
            raise ValueError(
                f"row {s} of the accuracy matrix has {len(row)} entries; a lower-triangular matrix has {s + 1}"
            )


def accuracy_per_step(matrix: Matrix, counts: Sequence[int]) -> list[float]:
    """Accuracy on all classes seen so far after each task: the test-sample-weighted mean of each row."""
    _check(matrix)
    result = []
    for row in matrix:
        weights = counts[: len(row)]
        result.append(sum(a * n for a, n in zip(row, weights)) / sum(weights))
    return result


def forgetting(matrix: Matrix) -> float | None:
    """Mean over the earlier tasks j < T of (best accuracy on j before the final task - final accuracy on j).

    Undefined (None) after a single task.
    """
    _check(matrix)
    final = len(matrix) - 1
    if final == 0:
        return None
    drops = [max(matrix[s][j] for s in range(j, final)) - matrix[final][j] for j in range(final)]
    return sum(drops) / len(drops)


def backward_transfer(matrix: Matrix) -> float | None:
    """Mean over the earlier tasks j < T of (final accuracy on j - accuracy on j right after learning it).

    Negative when learning later tasks hurt earlier ones; None after a single task.
    """
    _check(matrix)
    final = len(matrix) - 1
    if final == 0:
        return None
    return sum(matrix[final][j] - matrix[j][j] for j in range(final)) / final


def summarize_counts(correct: Sequence[Sequence[int]], totals: Sequence[int]) -> dict:
    """Every metric of a run from its counts (``correct[s][j]`` test images of task j right after task s, of
    ``totals[j]``), each rounded once (:func:`percent`, :func:`rounded`): ``acc_matrix`` and ``acc_per_step`` from
    the counts, Avg, forgetting and BWT from the unrounded accuracies. As results.json and a model's history hold
    them."""
    exact = [[100.0 * c / n if n else 0.0 for c, n in zip(row, totals)] for row in correct]
    steps = [100.0 * sum(row) / max(sum(totals[: len(row)]), 1) for row in correct]
    return {
        "acc_matrix": [[percent(c, n) if n else 0.0 for c, n in zip(row, totals)] for row in correct],
        "acc_per_step": [rounded(a) for a in steps],
        "last": rounded(steps[-1]),
        "avg": rounded(sum(steps) / len(steps)),
        "forgetting": rounded(forgetting(exact)),
        "bwt": rounded(backward_transfer(exact)),
    }


def summarize(matrix: Matrix, counts: Sequence[int]) -> dict:
    """Every metric of a run, as stored in results.json: ``last``, the accuracy on all classes after the final task,
    and ``avg``, its mean over the tasks, besides the accuracy after each task, forgetting and BWT."""
    steps = accuracy_per_step(matrix, counts)
    return {
        "acc_per_step": steps,
        "last": steps[-1],
        "avg": sum(steps) / len(steps),
        "forgetting": forgetting(matrix),
        "bwt": backward_transfer(matrix),
    }


# ---- yardsticks and the one rounding rule ----------------------------------------------------------------

DECIMALS = 2  # every percentage shown or written: 2 decimals, rounded once from exact counts


def percent(correct: float, total: float) -> float | None:
    """``100 * correct / total`` rounded to :data:`DECIMALS` decimals (None when ``total`` is 0): a percentage is
    made once, from counts, so that what is printed, written and served is the same number."""
    return round(100.0 * correct / total, DECIMALS) if total else None


def rounded(value: float | None) -> float | None:
    """A percentage derived from unrounded ones (a mean, a difference), rounded once for showing."""
    return None if value is None else round(float(value), DECIMALS)


def chance(classes: int) -> float | None:
    """The accuracy of guessing uniformly among ``classes`` classes, in %."""
    return percent(1, classes)


def majority(class_counts: Sequence[int]) -> float | None:
    """The accuracy of always answering the most frequent class of a test set (its images per class), in %."""
    return percent(max(class_counts), sum(class_counts)) if class_counts and sum(class_counts) else None
