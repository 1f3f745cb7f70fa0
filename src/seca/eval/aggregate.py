"""Results over seeds: the aggregate ``results.json`` of a multi-seed run, and one view of any results.

A run folder holds either one run's ``results.json`` or, for ``seca run --seeds``, an aggregate with
``"kind": "seeds"`` whose metrics are :class:`~seca.eval.stats.Summary` dictionaries (per-seed values,
mean, std, 95% interval). :func:`metric` and :func:`seed_values` read both, so every table and plot
treats a single run as a sample of one.
"""

from __future__ import annotations

from collections.abc import Sequence

from .stats import Summary, paired_difference, summarize_values

METRICS = ("last", "avg", "forgetting", "bwt")
SHARED = (
    "method",
    "benchmark",
    "backbone",
    "tasks",
    "test_counts",
    "device",
    "dataset",
    "protocol",
    "split",
    "names",
    "exemplars",
)


def is_aggregate(results: dict) -> bool:
    return results.get("kind") == "seeds"


def _summary_or_none(values: Sequence[float | None]) -> dict | None:
    if any(v is None for v in values):
        return None
    return summarize_values(values).as_dict()


def aggregate_runs(runs: Sequence[dict], folders: Sequence[str], config: dict) -> dict:
    """The aggregate results of one experiment run once per seed (``runs`` in seed order)."""
    if not runs:
        raise ValueError("no runs to aggregate")
    first = runs[0]
    steps = len(first["acc_per_step"])
    if any(len(r["acc_per_step"]) != steps for r in runs):
        raise ValueError("the runs have different numbers of tasks; they are not one experiment")
    orders = [r["class_order"] for r in runs]
    matrix = [
        [summarize_values([r["acc_matrix"][s][j] for r in runs]).mean for j in range(s + 1)] for s in range(steps)
    ]
    return {
        "kind": "seeds",
        **{key: first.get(key) for key in SHARED},
        "seeds": [r["seed"] for r in runs],
        "runs": list(folders),
        "class_order": orders[0] if all(o == orders[0] for o in orders) else None,
        "class_orders": orders,
        "class_names": first["class_names"] if all(o == orders[0] for o in orders) else None,
        **{key: _summary_or_none([r[key] for r in runs]) for key in METRICS},
        "acc_per_step": [summarize_values([r["acc_per_step"][s] for r in runs]).as_dict() for s in range(steps)],
        "acc_matrix_mean": matrix,
        "seconds": {
            "train": sum(sum(r["seconds"]["train"]) for r in runs),
            "eval": sum(sum(r["seconds"]["eval"]) for r in runs),
        },
        "versions": first.get("versions"),
        "config": config,
    }


def seed_values(results: dict, key: str) -> dict[int, float | None]:
    """``{seed: value}`` of a metric (``last``, ``avg``, ``forgetting``, ``bwt``) of a run or an aggregate."""
    if is_aggregate(results):
        summary = results[key]
        values = summary["values"] if summary is not None else [None] * len(results["seeds"])
        return dict(zip(results["seeds"], values))
    return {results["seed"]: results[key]}


def metric(results: dict, key: str) -> Summary | None:
    """The summary over seeds of one metric (one value for a single run); None where it is undefined."""
    values = list(seed_values(results, key).values())
    return None if any(v is None for v in values) else summarize_values(values)


def step_curve(results: dict) -> tuple[list[float], list[float] | None]:
    """Accuracy on all seen classes per step: the means, and the standard deviations for an aggregate."""
    if is_aggregate(results):
        return [s["mean"] for s in results["acc_per_step"]], [s["std"] or 0.0 for s in results["acc_per_step"]]
    return list(results["acc_per_step"]), None


def paired(results: dict, reference: dict, key: str) -> Summary | None:
    """``results`` minus ``reference`` in metric ``key``, paired seed by seed over the seeds both hold.

    None when fewer than two seeds are shared (no spread to estimate) or the metric is undefined.
    """
    mine, theirs = seed_values(results, key), seed_values(reference, key)
    common = [k for k in mine if k in theirs and mine[k] is not None and theirs[k] is not None]
    if len(common) < 2:
        return None
    return paired_difference([mine[k] for k in common], [theirs[k] for k in common])
