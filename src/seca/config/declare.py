"""Declaring config keys: a default, the values allowed, one line of help; and reading the declarations back.

A section of keys is a frozen dataclass whose fields are :func:`setting` (a key) or :func:`section` (a sub-section).
Plug-ins extend two sections with keys of their own (every learner's under ``method``, every data set's under
``data``): a :class:`Schema` holds those extended sections, resolved once above the plug-ins
(``seca.engine.configure``), and every function here that walks the keys reads it. Building, ``--set``,
validation, checkpoints and docs/config.md's tables all come from these declarations.
"""

from __future__ import annotations

import dataclasses
import string
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import SecaError


@dataclass(frozen=True)
class Rule:
    """What a value must be: ``test(value)`` holds, described as ``what`` (``at least 1``). ``what`` may be a
    function, for choices known only once the plug-ins are registered."""

    test: Callable[[Any], bool]
    what: str | Callable[[], str]

    def describe(self) -> str:
        return self.what() if callable(self.what) else self.what


def at_least(low: float) -> Rule:
    return Rule(lambda v: v >= low, f"at least {low:g}")


ABOVE_ZERO = Rule(lambda v: v > 0, "above 0")
FRACTION = Rule(lambda v: 0 <= v <= 1, "between 0 and 1")
DROPOUT = Rule(lambda v: 0 <= v < 1, "at least 0 and below 1")  # a probability of dropping: 1 would drop all
# A learning rate: above 0, and no more than 10 (Adam's step is about the rate; a larger one only overflows).
LEARNING_RATE = Rule(lambda v: 0 < v <= 10, "above 0 and at most 10")


