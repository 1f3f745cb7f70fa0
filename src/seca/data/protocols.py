"""Protocols: how a benchmark orders its classes before they are split into tasks (``scenario.order``).

A protocol is a function ``(num_classes, data set, trial, seed) -> class order`` registered under its name in
:data:`PROTOCOLS`; ``scenario.order`` names one, or gives the order itself as a list of class ids. The tasks are
then the order's first ``scenario.first_task`` classes and blocks of ``scenario.increment`` (B-m Inc-n), or
``scenario.tasks``. A new protocol is one function here or in a plug-in, registered with :func:`protocol`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import SecaError
from ..registry import Registry
from .sets import DataSet

Protocol = Callable[[int, DataSet, int, int], list[int]]
PROTOCOLS: Registry[Protocol] = Registry("protocol")


def protocol(name: str) -> Callable[[Protocol], Protocol]:
    """Decorator: make an order function available as ``scenario.order: NAME``."""
    return PROTOCOLS.named(name)


def summary(name: str) -> str:
    """One line on what the protocol ``name`` does (its docstring's first line)."""
    return (PROTOCOLS[name].__doc__ or name).strip().splitlines()[0]


@protocol("reference")
def reference_order(num_classes: int, dataset: DataSet, trial: int, seed: int) -> list[int]:
    """The data set's reference order for scenario.trial (the reference implementation's for CIFAR-100, ImageNet-R)."""
    orders = dataset.reference_orders(num_classes)
    if orders is None:
        raise SecaError(
            f"no reference class order exists for '{dataset.name}'; use scenario.order=seeded (with "
            "scenario.order_seed) or an explicit list"
        )
    if not 0 <= trial < len(orders):
        raise SecaError(f"scenario.trial must be 0..{len(orders) - 1} for {dataset.name}, got {trial}")
    return [int(c) for c in orders[trial]]


@protocol("seeded")
def seeded_order(num_classes: int, dataset: DataSet, trial: int, seed: int) -> list[int]:
    """A permutation drawn from scenario.order_seed (or the run's seed): numpy's default_rng(seed).permutation."""
    return [int(c) for c in np.random.default_rng(seed).permutation(num_classes)]


LAMDA_SEED = 1993  # the seed of PyCIL's, PILOT's and C3Box's class shuffle (their exps/*.json: "seed": [1993])


@protocol("lamda")
def lamda_order(num_classes: int, dataset: DataSet, trial: int, seed: int) -> list[int]:
    """PyCIL's, PILOT's and C3Box's shuffle: numpy.random.seed(S); numpy.random.permutation(K), S = order_seed or 1993.

    Their ``DataManager._setup_data`` (``shuffle: true``) seeds numpy's legacy global generator with the config's
    seed and permutes the K class ids present in the training data (torchvision ImageFolder's: folders sorted by
    name). Here the ids are the data set's own: for C3Box's train/val folders the same sorted folder order, so the
    tasks are C3Box's; for an official layout its official order (the sorted folder names for most data sets, not
    for UCF-101's classInd.txt). The permutation is drawn from a RandomState of its own: numpy's global stream does
    not move."""
    return [int(c) for c in np.random.RandomState(seed).permutation(num_classes)]


@protocol("identity")
def identity_order(num_classes: int, dataset: DataSet, trial: int, seed: int) -> list[int]:
    """The class ids in their own order (0, 1, 2, ...)."""
    return list(range(num_classes))


def class_order(
    order: str | Sequence[int],
    num_classes: int,
    dataset: DataSet,
    trial: int = 0,
    seed: int = 0,
    order_seed: int | None = None,
) -> list[int]:
    """The class order of ``scenario.order``: a protocol's name, or an explicit list of class ids. A protocol draws
    from ``order_seed`` (``scenario.order_seed``), else from the run's ``seed``; ``lamda`` from 1993, as its code
    bases do."""
    if isinstance(order, str):
        if order_seed is None:
            order_seed = LAMDA_SEED if order == "lamda" else seed
        return PROTOCOLS[order](num_classes, dataset, trial, order_seed)
    return [int(c) for c in order]
