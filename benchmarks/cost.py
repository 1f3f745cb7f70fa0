"""The cost of each variant of an ablation set: seconds and peak memory of one run, each in a process of its own.

    python benchmarks/cost.py ablations/competitors --base shapes --seed 0 [--cold]

``seca ablate`` runs every variant in one process, so its peak memory is that of the largest; here each
variant runs alone (``seca run`` on the variant's resolved config, in a fresh process) and the table gives its
wall-clock seconds, the seconds its tasks spent training and evaluating (from its log.jsonl), and its peak
resident memory (``ru_maxrss`` of the child; on CUDA, also the largest allocation it logged). Compare
the rows of one table only: they share the machine and the moment.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seca.config import dump_yaml
from seca.engine.ablate import load_ablation, variant_configs
from seca.engine.seeds import seed_config


def run_once(config_path: Path, out: Path, threads: int | None) -> dict:
    command = [
        sys.executable,
        "-m",
        "seca",
        "run",
        str(config_path),
        "--out",
        str(out),
        "--set",
        "train.progress=false",
    ]
    if threads:
        command += ["--set", f"train.threads={threads}"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{config_path.stem} failed:\n{done.stderr[-2000:]}")
    # the largest child so far: this interpreter (one per variant, see main) has had no other
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    ends = [r for r in records if r["event"] == "task_end"]
    return {
        "seconds": seconds,
        "train_seconds": sum(r["train_seconds"] for r in ends),
        "eval_seconds": sum(r["eval_seconds"] for r in ends),
        "peak_rss_mib": peak / 1024,
        "last": records[-1].get("last"),
        "acc_matrix": json.loads((out / "results.json").read_text())["acc_matrix"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ablation", help="an ablation file or packaged set (e.g. ablations/competitors)")
    parser.add_argument("--base", help="the preset the variants run on (default: the file's base)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="comma-separated variants (default: all)")
    parser.add_argument("--threads", type=int, help="train.threads of every run (default: torch's choice)")
    parser.add_argument("--one", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--cold",
        action="store_true",
        help="empty the cache's frozen features and offline world before each variant (the weights stay), so each "
        "runs as the first run on a machine; without it, what earlier runs kept is used (warm)",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    if args.one:  # a child: one run, its numbers as JSON on stdout
        print(json.dumps(run_once(Path(args.one[0]), Path(args.one[1]), args.threads)))
        return
    ablation = load_ablation(args.ablation)
    configs = variant_configs(ablation, args.base)
    names = args.only.split(",") if args.only else list(configs)
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            config_path = Path(folder) / f"{name}.yaml"
            config_path.write_text(dump_yaml(seed_config(configs[name], args.seed)))
            if args.cold:
                from seca.io.cache import clear

                clear(["features", "worlds"])
            command = [sys.executable, __file__, args.ablation, "--one", str(config_path), str(Path(folder) / name)]
            if args.threads:
                command += ["--threads", str(args.threads)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(done.stderr[-2000:] or done.stdout[-2000:])
            rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'variant':14s} {'seconds':>8s} {'train s':>8s} {'eval s':>7s} {'peak MiB':>9s} {'Last':>6s}")
    for name, row in rows.items():
        print(
            f"{name:14s} {row['seconds']:8.1f} {row['train_seconds']:8.1f} {row['eval_seconds']:7.1f} "
            f"{row['peak_rss_mib']:9.0f} {row['last']:6.2f}"
        )


if __name__ == "__main__":
    main()
