"""From plain nested data (YAML, a checkpoint's metadata) to typed, frozen configs, and back; checking values.

Unknown keys, ill-typed values and values out of range are errors that name the key (and the closest valid one).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Union

import yaml

from ..errors import SecaError
from .declare import OWN, Schema, declared, fields_of, is_section, rules, valid_keys
from .sections import RESULT_FREE_KEYS


def build(cls: type, data: Any, schema: Schema = OWN) -> Any:
    """The typed section ``cls`` (its extended form in ``schema``) of plain ``data``; keys not given take their
    defaults. Types are checked here, ranges by :func:`check`."""
    cls = schema.resolve(cls)
    if not isinstance(data, Mapping):
        raise SecaError(f"a config must be a mapping of keys, got {data!r}")
    return _Builder(schema, cls).section(cls, data, "")


def coerce(value: Any, tp: Any, path: str) -> Any:
    """``value`` as a key of type ``tp`` (``tuple[str, ...]``), or a SecaError naming the key ``path``."""
    return _Builder(OWN, object).value(value, tp, path)


class _Builder:
    def __init__(self, schema: Schema, root: type):
        self.schema, self.root = schema, root

    def section(self, cls: type, data: Mapping[str, Any], prefix: str) -> Any:
        types_of = {f.name: tp for f, tp in fields_of(cls, self.schema)}
        for key in data:
            if key not in types_of:
                raise self.unknown(prefix + str(key))
        values = {key: self.value(data[key], types_of[key], prefix + key) for key in data}
        # sections not given are built too, so that an extended section holds its plug-ins' keys
        values.update(
            {
                key: self.section(tp, {}, f"{prefix}{key}.")
                for key, tp in types_of.items()
                if key not in values and is_section(tp)
            }
        )
        return cls(**values)

    def unknown(self, path: str) -> SecaError:
        candidates = valid_keys(self.root, self.schema)
        close = difflib.get_close_matches(path, candidates, n=1, cutoff=0.5)
        if not close:  # compare the last component only: "train.epoch" vs "epochs"
            leaf = path.rsplit(".", 1)[-1]
            close = [
                k
                for k in candidates
                if k.rsplit(".", 1)[-1]
                in difflib.get_close_matches(leaf, [c.rsplit(".", 1)[-1] for c in candidates], n=1, cutoff=0.6)
            ][:1]
        hint = f"; did you mean '{close[0]}'?" if close else "; see docs/config.md for the valid keys"
        return SecaError(f"unknown config key '{path}'{hint}")

    def value(self, value: Any, tp: Any, path: str) -> Any:
        origin = typing.get_origin(tp)
        if origin in (Union, types.UnionType):
            for option in typing.get_args(tp):
                if option is type(None):
                    if value is None:
                        return None
                    continue
                try:
                    return self.value(value, option, path)
                except SecaError:
                    pass
            names = " or ".join(_type_name(a) for a in typing.get_args(tp))
            raise SecaError(f"config key '{path}' must be {names}, got {value!r}")
        if is_section(tp):
            if not isinstance(value, Mapping):
                raise SecaError(f"config key '{path}' is a section; give it as a mapping, got {value!r}")
            return self.section(tp, value, path + ".")
        if origin is tuple:
            if not isinstance(value, (list, tuple)):
                raise SecaError(f"config key '{path}' must be a list, got {value!r}")
            (item_type, _) = typing.get_args(tp)
            return tuple(self.value(v, item_type, f"{path}[{i}]") for i, v in enumerate(value))
        if origin is dict:
            if not isinstance(value, Mapping):
                raise SecaError(f"config key '{path}' must be a mapping, e.g. {{adapter: 1.0e-3}}, got {value!r}")
            key_type, value_type = typing.get_args(tp)
            return {self.value(k, key_type, path): self.value(v, value_type, f"{path}.{k}") for k, v in value.items()}
        if tp is bool:
            if isinstance(value, bool):
                return value
            raise SecaError(f"config key '{path}' must be true or false, got {value!r}")
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise SecaError(f"config key '{path}' must be an integer, got {value!r}")
        if tp is float:
            number = None
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):  # YAML 1.1 reads "5e-4" as text
                try:
                    number = float(value)
                except (ValueError, OverflowError):  # not a number, or an integer beyond any float
                    pass
            if number is None:
                raise SecaError(f"config key '{path}' must be a number, got {value!r}")
            if not math.isfinite(number):
                raise SecaError(f"config key '{path}' must be a finite number, got {value!r}")
            return number
        if tp is str:
            if isinstance(value, str):
                return value
            raise SecaError(f"config key '{path}' must be a string, got {value!r}")
        raise TypeError(f"unsupported config type {tp!r} at {path}")  # a bug in a declaration, not user input


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def value_at(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def check(config: Any, schema: Schema = OWN) -> None:
    """Refuse, naming the key, the first value of ``config`` outside its declared range, and a ``train.lr`` group
    that no learner trains."""
    for key, rule in rules(type(config), schema).items():
        value = value_at(config, key)
        values = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, v in values:
            where = key if sub is None else f"{key}.{sub}"
            if v is not None and not rule.test(v):
                shown = list(v) if isinstance(v, tuple) else v
                raise SecaError(f"config key '{where}' must be {rule.describe()}, got {shown!r}")
    train = getattr(config, "train", None)
    for group in getattr(train, "lr", {}):
        if group not in schema.lr_groups:
            raise _Builder(schema, type(config)).unknown(f"train.lr.{group}")
    if getattr(config, "seeds", None) is not None:
        check_seeds(config.seeds, "config key 'seeds'")


def check_section(values: Any, prefix: str) -> None:
    """Refuse a value outside its declared range in a section built in Python (``method_config(...)``), with one
    line naming the key: ``method.ce_scale must be above 0, got 0.0``."""
    for key, f, _ in declared(type(values)):
        rule, value = f.metadata.get("rule"), value_at(values, key)
        if rule is not None and value is not None and not rule.test(value):
            raise SecaError(f"{prefix}.{key} must be {rule.describe()}, got {value!r}")


def check_seeds(seeds: Sequence[int], where: str = "seeds") -> tuple[int, ...]:
    """``seeds`` as a tuple if it is a non-empty list of distinct seeds >= 0; ``where`` names it in the error."""
    seeds = tuple(seeds)
    if not seeds:
        raise SecaError(f"{where} is empty; give at least one seed, e.g. 0,1,2")
    if any(k < 0 for k in seeds):
        raise SecaError(f"{where} must be 0 or more, got {min(seeds)}")
    if len(set(seeds)) != len(seeds):
        repeated = next(k for k in seeds if seeds.count(k) > 1)
        raise SecaError(f"{where} lists seed {repeated} twice; each seed runs once")
    return seeds


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested data (lists, not tuples) that :func:`build` turns back into an equal config."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def differences(now: Any, saved: Any, prefix: str = "") -> list[str]:
    """The dotted keys at which two configs as plain data differ in a way that changes results (the keys of
    :data:`RESULT_FREE_KEYS` aside): ``"train.epochs (3 now, 5 in the run)"``."""
    if isinstance(now, dict) and isinstance(saved, dict):
        return [
            d for k in sorted(set(now) | set(saved)) for d in differences(now.get(k), saved.get(k), f"{prefix}{k}.")
        ]
    key = prefix.rstrip(".")
    return [] if now == saved or key in RESULT_FREE_KEYS else [f"{key} ({now!r} now, {saved!r} in the run)"]
