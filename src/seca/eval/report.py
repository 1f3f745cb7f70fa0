"""Text tables of results: one line per finished task, the per-task table of a run, the mean ± std table
of a multi-seed run, comparisons with paired differences; and the report (summary.md and plots)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..io.files import atomic_write, atomic_write_text
from .aggregate import METRICS, is_aggregate, metric, paired
from .metrics import percent
from .stats import Summary

NAMES = {"last": "Last", "avg": "Avg", "forgetting": "Forgetting", "bwt": "BWT"}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 class``, ``2 classes``, ``1 image``, ``3 images``: a count with its noun."""
    return f"{n} {word if n == 1 else many or (word + 'es' if word.endswith(('s', 'sh', 'ch', 'x')) else word + 's')}"


def protocol_text(results: dict) -> str:
    """``cub200, lamda order (seed 1993), B0-Inc20, official split, official class names``: how the numbers were
    made (results of earlier versions: empty)."""
    protocol = results.get("protocol")
    if not protocol:
        return ""
    seed = f" (seed {protocol['order_seed']})" if protocol.get("order_seed") is not None else ""
    trial = f" (trial {protocol['trial']})" if protocol.get("trial") is not None else ""
    return (
        f"{results.get('dataset', results['benchmark'])}, {protocol['order']} order{seed}{trial}, {protocol['tasks']}, "
        f"{results['split']} split, {results['names']} class names"
    )


def yardsticks(results: dict) -> str:
    """The line under a table: chance and the majority class after the last task, when the results have them."""
    floors, tops = results.get("chance") or [], results.get("majority") or []
    if not floors or floors[-1] is None:
        return ""
    seen = sum(len(t) for t in results["tasks"])
    top = f"; always answering the most frequent class {_fmt(tops[-1])}" if tops and tops[-1] is not None else ""
    return f"Yardsticks after the last task: chance {_fmt(floors[-1])} (guessing among {plural(seen, 'class')}){top}"


def format_step(
    index: int,
    num_tasks: int,
    seen: int,
    accuracy: float,
    row: Sequence[float],
    train_seconds: float,
    eval_seconds: float,
) -> str:
    tasks = " ".join(_fmt(a) for a in row)
    return (
        f"task {index + 1}/{num_tasks}: {accuracy:6.2f}% on {seen} classes (chance {_fmt(percent(1, seen))})  "
        f"[per task: {tasks}]  "
        f"train {train_seconds:.1f}s, eval {eval_seconds:.1f}s"
    )


def format_table(results: dict) -> str:
    """The accuracy matrix with the accuracy on all seen classes per step, then Last/Avg/forgetting/BWT."""
    matrix = results["acc_matrix"]
    steps = results["acc_per_step"]
    width = max(6, len(str(len(matrix))) + 2)
    header = f"{'step':>4} {'classes':>7} {'seen':>7} | " + " ".join(
        f"{'T' + str(j + 1):>{width}}" for j in range(len(matrix))
    )
    made = protocol_text(results)
    lines = [
        f"{results['method']} on {results['benchmark']}" + (f" ({made})" if made else ""),
        header,
        "-" * len(header),
    ]
    seen = 0
    for s, (row, acc) in enumerate(zip(matrix, steps)):
        seen += len(results["tasks"][s])
        cells = " ".join(f"{_fmt(a):>{width}}" for a in row)
        lines.append(f"{s + 1:>4} {seen:>7} {_fmt(acc):>7} | {cells}")
    lines.append(
        f"Last {_fmt(results['last'])}  Avg {_fmt(results['avg'])}  "
        f"Forgetting {_fmt(results['forgetting'])}  BWT {_fmt(results['bwt'])}"
    )
    if yardsticks(results):
        lines.append(yardsticks(results))
    if exemplar_note(results.get("exemplars")):
        lines.append(exemplar_note(results.get("exemplars")))
    return "\n".join(lines)


def exemplar_note(summary: dict | None) -> str:
    """One line saying that a model trained with an exemplar memory keeps references to training images (user data),
    how many and of how many classes; "" when it keeps none."""
    if not summary or not summary.get("images"):
        return ""
    where = "their files" if summary.get("files") else "items of the training set"
    return (
        f"Exemplars: keeps {summary['images']} exemplar images of {summary['classes']} classes (at most "
        f"{summary['per_class']} per class, {summary['selection']}) as references to {where} with digests: "
        "training data of yours, kept to train on again (docs/memory.md)"
    )


