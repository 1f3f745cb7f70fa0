"""Atomic file writes: a temporary file in the target's folder, then a rename, so readers (and a run that
is killed half-way) never see a half-written file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import SecaError


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path`` in one step."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise SecaError(f"could not write '{path}': {e.strerror or e}") from None
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, _default_mode())  # mkstemp makes files private; give them the usual permissions
        os.replace(tmp, path)
    except OSError as e:  # disk full, permission denied, ...: no partial file, the earlier one untouched
        Path(tmp).unlink(missing_ok=True)
        raise SecaError(
            f"could not write '{path}': {e.strerror or e}; "
            f"{'the earlier file is unchanged' if path.exists() else 'nothing was written'}"
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def writable(path: str | Path, what: str, folder: bool) -> Path:
    """``path``, once it is certain that a file (``folder=False``) or folder can be written there; else a
    SecaError naming ``what`` (the option, such as ``--out``). Checked before any work, so that nothing is
    trained or computed for an output that cannot be written."""
    path = Path(path).expanduser()
    if path.exists() and folder and not path.is_dir():
        raise SecaError(f"{what} '{path}' is a file; give a folder")
    if path.exists() and not folder and path.is_dir():
        raise SecaError(f"{what} '{path}' is a folder; give the path of the file to write")
    ancestor = path if folder else path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise SecaError(f"{what} '{path}' cannot be created: '{ancestor}' is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise SecaError(f"{what} '{path}' cannot be written: no permission to write in '{ancestor}'")
    return path


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
