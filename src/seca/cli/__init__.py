"""The ``seca`` command line: one module per group of commands, each command's arguments beside its handler.

    experiments.py   run, probe-epochs, ablate, compare, report, presets
    models.py        new, learn, predict, evaluate
    embed.py         embed
    data.py          prepare
    offline.py       demo, pretrain-shapes
    serve.py         serve
    cache.py         cache info, cache clear
    import_config.py import c3box
    common.py        argument types and the flags several commands share

Every command is documented in docs/cli.md; ``main(argv)`` serves the tests. Nothing heavy is imported until a
command runs, so ``seca --help`` is quick.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from ..errors import SecaError
from . import cache, data, embed, experiments, import_config, models, offline, serve

# The order of `seca --help`.
COMMANDS = (
    experiments.add_run,
    models.add_predict,
    embed.add_embed,
    models.add_new,
    models.add_learn,
    models.add_evaluate,
    experiments.add_report,
    experiments.add_compare,
    data.add_prepare,
    experiments.add_ablate,
    experiments.add_probe_epochs,
    serve.add_serve,
    offline.add_demo,
    offline.add_pretrain_shapes,
    cache.add_cache,
    experiments.add_presets,
    import_config.add_import,
)


def build_parser() -> argparse.ArgumentParser:
    from ..version import __version__

    parser = argparse.ArgumentParser(
        prog="seca", description="Continual learning with CLIP: SECA and its baselines. See docs/cli.md."
    )
    parser.add_argument("--version", action="version", version=f"seca {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
        print(
            f"{rank}error: only 'seca run' runs over several processes; start 'seca {args.command}' without torchrun",
            file=sys.stderr,
        )
        return 2
    in_main_thread = threading.current_thread() is threading.main_thread()  # signals can be set there only
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    finished = False  # the command ended without an error: every process comes to the end together
    try:
        code = args.handler(args)
        finished = code == 0
        return code
    except SecaError as e:
        from ..distributed import Failed

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
            from ..distributed import leave

            leave(synchronize=finished)


def _rank_prefix() -> str | None:
    """``"[rank N] "`` in a process that torchrun started as one of several (its errors say which it is),
    else None. Read from the environment, so that `seca --help` does not import torch."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return f"[rank {os.environ.get('RANK', '?')}] "


def _terminate(signum, frame) -> None:
    """SIGTERM (a scheduler's stop, kill) ends a command as Ctrl-C does: cleanly, saying what was kept."""
    raise KeyboardInterrupt
