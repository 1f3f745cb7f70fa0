"""Continual-learning methods over a frozen CLIP: one module per learner, found without an import list.

The learners stand at the top of this package, one file each (zero_shot, simplecil, h_peft, seca, rapf,
moe_adapters, mind_the_gap); SECA's parts are in ``seca_parts/``; helpers they share are private (``_scores``,
``_statistics``, ``_precision``, ``_texts``). Every public module here is imported when the package is (its
learners register themselves with :func:`register`), so dropping a file with a registered learner here is all a
new method takes; a module from outside the package registers the same way when it is imported, named in a
config's ``plugins`` or in ``SECA_PLUGINS`` (docs/extending.md). :data:`LEARNERS` feeds ``method.name``'s choices,
``--method``, ``seca presets`` and the docs; the ``method`` section of a config is the union of the learners'
``Config`` declarations (seca.engine.configure).

A plug-in writes a learner with what this face exports: the protocol (:class:`Learner`, :class:`Batch`,
:class:`TaskData`, :func:`register`) and two helpers, :func:`stable_exp` (scores from logits, spec §6) and
:func:`class_means` (class means that stay exact over a distributed run's shards).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..clip.backbone import ClipBackbone
from ..config import check_section
from ..registry import import_modules
from ._scores import stable_exp
from ._statistics import class_means
from .base import LEARNERS, LOSS_WORDS, Batch, Learner, TaskData, register

__all__ = [
    "LEARNERS",
    "LOSS_WORDS",
    "Batch",
    "Learner",
    "TaskData",
    "register",
    "build_learner",
    "class_means",
    "stable_exp",
]

import_modules(__name__, __path__, "method")


def build_learner(backbone: ClipBackbone, class_names: Sequence[str], config: Any, seed: int = 0) -> Learner:
    """The learner ``config.name`` over ``backbone``, for classes ``class_names`` in label order; ``config`` is the
    ``method`` section."""
    check_section(config, "method")  # a section built in Python is checked against the declarations too
    return LEARNERS[config.name](backbone, class_names, config, seed).to(backbone.device)