def format_interval(summary: Summary | None, signed: bool = False) -> str:
    """``"+1.20 [-0.40, +2.80]"`` (mean and 95% interval), ``*`` appended when the interval excludes 0."""
    if summary is None:
        return "-"
    sign = "+" if signed else ""
    text = f"{summary.mean:{sign}.2f}"
    if summary.low is not None:
        text += f" [{summary.low:{sign}.2f}, {summary.high:{sign}.2f}]" + (
            "*" if signed and summary.excludes_zero else ""
        )
    return text


def _mean_std(summary: Summary | None) -> str:
    return "-" if summary is None else summary.format()


def comparison_rows(runs: Sequence[dict], names: Sequence[str], reference: int = 0) -> list[dict]:
    """Per run: its metrics over seeds, and its paired differences in Last and Avg to ``runs[reference]``."""
    rows = []
    for i, (name, results) in enumerate(zip(names, runs)):
        row = {
            "name": name,
            "exemplars": bool(results.get("exemplars")),  # marked in the table: it stored training images
            "seeds": len(results["seeds"]) if is_aggregate(results) else 1,
            **{key: metric(results, key) for key in METRICS},
        }
        for key in ("last", "avg"):
            row[f"delta_{key}"] = None if i == reference else paired(results, runs[reference], key)
        rows.append(row)
    return rows


def format_comparison(runs: Sequence[dict], names: Sequence[str], reference: int = 0) -> str:
    """Last / Avg / forgetting / BWT (mean ± std over seeds) of several runs, and each run's paired
    difference in Last and Avg to the reference run, with its 95% interval over the shared seeds; then how the
    runs were made (:func:`made_on`)."""
    return format_rows(comparison_rows(runs, names, reference), reference) + made_on(runs, names) + exemplar_mark(runs)


EXEMPLAR_MARK = "†"


def exemplar_mark(runs: Sequence[dict]) -> str:
    """The line under a table of several runs that explains the mark of those that trained with an exemplar memory
    (stored training images of old classes: another protocol than seca's, which stores none); "" when none did."""
    stored = [r["exemplars"] for r in runs if r.get("exemplars")]
    if not stored:
        return ""
    sizes = sorted({s["per_class"] for s in stored})
    return (
        f"\n{EXEMPLAR_MARK} trained with an exemplar memory (up to {'/'.join(map(str, sizes))} stored training images "
        "per old class); the others store no image"
    )


def made_on(runs: Sequence[dict], names: Sequence[str]) -> str:
    """The line under a table of several runs: the protocol they share, or a warning naming the runs made on
    another (their numbers are not comparable); empty for runs of earlier versions."""
    made = [protocol_text(r) for r in runs]
    if not any(made):
        return ""
    if all(m == made[0] for m in made):
        return f"\nmade on: {made[0]}"
    other = [f"{n} ({m or 'not recorded'})" for n, m in zip(names, made) if m != made[0]]
    return (
        f"\nwarning: not all runs were made on {made[0]} ({names[0]}): {'; '.join(other)}; numbers made on "
        "different protocols, splits or class names are not comparable"
    )


def format_rows(
    rows: Sequence[dict],
    reference: int = 0,
    extra: dict[str, float | None] | None = None,
    extra_title: str = "",
    title: str = "run",
) -> str:
    """The table of :func:`comparison_rows`, with an optional ``extra`` column of numbers by name."""
    paired_any = any(r["delta_last"] is not None for r in rows)
    columns = [
        (title, lambda r: r["name"] + (EXEMPLAR_MARK if r.get("exemplars") else ""), "<"),
        ("seeds", lambda r: str(r["seeds"]), ">"),
    ]
    columns += [(NAMES[key], lambda r, key=key: _mean_std(r[key]), ">") for key in METRICS]
    if paired_any:
        columns += [
            (f"Δ{NAMES[key]} (95% CI)", lambda r, key=key: format_interval(r[f"delta_{key}"], True), ">")
            for key in ("last", "avg")
        ]
    if extra:
        columns.append((extra_title, lambda r: "-" if extra.get(r["name"]) is None else f"{extra[r['name']]:.2f}", ">"))
    cells = [[get(r) for _, get, _ in columns] for r in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) for i, (title, _, _) in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(f"{v:{align}{w}}" for v, w, (_, _, align) in zip(values, widths, columns))

    head = line([title for title, _, _ in columns])
    lines = [head, "-" * len(head)] + [line(c) for c in cells]
    seeds = max(r["seeds"] for r in rows)
    if seeds == 1 and len(rows) > 1:
        lines.append("one seed each: no spread, so no difference here is a finding (run with --seeds for intervals)")
    if seeds > 1:
        lines.append(
            "mean ± std over seeds (sample std);"
            + (
                f" Δ: paired difference to '{rows[reference]['name']}' over the seeds both ran, 95% Student-t "
                "interval; * the interval excludes 0"
                if paired_any
                else ""
            )
        )
    return "\n".join(lines)