def _one_slot(text: str) -> bool:
    try:
        fields = [
            (name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(text) if name is not None
        ]
    except ValueError:  # a lone { or }
        return False
    return fields == [("", "", None)]


# A text template of a class: ``template.format(class name)`` must fill exactly one slot.
TEMPLATE = Rule(_one_slot, "a text with one {} where the class name goes, e.g. 'a photo of a {}.' (braces as {{ }})")
TEMPLATES = Rule(
    lambda v: isinstance(v, tuple | list) and len(v) > 0 and all(isinstance(t, str) and _one_slot(t) for t in v),
    "a non-empty list of texts, each with one {} where the class name goes, e.g. ['a photo of a {}.']",
)


def between(low: float, high: float) -> Rule:
    return Rule(lambda v: low <= v <= high, f"between {low:g} and {high:g}")


def one_of(*choices: str) -> Rule:
    return Rule(lambda v: v in choices, "one of " + ", ".join(choices))


class Names(Protocol):
    def names(self) -> list[str]: ...


def one_of_registered(registry: Names) -> Rule:
    """One of a registry's names, read when a value is checked (so plug-ins registered later count)."""
    return Rule(lambda v: v in registry.names(), lambda: "one of " + ", ".join(registry.names()))


def setting(default: Any, help: str, rule: Rule | None = None) -> Any:
    """A config key: its default, one line of help (docs/config.md), and the values it allows."""
    metadata = {"help": help, "rule": rule}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def section(cls: type, help: str = "") -> Any:
    """A sub-section of keys, declared by its own frozen dataclass."""
    return field(default_factory=cls, metadata={"help": help or (cls.__doc__ or "").strip().splitlines()[0]})


@dataclass(frozen=True)
class NoSettings:
    """A plug-in (a learner, a data set) that declares no key of its own."""


def is_section(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp) and isinstance(tp, type)


def default_of(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


@dataclass(frozen=True)
class Schema:
    """What the plug-ins add to the experiment's own declarations: ``sections``, each declared section that they
    extend mapped to the section that holds their keys too (``method``: every learner's; ``data``: every data set's);
    ``rules`` of keys whose values are registered names (``method.name``: the learners), by dotted key; and
    ``lr_groups``, the parameter groups of ``train.lr`` with their default rates. ``Schema()`` is the experiment's
    own declarations alone."""

    sections: Mapping[type, type] = field(default_factory=dict)
    rules: Mapping[str, Rule] = field(default_factory=dict)
    lr_groups: Mapping[str, float] = field(default_factory=dict)

    def resolve(self, tp: Any) -> Any:
        return self.sections.get(tp, tp)


OWN = Schema()


def fields_of(cls: type, schema: Schema = OWN) -> list[tuple[dataclasses.Field, Any]]:
    """(field, type) of a section's keys, each extended section read through ``schema``."""
    hints = typing.get_type_hints(cls)
    return [(f, schema.resolve(hints[f.name])) for f in dataclasses.fields(cls)]


def declared(cls: type, schema: Schema = OWN, prefix: str = "") -> list[tuple[str, dataclasses.Field, Any]]:
    """Every leaf key below ``cls``: (dotted key, field, type)."""
    keys = []
    for f, tp in fields_of(cls, schema):
        if is_section(tp):
            keys.extend(declared(tp, schema, prefix + f.name + "."))
        else:
            keys.append((prefix + f.name, f, tp))
    return keys


def rules(cls: type, schema: Schema = OWN) -> dict[str, Rule]:
    """Every key's rule, the schema's for registered names (a mapping's rule applies to each of its values)."""
    found = {key: f.metadata["rule"] for key, f, _ in declared(cls, schema) if f.metadata.get("rule") is not None}
    return {**found, **schema.rules}


def valid_keys(cls: type, schema: Schema = OWN) -> list[str]:
    """Every dotted key a config of type ``cls`` accepts (sections included), ``train.lr``'s groups too."""

    def walk(c: type, prefix: str) -> list[str]:
        keys = []
        for f, tp in fields_of(c, schema):
            keys.append(prefix + f.name)
            if is_section(tp):
                keys.extend(walk(tp, prefix + f.name + "."))
        return keys

    return walk(cls, "") + [f"train.lr.{group}" for group in schema.lr_groups]


# ---- sections extended by plug-ins ----------------------------------------------------------------------------


class Conflict(SecaError):
    """Two plug-ins declare one key differently (a bug in a plug-in, not in a user's config)."""


def extend_section(base: type, parts: Iterable[tuple[str, type]], where: str, module: str) -> type:
    """A section holding ``base``'s keys and those of every ``(owner, section)`` of ``parts``, a subclass of
    ``base`` named like it and defined in ``module``. A key declared by several owners must agree in type and
    default; sub-sections declared by several are merged the same way."""
    merged: dict[str, tuple[Any, dataclasses.Field]] = {}
    for owner, cls in parts:
        for f, tp in fields_of(cls):
            merged[f.name] = _merge_field(merged.get(f.name), (tp, f), f"{where}.{f.name}", owner)
    own = {f.name for f in dataclasses.fields(base)}
    clash = sorted(own & set(merged))
    if clash:
        raise Conflict(f"the key '{where}.{clash[0]}' is the experiment's own; a plug-in cannot declare it again")
    return _make_section(base.__name__, merged, base.__doc__, module, bases=(base,))


def _merge(a: type, b: type, where: str, owner: str) -> type:
    """One section holding the keys of sections ``a`` and ``b``."""
    if a is b or issubclass(a, b):
        return a
    if issubclass(b, a):
        return b
    merged: dict[str, tuple[Any, dataclasses.Field]] = {}
    for cls in (a, b):
        for f, tp in fields_of(cls):
            merged[f.name] = _merge_field(merged.get(f.name), (tp, f), f"{where}.{f.name}", owner)
    return _make_section(f"{a.__name__}_{b.__name__}", merged, a.__doc__, a.__module__)


def _merge_field(old, new, where: str, owner: str):
    if old is None:
        return new
    (tp_a, f_a), (tp_b, f_b) = old, new
    if is_section(tp_a) and is_section(tp_b):
        merged = _merge(tp_a, tp_b, where, owner)
        return merged, dataclasses.field(default_factory=merged, metadata=f_a.metadata)
    if tp_a != tp_b or default_of(f_a) != default_of(f_b):
        raise Conflict(
            f"{owner} declares the config key '{where}' differently (type or default) from another "
            "plug-in; keys of its own belong in a section named after it (docs/extending.md)"
        )
    return old


def _make_section(
    name: str, fields: Mapping[str, tuple[Any, dataclasses.Field]], doc: str | None, module: str, bases: tuple = ()
) -> type:
    cls = dataclasses.make_dataclass(name, [(n, tp, f) for n, (tp, f) in fields.items()], bases=bases, frozen=True)
    cls.__doc__, cls.__module__, cls.__qualname__ = doc, module, name
    return cls
