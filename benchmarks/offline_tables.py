"""The offline findings over seeds: the modules, kd, classifier and sg-akt sets on the shapes benchmark.

    python benchmarks/offline_tables.py --seeds 0-4 --workers 2 --out runs/offline

Equivalent to ``seca ablate ablations/<set> --base shapes --seeds 0-4`` for each set, with two savings:
a variant that appears in several sets under the same resolved config (SECA is in all four) runs once
and is copied into the other sets' folders, and the runs go through ``--workers`` processes of
``--threads`` CPU threads each (on 2 cores, two 1-thread processes finish more runs per hour than one
2-thread process). Then ``seca ablate`` runs over each set: it checks that every copied run's config is
the variant's own, reuses them all and prints and writes the tables (summary.md, summary.json,
ablation.png). Interrupted, it continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from seca.config import dump_yaml, to_dict
from seca.engine.ablate import load_ablation, run_ablation, variant_configs
from seca.engine.seeds import parse_seeds, seed_config

SETS = ("modules", "kd", "classifier", "sg-akt")
# The paper's orderings (worst first), as (set, variant) chains: each adjacent pair is tested.
ORDERINGS = {
    "distillation: Sequential < Vanilla-KD < Avg-KD < SG-AKT": [
        ("kd", "none"),
        ("kd", "vanilla-kd"),
        ("kd", "avg-kd"),
        ("kd", "sg-akt"),
    ],
    "classifier: text < centroid-CLIP < centroid-adapted < SE-VPR": [
        ("classifier", "text"),
        ("classifier", "centroid-clip"),
        ("classifier", "centroid-adapted"),
        ("classifier", "hybrid"),
    ],
    "modules: H-PEFT < SECA < SECA++": [("modules", "h-peft"), ("modules", "seca"), ("modules", "seca++")],
}


def print_orderings(out: Path, sets: list[str]) -> None:
    """Each adjacent pair of the paper's orderings: the paired difference in Last and Avg and a verdict."""
    from seca.eval.aggregate import paired
    from seca.eval.report import format_interval, read_results

    for title, chain in ORDERINGS.items():
        if not all(name in sets for name, _ in chain):
            continue
        print(f"\n{title}")
        for (set_a, a), (set_b, b) in zip(chain, chain[1:]):
            low, high = read_results(out / set_a / a), read_results(out / set_b / b)
            verdicts = []
            for key in ("last", "avg"):
                d = paired(high, low, key)
                verdict = "holds" if d.low > 0 else "reversed" if d.high < 0 else "not distinguishable"
                verdicts.append(f"{key} {format_interval(d, signed=True)} {verdict}")
            print(f"  {b} - {a}: " + "; ".join(verdicts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--base", default="shapes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/offline")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    out = Path(args.out)
    overrides = [f"train.threads={args.threads}", "train.progress=false", *args.set]

    # Every (set, variant) and the folder of the run that serves it: the first set's variant with that config.
    canonical: dict[str, Path] = {}
    placements: list[tuple[Path, Path]] = []  # (variant folder, canonical folder)
    jobs = []
    for name in args.sets.split(","):
        ablation = load_ablation(f"ablations/{name}")
        for variant, config in variant_configs(ablation, args.base, overrides).items():
            key = json.dumps({k: v for k, v in to_dict(config).items() if k not in ("seed", "seeds")}, sort_keys=True)
            folder = out / name / variant
            if key in canonical:
                placements.append((folder, canonical[key]))
                continue
            canonical[key] = folder
            for seed in seeds:
                jobs.append((seed, folder / f"seed{seed}", seed_config(config, seed)))
    jobs.sort(key=lambda job: job[0])  # seed by seed: an early stop still leaves whole tables over fewer seeds
    todo = [job for job in jobs if not (job[1] / "results.json").is_file()]
    print(
        f"{len(jobs)} runs ({len(jobs) - len(todo)} finished earlier), {args.workers} workers of "
        f"{args.threads} thread(s)",
        flush=True,
    )

    started = time.perf_counter()

    def run(job):
        seed, folder, config = job
        folder.parent.mkdir(parents=True, exist_ok=True)
        spec = folder.parent / f".seed{seed}.yaml"
        spec.write_text(dump_yaml(config))
        resume = (
            ["--resume"]
            if (folder / "checkpoints").is_dir() and any((folder / "checkpoints").iterdir())
            else ["--overwrite"]
        )
        t0 = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from seca.cli import main; sys.exit(main())",
                "run",
                str(spec),
                "--out",
                str(folder),
                *resume,
            ],
            capture_output=True,
            text=True,
        )
        spec.unlink(missing_ok=True)
        if done.returncode != 0:
            raise RuntimeError(f"{folder} failed:\n{done.stderr[-2000:]}")
        last = json.loads((folder / "results.json").read_text())["last"]
        print(
            f"{folder}: Last {last:.2f} ({time.perf_counter() - t0:.0f} s; "
            f"{time.perf_counter() - started:.0f} s in all)",
            flush=True,
        )

    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(run, todo))

    for folder, source in placements:
        for seed in seeds:
            target = folder / f"seed{seed}"
            if not (target / "results.json").is_file():
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(source / f"seed{seed}", target)
    for name in args.sets.split(","):
        print(f"\n# {name}", flush=True)
        run_ablation(
            load_ablation(f"ablations/{name}"),
            out / name,
            base=args.base,
            overrides=overrides,
            seeds=seeds,
            echo=lambda line: None if line.startswith("==") else print(line, flush=True),
        )
    print_orderings(out, args.sets.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