def format_seed_table(results: dict) -> str:
    """The metrics of a multi-seed run: per seed, then mean ± std and the 95% interval."""
    seeds = results["seeds"]
    width = max(6, *(len(f"seed {k}") for k in seeds))
    lines = [
        f"{results['method']} on {results['benchmark']}, {len(seeds)} seeds",
        f"{'':<{width}}  " + "  ".join(f"{NAMES[key]:>10}" for key in METRICS),
    ]
    for i, k in enumerate(seeds):
        cells = [_fmt(None if results[key] is None else results[key]["values"][i]) for key in METRICS]
        lines.append(f"{'seed ' + str(k):<{width}}  " + "  ".join(f"{c:>10}" for c in cells))
    summaries = {key: metric(results, key) for key in METRICS}
    lines.append(f"{'mean':<{width}}  " + "  ".join(f"{_fmt(s and s.mean):>10}" for s in summaries.values()))
    lines.append(f"{'std':<{width}}  " + "  ".join(f"{_fmt(s and s.std):>10}" for s in summaries.values()))
    for key in ("last", "avg"):
        lines.append(f"{NAMES[key]} {format_interval(summaries[key])} (mean [95% interval over seeds])")
    if exemplar_note(results.get("exemplars")):
        lines.append(exemplar_note(results.get("exemplars")))
    return "\n".join(lines)


def read_results(folder: Path) -> dict:
    from ..errors import SecaError

    path = Path(folder) / "results.json"
    if not path.is_file():
        raise SecaError(f"'{folder}' holds no results.json (is it the output folder of a finished `seca run`?)")
    return json.loads(path.read_text())


def find_zero_shot(folder: Path, results: dict) -> dict | None:
    """The zero-shot run beside ``folder``, if it was run: ``runs/<benchmark>/zero-shot/<seed folder>`` (the
    default layout) or a sibling ``zero-shot`` folder (``seca demo``'s layout)."""
    if results["method"] == "zero-shot":
        return None
    folder = Path(folder)
    for candidate in (folder.parent.parent / "zero-shot" / folder.name, folder.parent / "zero-shot"):
        if (candidate / "results.json").is_file():
            zero_shot = json.loads((candidate / "results.json").read_text())
            if zero_shot["benchmark"] == results["benchmark"] and zero_shot.get("class_order") == results.get(
                "class_order"
            ):
                return zero_shot
    return None


def summary_markdown(results: dict, zero_shot: dict | None = None) -> str:
    """A Markdown summary: what ran, the headline metrics, the per-task table, the figures."""
    if is_aggregate(results):
        return _seeds_markdown(results, zero_shot)
    if results.get("kind") == "history":
        return _history_markdown(results)
    backbone = results["backbone"]
    lines = [
        f"# {results['method']} on {results['benchmark']}",
        "",
        f"- backbone: {backbone['model']} ({backbone['pretrained'] or 'random weights'}), seed {results['seed']}",
        f"- {len(results['class_order'])} classes in {len(results['tasks'])} tasks; "
        f"{sum(results['test_counts'])} test images",
        *([f"- protocol: {protocol_text(results)}"] if protocol_text(results) else []),
        f"- training {sum(results['seconds']['train']):.0f} s, evaluation {sum(results['seconds']['eval']):.0f} s "
        f"on {results.get('device', '?')}",
        "",
        "| metric | value |" + (" zero-shot |" if zero_shot else ""),
        "| --- | --- |" + (" --- |" if zero_shot else ""),
    ]
    for key, name in (("last", "Last"), ("avg", "Avg"), ("forgetting", "Forgetting"), ("bwt", "BWT")):
        row = f"| {name} | {_fmt(results[key])} |"
        lines.append(row + (f" {_mean_std(metric(zero_shot, key))} |" if zero_shot else ""))
    lines += [
        "",
        "Accuracy (%) after each task (rows) on each task's test data (columns):",
        "",
        "```",
        format_table(results),
        "```",
        "",
        "![accuracy matrix](accuracy_matrix.png)",
        "",
        "![accuracy per step](accuracy_curve.png)",
        "",
    ]
    return "\n".join(lines)


