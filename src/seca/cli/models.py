"""Commands over a model you keep: ``new``, ``learn``, ``predict`` and ``evaluate``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import EVAL_ORDERS, HYBRID_MAX
from ..errors import SecaError
from ..eval.history import ADVICE
from ..eval.report import plural
from ..io.files import writable
from .common import count, device_flag, method_flag, overwrite_flag, set_flag, skip_bad_images_flag

# ---- seca new ---------------------------------------------------------------------------------------------


def add_new(sub) -> None:
    p = sub.add_parser(
        "new",
        help="start a model that knows no class yet, to grow with seca learn",
        description="Write a model over a frozen CLIP that knows no class yet; `seca learn` then adds "
        "its first task, and every task after it.",
    )
    p.add_argument("out", help="the model file to write (ending in .safetensors)")
    p.add_argument(
        "--backbone",
        required=True,
        help="seca-shapes (the offline CLIP), seca-test, or an open_clip model name such as ViT-B-16",
    )
    p.add_argument(
        "--pretrained",
        metavar="TAG|FILE",
        help="weights: an open_clip tag (openai), shapes, a local weights file, or none (random); default: "
        "the preset's for its backbone",
    )
    method_flag(
        p,
        None,
        "the learner: %(choices)s (default: the preset's, seca); another than the preset's trains with "
        "its own recipe (epochs, schedule, optimiser), not the preset's",
    )
    p.add_argument(
        "--preset",
        help="preset or YAML file of the training and method settings (default: shapes for "
        "seca-shapes, cpu-small for seca-test, imagenet-r otherwise)",
    )
    set_flag(p, "a train.* or method.* key, e.g. --set train.epochs=3")
    overwrite_flag(p, "replace an existing file at OUT")
    device_flag(p)
    p.set_defaults(handler=new)


def new(args: argparse.Namespace) -> int:
    from ..api import new as new_model

    out = Path(args.out).expanduser()
    if out.suffix != ".safetensors":
        raise SecaError(
            f"'{args.out}' should be the model file to write, ending in .safetensors (e.g. {out / 'model.safetensors'})"
        )
    if out.exists() and not args.overwrite:
        raise SecaError(f"'{out}' already exists; pass --overwrite to replace it, or choose another path")
    writable(out, "OUT", folder=False)
    pretrained = args.pretrained
    if pretrained is not None and pretrained.lower() in ("none", "null"):
        pretrained = None
    extra = {} if args.pretrained is None else {"pretrained": pretrained}
    model = new_model(
        args.backbone, method=args.method, preset=args.preset, overrides=args.set, device=args.device, **extra
    )
    model.save(out)
    b = model.config.backbone
    print(
        f"a new {model.method} model on {b.model} ({b.pretrained or 'random weights'}) that knows no class yet; "
        f"saved to {out}"
    )
    print(f"each task trains: {model.describe_training()}")
    print(f"next: seca learn {out} --data DIR [--eval TEST_DIR]   (DIR/<class name>/<images>: the first task)")
    return 0


# ---- seca learn -------------------------------------------------------------------------------------------


def add_learn(sub) -> None:
    p = sub.add_parser(
        "learn",
        help="teach a saved model a new task of classes",
        description="Learn one new task from DIR/<class>/ images (or DIR/train/<class>/): the folder "
        "names are the new classes. Known classes are refused. The task is added to the "
        "model's history.",
    )
    p.add_argument("checkpoint", help="the model to start from (seca new, seca run or an earlier seca learn)")
    p.add_argument("--data", required=True, help="a folder with one sub-folder of images per new class")
    p.add_argument("--out", help="where to save the updated model (default: replace CHECKPOINT)")
    p.add_argument(
        "--eval",
        metavar="DIR",
        help="after learning, measure the accuracy on DIR/<class>/ (or DIR/test/<class>/) images of every "
        "class known so far (folders of classes not learned yet are left out) and on the test images kept from "
        "earlier learns; it goes into the history that seca report draws, and DIR's images are kept with the model",
    )
    p.add_argument(
        "--no-keep-eval",
        dest="keep_eval",
        action="store_false",
        help="do not keep this task's test images with the model (default: kept beside the model file, in "
        "MODEL.tests/, so that every later task is measured on them too)",
    )
    p.add_argument("--epochs", type=count, help="epochs (default: the model's train.epochs)")
    set_flag(p, "a train.* key of the model's config for this task")
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another process is changing the output model now, wait for it to finish (default: stop "
        "at once, changing nothing)",
    )
    device_flag(p)
    skip_bad_images_flag(p)
    p.set_defaults(handler=learn)


def learn(args: argparse.Namespace) -> int:
    from ..api import load
    from ..config import apply_overrides, parse_override
    from ..data.images import class_folders
    from ..engine.configure import resolve
    from ..engine.device import set_threads
    from ..io import locks
    from ..io.checkpoint import read_metadata

    # Everything that can be wrong is found before the model and its CLIP load.
    out = writable(args.out or args.checkpoint, "--out", folder=False)
    for text in args.set:
        if parse_override(text)[0][0] != "train":
            raise SecaError(
                f"--set {text}: learn overrides train.* keys only; the method, backbone and data "
                "of a model are fixed when it is made"
            )
    resolve(apply_overrides(read_metadata(args.checkpoint)["config"], args.set))
    class_folders(args.data, "train", report=False)
    if args.eval:
        class_folders(args.eval, "test", report=False)
    # One writer at a time: the output's lock is held from before the model is read until it is saved, so a
    # learn that waited (--wait) starts from what the one before it saved.
    with locks.model_file(out, wait=args.wait):
        model = load(args.checkpoint, device=args.device)
        model.config = resolve(apply_overrides(model.meta["config"], args.set))
        set_threads(model.config.train.threads)
        before = len(model.classes)
        print(f"training: {model.describe_training(epochs=args.epochs)}")
        try:
            task = model.learn(
                args.data,
                epochs=args.epochs,
                eval_data=args.eval,
                skip_bad_images=args.skip_bad_images,
                keep_eval=args.keep_eval,
            )
        except KeyboardInterrupt:
            print(f"interrupted: the model is unchanged ({out} was not written)", file=sys.stderr)
            return 130
        model.save(out)
    new = model.classes[before:]
    entry = model.history[-1]
    shown = ", ".join(new[:5]) + (", ..." if len(new) > 5 else "")
    if model.learner.learns_from_images:
        print(
            f"learned task {task.index + 1}: {plural(len(new), 'new class')} ({shown}) from "
            f"{plural(entry['images'], 'image')} in {entry['seconds']:.1f}s; the model now knows "
            f"{plural(len(model.classes), 'class')}"
        )
    else:
        print(
            f"added task {task.index + 1}: {plural(len(new), 'new class')} ({shown}), by name only ({model.method} "
            f"learns nothing from images); the model now knows {plural(len(model.classes), 'class')}"
        )
    if entry["eval"]:
        print(evaluation_lines(entry["eval"]))
    if model.kept.dropped:
        print(f"{model.kept.dropped} kept test images were missing beside the model and are no longer kept")
    if len(model.kept):
        print(
            f"kept test images: {plural(len(model.kept), 'image')} of {plural(len(model.kept.classes), 'class')}, "
            f"in {model.kept.home}/ (learn --no-keep-eval keeps none of a task's)"
        )
    if model.exemplars:
        from ..eval.report import exemplar_note

        print(exemplar_note(model.exemplars))
    print(f"saved to {out}")
    return 0


def evaluation_lines(evaluation: dict) -> str:
    """An evaluation's accuracy with its yardsticks, per task, and its warning (if any), as ``learn`` prints it."""
    cells = " ".join("-" if a is None else f"{a:.2f}" for a in evaluation["per_task"])
    left = evaluation["left_out"]
    lines = [
        f"accuracy {evaluation['accuracy']:.2f}% on {plural(evaluation['images'], 'image')} of "
        f"{plural(evaluation['classes'], 'class')} ({evaluation['data']})  [per task: {cells}]"
        + (f"; {plural(len(left), 'folder')} of classes not learned yet left out" if left else ""),
        "  " + yardstick_text(evaluation),
    ]
    if evaluation.get("warning"):
        lines.append(f"warning: {evaluation['warning']}; {ADVICE}")
    return "\n".join(lines)


