"""The ``seca`` command line. Every subcommand is documented in docs/cli.md; ``main(argv)`` serves the tests."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from .errors import SecaError


def _default_out(config) -> Path:
    return Path("runs") / config.benchmark / config.method.name / f"seed{config.seed}"


def cmd_run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .engine.loop import run_experiment

    config = load_config(args.config, args.set)
    run_experiment(config, Path(args.out) if args.out else _default_out(config), overwrite=args.overwrite)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from .data.prepare import prepare

    if args.seed is not None and args.split_file is not None:
        raise SecaError("give either --seed or --split-file, not both")
    manifest = prepare(args.dataset, Path(args.raw), Path(args.out), seed=args.seed or 0,
                       split_file=Path(args.split_file) if args.split_file else None, mode=args.link)
    totals = manifest["totals"]
    print(f"wrote {totals['train']} training and {totals['test']} test images of {len(manifest['classes'])} "
          f"classes to {args.out} (manifest.json lists them with their SHA-256)")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from .engine.ablate import load_ablation, run_ablation

    ablation = load_ablation(args.ablation)
    base = args.base or ablation.base
    out = Path(args.out) if args.out else Path("runs") / "ablations" / ablation.name / Path(base).stem
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    run_ablation(ablation, out, base=args.base, overrides=args.set, only=only, overwrite=args.overwrite)
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from .config import list_presets, packaged_preset

    for folder, title in (("", "experiment presets (seca run NAME)"), ("ablations", "ablation sets (seca ablate NAME)")):
        print(title + ":")
        for name in list_presets(folder):
            first = packaged_preset(name).read_text().splitlines()[0]
            print(f"  {name:<24} {first.lstrip('# ').strip()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="seca", description="Continual learning with CLIP: SECA and its baselines. See docs/cli.md.")
    parser.add_argument("--version", action="version", version=f"seca {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a class-incremental experiment from a YAML config",
                         description="Run a class-incremental experiment: train task after task, evaluate on "
                                     "all seen classes, write results.json, config.yaml and log.jsonl.")
    run.add_argument("config", help="a YAML file, or the name of a packaged preset (see `seca presets`)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set train.epochs=3 (repeatable)")
    run.add_argument("--out", help="output folder (default: runs/<benchmark>/<method>/seed<seed>)")
    run.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out")
    run.set_defaults(handler=cmd_run)

    prep = sub.add_parser("prepare", help="split ImageNet-R or ImageNet-A 80/20 into train/ and test/",
                          description="Write a deterministic per-class 80/20 split of an extracted ImageNet-R/A "
                                      "archive as OUT/train/<wnid>/ and OUT/test/<wnid>/, with manifest.json.")
    prep.add_argument("dataset", choices=["imagenet-r", "imagenet-a"])
    prep.add_argument("raw", help="the extracted archive (holding one folder per WordNet id)")
    prep.add_argument("out", help="the folder to write train/, test/ and manifest.json to")
    how = prep.add_mutually_exclusive_group()
    how.add_argument("--seed", type=int, help="seed of the split (default 0)")
    how.add_argument("--split-file", help="a manifest.json of an earlier split, or lines 'train|test <wnid>/<file>'")
    prep.add_argument("--link", default="copy", choices=["copy", "symlink", "hardlink"],
                      help="how to place the images (default: copy)")
    prep.set_defaults(handler=cmd_prepare)

    ablate = sub.add_parser("ablate", help="run a set of variants and print Last / Avg / forgetting per variant",
                            description="Run every variant of an ablation file (e.g. ablations/kd) on one "
                                        "benchmark, save each run, and print a table of Last, Avg and forgetting.")
    ablate.add_argument("ablation", help="an ablation YAML file or packaged set (see `seca presets`)")
    ablate.add_argument("--base", help="run the variants on this preset instead of the file's base (e.g. shapes)")
    ablate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key in every variant (repeatable)")
    ablate.add_argument("--only", help="comma-separated variant names to run (default: all)")
    ablate.add_argument("--out", help="output folder (default: runs/ablations/<name>/<base>)")
    ablate.add_argument("--overwrite", action="store_true", help="rerun variants that already have results")
    ablate.set_defaults(handler=cmd_ablate)

    presets = sub.add_parser("presets", help="list the packaged config presets")
    presets.set_defaults(handler=cmd_presets)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except SecaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
