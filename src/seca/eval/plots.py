"""Figures of a run: the accuracy matrix as a heatmap, accuracy on all seen classes per step (a band of
± one standard deviation over seeds for a multi-seed run; for a model's history, one line per task as well),
and Last per variant of an ablation. Every percentage written on a figure has 2 decimals, as in the tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a screen
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy_matrix(results: dict, path: Path) -> None:
    """Heatmap of acc_matrix[s][j] (row: after task s; column: test data of task j), annotated."""
    plt = _pyplot()
    aggregate = "acc_matrix_mean" in results
    rows = results["acc_matrix_mean"] if aggregate else results["acc_matrix"]
    n = len(rows)
    grid = np.full((n, n), np.nan)
    for s, row in enumerate(rows):  # None: not evaluated (a model's history may lack some steps)
        grid[s, : len(row)] = [np.nan if a is None else a for a in row]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.0 + 0.7 * n), max(3.5, 0.8 + 0.55 * n)), dpi=120)
    image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis")
    for s in range(n):
        for j in range(s + 1):
            if np.isnan(grid[s, j]):
                continue
            ax.text(
                j,
                s,
                f"{grid[s, j]:.2f}",
                ha="center",
                va="center",
                fontsize=8 if n <= 6 else 7,
                color="white" if grid[s, j] < 60 else "black",
            )
    ax.set_xticks(range(n), [str(j + 1) for j in range(n)])
    ax.set_yticks(range(n), [str(s + 1) for s in range(n)])
    ax.set_xlabel("test data of task")
    ax.set_ylabel("after task")
    over = f", mean of {len(results['seeds'])} seeds" if aggregate else ""
    ax.set_title(f"{results['method']} on {results['benchmark']}: accuracy (%){over}")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _gaps(values: Sequence[float | None]) -> np.ndarray:
    """``values`` as floats with NaN for None: matplotlib breaks a line at NaN, so a gap stays a gap."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _pct(summary) -> str:
    return summary.format(2) if summary is not None else "-"


def _plot_history(ax, results: dict, seen: np.ndarray) -> None:
    """A model's history as the web page draws it: per task j, its test images' accuracy after every step
    s >= j (column j of the matrix; broken where a step did not measure it); the accuracy on all seen classes,
    thicker (broken where a step did not measure every seen task); chance, dashed, where the results hold it."""
    matrix, steps = results["acc_matrix"], results["acc_per_step"]
    tasks = len(matrix)
    from matplotlib import colormaps

    colours = colormaps["viridis"](np.linspace(0.0, 0.85, max(tasks, 1)))
    for j in range(tasks):
        column = _gaps([matrix[s][j] if j < len(matrix[s]) else None for s in range(j, tasks)])
        ax.plot(
            seen[j:tasks],
            column,
            "-",
            marker="o",
            markersize=3,
            linewidth=1.0,
            color=colours[j],
            label=f"task {j + 1}",
            gid=f"task {j + 1}",
        )
    last, avg = results.get("last"), results.get("avg")
    ax.plot(
        seen[:tasks],
        _gaps(steps),
        "-",
        marker="o",
        markersize=4,
        linewidth=2.6,
        color="black",
        label=f"all seen classes (Last {'-' if last is None else f'{last:.2f}'}, "
        f"Avg {'-' if avg is None else f'{avg:.2f}'})",
        gid="all seen classes",
        zorder=3,
    )
    chance = (results.get("chance") or [])[:tasks]  # absent from results written before chance was recorded
    if any(c is not None for c in chance):
        ax.plot(
            seen[: len(chance)],
            _gaps(chance),
            "--",
            linewidth=1.2,
            color="0.45",
            label="chance",
            gid="chance",
        )


def plot_accuracy_curves(runs: Sequence[dict], path: Path) -> None:
    """Accuracy on all seen classes after each task, one line per run, against the classes seen; a run
    over several seeds is drawn as its mean with a band of ± one standard deviation. A model's history
    (``"kind": "history"``) is drawn as the web page draws it: one line per task's test images, the
    accuracy on all seen classes thicker, and chance dashed; a step that measured nothing leaves a gap."""
    from .aggregate import metric, step_curve

    plt = _pyplot()
    history = any(r.get("kind") == "history" for r in runs)
    fig, ax = plt.subplots(figsize=(7.5 if history else 6, 4), dpi=120, layout="constrained")
    for results in runs:
        seen = np.cumsum([len(t) for t in results["tasks"]])
        if results.get("kind") == "history":
            _plot_history(ax, results, seen)
            continue
        means, stds = step_curve(results)
        seen = seen[: len(means)]
        kept = [s for s, m in enumerate(means) if m is not None]  # steps a model's history did not evaluate
        seen, means = seen[kept], [means[s] for s in kept]
        stds = None if stds is None else [stds[s] for s in kept]
        last, avg = metric(results, "last"), metric(results, "avg")
        label = f"{results['method']} (Last {_pct(last)}, Avg {_pct(avg)})"
        style = "--" if results["method"] == "zero-shot" else "-"
        (line,) = ax.plot(seen, means, style, marker="o", markersize=3, label=label, gid=results["method"])
        if stds is not None:
            low, high = np.subtract(means, stds), np.add(means, stds)
            ax.fill_between(seen, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("classes seen")
    ax.set_ylabel("accuracy (%)" if history else "accuracy on all seen classes (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    if history:  # a line per task: the legend goes beside the axes
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        first = runs[0]
        ax.set_title(f"{first['method']} on {first['benchmark']}: accuracy after each task learned", fontsize=10)
    else:
        ax.legend(fontsize=8)
        ax.set_title(runs[0]["benchmark"] if runs else "")
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_ablation(rows: Sequence[dict], path: Path, title: str, reference: str) -> None:
    """Last per variant: the mean with its 95% interval over seeds as error bars, and every seed as a dot."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.5 + 0.9 * len(rows), 4), dpi=120)
    for x, row in enumerate(rows):
        last = row["last"]
        values = last.values
        ax.scatter([x] * len(values), values, s=10, color="0.55", zorder=2)
        if last.low is not None:
            ax.errorbar(
                [x],
                [last.mean],
                yerr=[[last.mean - last.low], [last.high - last.mean]],
                fmt="o",
                color="C3" if row["variant"] == reference else "C0",
                capsize=4,
                zorder=3,
            )
        else:
            ax.plot([x], [last.mean], "o", color="C0", zorder=3)
    ax.set_xticks(range(len(rows)), [row["variant"] for row in rows], rotation=30, ha="right")
    ax.set_ylabel("Last accuracy (%)")
    seeds = max(len(row["last"].values) for row in rows)
    ax.set_title(f"{title}: mean and 95% interval over {seeds} seed{'s' if seeds > 1 else ''}", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
