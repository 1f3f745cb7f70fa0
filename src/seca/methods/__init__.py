"""Continual-learning methods over a frozen CLIP: one module per method, found without an import list.

Every module of this package is imported when the package is (its learners register themselves with
:func:`register`), so dropping a file with a registered learner here is all a new method takes; a module
from outside the package registers the same way when it is imported, named in a config's ``plugins`` or in
the ``SECA_PLUGINS`` environment variable (docs/extending.md). The registry's names feed ``method.name``'s
choices, ``--method``, ``seca presets`` and the errors' "choose one of". The ``method`` section of a config
is the union of the learners' ``Config`` declarations (:func:`method_config_class`).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
import typing
from typing import Any, Sequence

from ..clip.backbone import ClipBackbone
from ..config import MethodConfig as BaseMethodConfig
from ..config import check_section, fields_of, is_section, load_plugins
from ..errors import SecaError
from .base import LEARNERS, Batch, Learner, NoSettings, TaskData, register

__all__ = ["LEARNERS", "Batch", "Learner", "NoSettings", "TaskData", "register", "build_learner", "check_method",
           "learner_class", "method_config", "method_config_class", "learning_rate_defaults"]


def _discover() -> None:
    """Import every module of this package: each method registers itself."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            try:
                importlib.import_module(f"{__name__}.{module.name}")
            except Exception as e:  # a broken method file: name it, and say what failed
                raise SecaError(f"the method module seca/methods/{module.name}.py could not be imported: "
                                f"{type(e).__name__}: {e}") from e


_discover()
# Learners from outside the package for every command: SECA_PLUGINS=path/to/file.py:package.module
load_plugins([p for p in os.environ.get("SECA_PLUGINS", "").split(os.pathsep) if p])


def check_method(name: str) -> None:
    """Refuse a method name no learner is registered under (cheap: call it before loading a backbone)."""
    if name not in LEARNERS:
        raise SecaError(f"unknown method.name '{name}'; choose one of: {', '.join(sorted(LEARNERS))}")


def learner_class(name: str) -> type[Learner]:
    check_method(name)
    return LEARNERS[name]


def build_learner(backbone: ClipBackbone, class_names: Sequence[str], config: Any, seed: int = 0) -> Learner:
    """The learner ``config.name`` over ``backbone``, for classes ``class_names`` in label order."""
    check_section(config, "method")  # a config built in Python is checked against the declarations too
    return learner_class(config.name)(backbone, class_names, config, seed).to(backbone.device)


def learning_rate_defaults() -> dict[str, float]:
    """Every parameter group of a registered learner, with its default learning rate."""
    groups: dict[str, float] = {}
    for name in sorted(LEARNERS):
        for group, rate in LEARNERS[name].learning_rates().items():
            if groups.setdefault(group, rate) != rate:
                raise SecaError(f"learners declare different default learning rates for train.lr.{group}: "
                                f"{groups[group]} and {rate} ({name}); give the group a name of its own")
    return groups


# ---- the method section: the union of the learners' declarations ----------------------------------------


def _merge(a: type, b: type, where: str) -> type:
    """One section holding the keys of sections ``a`` and ``b``; a key both declare must agree."""
    if a is b or issubclass(a, b):
        return a
    if issubclass(b, a):
        return b
    merged: dict[str, tuple[Any, dataclasses.Field]] = {}
    for cls in (a, b):
        for f, tp in fields_of(cls):
            merged[f.name] = _merge_field(merged.get(f.name), (tp, f), f"{where}.{f.name}")
    return _make_section(f"{a.__name__}_{b.__name__}", merged, a.__doc__)


def _merge_field(old, new, where: str):
    if old is None:
        return new
    (tp_a, f_a), (tp_b, f_b) = old, new
    if is_section(tp_a) and is_section(tp_b):
        merged = _merge(tp_a, tp_b, where)
        return merged, dataclasses.field(default_factory=merged, metadata=f_a.metadata)
    same_default = (f_a.default == f_b.default and f_a.default_factory == f_b.default_factory) or (
        f_a.default is dataclasses.MISSING and f_b.default is dataclasses.MISSING
        and f_a.default_factory() == f_b.default_factory())
    if tp_a != tp_b or not same_default:
        raise SecaError(f"two learners declare the config key '{where}' differently (type or default); a learner's "
                        "own keys belong in a section named after it (docs/extending.md)")
    return old


def _make_section(name: str, fields: dict[str, tuple[Any, dataclasses.Field]], doc: str | None) -> type:
    cls = dataclasses.make_dataclass(name, [(n, tp, f) for n, (tp, f) in fields.items()], frozen=True)
    cls.__doc__ = doc
    cls.__module__ = __name__
    return cls


_schema: dict[tuple, type] = {}


def method_config_class() -> type:
    """The ``method`` section: ``name``, then every key a registered learner declares (shared keys once)."""
    key = tuple((name, cls) for name, cls in sorted(LEARNERS.items()))
    if key not in _schema:
        fields: dict[str, tuple[Any, dataclasses.Field]] = {}
        for _, cls in key:
            for f, tp in fields_of(cls.Config):
                fields[f.name] = _merge_field(fields.get(f.name), (tp, f), f"method.{f.name}")
        hints = typing.get_type_hints(BaseMethodConfig)
        base = {f.name: (hints[f.name], f) for f in dataclasses.fields(BaseMethodConfig)}
        cls = _make_section("MethodConfig", {**base, **fields}, BaseMethodConfig.__doc__)
        cls.__qualname__ = "MethodConfig"
        _schema[key] = cls
        globals()["MethodConfig"] = cls  # pickled configs (spawned processes) find it here
    return _schema[key]


def method_config(**values: Any) -> Any:
    """A ``method`` section of the given values (the rest at their defaults): ``method_config(name="seca",
    sg_akt=SGAKTConfig(teacher="avg"))``."""
    return method_config_class()(**values)
