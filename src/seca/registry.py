"""One kind of registry for every kind of plug-in: learners, data sets, protocols, SECA's teachers and visual heads,
pretrained tags; and the discovery that fills the registries of learners and data sets from their folders.

A :class:`Registry` maps names to entries of one kind. The module that defines an entry registers it (a class
decorator, or :meth:`Registry.add`), so adding an entry never means editing a list elsewhere; the registry's
:meth:`~Registry.names` feed the config's rules, the command line's choices, ``seca presets`` and the docs. A name
is taken once: a second entry under it is refused in one line naming both sources (the same entry registered
again, its module imported twice, is harmless).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from .errors import SecaError

T = TypeVar("T")


def source_of(entry: object) -> str:
    """Where an entry is defined: ``module.QualName`` of a class or function, else its ``repr``."""
    module, name = getattr(entry, "__module__", None), getattr(entry, "__qualname__", None)
    return f"{module}.{name}" if module and name else repr(entry)


class Registry(Generic[T]):
    """Names -> entries of one ``kind`` ("learner", "data set", ...), in the order they were registered."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._sources: dict[str, str] = {}

    def add(self, name: str, entry: T, source: str | None = None) -> T:
        """Register ``entry`` under ``name``; ``source`` (default: where ``entry`` is defined) names it in errors."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a name (a non-empty string), got {name!r} from {source_of(entry)}")
        source = source or source_of(entry)
        taken = self._sources.get(name)
        if taken is not None and taken != source:
            raise ValueError(f"the {self.kind} name '{name}' is taken by {taken}; {source} needs another name")
        self._entries[name], self._sources[name] = entry, source
        return entry

    def register(self, entry: T) -> T:
        """Class decorator: register a class under its ``name`` attribute."""
        return self.add(getattr(entry, "name", None), entry)

    def named(self, name: str) -> Callable[[T], T]:
        """Decorator: register a function or class under ``name``."""
        return lambda entry: self.add(name, entry)

    def __getitem__(self, name: str) -> T:
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SecaError(f"unknown {self.kind} '{name}'{hint}; choose one of: {', '.join(self.names())}")
        return self._entries[name]

    def get(self, name: str, default: T | None = None) -> T | None:
        return self._entries.get(name, default)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs, sorted by name."""
        return [(name, self._entries[name]) for name in self.names()]

    def source(self, name: str) -> str:
        return self._sources[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


def import_modules(package: str, path: Iterable[str], kind: str) -> None:
    """Import every public module of ``package`` (not its sub-packages, not ``_private`` helpers): each registers what
    it defines. A module that fails to import is named, with what failed."""
    for module in pkgutil.iter_modules(path):
        if module.name.startswith("_") or module.ispkg:
            continue
        try:
            importlib.import_module(f"{package}.{module.name}")
        except Exception as e:  # a broken plug-in file: name it, and say what failed
            where = f"{package.replace('.', '/')}/{module.name}.py"
            raise SecaError(f"the {kind} module {where} could not be imported: {type(e).__name__}: {e}") from e
