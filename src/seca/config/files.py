"""Config files: the packaged presets, ``extends`` chains, and ``--set key.sub=value`` overrides, as plain data.

A preset may start with ``extends: other.yaml`` (relative to the preset, or the name of a packaged preset) to
inherit another. What is read here is plain nested data; ``seca.engine.configure`` turns it into a checked config.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import SecaError


def deep_merge(base: dict, update: Mapping) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def packaged_preset(name: str) -> Path | None:
    """The path of a preset shipped with the package (``imagenet-r`` or ``ablations/kd``), if any."""
    stem = name[:-5] if name.endswith(".yaml") else name
    candidate = Path(str(resources.files("seca") / "configs" / f"{stem}.yaml"))
    return candidate if candidate.is_file() else None


def list_presets(folder: str = "") -> list[str]:
    """Packaged experiment presets (``folder=""``) or ablation sets (``folder="ablations"``)."""
    root = Path(str(resources.files("seca") / "configs"))
    return sorted(str(p.relative_to(root).with_suffix("")) for p in (root / folder).glob("*.yaml"))


def resolve_preset_path(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    path = Path(name_or_path)
    if relative_to is not None and not path.is_absolute():
        if (relative_to / path).is_file():
            return relative_to / path
    if path.is_file():
        return path
    packaged = packaged_preset(str(name_or_path))
    if packaged is not None:
        return packaged
    raise SecaError(
        f"config file '{name_or_path}' not found; give a YAML path or one of the presets: " + ", ".join(list_presets())
    )


def load_raw(name_or_path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a preset as plain data, following ``extends`` chains."""
    path = resolve_preset_path(name_or_path, _seen[-1].parent if _seen else None).resolve()
    if path in _seen:
        raise SecaError(f"config '{path}' extends itself (cycle: {' -> '.join(p.name for p in _seen)})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SecaError(f"config '{path}' is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SecaError(f"config '{path}' must hold a mapping of keys at top level")
    parent = data.pop("extends", None)
    if parent is not None:
        data = deep_merge(load_raw(parent, _seen + (path,)), data)
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.epochs=3`` -> (["train", "epochs"], 3); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SecaError(f"override '{text}' must look like key.sub=value, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def set_key(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with the dotted ``key`` (``train.lr.adapter``) set to ``value``."""
    keys = key.split(".")
    data = deep_merge({}, data)
    node = data
    for depth, part in enumerate(keys[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise SecaError(f"cannot set '{key}': '{'.'.join(keys[: depth + 1])}' is a value, not a section")
        else:
            child = node[part] = dict(child)
        node = child
    node[keys[-1]] = value
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set key.sub=value`` strings in order."""
    for text in overrides:
        keys, value = parse_override(text)
        data = set_key(data, ".".join(keys), value)
    return data
