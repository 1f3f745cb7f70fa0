"""Plug-ins from outside the package: modules that register learners, data sets or protocols when imported.

A config names them under ``plugins`` (importable names or ``.py`` files); the ``SECA_PLUGINS`` environment
variable names them for every command (docs/extending.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import SecaError

_loaded_plugins: dict[str, Any] = {}


def load_plugins(plugins: Sequence[str]) -> None:
    """Import each plugin (a module name, or a ``.py`` file) once, so that what it registers is known."""
    for plugin in plugins:
        if plugin in _loaded_plugins:
            continue
        try:
            if plugin.endswith(".py"):
                path = Path(plugin).expanduser()
                if not path.is_file():
                    raise SecaError(f"plugin '{plugin}' not found; give an importable module name or a .py file")
                name = f"seca_plugin_{path.stem}"
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
            else:
                module = importlib.import_module(plugin)
        except SecaError:
            raise
        except Exception as e:
            raise SecaError(f"plugin '{plugin}' could not be imported: {type(e).__name__}: {e}") from None
        _loaded_plugins[plugin] = module


def environment_plugins() -> list[str]:
    """The plug-ins of ``SECA_PLUGINS`` (paths and modules separated by the path separator, ``:``)."""
    return [p for p in os.environ.get("SECA_PLUGINS", "").split(os.pathsep) if p]
