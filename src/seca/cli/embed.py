"""``seca embed``: the image features a saved model predicts with, or its frozen CLIP's, written to a file.

``.npy`` holds the ``[images, d]`` float32 array; ``.npz`` the array as ``features`` and the image paths as ``files``;
``.parquet`` (with pyarrow) a table of a ``file`` column and an ``embedding`` column, a fixed-size list of d float32
per image. Rows are in the order of the paths given, folders expanded as ``seca predict`` does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import SecaError
from ..io.files import writable
from .common import count, device_flag, skip_bad_images_flag
from .models import image_paths

FORMATS = (".npy", ".npz", ".parquet")


def add_embed(sub) -> None:
    p = sub.add_parser(
        "embed",
        help="write the image features of a saved model (or of its frozen CLIP) to .npy, .npz or .parquet",
        description="Write the image features a saved model predicts with (with --frozen: its frozen CLIP's) of "
        "images (files, or folders searched recursively) to a file: to see whether a backbone fits your data.",
    )
    p.add_argument("checkpoint", help="a model.safetensors written by seca run, seca new or seca learn")
    p.add_argument("paths", nargs="+", help="image files or folders")
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="F.npy (the [images, d] array), F.npz (features and files) or F.parquet (file and embedding "
        "columns; needs pyarrow)",
    )
    p.add_argument(
        "--frozen",
        action="store_true",
        help="the frozen CLIP's features, nothing learned in them (also for a model that knows no class yet)",
    )
    p.add_argument("--batch-size", type=count, default=64)
    device_flag(p)
    skip_bad_images_flag(p)
    p.set_defaults(handler=embed)


def output_format(path: Path) -> str:
    """The suffix of ``--out``, one of :data:`FORMATS`, checked (pyarrow for .parquet) before anything loads."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SecaError(
            f"--out '{path}' should end in .npy (the array), .npz (the array and the file names) or .parquet "
            "(a table of file and embedding)"
        )
    if suffix == ".parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise SecaError(
                "writing .parquet needs pyarrow: pip install pyarrow, or use .npz which keeps the file names"
            ) from None
    return suffix


def write_embeddings(path: Path, suffix: str, features, files: Sequence[str]) -> None:
    """``features`` (a float32 ``[n, d]`` numpy array) and the ``files`` of its rows, written atomically."""
    import numpy as np

    from ..io.files import atomic_write

    def write(tmp: Path) -> None:
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            embedding = pa.FixedSizeListArray.from_arrays(pa.array(features.reshape(-1)), features.shape[1])
            pq.write_table(pa.table({"file": pa.array(list(files), pa.string()), "embedding": embedding}), str(tmp))
            return
        with open(tmp, "wb") as f:  # a file object: numpy adds no suffix of its own to the temporary name
            if suffix == ".npy":
                np.save(f, features)
            else:
                np.savez(f, features=features, files=np.array(list(files), dtype=str))

    atomic_write(path, write)


def embed(args: argparse.Namespace) -> int:
    from ..api import load

    out = Path(args.out).expanduser()
    suffix = output_format(out)  # before anything loads: a wrong --out costs nothing
    writable(out, "--out", folder=False)
    paths = image_paths(args.paths)
    model = load(args.checkpoint, device=args.device)
    if args.skip_bad_images:
        from ..api import readable_images

        paths = readable_images(
            [paths], model.config.data.max_pixels, True, echo=lambda line: print(line, file=sys.stderr)
        )[0]
    files = [str(p) for p in paths]
    features = model.embed(files, frozen=args.frozen, batch_size=args.batch_size).numpy()
    write_embeddings(out, suffix, features, files)
    whose = "the frozen CLIP's" if args.frozen else "the learner's features"
    print(f"wrote {features.shape[0]} embeddings of dimension {features.shape[1]} ({whose}) to {args.out}")
    return 0