def yardstick_text(evaluation: dict) -> str:
    """``chance 25.00% (guessing among 4 classes), majority 30.00% (always the most frequent class)``."""
    text = f"chance {evaluation['chance']:.2f}% (guessing among {plural(evaluation['known'], 'class')})"
    if evaluation.get("majority") is not None:
        text += f", majority {evaluation['majority']:.2f}% (always answering the most frequent class)"
    return text


# ---- seca predict -----------------------------------------------------------------------------------------


def add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="classify images with a saved model",
        description="Print the most likely classes of images (files, or folders searched recursively) "
        "under a saved model.",
    )
    p.add_argument("checkpoint", help="a model.safetensors written by seca run or seca learn")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument("--top-k", type=count, default=1, help="how many classes to list per image (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--batch-size", type=count, default=64)
    device_flag(p)
    skip_bad_images_flag(p)
    p.set_defaults(handler=predict)


def image_paths(paths: Sequence[str]) -> list[Path]:
    from ..data.images import list_images

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


def predict(args: argparse.Namespace) -> int:
    import json

    from ..api import load

    paths = image_paths(args.paths)  # before the model loads: a wrong path costs nothing
    model = load(args.checkpoint, device=args.device)
    if args.skip_bad_images:
        from ..api import readable_images

        paths = readable_images(
            [paths], model.config.data.max_pixels, True, echo=lambda line: print(line, file=sys.stderr)
        )[0]
    predictions = model.predict([str(p) for p in paths], top_k=args.top_k, batch_size=args.batch_size)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "path": str(p),
                        "label": pred.label,
                        "score": pred.score,
                        "margin": pred.margin,
                        "undecided": pred.undecided,
                        "top_k": [{"label": n, "score": s} for n, s in pred.top_k],
                    }
                    for p, pred in zip(paths, predictions)
                ],
                indent=1,
            )
        )
        return 0
    for path, pred in zip(paths, predictions):
        ranked = ", ".join(f"{n} ({s:.3f})" for n, s in pred.top_k)
        print(f"{path}: {ranked}" + (f"  [undecided: {undecided_text()}]" if pred.undecided else ""))
    undecided = sum(p.undecided for p in predictions)
    if undecided:
        print(f"{plural(undecided, 'image')} of {len(predictions)} undecided: {undecided_text()}")
    return 0


