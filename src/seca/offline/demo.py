"""``seca demo``: SECA end to end on the offline benchmark, on a laptop, in minutes.

It builds (once) the small CLIP pretrained on the clean shapes domain, runs zero-shot CLIP and the chosen
method on the shifted ``renditions`` domain in 10 tasks of 10 classes -- through exactly the code path of
the real benchmarks, only the preset differs -- and ends by saying what the numbers mean.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from ..engine.configure import load_config
from ..engine.loop import run_experiment
from .pretrain import ensure_shapes_clip

PRESET = "shapes"

# What `seca demo` printed for seed 0 with the shapes preset unchanged (no --set): measured with `seca demo`
# on 2026-12-06, 2-core CPU, torch 2.14.1, the pretrained CLIP built on the same machine. Another machine
# (other CPU kernels or thread counts, another torch) may differ slightly; the demo then says so in one line.
MEASURED_ON = "measured with `seca demo` on 2026-12-06, 2-core CPU, torch 2.14.1"
SEED_0 = {
    "zero-shot": {"last": 21.44, "avg": 32.15},
    "seca": {"last": 36.00, "avg": 50.24},
}
FIVE_SEEDS = 'docs/offline.md, section "Competitors over 5 seeds"'


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _explain(results: dict, zero_shot: dict, out: Path) -> str:
    """What the numbers mean; every percentage with 2 decimals, as the tables print it."""
    tasks, classes = len(results["tasks"]), len(results["class_order"])
    gain = results["last"] - zero_shot["last"]
    return f"""
What this means
  The model learned {classes} classes in {tasks} tasks without keeping any image of an earlier task;
  after each task it is tested on every class seen so far.
  - zero-shot CLIP (no training): Last {zero_shot["last"]:.2f}%. The small CLIP learned colours and
    shapes from clean drawings; the renditions (turned hues, busy backgrounds, other scales, blur)
    are a new domain for it, as ImageNet-R is for CLIP.
  - {results["method"]}: Last {results["last"]:.2f}% ({gain:+.2f} points over zero-shot); Avg {results["avg"]:.2f}%
    (the mean over the {tasks} steps); forgetting {_pct(results["forgetting"])} points (how far the accuracy
    on earlier tasks fell from its best).
  Plots: {out / "accuracy_matrix.png"}, {out / "accuracy_curve.png"}
  Table: {out / "summary.md"}
  Model: {out / "model.safetensors"} (try: seca predict {out / "model.safetensors"} IMAGE)
  Other methods: seca demo --method h-peft (or seca++); docs/offline.md has them all, with the
  ablations of the paper measured on this benchmark.

The real benchmarks (CLIP ViT-B/16, a GPU):
  seca prepare imagenet-r /data/imagenet-r-raw data/imagenet-r
  seca run imagenet-r                    # published: SECA Last 83.18 / Avg 88.58
  seca run imagenet-a --set data.root=/data/imagenet-a
  seca run cifar100 --set data.download=true
  seca ablate ablations/kd --seeds 0-2   # the distillation ablation, mean ± std over 3 seeds
"""


def _pair(figures: dict) -> str:
    return f"Last {figures['last']:.2f}  Avg {figures['avg']:.2f}"


def _expected(results: dict, zero_shot: dict, changed: bool) -> str:
    """What seed 0 should print here (:data:`SEED_0`), whether this run printed it, and where the 5-seed
    figures are. A difference is one line, never a failure: another machine may differ slightly."""
    method = results["method"]
    runs = {"zero-shot": zero_shot, method: results}
    known = {name: SEED_0[name] for name in runs if SEED_0.get(name, {}).get("last") is not None}
    lines = [f"What seed 0 should print, {MEASURED_ON}", "(another machine may differ slightly):"]
    lines += [f"  {name:<14} {_pair(figures)}" for name, figures in known.items()]
    if method not in known:
        lines.append(f"  {method:<14} (no seed-0 figures kept here)")
    differ = [
        f"{name} {_pair(runs[name])}"
        for name, figures in known.items()
        if any(f"{runs[name][key]:.2f}" != f"{figures[key]:.2f}" for key in ("last", "avg"))
    ]
    if changed or results.get("seed", 0) != 0:
        lines.append("This run changed the preset (--set), so its figures are not these.")
    elif differ:
        lines.append(f"This run printed other figures ({'; '.join(differ)}): another machine or torch can move them.")
    else:
        lines.append(f"This run printed the same figures{'' if method in known else ' for zero-shot'}.")
    lines.append(f"The mean and spread over 5 seeds: {FIVE_SEEDS}.")
    return "\n".join(lines)


def run_demo(
    method: str = "seca",
    out: Path | None = None,
    overrides: list[str] | None = None,
    echo: Callable[[str], None] = print,
) -> dict:
    """Run zero-shot and ``method`` on the offline benchmark into ``out`` (default ``runs/demo``)."""
    out = Path(out) if out is not None else Path("runs") / "demo"
    config = load_config(PRESET, [f"method.name={method}", *(overrides or [])])
    echo(
        f"seca demo: {method} on the offline shapes benchmark ({config.data.shapes.colors * config.data.shapes.shapes} "
        f"classes, {config.scenario.increment} per task), results in {out}/"
    )
    ensure_shapes_clip()
    echo("\n== zero-shot CLIP")
    zero_config = dataclasses.replace(config, method=dataclasses.replace(config.method, name="zero-shot"))
    zero_shot = run_experiment(zero_config, out / "zero-shot", overwrite=True, echo=echo)
    results = zero_shot
    if method != "zero-shot":
        echo(f"\n== {method}")
        results = run_experiment(config, out / method, overwrite=True, echo=echo)  # its report finds zero-shot
    echo(_explain(results, zero_shot, out / method))
    echo(_expected(results, zero_shot, changed=bool(overrides)))
    return results
