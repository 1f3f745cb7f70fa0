"""Text tables of results: one line per finished task, and the per-task table of a whole run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

from ..io.files import atomic_write, atomic_write_text


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


def format_comparison(runs: Sequence[dict], names: Sequence[str]) -> str:
    """Last / Avg / forgetting / BWT of several runs side by side."""
    def num(v):
        return "-" if v is None else f"{v:.2f}"

    width = max([len("run")] + [len(n) for n in names])
    head = f"{'run':<{width}}  {'method':<10} {'benchmark':<14} {'Last':>6} {'Avg':>6} {'Forget':>7} {'BWT':>7}"
    lines = [head, "-" * len(head)]
    for name, r in zip(names, runs):
        lines.append(f"{name:<{width}}  {r['method']:<10} {r['benchmark']:<14} {num(r['last']):>6} "
                     f"{num(r['avg']):>6} {num(r['forgetting']):>7} {num(r['bwt']):>7}")
    return "\n".join(lines)


def read_results(folder: Path) -> dict:
    from ..errors import SecaError

    path = Path(folder) / "results.json"
    if not path.is_file():
        raise SecaError(f"'{folder}' holds no results.json (is it the output folder of a finished `seca run`?)")
    return json.loads(path.read_text())


def find_zero_shot(folder: Path, results: dict) -> Optional[dict]:
    """The zero-shot run beside ``folder``, if it was run: ``runs/<benchmark>/zero-shot/<seed folder>`` (the
    default layout) or a sibling ``zero-shot`` folder (``seca demo``'s layout)."""
    if results["method"] == "zero-shot":
        return None
    folder = Path(folder)
    for candidate in (folder.parent.parent / "zero-shot" / folder.name, folder.parent / "zero-shot"):
        if (candidate / "results.json").is_file():
            zero_shot = json.loads((candidate / "results.json").read_text())
            if zero_shot["benchmark"] == results["benchmark"] and zero_shot["class_order"] == results["class_order"]:
                return zero_shot
    return None


def summary_markdown(results: dict, zero_shot: Optional[dict] = None) -> str:
    """A Markdown summary: what ran, the headline metrics, the per-task table, the figures."""
    backbone = results["backbone"]
    lines = [
        f"# {results['method']} on {results['benchmark']}",
        "",
        f"- backbone: {backbone['model']} ({backbone['pretrained'] or 'random weights'}), seed {results['seed']}",
        f"- {len(results['class_order'])} classes in {len(results['tasks'])} tasks; "
        f"{sum(results['test_counts'])} test images",
        f"- training {sum(results['seconds']['train']):.0f} s, evaluation {sum(results['seconds']['eval']):.0f} s "
        f"on {results.get('device', '?')}",
        "",
        "| metric | value |" + (" zero-shot |" if zero_shot else ""),
        "| --- | --- |" + (" --- |" if zero_shot else ""),
    ]
    for key, name in (("last", "Last"), ("avg", "Avg"), ("forgetting", "Forgetting"), ("bwt", "BWT")):
        row = f"| {name} | {_fmt(results[key])} |"
        lines.append(row + (f" {_fmt(zero_shot[key])} |" if zero_shot else ""))
    lines += ["", "Accuracy (%) after each task (rows) on each task's test data (columns):", "", "```",
              format_table(results), "```", "",
              "![accuracy matrix](accuracy_matrix.png)", "", "![accuracy per step](accuracy_curve.png)", ""]
    return "\n".join(lines)


def write_report(folder: Path, zero_shot: Optional[dict] = None) -> list[Path]:
    """accuracy_matrix.png, accuracy_curve.png and summary.md for the run in ``folder``."""
    from .plots import plot_accuracy_curves, plot_accuracy_matrix

    folder = Path(folder)
    results = read_results(folder)
    zero_shot = zero_shot if zero_shot is not None else find_zero_shot(folder, results)
    matrix, curve, summary = folder / "accuracy_matrix.png", folder / "accuracy_curve.png", folder / "summary.md"
    atomic_write(matrix, lambda tmp: plot_accuracy_matrix(results, tmp))
    runs = [results] + ([zero_shot] if zero_shot else [])
    atomic_write(curve, lambda tmp: plot_accuracy_curves(runs, tmp))
    atomic_write_text(summary, summary_markdown(results, zero_shot))
    return [matrix, curve, summary]