def undecided_text() -> str:
    from ..api import UNDECIDED_MARGIN

    return f"its two most likely classes are within {100 * UNDECIDED_MARGIN:.0f} points of probability"


# ---- seca evaluate ----------------------------------------------------------------------------------------


def add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy of a saved model on a folder of labelled images",
        description="Accuracy on DIR/<class>/ images (or DIR/test/<class>/), overall and per class; "
        "every folder name must be a class the model knows.",
    )
    p.add_argument("checkpoint")
    p.add_argument(
        "--data",
        help="a folder with one sub-folder of images per class (default: the test images the model keeps, given to "
        "seca learn --eval)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--confusion",
        action="store_true",
        help="also print the most confused class pairs and write confusion.csv and confusion.png",
    )
    p.add_argument("--top", type=count, default=10, help="how many confused pairs to print (default 10)")
    p.add_argument("--out", help="folder for confusion.csv/png (default: the checkpoint's folder)")
    p.add_argument("--batch-size", type=count, help="images per batch (default: the model's train.eval_batch_size)")
    p.add_argument(
        "--order",
        choices=EVAL_ORDERS,
        help="task: each task's images in batches of their own; dataset: all images in the folder's order, "
        "batches mixing tasks, as the reference (default: the model's train.eval_order)",
    )
    p.add_argument(
        "--hybrid-max",
        choices=HYBRID_MAX,
        help="one maximum per image, or per batch as the reference, for this evaluation (default: the "
        "model's method.classifier.hybrid_max)",
    )
    device_flag(p)
    skip_bad_images_flag(p)
    p.set_defaults(handler=evaluate)


def evaluate(args: argparse.Namespace) -> int:
    import json

    from ..api import load
    from ..data.images import class_folders

    out = None
    if args.confusion:
        out = writable(Path(args.out) if args.out else Path(args.checkpoint).expanduser().parent, "--out", folder=True)
    if args.data is not None:
        class_folders(args.data, "test", report=False)  # before the model loads
    model = load(args.checkpoint, device=args.device)
    report = model.evaluate(
        args.data,
        batch_size=args.batch_size,
        confusion=args.confusion,
        skip_bad_images=args.skip_bad_images,
        order=args.order,
        hybrid_max=args.hybrid_max,
    )
    if args.confusion:
        from ..eval.confusion import most_confused, plot_confusion, write_confusion_csv
        from ..io.files import atomic_write

        c = report["confusion"]
        report["confusion"]["most_confused"] = most_confused(c["counts"], c["rows"], c["columns"], args.top)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "confusion.csv", lambda tmp: write_confusion_csv(tmp, c["counts"], c["rows"], c["columns"]))
        title = (
            f"{model.method}: {len(c['rows'])} classes evaluated, {len(c['columns'])} known, "
            f"{len(c['task_bounds']) - 1} tasks"
        )
        atomic_write(
            out / "confusion.png",
            lambda tmp: plot_confusion(c["counts"], c["rows"], c["columns"], c["task_bounds"], tmp, title),
        )
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(
        f"accuracy {report['accuracy']:.2f}% on {plural(report['images'], 'image')} of "
        f"{plural(len(report['per_class']), 'class')} ({report['data']})"
    )
    print(f"  {yardstick_text(report)}")
    if report.get("warning"):
        print(f"warning: {report['warning']}; {ADVICE}")
    print(
        "per task, in the order learned: "
        + "  ".join(
            f"{k + 1}: {a:.2f}% ({plural(n, 'image')})"
            for k, (a, n) in enumerate(zip(report["per_task"], report["task_images"]))
            if n
        )
    )
    for name, row in report["per_class"].items():
        print(f"  {name:<30} {row['accuracy']:6.2f}%  ({plural(row['images'], 'image')})")
    if args.confusion:
        pairs = report["confusion"]["most_confused"]
        print(f"most confused ({len(pairs)} pairs; true -> predicted):" if pairs else "no image went to a wrong class")
        for pair in pairs:
            print(
                f"  {pair['true']:<24} -> {pair['predicted']:<24} {pair['images']:5d} images "
                f"({pair['share']:.2f}% of {pair['true']})"
            )
        print(f"wrote {out / 'confusion.csv'} and {out / 'confusion.png'}")
    return 0
