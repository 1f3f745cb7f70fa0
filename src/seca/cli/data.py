"""Commands over data sets: ``prepare``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SecaError
from ..io.files import writable
from .common import Registered, natural


def _preparable() -> list[str]:
    from ..data.sets import preparable

    return preparable()


def add_prepare(sub) -> None:
    p = sub.add_parser(
        "prepare",
        help="lay out a data set for seca run (ImageNet-R/A: an 80/20 split)",
        description="Lay out an extracted data set as seca run reads it. ImageNet-R and ImageNet-A: a "
        "deterministic per-class 80/20 split of the archive as OUT/train/<wnid>/ and "
        "OUT/test/<wnid>/, with manifest.json.",
    )
    p.add_argument(
        "dataset",
        choices=Registered(_preparable),
        metavar="DATASET",
        help="a data set with a prepare step: %(choices)s",
    )
    p.add_argument("raw", help="the extracted archive (holding one folder per WordNet id)")
    p.add_argument("out", help="the folder to write train/, test/ and manifest.json to")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--seed", type=natural, help="seed of the split (default 0)")
    how.add_argument("--split-file", help="a manifest.json of an earlier split, or lines 'train|test <wnid>/<file>'")
    p.add_argument(
        "--link",
        default="copy",
        choices=["copy", "symlink", "hardlink"],
        help="how to place the images (default: copy)",
    )
    p.set_defaults(handler=prepare)


def prepare(args: argparse.Namespace) -> int:
    from ..data.sets import prepare_dataset

    if args.seed is not None and args.split_file is not None:
        raise SecaError("give either --seed or --split-file, not both")
    writable(args.out, "OUT", folder=True)
    manifest = prepare_dataset(
        args.dataset,
        Path(args.raw),
        Path(args.out),
        seed=args.seed or 0,
        split_file=Path(args.split_file) if args.split_file else None,
        link=args.link,
    )
    totals = manifest["totals"]
    if manifest.get("of_classes", len(manifest["classes"])) > len(manifest["classes"]):
        print(
            f"{args.dataset}: the archive holds {len(manifest['classes'])} of its {manifest['of_classes']} classes; "
            "prepared those"
        )
    print(
        f"wrote {totals['train']} training and {totals['test']} test images of {len(manifest['classes'])} "
        f"classes to {args.out} (manifest.json lists them with their SHA-256)"
    )
    return 0
