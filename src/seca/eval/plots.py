"""Figures of a run: the accuracy matrix as a heatmap, accuracy on all seen classes per step (a band of
± one standard deviation over seeds for a multi-seed run), and Last per variant of an ablation."""

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
    fig, ax = plt.subplots(figsize=(max(4.5, 1.0 + 0.6 * n), max(3.5, 0.8 + 0.55 * n)), dpi=120)
    image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis")
    for s in range(n):
        for j in range(s + 1):
            if np.isnan(grid[s, j]):
                continue
            ax.text(
                j,
                s,
                f"{grid[s, j]:.0f}",
                ha="center",
                va="center",
                fontsize=8,
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


def plot_accuracy_curves(runs: Sequence[dict], path: Path) -> None:
    """Accuracy on all seen classes after each task, one line per run, against the classes seen; a run
    over several seeds is drawn as its mean with a band of ± one standard deviation."""
    from .aggregate import metric, step_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for results in runs:
        means, stds = step_curve(results)
        seen = np.cumsum([len(t) for t in results["tasks"]])[: len(means)]
        kept = [s for s, m in enumerate(means) if m is not None]  # steps a model's history did not evaluate
        seen, means = seen[kept], [means[s] for s in kept]
        stds = None if stds is None else [stds[s] for s in kept]
        last, avg = metric(results, "last"), metric(results, "avg")
        label = f"{results['method']} (Last {last.format(1) if last else '-'}, Avg {avg.format(1) if avg else '-'})"
        style = "--" if results["method"] == "zero-shot" else "-"
        (line,) = ax.plot(seen, means, style, marker="o", markersize=3, label=label)
        if stds is not None:
            low, high = np.subtract(means, stds), np.add(means, stds)
            ax.fill_between(seen, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("classes seen")
    ax.set_ylabel("accuracy on all seen classes (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(runs[0]["benchmark"] if runs else "")
    fig.tight_layout()
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
