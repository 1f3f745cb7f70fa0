"""Commands over experiments: ``run``, ``probe-epochs``, ``ablate``, ``compare``, ``report`` and ``presets``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import SecaError
from ..io.files import writable
from .common import method_flag, overwrite_flag, seeds_flag, seeds_of, set_flag, skip_bad_images_flag

# ---- seca run ---------------------------------------------------------------------------------------------


def add_run(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run a class-incremental experiment from a YAML config",
        description="Run a class-incremental experiment: train task after task, evaluate on all seen "
        "classes, write results.json, config.yaml and log.jsonl.",
    )
    p.add_argument(
        "config",
        help="a YAML file, a packaged preset, or a benchmark preset DATASET-bM-incN[-PROTOCOL] such as cub200-b0-inc20 "
        "(see `seca presets`)",
    )
    method_flag(
        p,
        None,
        "run this learner (%(choices)s) on the preset, with its own training recipe unless the preset was written "
        "for it (default: the preset's)",
    )
    set_flag(p)
    seeds_flag(
        p, "run once per seed into OUT/seed<k>/ and aggregate (mean, std, 95%% interval), e.g. --seeds 0,1,2 or 0-4"
    )
    p.add_argument(
        "--out", help="output folder (default: runs/<benchmark>/<method>/seed<seed>, or .../seeds-0-1-2 with --seeds)"
    )
    overwrite_flag(p, "replace the results of an earlier run in --out")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --out from its last completed task, or start it if none had "
        "finished (with --seeds: keep the finished seeds, resume or run the others)",
    )
    skip_bad_images_flag(p, "data.skip_bad_images=true")
    p.set_defaults(handler=run)


def default_out(config) -> Path:
    method = Path("runs") / config.benchmark / config.method.name
    if config.seeds is not None:
        return method / ("seeds-" + "-".join(map(str, config.seeds)))
    return method / f"seed{config.seed}"


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..engine.configure import load_config
    from ..engine.loop import run_experiment
    from ..engine.seeds import run_seeds
    from ..io.run_folder import last_saved

    config = load_config(
        args.config, args.set + (["data.skip_bad_images=true"] if args.skip_bad_images else []), method=args.method
    )
    seeds = seeds_of(args.seeds)
    if seeds is not None:
        config = dataclasses.replace(config, seeds=seeds)
    out = Path(args.out) if args.out else default_out(config)
    try:
        if config.seeds is not None:
            run_seeds(config, out, config.seeds, overwrite=args.overwrite, resume=args.resume)
        else:
            run_experiment(config, out, overwrite=args.overwrite, resume=args.resume)
    except KeyboardInterrupt:
        saved = last_saved(out)
        where = (
            f"the run is saved after task {saved[1]} in {saved[0].parent.parent}; continue it by adding --resume "
            "to the same command"
            if saved
            else "no task had finished, so nothing was saved"
        )
        if os.environ.get("RANK", "0") == "0":  # in a torchrun run, rank 0 speaks for every process
            print(f"interrupted: {where}", file=sys.stderr)
        return 130
    return 0


# ---- seca probe-epochs ------------------------------------------------------------------------------------


def add_probe_epochs(sub) -> None:
    p = sub.add_parser(
        "probe-epochs",
        help="choose a method's epochs per task by its own probe on the first task (mind-the-gap)",
        description="Train the first task of a config's benchmark as the method's epoch probe does "
        "(Mind the Gap: until an epoch moves the mean non-target logit by more than "
        "method.mind_the_gap.probe_threshold) and print the epochs to set as "
        "train.epochs. Nothing is saved.",
    )
    p.add_argument("config", help="a YAML file, or the name of a packaged preset (see `seca presets`)")
    set_flag(p)
    p.set_defaults(handler=probe_epochs)


def probe_epochs(args: argparse.Namespace) -> int:
    from ..engine.configure import load_config
    from ..engine.probe import probe_epochs as probe

    report = probe(load_config(args.config, args.set))
    before = report["before"]
    print(f"{'epoch':>5}  {report['statistic']:>22}  {'change':>8}")
    print(f"{'0':>5}  {before:>22.4f}  {'':>8}")
    for epoch, value in enumerate(report["after_each_epoch"], start=1):
        change = abs(value - before) / abs(before)
        mark = f"  > {report['threshold']:.0%}" if change > report["threshold"] else ""
        print(f"{epoch:>5}  {value:>22.4f}  {change:>8.1%}{mark}")
    why = (
        "the epochs completed before the first that crossed the threshold, at least 1"
        if report["crossed"]
        else f"no epoch crossed the threshold in {report['max_epochs']}: the probe's most"
    )
    print(f"epochs: {report['epochs']} ({why}); run with --set train.epochs={report['epochs']}")
    return 0


# ---- seca ablate ------------------------------------------------------------------------------------------


def add_ablate(sub) -> None:
    p = sub.add_parser(
        "ablate",
        help="run a set of variants and print Last / Avg / forgetting per variant",
        description="Run every variant of an ablation file (e.g. ablations/kd) on one benchmark, save "
        "each run, and print a table of Last, Avg and forgetting.",
    )
    p.add_argument("ablation", help="an ablation YAML file or packaged set (see `seca presets`)")
    p.add_argument("--base", help="run the variants on this preset instead of the file's base (e.g. shapes)")
    set_flag(p, "a config key in every variant")
    p.add_argument("--only", help="comma-separated variant names to run (default: all)")
    seeds_flag(
        p, "run every variant once per seed (e.g. 0-4) and print mean ± std and paired differences with 95%% intervals"
    )
    p.add_argument(
        "--against",
        metavar="VARIANT",
        help="the reference variant of the paired differences (default: the set's first)",
    )
    p.add_argument("--out", help="output folder (default: runs/ablations/<name>/<base>)")
    overwrite_flag(p, "rerun variants that already have results")
    p.set_defaults(handler=ablate)


def ablate(args: argparse.Namespace) -> int:
    from ..engine.ablate import load_ablation, run_ablation

    ablation = load_ablation(args.ablation)
    base = args.base or ablation.base
    out = writable(
        Path(args.out) if args.out else Path("runs") / "ablations" / ablation.name / Path(base).stem,
        "--out",
        folder=True,
    )
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    run_ablation(
        ablation,
        out,
        base=args.base,
        overrides=args.set,
        only=only,
        overwrite=args.overwrite,
        seeds=seeds_of(args.seeds),
        against=args.against,
    )
    return 0


# ---- seca compare -----------------------------------------------------------------------------------------


def add_compare(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="Last / Avg / forgetting of several runs side by side",
        description="Mean ± std over seeds of each run folder's metrics and, where the runs share two "
        "or more seeds, the paired difference in Last and Avg to the first folder (or "
        "--against) with its 95% interval.",
    )
    p.add_argument("outs", nargs="+", metavar="OUT", help="output folders of finished runs")
    p.add_argument("--against", metavar="OUT", help="the folder the differences are taken to (default: the first)")
    p.set_defaults(handler=compare)


def compare(args: argparse.Namespace) -> int:
    from ..eval.report import format_comparison, read_results

    runs = [read_results(Path(folder)) for folder in args.outs]
    reference = 0
    if args.against is not None:
        if args.against not in args.outs:
            raise SecaError(f"--against '{args.against}' is not one of the folders compared; give one of them")
        reference = args.outs.index(args.against)
    print(format_comparison(runs, args.outs, reference))
    return 0


# ---- seca report ------------------------------------------------------------------------------------------


def add_report(sub) -> None:
    p = sub.add_parser(
        "report",
        help="(re)draw the plots and summary of a finished run or a model",
        description="Write accuracy_matrix.png, accuracy_curve.png and summary.md into a run's output "
        "folder; for a model file (grown with seca learn --eval), from the model's own "
        "history, next to the model or into --to.",
    )
    p.add_argument("out", metavar="OUT", help="the output folder of a finished seca run, or a model file")
    p.add_argument("--zero-shot", help="a zero-shot run's folder to draw beside it (default: found next to OUT)")
    p.add_argument("--to", metavar="DIR", help="for a model file: the folder to write to (default: its folder)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the results as JSON (a model's: its accuracy matrix, Last, Avg, forgetting, yardsticks and "
        "history) instead of writing the report",
    )
    p.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    import json

    from ..eval.aggregate import is_aggregate
    from ..eval.report import format_seed_table, format_table, read_results, write_report
    from ..io.run_folder import RunFolder

    target = Path(args.out).expanduser()
    folder = RunFolder(target)
    model = folder.model if target.is_dir() and not folder.finished else target
    if model.is_file() or target.suffix == ".safetensors":  # a model: its report comes from its own history
        from ..eval.history import history_results
        from ..io.checkpoint import read_metadata

        if args.zero_shot:
            raise SecaError("--zero-shot applies to the folder of a seca run, not to a model file")
        results = history_results(read_metadata(model), str(model))
        if args.json:
            print(json.dumps(results, indent=1))
            return 0
        to = writable(Path(args.to) if args.to else model.parent, "--to", folder=True)
        paths = write_report(to, results=results)
    else:
        if args.to:
            raise SecaError("--to applies to a model file; a run's report is written into its own folder")
        if args.json:
            print(json.dumps(read_results(target), indent=1))
            return 0
        zero_shot = read_results(Path(args.zero_shot)) if args.zero_shot else None
        paths = write_report(target, zero_shot)
        results = read_results(target)
    print(format_seed_table(results) if is_aggregate(results) else format_table(results))
    for path in paths:
        print(path)
    return 0


# ---- seca presets -----------------------------------------------------------------------------------------


def add_presets(sub) -> None:
    p = sub.add_parser("presets", help="list the methods, data sets, protocols and packaged config presets")
    p.set_defaults(handler=presets)


def presets(args: argparse.Namespace) -> int:
    from ..config import list_presets, packaged_preset
    from ..data import protocols
    from ..engine.configure import DATASETS, LEARNERS  # with the plug-ins of SECA_PLUGINS

    print("methods (method.name, --method NAME):")
    for name, learner in LEARNERS.items():
        stores = " [trains with stored exemplars: train.memory_*]" if learner.exemplars else ""
        print(f"  {name:<24} {learner.summary()}{stores}")
    print("data sets (data.dataset):")
    for name, dataset in DATASETS.items():
        print(f"  {name:<24} {dataset.summary()}")
    print("protocols (scenario.order):")
    for name in protocols.PROTOCOLS:
        print(f"  {name:<24} {protocols.summary(name)}")
    print("benchmark presets (seca run NAME [--method LEARNER]), by data set; the first protocol is the default:")
    for name, dataset in DATASETS.items():
        if dataset.benchmarks:
            presets = [f"{name}-{b}" + (f" ({p})" if k == 0 else f"-{p}") for b in dataset.benchmarks
                       for k, p in enumerate(dataset().protocols())]  # fmt: skip
            print(f"  {name:<24} {', '.join(presets)}")
    for folder, title in (
        ("", "experiment presets (seca run NAME)"),
        ("ablations", "ablation sets (seca ablate NAME)"),
    ):
        print(title + ":")
        for name in list_presets(folder):
            first = packaged_preset(name).read_text().splitlines()[0]
            print(f"  {name:<24} {first.lstrip('# ').strip()}")
    return 0
