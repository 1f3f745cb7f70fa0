"""Figures of a run: the accuracy matrix as a heatmap, and accuracy on all seen classes per step."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a screen
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy_matrix(results: dict, path: Path) -> None:
    """Heatmap of acc_matrix[s][j] (row: after task s; column: test data of task j), annotated."""
    plt = _pyplot()
    rows = results["acc_matrix"]
    n = len(rows)
    grid = np.full((n, n), np.nan)
    for s, row in enumerate(rows):
        grid[s, : len(row)] = row
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.55 * n), dpi=120)
    image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis")
    for s in range(n):
        for j in range(s + 1):
            ax.text(j, s, f"{grid[s, j]:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if grid[s, j] < 60 else "black")
    ax.set_xticks(range(n), [str(j + 1) for j in range(n)])
    ax.set_yticks(range(n), [str(s + 1) for s in range(n)])
    ax.set_xlabel("test data of task")
    ax.set_ylabel("after task")
    ax.set_title(f"{results['method']} on {results['benchmark']}: accuracy (%)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def plot_accuracy_curves(runs: Sequence[dict], path: Path) -> None:
    """Accuracy on all seen classes after each task, one line per run, against the classes seen."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for results in runs:
        seen = np.cumsum([len(t) for t in results["tasks"]])[: len(results["acc_per_step"])]
        label = f"{results['method']} (Last {results['last']:.1f}, Avg {results['avg']:.1f})"
        style = "--" if results["method"] == "zero-shot" else "-"
        ax.plot(seen, results["acc_per_step"], style, marker="o", markersize=3, label=label)
    ax.set_xlabel("classes seen")
    ax.set_ylabel("accuracy on all seen classes (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(runs[0]["benchmark"] if runs else "")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