def _seeds_markdown(results: dict, zero_shot: dict | None) -> str:
    backbone = results["backbone"]
    seeds = results["seeds"]
    lines = [
        f"# {results['method']} on {results['benchmark']}, {len(seeds)} seeds",
        "",
        f"- backbone: {backbone['model']} ({backbone['pretrained'] or 'random weights'}), "
        f"seeds {', '.join(map(str, seeds))} (one run folder each: {', '.join(results['runs'])})",
        f"- {len(results['tasks'])} tasks; {sum(results['test_counts'])} test images"
        + ("" if results["class_order"] is not None else "; the class order differs between seeds"),
        *([f"- protocol: {protocol_text(results)}"] if protocol_text(results) else []),
        f"- training {results['seconds']['train']:.0f} s, evaluation {results['seconds']['eval']:.0f} s in all "
        f"on {results.get('device', '?')}",
        "",
        "| metric | mean ± std | 95% interval |" + (" zero-shot |" if zero_shot else ""),
        "| --- | --- | --- |" + (" --- |" if zero_shot else ""),
    ]
    for key in METRICS:
        summary = metric(results, key)
        interval = "-" if summary is None or summary.low is None else f"[{summary.low:.2f}, {summary.high:.2f}]"
        row = f"| {NAMES[key]} | {_mean_std(summary)} | {interval} |"
        lines.append(row + (f" {_mean_std(metric(zero_shot, key))} |" if zero_shot else ""))
    lines += [
        "",
        "Per seed:",
        "",
        "```",
        format_seed_table(results),
        "```",
        "",
        "Accuracy (%) on all seen classes after each task, mean ± std over the seeds:",
        "",
        "| task | " + " | ".join(str(s + 1) for s in range(len(results["acc_per_step"]))) + " |",
        "| --- |" + " --- |" * len(results["acc_per_step"]),
        "| accuracy | " + " | ".join(f"{s['mean']:.2f} ± {s['std'] or 0:.2f}" for s in results["acc_per_step"]) + " |",
        "",
        "![accuracy matrix, mean over the seeds](accuracy_matrix.png)",
        "",
        "![accuracy per step, band of ± one std](accuracy_curve.png)",
        "",
    ]
    return "\n".join(lines)


def _history_markdown(results: dict) -> str:
    from .history import format_history

    backbone = results["backbone"]
    evaluated = {e["eval"]["data"] for e in results["history"] if e and e.get("eval")}
    lines = [
        f"# {results['method']} model grown task by task",
        "",
        f"- backbone: {backbone['model']} ({backbone['pretrained'] or 'random weights'}), seed {results['seed']}",
        f"- {len(results['class_names'])} classes in {len(results['tasks'])} tasks, from the model's own history",
        f"- evaluated on: {', '.join(sorted(evaluated))}"
        + (" (different folders: the steps are not measured on the same images)" if len(evaluated) > 1 else ""),
        "",
        "| metric | value |",
        "| --- | --- |",
        *(f"| {NAMES[key]} | {_fmt(results[key])} |" for key in METRICS),
        "",
        "Avg, forgetting and BWT need every task evaluated after every step; '-' where that is not so.",
        "",
        *format_history(results),
        "",
        "Accuracy (%) after each task (rows) on each task's classes (columns):",
        "",
        "```",
        format_table(results),
        "```",
        "",
        "![accuracy matrix](accuracy_matrix.png)",
        "",
        "![accuracy per step](accuracy_curve.png)",
        "",
    ]
    return "\n".join(lines)


def write_report(folder: Path, zero_shot: dict | None = None, results: dict | None = None) -> list[Path]:
    """accuracy_matrix.png, accuracy_curve.png and summary.md for the run in ``folder`` (or, given ``results``,
    such as a model's history from :func:`~seca.eval.history.history_results`, for those, written to ``folder``)."""
    from .plots import plot_accuracy_curves, plot_accuracy_matrix

    folder = Path(folder)
    if results is None:
        results = read_results(folder)
        zero_shot = zero_shot if zero_shot is not None else find_zero_shot(folder, results)
    matrix, curve, summary = folder / "accuracy_matrix.png", folder / "accuracy_curve.png", folder / "summary.md"
    atomic_write(matrix, lambda tmp: plot_accuracy_matrix(results, tmp))
    runs = [results] + ([zero_shot] if zero_shot else [])
    atomic_write(curve, lambda tmp: plot_accuracy_curves(runs, tmp))
    atomic_write_text(summary, summary_markdown(results, zero_shot))
    return [matrix, curve, summary]
