"""The ``seca`` command line. Every subcommand is documented in docs/cli.md; ``main(argv)`` serves the tests."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Optional, Sequence

from .errors import SecaError
from .io.files import writable


def _integer(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got '{text}'") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value


def _count(text: str) -> int:
    """An argument type: a whole number >= 1 (batch sizes, epochs, top-k), checked before anything loads."""
    return _integer(text, 1)


def _natural(text: str) -> int:
    """An argument type: a whole number >= 0 (seeds)."""
    return _integer(text, 0)


def _default_out(config) -> Path:
    if config.seeds is not None:
        return Path("runs") / config.benchmark / config.method.name / ("seeds-" + "-".join(map(str, config.seeds)))
    return Path("runs") / config.benchmark / config.method.name / f"seed{config.seed}"


def _seeds(text: Optional[str]):
    from .engine.seeds import parse_seeds

    return None if text is None else parse_seeds(text)


def cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    from .config import load_config
    from .engine.loop import run_experiment
    from .engine.seeds import run_seeds

    config = load_config(args.config, args.set + (["data.skip_bad_images=true"] if args.skip_bad_images else []))
    seeds = _seeds(args.seeds)
    if seeds is not None:
        config = dataclasses.replace(config, seeds=seeds)
    out = Path(args.out) if args.out else _default_out(config)
    try:
        if config.seeds is not None:
            run_seeds(config, out, config.seeds, overwrite=args.overwrite, resume=args.resume)
        else:
            run_experiment(config, out, overwrite=args.overwrite, resume=args.resume)
    except KeyboardInterrupt:
        saved = sorted(out.glob("**/checkpoints/task-*.safetensors"), key=lambda p: p.stat().st_mtime)
        where = (f"the run is saved after task {int(saved[-1].stem[5:])} in {saved[-1].parent.parent}; continue it by "
                 "adding --resume to the same command" if saved else "no task had finished, so nothing was saved")
        if os.environ.get("RANK", "0") == "0":  # in a torchrun run, rank 0 speaks for every process
            print(f"interrupted: {where}", file=sys.stderr)
        return 130
    return 0


def _image_paths(paths: Sequence[str]) -> list[Path]:
    from .data.datasets import list_images

    found = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            found += list_images(path, recursive=True)
        elif path.is_file():
            found.append(path)
        else:
            raise SecaError(f"'{given}' is neither an image file nor a folder")
    if not found:
        raise SecaError(f"no images found in {', '.join(paths)}")
    return found


def cmd_predict(args: argparse.Namespace) -> int:
    import json

    from .api import load

    paths = _image_paths(args.paths)  # before the model loads: a wrong path costs nothing
    model = load(args.checkpoint, device=args.device)
    if args.skip_bad_images:
        from .api import readable_images

        paths = readable_images([paths], model.config.data.max_pixels, True,
                                echo=lambda line: print(line, file=sys.stderr))[0]
    predictions = model.predict([str(p) for p in paths], top_k=args.top_k, batch_size=args.batch_size)
    if args.json:
        print(json.dumps([{"path": str(p), "label": pred.label, "score": pred.score,
                           "top_k": [{"label": n, "score": s} for n, s in pred.top_k]}
                          for p, pred in zip(paths, predictions)], indent=1))
        return 0
    for path, pred in zip(paths, predictions):
        ranked = ", ".join(f"{n} ({s:.3f})" for n, s in pred.top_k)
        print(f"{path}: {ranked}")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from .api import new

    out = Path(args.out).expanduser()
    if out.suffix != ".safetensors":
        raise SecaError(f"'{args.out}' should be the model file to write, ending in .safetensors "
                        f"(e.g. {out / 'model.safetensors'})")
    if out.exists() and not args.overwrite:
        raise SecaError(f"'{out}' already exists; pass --overwrite to replace it, or choose another path")
    writable(out, "OUT", folder=False)
    pretrained = args.pretrained
    if pretrained is not None and pretrained.lower() in ("none", "null"):
        pretrained = None
    extra = {} if args.pretrained is None else {"pretrained": pretrained}
    model = new(args.backbone, method=args.method, preset=args.preset, overrides=args.set, device=args.device, **extra)
    model.save(out)
    b = model.config.backbone
    print(f"a new {model.method} model on {b.model} ({b.pretrained or 'random weights'}) that knows no class yet; "
          f"saved to {out}")
    print(f"next: seca learn {out} --data DIR [--eval TEST_DIR]   (DIR/<class name>/<images>: the first task)")
    return 0


def cmd_learn(args: argparse.Namespace) -> int:
    from .api import class_folders, load
    from .config import apply_overrides, from_dict, parse_override
    from .engine.device import set_threads
    from .io import locks
    from .io.checkpoint import read_metadata

    # Everything that can be wrong is found before the model and its CLIP load.
    out = writable(args.out or args.checkpoint, "--out", folder=False)
    for text in args.set:
        if parse_override(text)[0][0] != "train":
            raise SecaError(f"--set {text}: learn overrides train.* keys only; the method, backbone and data "
                            "of a model are fixed when it is made")
    from_dict(apply_overrides(read_metadata(args.checkpoint)["config"], args.set))
    class_folders(args.data, "train", report=False)
    if args.eval:
        class_folders(args.eval, "test", report=False)
    # One writer at a time: the output's lock is held from before the model is read until it is saved, so a
    # learn that waited (--wait) starts from what the one before it saved.
    with locks.model_file(out, wait=args.wait):
        model = load(args.checkpoint, device=args.device)
        model.config = from_dict(apply_overrides(model.meta["config"], args.set))
        set_threads(model.config.train.threads)
        before = len(model.classes)
        try:
            task = model.learn(args.data, epochs=args.epochs, eval_data=args.eval,
                               skip_bad_images=args.skip_bad_images)
        except KeyboardInterrupt:
            print(f"interrupted: the model is unchanged ({out} was not written)", file=sys.stderr)
            return 130
        model.save(out)
    new = model.classes[before:]
    entry = model.history[-1]
    shown = ", ".join(new[:5]) + (", ..." if len(new) > 5 else "")
    print(f"learned task {task.index + 1}: {len(new)} new classes ({shown}) from {entry['images']} images in "
          f"{entry['seconds']:.1f}s; the model now knows {len(model.classes)} classes")
    evaluation = entry["eval"]
    if evaluation:
        cells = " ".join("-" if a is None else f"{a:.1f}" for a in evaluation["per_task"])
        left = evaluation["left_out"]
        print(f"accuracy {evaluation['accuracy']:.2f}% on {evaluation['images']} images of {evaluation['classes']} "
              f"classes of {args.eval}  [per task: {cells}]"
              + (f"; {len(left)} folders of classes not learned yet left out" if left else ""))
    print(f"saved to {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from .api import class_folders, load

    out = None
    if args.confusion:
        out = writable(Path(args.out) if args.out else Path(args.checkpoint).expanduser().parent, "--out", folder=True)
    class_folders(args.data, "test", report=False)  # before the model loads
    model = load(args.checkpoint, device=args.device)
    report = model.evaluate(args.data, batch_size=args.batch_size, confusion=args.confusion,
                            skip_bad_images=args.skip_bad_images, order=args.order, hybrid_max=args.hybrid_max)
    if args.confusion:
        from .eval.confusion import most_confused, plot_confusion, write_confusion_csv
        from .io.files import atomic_write

        c = report["confusion"]
        report["confusion"]["most_confused"] = most_confused(c["counts"], c["rows"], c["columns"], args.top)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "confusion.csv", lambda tmp: write_confusion_csv(tmp, c["counts"], c["rows"], c["columns"]))
        title = f"{model.method}: {len(c['rows'])} classes evaluated, {len(c['columns'])} known, {len(c['task_bounds']) - 1} tasks"
        atomic_write(out / "confusion.png",
                     lambda tmp: plot_confusion(c["counts"], c["rows"], c["columns"], c["task_bounds"], tmp, title))
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"accuracy {report['accuracy']:.2f}% on {report['images']} images of {len(report['per_class'])} classes")
    print("per task, in the order learned: " + "  ".join(
        f"{k + 1}: {a:.2f}% ({n} images)" for k, (a, n) in enumerate(zip(report["per_task"], report["task_images"]))
        if n))
    for name, row in report["per_class"].items():
        print(f"  {name:<30} {row['accuracy']:6.2f}%  ({row['images']} images)")
    if args.confusion:
        pairs = report["confusion"]["most_confused"]
        print(f"most confused ({len(pairs)} pairs; true -> predicted):" if pairs else "no image went to a wrong class")
        for pair in pairs:
            print(f"  {pair['true']:<24} -> {pair['predicted']:<24} {pair['images']:5d} images "
                  f"({pair['share']:.1f}% of {pair['true']})")
        print(f"wrote {out / 'confusion.csv'} and {out / 'confusion.png'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .eval.report import read_results, write_report

    target = Path(args.out).expanduser()
    model = target / "model.safetensors" if target.is_dir() and not (target / "results.json").exists() else target
    if model.is_file() or target.suffix == ".safetensors":  # a model: its report comes from its own history
        from .eval.history import history_results
        from .io.checkpoint import read_metadata

        if args.zero_shot:
            raise SecaError("--zero-shot applies to the folder of a seca run, not to a model file")
        to = writable(Path(args.to) if args.to else model.parent, "--to", folder=True)
        paths = write_report(to, results=history_results(read_metadata(model), str(model)))
    else:
        if args.to:
            raise SecaError("--to applies to a model file; a run's report is written into its own folder")
        zero_shot = read_results(Path(args.zero_shot)) if args.zero_shot else None
        paths = write_report(target, zero_shot)
    for path in paths:
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .eval.report import format_comparison, read_results

    runs = [read_results(Path(folder)) for folder in args.outs]
    reference = 0
    if args.against is not None:
        if args.against not in args.outs:
            raise SecaError(f"--against '{args.against}' is not one of the folders compared; give one of them")
        reference = args.outs.index(args.against)
    print(format_comparison(runs, args.outs, reference))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from .data.prepare import prepare

    if args.seed is not None and args.split_file is not None:
        raise SecaError("give either --seed or --split-file, not both")
    writable(args.out, "OUT", folder=True)
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
    out = writable(Path(args.out) if args.out else Path("runs") / "ablations" / ablation.name / Path(base).stem,
                   "--out", folder=True)
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    run_ablation(ablation, out, base=args.base, overrides=args.set, only=only, overwrite=args.overwrite,
                 seeds=_seeds(args.seeds), against=args.against)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .offline.demo import run_demo

    run_demo(args.method, Path(args.out) if args.out else None, args.set)
    return 0


def cmd_pretrain_shapes(args: argparse.Namespace) -> int:
    from .offline.pretrain import DEFAULT_STEPS, pretrain_shapes_clip, shapes_clip_path

    steps = DEFAULT_STEPS if args.steps is None else args.steps
    if args.out is None and (steps != DEFAULT_STEPS or args.seed != 0):
        raise SecaError("the cache holds the default recipe only; give --out for other --steps or --seed")
    out = writable(Path(args.out) if args.out else shapes_clip_path(), "--out", folder=False)
    summary = pretrain_shapes_clip(out, steps=steps, seed=args.seed)
    accuracy = summary["zero_shot_top1"]
    print(f"wrote {out}: zero-shot top-1 over 100 classes {accuracy['clean']:.1%} on clean images, "
          f"{accuracy['renditions']:.1%} on renditions ({summary['seconds']:.0f} s)")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from .config import list_presets, packaged_preset

    for folder, title in (("", "experiment presets (seca run NAME)"), ("ablations", "ablation sets (seca ablate NAME)")):
        print(title + ":")
        for name in list_presets(folder):
            first = packaged_preset(name).read_text().splitlines()[0]
            print(f"  {name:<24} {first.lstrip('# ').strip()}")
    return 0


def _skip_bad_images_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-bad-images", action="store_true",
                        help="leave out image files that cannot be read (truncated, not an image, too large) "
                             "and name each one, instead of stopping")


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
    run.add_argument("--seeds", metavar="LIST",
                     help="run once per seed into OUT/seed<k>/ and aggregate (mean, std, 95%% interval), "
                          "e.g. --seeds 0,1,2 or 0-4")
    run.add_argument("--out", help="output folder (default: runs/<benchmark>/<method>/seed<seed>, "
                                   "or .../seeds-0-1-2 with --seeds)")
    run.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out")
    run.add_argument("--resume", action="store_true",
                     help="continue the interrupted run in --out from its last completed task "
                          "(with --seeds: keep the finished seeds, resume or run the others)")
    run.add_argument("--skip-bad-images", action="store_true",
                     help="leave out image files that cannot be read, naming each (data.skip_bad_images=true)")
    run.set_defaults(handler=cmd_run)

    predict = sub.add_parser("predict", help="classify images with a saved model",
                             description="Print the most likely classes of images (files, or folders searched "
                                         "recursively) under a saved model.")
    predict.add_argument("checkpoint", help="a model.safetensors written by seca run or seca learn")
    predict.add_argument("paths", nargs="+", help="image files or folders")
    predict.add_argument("--top-k", type=_count, default=1, help="how many classes to list per image (default 1)")
    predict.add_argument("--json", action="store_true", help="print JSON instead of text")
    predict.add_argument("--batch-size", type=_count, default=64)
    predict.add_argument("--device", default="auto")
    _skip_bad_images_flag(predict)
    predict.set_defaults(handler=cmd_predict)

    new = sub.add_parser("new", help="start a model that knows no class yet, to grow with seca learn",
                         description="Write a model over a frozen CLIP that knows no class yet; `seca learn` then "
                                     "adds its first task, and every task after it.")
    new.add_argument("out", help="the model file to write (ending in .safetensors)")
    new.add_argument("--backbone", required=True,
                     help="seca-shapes (the offline CLIP), seca-test, or an open_clip model name such as ViT-B-16")
    new.add_argument("--pretrained", metavar="TAG|FILE",
                     help="weights: an open_clip tag (openai), shapes, a local weights file, or none (random); "
                          "default: the preset's for its backbone")
    new.add_argument("--method", choices=["seca", "seca++", "h-peft", "zero-shot"],
                     help="the learner (default: the preset's, seca)")
    new.add_argument("--preset", help="preset or YAML file of the training and method settings (default: shapes for "
                                      "seca-shapes, cpu-small for seca-test, imagenet-r otherwise)")
    new.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a train.* or method.* key, e.g. --set train.epochs=3 (repeatable)")
    new.add_argument("--overwrite", action="store_true", help="replace an existing file at OUT")
    new.add_argument("--device", default="auto")
    new.set_defaults(handler=cmd_new)

    learn = sub.add_parser("learn", help="teach a saved model a new task of classes",
                           description="Learn one new task from DIR/<class>/ images (or DIR/train/<class>/): "
                                       "the folder names are the new classes. Known classes are refused. "
                                       "The task is added to the model's history.")
    learn.add_argument("checkpoint", help="the model to start from (seca new, seca run or an earlier seca learn)")
    learn.add_argument("--data", required=True, help="a folder with one sub-folder of images per new class")
    learn.add_argument("--out", help="where to save the updated model (default: replace CHECKPOINT)")
    learn.add_argument("--eval", metavar="DIR",
                       help="after learning, measure the accuracy on DIR/<class>/ (or DIR/test/<class>/) images of "
                            "every class known so far (folders of classes not learned yet are left out); "
                            "it goes into the history that seca report draws")
    learn.add_argument("--epochs", type=_count, help="epochs (default: the model's train.epochs)")
    learn.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a train.* key of the model's config for this task (repeatable)")
    learn.add_argument("--wait", action="store_true",
                       help="if another process is changing the output model now, wait for it to finish "
                            "(default: stop at once, changing nothing)")
    learn.add_argument("--device", default="auto")
    _skip_bad_images_flag(learn)
    learn.set_defaults(handler=cmd_learn)

    evaluate = sub.add_parser("evaluate", help="accuracy of a saved model on a folder of labelled images",
                              description="Accuracy on DIR/<class>/ images (or DIR/test/<class>/), overall and "
                                          "per class; every folder name must be a class the model knows.")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--data", required=True, help="a folder with one sub-folder of images per class")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of text")
    evaluate.add_argument("--confusion", action="store_true",
                          help="also print the most confused class pairs and write confusion.csv and confusion.png")
    evaluate.add_argument("--top", type=_count, default=10, help="how many confused pairs to print (default 10)")
    evaluate.add_argument("--out", help="folder for confusion.csv/png (default: the checkpoint's folder)")
    evaluate.add_argument("--batch-size", type=_count, default=64)
    evaluate.add_argument("--order", choices=["task", "dataset"],
                          help="task: each task's images in batches of their own; dataset: all images in the "
                               "folder's order, batches mixing tasks, as the reference (default: the model's "
                               "train.eval_order)")
    evaluate.add_argument("--hybrid-max", choices=["image", "batch"],
                          help="one maximum per image, or per batch as the reference, for this evaluation "
                               "(default: the model's method.classifier.hybrid_max)")
    evaluate.add_argument("--device", default="auto")
    _skip_bad_images_flag(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)

    report = sub.add_parser("report", help="(re)draw the plots and summary of a finished run or a model",
                            description="Write accuracy_matrix.png, accuracy_curve.png and summary.md into a "
                                        "run's output folder; for a model file (grown with seca learn --eval), "
                                        "from the model's own history, next to the model or into --to.")
    report.add_argument("out", metavar="OUT", help="the output folder of a finished seca run, or a model file")
    report.add_argument("--zero-shot", help="a zero-shot run's folder to draw beside it (default: found next to OUT)")
    report.add_argument("--to", metavar="DIR", help="for a model file: the folder to write to (default: its folder)")
    report.set_defaults(handler=cmd_report)

    compare = sub.add_parser("compare", help="Last / Avg / forgetting of several runs side by side",
                             description="Mean ± std over seeds of each run folder's metrics and, where the runs "
                                         "share two or more seeds, the paired difference in Last and Avg to the "
                                         "first folder (or --against) with its 95% interval.")
    compare.add_argument("outs", nargs="+", metavar="OUT", help="output folders of finished runs")
    compare.add_argument("--against", metavar="OUT", help="the folder the differences are taken to (default: the first)")
    compare.set_defaults(handler=cmd_compare)

    prep = sub.add_parser("prepare", help="split ImageNet-R or ImageNet-A 80/20 into train/ and test/",
                          description="Write a deterministic per-class 80/20 split of an extracted ImageNet-R/A "
                                      "archive as OUT/train/<wnid>/ and OUT/test/<wnid>/, with manifest.json.")
    prep.add_argument("dataset", choices=["imagenet-r", "imagenet-a"])
    prep.add_argument("raw", help="the extracted archive (holding one folder per WordNet id)")
    prep.add_argument("out", help="the folder to write train/, test/ and manifest.json to")
    how = prep.add_mutually_exclusive_group()
    how.add_argument("--seed", type=_natural, help="seed of the split (default 0)")
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
    ablate.add_argument("--seeds", metavar="LIST", help="run every variant once per seed (e.g. 0-4) and print "
                                                        "mean ± std and paired differences with 95%% intervals")
    ablate.add_argument("--against", metavar="VARIANT",
                        help="the reference variant of the paired differences (default: the set's first)")
    ablate.add_argument("--out", help="output folder (default: runs/ablations/<name>/<base>)")
    ablate.add_argument("--overwrite", action="store_true", help="rerun variants that already have results")
    ablate.set_defaults(handler=cmd_ablate)

    demo = sub.add_parser("demo", help="run SECA end to end on the offline benchmark (no network, no GPU)",
                          description="Build (once) a small CLIP pretrained on generated clean drawings, then run "
                                      "zero-shot CLIP and METHOD on the shifted renditions of 100 classes in 10 "
                                      "tasks, print the per-task table, write results, model and plots, and "
                                      "explain the numbers. About 6 to 7 minutes the first time on 2 CPU cores, 2 after that.")
    demo.add_argument("--method", default="seca", choices=["seca", "seca++", "h-peft", "zero-shot"])
    demo.add_argument("--out", help="output folder (default: runs/demo)")
    demo.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override a key of the shapes preset (repeatable)")
    demo.set_defaults(handler=cmd_demo)

    shapes = sub.add_parser("pretrain-shapes", help="pretrain the small CLIP of the offline shapes world",
                            description="Train seca-shapes from scratch on clean shapes images (the weights that "
                                        "backbone.pretrained: shapes loads; see docs/offline.md) and print its "
                                        "zero-shot accuracies.")
    shapes.add_argument("--out", help="the .safetensors file to write (default: the cache path of the shapes tag)")
    shapes.add_argument("--steps", type=_count, help="training steps (default: the recipe's)")
    shapes.add_argument("--seed", type=_natural, default=0, help="seed of the initialisation and data order (default 0)")
    shapes.set_defaults(handler=cmd_pretrain_shapes)

    presets = sub.add_parser("presets", help="list the packaged config presets")
    presets.set_defaults(handler=cmd_presets)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage and the error (status 2), or the help (0)
        return int(e.code or 0)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    rank = _rank_prefix()
    if rank is not None and args.command != "run":
        print(f"{rank}error: only 'seca run' runs over several processes; start 'seca {args.command}' without "
              "torchrun", file=sys.stderr)
        return 2
    in_main_thread = threading.current_thread() is threading.main_thread()  # signals can be set there only
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return args.handler(args)
    except SecaError as e:
        from .distributed import Failed

        if not isinstance(e, Failed):  # a Failed process repeats rank 0's error, which rank 0 has printed
            print(f"{rank or ''}error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`seca evaluate ... | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush does not fail again
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if rank is not None:
            from .distributed import leave

            leave()


def _rank_prefix() -> Optional[str]:
    """``"[rank N] "`` in a process that torchrun started as one of several (its errors say which it is),
    else None. Read from the environment, so that `seca --help` does not import torch."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return f"[rank {os.environ.get('RANK', '?')}] "


def _terminate(signum, frame) -> None:
    """SIGTERM (a scheduler's stop, kill) ends a command as Ctrl-C does: cleanly, saying what was kept."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
