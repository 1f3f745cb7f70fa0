"""Text tables of results: one line per finished task, and the per-task table of a whole run."""

from __future__ import annotations

from typing import Optional, Sequence


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_step(index: int, num_tasks: int, seen: int, accuracy: float, row: Sequence[float],
                train_seconds: float, eval_seconds: float) -> str:
    tasks = " ".join(f"{a:.1f}" for a in row)
    return (f"task {index + 1}/{num_tasks}: {accuracy:6.2f}% on {seen} classes  [per task: {tasks}]  "
            f"train {train_seconds:.1f}s, eval {eval_seconds:.1f}s")


def format_table(results: dict) -> str:
    """The accuracy matrix with the accuracy on all seen classes per step, then Last/Avg/forgetting/BWT."""
    matrix = results["acc_matrix"]
    steps = results["acc_per_step"]
    width = max(6, len(str(len(matrix))) + 2)
    header = f"{'step':>4} {'classes':>7} {'seen':>7} | " + " ".join(f"{'T' + str(j + 1):>{width}}" for j in range(len(matrix)))
    lines = [f"{results['method']} on {results['benchmark']}", header, "-" * len(header)]
    seen = 0
    for s, (row, acc) in enumerate(zip(matrix, steps)):
        seen += len(results["tasks"][s])
        cells = " ".join(f"{a:>{width}.2f}" for a in row)
        lines.append(f"{s + 1:>4} {seen:>7} {acc:>7.2f} | {cells}")
    lines.append(f"Last {_fmt(results['last'])}  Avg {_fmt(results['avg'])}  "
                 f"Forgetting {_fmt(results['forgetting'])}  BWT {_fmt(results['bwt'])}")
    return "\n".join(lines)
