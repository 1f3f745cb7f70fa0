"""Run a set of variants of one experiment and tabulate Last / Avg / forgetting per variant.

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

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from ..config import apply_overrides, from_dict, load_raw, resolve_preset_path, set_key
from ..errors import SecaError
from ..io.files import atomic_write_json, atomic_write_text
from .loop import run_experiment


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


def variant_configs(ablation: Ablation, base: Optional[str] = None, overrides: Optional[list[str]] = None,
                    only: Optional[list[str]] = None) -> dict[str, Any]:
    """The validated config of every (selected) variant; all are checked before anything runs."""
    raw = load_raw(base or ablation.base)
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
        configs[name] = from_dict(apply_overrides(data, overrides or []))
    return configs


def format_ablation(rows: list[dict], paper: dict[str, float]) -> str:
    def num(v):
        return "-" if v is None else f"{v:.2f}"

    width = max([len("variant")] + [len(r["variant"]) for r in rows])
    head = f"{'variant':<{width}}  {'Last':>6}  {'Avg':>6}  {'Forget':>6}"
    if paper:
        head += f"  {'paper Last':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        line = f"{r['variant']:<{width}}  {num(r['last']):>6}  {num(r['avg']):>6}  {num(r['forgetting']):>6}"
        if paper:
            line += f"  {num(paper.get(r['variant'])):>10}"
        lines.append(line)
    return "\n".join(lines)


def run_ablation(ablation: Ablation, out: Path, base: Optional[str] = None, overrides: Optional[list[str]] = None,
                 only: Optional[list[str]] = None, overwrite: bool = False,
                 echo: Callable[[str], None] = print) -> list[dict]:
    """Run every variant into ``out/<variant>/`` (a variant whose results exist is reused unless
    ``overwrite``), then write ``out/summary.json`` and ``out/summary.md`` and return the rows."""
    configs = variant_configs(ablation, base, overrides, only)
    rows = []
    for name, config in configs.items():
        folder = Path(out) / name
        if (folder / "results.json").exists() and not overwrite:
            echo(f"== {name}: reusing {folder / 'results.json'}")
            results = json.loads((folder / "results.json").read_text())
        else:
            echo(f"== {name}")
            results = run_experiment(config, folder, overwrite=True, echo=echo)
        rows.append({"variant": name, "last": results["last"], "avg": results["avg"],
                     "forgetting": results["forgetting"], "bwt": results["bwt"],
                     "paper_last": ablation.paper.get(name), "results": str(folder / "results.json")})
    table = format_ablation(rows, ablation.paper)
    atomic_write_json(Path(out) / "summary.json", {"ablation": ablation.name, "base": base or ablation.base,
                                                   "rows": rows})
    atomic_write_text(Path(out) / "summary.md", f"# {ablation.name}\n\n```\n{table}\n```\n")
    echo(table)
    return rows
