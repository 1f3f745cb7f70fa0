"""The cache folder's command: ``cache info`` and ``cache clear``."""

from __future__ import annotations

import argparse
import datetime
import json
import os

from ..errors import SecaError
from ..io.cache import CLEARED_BY_DEFAULT, PARTS, cache_root, clear, inventory


def add_cache(sub) -> None:
    p = sub.add_parser(
        "cache",
        help="show or empty the cache (frozen features, the offline world, the offline CLIP)",
        description="The cache folder ($SECA_CACHE, else ~/.cache/seca) holds what seca computes once and reuses: "
        "the frozen CLIP features of images (the feature store), the offline world's images and the offline "
        "CLIP's weights. Anything in it can be deleted; what is missing is made again.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    info_parser = actions.add_parser("info", help="what the cache holds, part by part")
    info_parser.add_argument("--json", action="store_true", help="print it as JSON")
    info_parser.set_defaults(handler=info)
    clear_parser = actions.add_parser(
        "clear", help=f"delete parts of the cache (default: {' and '.join(CLEARED_BY_DEFAULT)})"
    )
    clear_parser.add_argument(
        "parts",
        nargs="*",
        metavar="PART",
        help=f"{', '.join(PARTS)} or all (default: {' '.join(CLEARED_BY_DEFAULT)}: the weights take minutes to "
        "build again)",
    )
    clear_parser.set_defaults(handler=clear_parts)


def info(args: argparse.Namespace) -> int:
    root = cache_root()
    parts = inventory(root)
    if args.json:
        print(
            json.dumps(
                {
                    "root": str(root),
                    "parts": {p.name: {"files": len(p.files), "bytes": p.bytes, "keys": p.keys} for p in parts},
                },
                indent=2,
            )
        )
        return 0
    where = "$SECA_CACHE" if os.environ.get("SECA_CACHE") else "default; set SECA_CACHE to move it"
    print(f"cache: {root} ({where})")
    for part in parts:
        print(
            f"  {part.name:9s} {_size(part.bytes):>9s} in {len(part.files)} file{'s' * (len(part.files) != 1)}: "
            f"{part.about}"
        )
        for key in part.keys:
            used = max((f.stat().st_mtime for f in part.files if f.parent.name == key["folder"]), default=None)
            when = datetime.datetime.fromtimestamp(used).strftime("%Y-%m-%d %H:%M") if used else "never"
            print(
                f"            {key.get('backbone', '?')} ({key.get('pretrained') or 'random weights'}), "
                f"{key.get('kind', '?')} on {key.get('device', '?')} in {key.get('precision', '?')}: "
                f"{_size(key['bytes'])} in {key['shards']} shard{'s' * (key['shards'] != 1)}, last used {when}"
            )
    return 0


def clear_parts(args: argparse.Namespace) -> int:
    unknown = [p for p in args.parts if p not in (*PARTS, "all")]
    if unknown:
        raise SecaError(f"the cache has no part '{unknown[0]}'; name {', '.join(PARTS)} or all")
    names = list(PARTS) if "all" in args.parts else (args.parts or list(CLEARED_BY_DEFAULT))
    files, freed = clear(names)
    listed = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
    print(f"cleared {listed} of {cache_root()}: {files} file{'s' * (files != 1)}, {_size(freed)}")
    return 0


def _size(count: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"
