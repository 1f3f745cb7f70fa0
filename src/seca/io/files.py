"""Atomic file writes: a temporary file in the target's folder, then a rename, so readers (and a run that
is killed half-way) never see a half-written file.

A path is resolved through its symbolic links before anything is written: the real file is replaced and a link to
it stays a link (the lock of a model file is the real file's too: io/locks.py). A file's permissions are kept when
it is replaced, and a read-only file (no write permission for anyone) is refused, named, with nothing written."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import SecaError


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def real_path(path: str | Path) -> Path:
    """``path`` with ``~`` and every symbolic link resolved: the file that is really read and written."""
    return Path(os.path.realpath(Path(path).expanduser()))


def check_replaceable(path: str | Path) -> None:
    """Refuse, in one line, to replace an existing file that is read-only: seca never overwrites what its owner
    protected from writing."""
    try:
        mode = stat.S_IMODE(os.stat(real_path(path)).st_mode)
    except OSError:
        return  # not there (yet): nothing to protect
    if not mode & 0o222:
        raise SecaError(
            f"'{path}' is read-only (mode {mode:04o}); nothing was written: make it writable (chmod u+w '{path}') "
            "to let seca replace it, or write elsewhere"
        )


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path`` in one step: to the real file behind any symbolic
    link, with the permissions of the file it replaces (a read-only one is refused)."""
    path = real_path(path)
    check_replaceable(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = _default_mode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise SecaError(f"could not write '{path}': {e.strerror or e}") from None
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)  # mkstemp makes files private: the replaced file's permissions, or the usual ones
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
    if not folder:
        check_replaceable(path)
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
