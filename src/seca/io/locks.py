"""One writer at a time: an exclusive lock on a model file or a run folder for the process that changes it.

The lock is an operating-system file lock (``flock``, through the ``filelock`` package; its soft fallback
where a file system has none), so it is released by the system when its process ends, however it ends: a
process killed with SIGKILL leaves no lock that blocks anyone. Beside the lock file a small JSON file
names the holder (pid, host, command, since when), so that the writer who is refused can be told who is
writing. A lock is reentrant within one thread (``seca learn`` holds its model's lock and saves through
:meth:`seca.api.SecaModel.save`, which takes it again) and exclusive between threads and processes.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import filelock

from ..errors import SecaError
from .files import atomic_write_text, real_path


class Busy(SecaError):
    """Another live process (or thread) holds the lock."""


def lock_files(target: Path, folder: bool) -> tuple[Path, Path]:
    """(lock file, holder file) of a model file (hidden files beside it) or of a run folder (inside it), beside the
    real file behind any symbolic link."""
    target = real_path(target)  # a link and its target share one lock
    if folder:
        return target / ".seca.lock", target / ".seca.lock.json"
    return target.parent / f".{target.name}.lock", target.parent / f".{target.name}.lock.json"


def holder(target: Path, folder: bool) -> dict | None:
    """Who holds the lock of ``target`` now, as its holder file says (None if it cannot be read)."""
    try:
        return json.loads(lock_files(target, folder)[1].read_text())
    except (OSError, ValueError):
        return None


def describe(info: dict | None) -> str:
    """``pid 123 on host, since 14:02:11: seca learn ...`` (or ``another process``)."""
    if not info:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("since", 0)))
    here = "" if info.get("host") == socket.gethostname() else f" on {info.get('host')}"
    return f"pid {info.get('pid')}{here}, since {since}: {info.get('command', '?')}"


_ACQUIRED = {"acquired": True}  # what _holder_of_held answers when the lock came free meanwhile


def _holder_of_held(lock: filelock.FileLock, target: Path, folder: bool, patience: float = 2.0):
    """The holder of a lock just found taken, or ``_ACQUIRED`` when it was free again meanwhile.

    The holder writes its file just after taking the lock and removes it just before letting go, so a
    refused writer can look in either window and find no file: it looks again for a moment (taking the
    lock if it came free) rather than name "another process" to a user who wants to know who it is.
    """
    deadline = time.monotonic() + patience
    while True:
        info = holder(target, folder)
        if info is not None or time.monotonic() > deadline:
            return info
        try:
            lock.acquire(timeout=0.05)
            return _ACQUIRED
        except filelock.Timeout:
            pass


# (lock file, thread) -> [the held lock, depth]: how one thread takes a lock it already holds again
_held: dict[tuple[str, int], list] = {}
_held_guard = threading.Lock()


@contextmanager
def exclusive(
    target: Path,
    *,
    folder: bool,
    busy: Callable[[dict | None], str],
    wait: bool = False,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> Iterator[None]:
    """Hold the exclusive lock of ``target`` (a model file, or with ``folder`` a run folder that exists).

    When another process or thread holds it: a :class:`Busy` error with the message ``busy(holder)``, or
    with ``wait`` one line through ``echo`` and a wait until it is free.
    """
    path, info_path = lock_files(target, folder)
    key = (str(path), threading.get_ident())
    with _held_guard:
        mine = _held.get(key)
        if mine is not None:
            mine[1] += 1
    if mine is not None:
        try:
            yield
        finally:
            with _held_guard:
                mine[1] -= 1
        return

    lock = filelock.FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        info = _holder_of_held(lock, target, folder)
        if info is not _ACQUIRED:
            if not wait:
                raise Busy(busy(info)) from None
            echo(f"waiting: {target} is being written by {describe(info)}")
            lock.acquire()
    except OSError as e:
        raise SecaError(f"could not lock '{target}' for writing ({path}): {e.strerror or e}") from None
    try:
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.time(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "python",
        }
        try:
            atomic_write_text(info_path, json.dumps(record) + "\n")
        except SecaError:  # the holder's name is a courtesy; the lock itself is what excludes
            pass
        with _held_guard:
            _held[key] = [lock, 1]
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            info_path.unlink(missing_ok=True)
    finally:
        lock.release()


def model_file(path: Path, wait: bool = False, echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr)):
    """The lock of a model file for a read-modify-write (``seca learn``, :meth:`SecaModel.save`)."""
    return exclusive(
        Path(path),
        folder=False,
        wait=wait,
        echo=echo,
        busy=lambda info: (
            f"'{path}' is being changed by {describe(info)}; nothing was done: run again when it has finished, "
            "or add --wait (wait=True in Python) to wait for it"
        ),
    )


def run_folder(path: Path):
    """The lock of a run folder (``seca run``, ``--seeds``, ``ablate``), which must exist."""
    return exclusive(
        Path(path),
        folder=True,
        busy=lambda info: (
            f"'{path}' is in progress, not interrupted: {describe(info)} is writing it; wait for it to finish "
            "(add --resume then, if it is stopped before the end), or choose another --out"
        ),
    )


class FolderLock:
    """A run folder's lock, taken (:meth:`take`) as soon as the folder exists and held until the ``with``
    block ends: early when the folder is there already, so that a run in progress is refused before any
    work; otherwise when the run creates it."""

    def __init__(self, path: Path | None):
        self.path = None if path is None else Path(path)
        self._stack = ExitStack()
        self.taken = False

    def take(self) -> None:
        if not self.taken and self.path is not None:
            self._stack.enter_context(run_folder(self.path))
            self.taken = True

    def take_if_there(self) -> None:
        if self.path is not None and self.path.is_dir():
            self.take()

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()
