"""What several commands share: argument types, flags defined once, and the registries' choices read lazily.

Nothing here imports torch: ``seca --help`` stays quick. A registry's names are read only when a command's own help
or an invalid choice needs them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path


def _integer(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got '{text}'") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value


def count(text: str) -> int:
    """An argument type: a whole number >= 1 (batch sizes, epochs, top-k), checked before anything loads."""
    return _integer(text, 1)


def port(text: str) -> int:
    """An argument type: a port number, 1 to 65535."""
    value = _integer(text, 1)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {value}")
    return value


def natural(text: str) -> int:
    """An argument type: a whole number >= 0 (seeds)."""
    return _integer(text, 0)


class Registered:
    """``choices`` of an argument: a registry's names, looked up when first asked (``names`` may import torch)."""

    def __init__(self, names: Callable[[], list[str]]):
        self.names = names

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _learners() -> list[str]:
    from ..engine.configure import learner_names  # with the plug-ins of SECA_PLUGINS

    return learner_names()


LEARNER_CHOICES = Registered(_learners)


def method_flag(parser: argparse.ArgumentParser, default: str | None, help: str) -> None:
    """``--method NAME``, one of the registered learners (``%(choices)s`` in ``help`` lists them)."""
    parser.add_argument("--method", default=default, choices=LEARNER_CHOICES, metavar="NAME", help=help)


def set_flag(parser: argparse.ArgumentParser, what: str = "a config key, e.g. --set train.epochs=3") -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=f"override {what} (repeatable)")


def device_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")


def skip_bad_images_flag(parser: argparse.ArgumentParser, key: str = "") -> None:
    parser.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="leave out image files that cannot be read (truncated, not an image, too large) and "
        f"name each one, instead of stopping{f' ({key})' if key else ''}",
    )


def overwrite_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--overwrite", action="store_true", help=what)


def seeds_flag(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--seeds", metavar="LIST", help=help)


def seeds_of(text: str | None):
    """The seeds of ``--seeds 0,1,2`` or ``0-4`` (None when not given)."""
    from ..engine.seeds import parse_seeds

    return None if text is None else parse_seeds(text)


def out_path(text: str | None) -> Path | None:
    return None if text is None else Path(text).expanduser()
