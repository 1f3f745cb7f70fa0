"""Commands of the offline world: ``demo`` and ``pretrain-shapes``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SecaError
from ..io.files import writable
from .common import count, method_flag, natural, set_flag


def add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run SECA end to end on the offline benchmark (no network, no GPU)",
        description="Build (once) a small CLIP pretrained on generated clean drawings, then run "
        "zero-shot CLIP and METHOD on the shifted renditions of 100 classes in 10 tasks, "
        "print the per-task table, write results, model and plots, and explain the "
        "numbers. About 6 to 7 minutes the first time on 2 CPU cores, 2 after that.",
    )
    method_flag(p, "seca", "the learner: %(choices)s (default: seca)")
    p.add_argument("--out", help="output folder (default: runs/demo)")
    set_flag(p, "a key of the shapes preset")
    p.set_defaults(handler=demo)


def demo(args: argparse.Namespace) -> int:
    from ..offline.demo import run_demo

    run_demo(args.method, Path(args.out) if args.out else None, args.set)
    return 0


def add_pretrain_shapes(sub) -> None:
    p = sub.add_parser(
        "pretrain-shapes",
        help="pretrain the small CLIP of the offline shapes world",
        description="Train seca-shapes from scratch on clean shapes images (the weights that "
        "backbone.pretrained: shapes loads; see docs/offline.md) and print its zero-shot "
        "accuracies.",
    )
    p.add_argument("--out", help="the .safetensors file to write (default: the cache path of the shapes tag)")
    p.add_argument("--steps", type=count, help="training steps (default: the recipe's)")
    p.add_argument("--seed", type=natural, default=0, help="seed of the initialisation and data order (default 0)")
    p.set_defaults(handler=pretrain_shapes)


def pretrain_shapes(args: argparse.Namespace) -> int:
    from ..offline.pretrain import DEFAULT_STEPS, format_zero_shot, pretrain_shapes_clip, shapes_clip_path

    steps = DEFAULT_STEPS if args.steps is None else args.steps
    if args.out is None and (steps != DEFAULT_STEPS or args.seed != 0):
        raise SecaError("the cache holds the default recipe only; give --out for other --steps or --seed")
    out = writable(Path(args.out) if args.out else shapes_clip_path(), "--out", folder=False)
    summary = pretrain_shapes_clip(out, steps=steps, seed=args.seed)
    print(f"wrote {out}: zero-shot top-1 over 100 classes: {format_zero_shot(summary)} ({summary['seconds']:.0f} s)")
    return 0
