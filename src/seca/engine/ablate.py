"""Run a set of variants of one experiment and tabulate Last / Avg / forgetting per variant, over seeds,
with each variant's paired difference to a reference variant and its 95% interval.

An ablation file names a base preset, optional overrides for every variant, and the variants themselves,
each a mapping of config keys to values (docs/ablations.md):

    base: imagenet-a
    set: {train.epochs: 10}
    variants:
      none:   {method.sg_akt.teacher: none}
      sg-akt: {}
    paper: {none: 62.62, sg-akt: 65.09}   # optional: the paper's Last, printed beside ours
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import apply_overrides, check_seeds, resolve_preset_path, set_key
from ..errors import SecaError
from ..eval.plots import plot_ablation
from ..eval.report import comparison_rows, exemplar_mark, format_rows, made_on
from ..io.files import atomic_write, atomic_write_json, atomic_write_text
from ..io.run_folder import RunFolder
from .configure import load_preset, resolve
from .loop import run_experiment
from .seeds import kept_runs, run_seeds


@dataclass
class Ablation:
    name: str
    base: str
    settings: dict[str, Any]  # applied to every variant
    variants: dict[str, dict[str, Any]]
    paper: dict[str, float] = field(default_factory=dict)


def _settings(mapping: Any, where: str) -> dict[str, Any]:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise SecaError(f"{where} must map config keys to values, e.g. {{method.sg_akt.teacher: none}}")
    return {str(k): v for k, v in mapping.items()}


def load_ablation(path: str | Path) -> Ablation:
    source = resolve_preset_path(path)
    try:
        data = yaml.safe_load(source.read_text()) or {}
    except yaml.YAMLError as e:
        raise SecaError(f"ablation file '{source}' is not valid YAML: {str(e).splitlines()[0]}") from None
    unknown = set(data) - {"base", "set", "variants", "paper"}
    if unknown:
        raise SecaError(f"ablation file '{source}' has unknown keys {sorted(unknown)}; use base, set, variants, paper")
    if not isinstance(data.get("variants"), dict) or not data["variants"]:
        raise SecaError(f"ablation file '{source}' needs a 'variants' mapping of name -> config overrides")
    if "base" not in data:
        raise SecaError(f"ablation file '{source}' needs a 'base' preset")
    variants = {str(name): _settings(v, f"variant '{name}'") for name, v in data["variants"].items()}
    paper = {str(k): float(v) for k, v in (data.get("paper") or {}).items()}
    return Ablation(source.stem, str(data["base"]), _settings(data.get("set"), "'set'"), variants, paper)


def variant_configs(
    ablation: Ablation, base: str | None = None, overrides: list[str] | None = None, only: list[str] | None = None
) -> dict[str, Any]:
    """The validated config of every (selected) variant; all are checked before anything runs."""
    raw = load_preset(base or ablation.base)
    names = list(ablation.variants)
    if only:
        missing = [n for n in only if n not in ablation.variants]
        if missing:
            raise SecaError(f"no variant {missing[0]!r} in {ablation.name}; variants: {', '.join(names)}")
        names = [n for n in names if n in only]
    configs = {}
    for name in names:
        data = raw
        for key, value in {**ablation.settings, **ablation.variants[name]}.items():
            data = set_key(data, key, value)
        configs[name] = resolve(apply_overrides(data, overrides or []))
    return configs


def run_ablation(
    ablation: Ablation,
    out: Path,
    base: str | None = None,
    overrides: list[str] | None = None,
    only: list[str] | None = None,
    overwrite: bool = False,
    seeds: Sequence[int] | None = None,
    against: str | None = None,
    echo: Callable[[str], None] = print,
) -> list[dict]:
    """Run every variant into ``out/<variant>/`` (over ``seeds``: ``out/<variant>/seed<k>/``), then write
    ``out/summary.json``, ``out/summary.md`` and ``out/ablation.png`` and return the rows.

    A variant's finished runs are reused unless ``overwrite`` (after checking that they ran this variant's
    config); interrupted ones are resumed. Each row holds the variant's metrics over the seeds and its paired
    differences to the reference variant ``against`` (default: the set's first).
    """
    with RunFolder(out).lock() as lock:
        lock.take_if_there()  # the same ablation being run by another process: refused before any work
        configs = variant_configs(ablation, base, overrides, only)
        if against is not None and against not in configs:
            raise SecaError(
                f"--against '{against}' is not a variant of {ablation.name}; variants: {', '.join(configs)}"
            )
        reference = against or next(iter(configs))
        seed_list = check_seeds(seeds) if seeds is not None else None
        listed = {name: seed_list or config.seeds for name, config in configs.items()}
        # Every kept run is read and checked before anything trains: one of another config is refused now.
        kept = (
            {}
            if overwrite
            else {name: kept_runs(config, Path(out) / name, listed[name]) for name, config in configs.items()}
        )
        Path(out).mkdir(parents=True, exist_ok=True)
        lock.take()
        results = {}
        for name, config in configs.items():
            folder = RunFolder(Path(out) / name)
            echo(f"== {name}")
            if listed[name] is not None:
                results[name] = run_seeds(
                    config,
                    folder.path,
                    listed[name],
                    overwrite=overwrite,
                    resume=not overwrite,
                    echo=echo,
                    kept=kept.get(name),
                )
            elif None in kept.get(name, {}):
                echo(f"reusing {folder.results}")
                results[name] = kept[name][None]
            else:
                again = not overwrite and folder.interrupted
                results[name] = run_experiment(config, folder.path, overwrite=True, resume=again, echo=echo)

        names = list(results)
        rows = comparison_rows(list(results.values()), names, names.index(reference))
        table = (
            format_rows(
                rows, names.index(reference), extra=ablation.paper or None, extra_title="paper Last", title="variant"
            )
            + made_on(list(results.values()), names)
            + exemplar_mark(list(results.values()))
        )
        records = [
            {
                "variant": row["name"],
                "seeds": row["seeds"],
                "paper_last": ablation.paper.get(row["name"]),
                "results": str(RunFolder(Path(out) / row["name"]).results),
                **{
                    key: None if row[key] is None else row[key].as_dict()
                    for key in ("last", "avg", "forgetting", "bwt", "delta_last", "delta_avg")
                },
            }
            for row in rows
        ]
        atomic_write_json(
            Path(out) / "summary.json",
            {"ablation": ablation.name, "base": base or ablation.base, "reference": reference, "rows": records},
        )
        atomic_write_text(
            Path(out) / "summary.md", f"# {ablation.name}\n\n![Last per variant](ablation.png)\n\n```\n{table}\n```\n"
        )
        atomic_write(
            Path(out) / "ablation.png",
            lambda tmp: plot_ablation(
                [{"variant": r["name"], "last": r["last"]} for r in rows],
                tmp,
                f"{ablation.name} on {Path(base or ablation.base).stem}",
                reference,
            ),
        )
        echo(table)
        return records
