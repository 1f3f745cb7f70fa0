"""Per-class texts a language model wrote (ENGINE's descriptions, CLG-CBM's concepts): read from the user's file.

They are data of the user's, never packaged: the official repositories publish them for the standard data sets
(docs/method.md says where). A file is a JSON object from class names to texts, in one of the two shapes those
repositories use: ``{"class": ["text", ...]}`` or ``{"class": {"aspect": ["text", ...], ...}}`` (the aspects'
lists joined in their order, as ENGINE's ``_get_text_des`` does). A class is found by its name as written, else by
its name with case, underscores and hyphens set aside. Without a file, :func:`offline_class_texts` makes them from
the class names by one documented rule, so that every learner runs offline.

Some official files (CLG-CBM's concepts: ``data/cifar100/concepts.json`` of FisherCats/CLG-CBM, C3Box's
``utils/clg_cbm/concepts/*.json``) are keyed by the data set's class index instead (``{"0": [...], "1": [...]}``),
the index's name given by a second file (CLG-CBM's ``*_label2class.json``, ``{"0": "apple", ...}``, or a JSON list of
the names in index order). :func:`read_indexed_class_texts` reads such a pair for a learner that knows its classes
by name alone, in label order: each index key is renamed to its class name, and the texts are then found by name as
above. :func:`keyed_by_index` tells whether a file has that shape (to ask for the names file).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import SecaError


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name).strip().casefold()


def read_class_texts(path: str | Path, class_names: Sequence[str], setting: str) -> list[list[str]]:
    """The texts of each of ``class_names`` (in their order) from the JSON file ``path`` (``setting`` names the config
    key that gave it, for the errors): every class must have at least one non-empty text."""
    path = Path(path).expanduser()
    return _match(_load_object(path, setting), path, class_names, setting)


def _load_object(path: Path, setting: str) -> object:
    try:
        raw = path.read_bytes()
    except OSError as e:
        reason = e.strerror or e
        raise SecaError(f"{setting}: cannot read '{path}' ({reason}); give the path of the JSON file") from None
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise SecaError(f"{setting}: '{path}' is not JSON text ({reason})") from None
    return data


def _match(data: object, path: Path, class_names: Sequence[str], setting: str) -> list[list[str]]:
    if not isinstance(data, dict):
        raise SecaError(f"{setting}: '{path}' must hold a JSON object from class names to lists of texts")
    found = {}
    for name, value in data.items():
        texts = _texts(value)
        if texts is None:
            raise SecaError(
                f"{setting}: the entry {json.dumps(name)[:80]} of '{path}' is neither a list of texts nor an object "
                "of lists of texts"
            )
        found.setdefault(name, texts)
        found.setdefault(_key(name), texts)
    out, missing = [], []
    for name in class_names:
        texts = found.get(name, found.get(_key(name)))
        if not texts:
            missing.append(name)
        out.append(texts or [])
    if missing:
        raise SecaError(
            f"{setting}: '{path}' has no text for {len(missing)} of the {len(class_names)} classes, the first "
            f"{json.dumps(missing[0])[:80]}; add them, named as the data set names them (seca data lists the names)"
        )
    return out


def _texts(value: object) -> list[str] | None:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, dict):
        parts = [_texts(v) for v in value.values()]
        return None if any(p is None for p in parts) else [t for p in parts for t in p]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return [" ".join(t.split()) for t in value if t.strip()]
    return None


def offline_class_texts(class_names: Sequence[str]) -> list[list[str]]:
    """Texts made from the class names alone, for a data set without a file (the offline world): each word of a
    class's name is one text (``"red star"`` -> ``["red", "star"]``), so classes that share a word share a text, as
    the descriptions a language model writes of related classes share their attributes."""
    return [name.split() or [name] for name in class_names]


def _is_index(key: object) -> bool:
    """A class index as a JSON key: ASCII digits only (``"²"`` is a digit to Python, not a number to ``int``)."""
    return isinstance(key, str) and key.isascii() and key.isdigit()


def keyed_by_index(path: str | Path, setting: str) -> bool:
    """Whether the JSON object in ``path`` is keyed by class indices alone (``"0"``, ``"1"``, ...)."""
    data = _load_object(Path(path).expanduser(), setting)
    return isinstance(data, dict) and bool(data) and all(_is_index(k) for k in data)


def read_class_names(path: str | Path, setting: str) -> list[str]:
    """A data set's class names in index order from ``path``: a JSON list of names, or an object from indices to
    names (``{"0": "apple", "1": "aquarium fish", ...}``, CLG-CBM's ``*_label2class.json``) with every index from 0
    up."""
    path = Path(path).expanduser()
    data = _load_object(path, setting)
    if isinstance(data, dict) and all(_is_index(k) for k in data):
        if sorted(int(k) for k in data) != list(range(len(data))):
            raise SecaError(f"{setting}: '{path}' must give a name to every class index from 0 to {len(data) - 1}")
        data = [data[k] for k in sorted(data, key=int)]
    if not isinstance(data, list) or not data or not all(isinstance(n, str) and n.strip() for n in data):
        raise SecaError(
            f"{setting}: '{path}' must hold the data set's class names in index order: a JSON list of names or an "
            'object from indices to names ({"0": "apple", ...})'
        )
    return data


def read_indexed_class_texts(
    path: str | Path, names_path: str | Path, class_names: Sequence[str], setting: str, names_setting: str
) -> list[list[str]]:
    """The texts of each of ``class_names`` (in their order) from ``path``, a JSON object keyed by the data set's class
    index, whose names :func:`read_class_names` reads from ``names_path``: key ``"i"`` is the class named
    ``names[i]``. Keys that are not indices stay names. ``setting``/``names_setting`` name the two config keys."""
    path = Path(path).expanduser()
    names = read_class_names(names_path, names_setting)
    data = _load_object(path, setting)
    if isinstance(data, dict):
        renamed = {}
        for key, value in data.items():
            if _is_index(key):
                if int(key) >= len(names):
                    raise SecaError(
                        f"{setting}: '{path}' has class index {key}, but {names_setting} names only {len(names)} "
                        "classes; give the names file of the same data set"
                    )
                key = names[int(key)]
            renamed.setdefault(key, value)
        data = renamed
    return _match(data, path, class_names, setting)
