"""A run's output folder, and the one place that knows its files and their names.

    OUT/config.yaml                        the resolved config, written when the run starts
    OUT/log.jsonl                          one JSON record per event, as the run goes
    OUT/checkpoints/task-NN.safetensors    the learner after task NN, for --resume
    OUT/results.json, model.safetensors    at the end, with the report (summary.md, accuracy_*.png)
    OUT/exemplars.json                     at the end, where the learner kept an exemplar memory (its references)
    OUT/seed<k>/                           with --seeds: one run folder per seed (and OUT/results.json, the aggregate)
    OUT/.previous/                         an earlier run's files, set aside until the new run has finished
    OUT/.seca.lock                         the lock of the process writing the folder (io/locks.py)

Every file is written atomically (io/files.py); a new run that dies loses nothing of the old one.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..errors import SecaError
from .files import writable
from .locks import FolderLock

# What a run writes into its folder. An earlier run's are set aside in PREVIOUS when a new run starts there,
# and deleted only when the new run has finished: a new run that dies loses nothing of the old one.
RUN_FILES = (
    "config.yaml",
    "log.jsonl",
    "results.json",
    "model.safetensors",
    "exemplars.json",
    "summary.md",
    "accuracy_matrix.png",
    "accuracy_curve.png",
    "checkpoints",
    "tensorboard",
)
PREVIOUS = ".previous"
CHECKPOINT = re.compile(r"task-(\d+)\.safetensors")


class RunFolder:
    """The files of one run's output folder (it need not exist yet)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # ---- names -----------------------------------------------------------------------------------
    @property
    def results(self) -> Path:
        return self.path / "results.json"

    @property
    def exemplars(self) -> Path:
        return self.path / "exemplars.json"

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def model(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint(self, task_index: int) -> Path:
        """The checkpoint written after task ``task_index`` (counted from 0)."""
        return self.checkpoints / f"task-{task_index + 1:02d}.safetensors"

    def seed(self, seed: int) -> RunFolder:
        """The folder of one seed's run of an experiment over seeds."""
        return RunFolder(self.path / f"seed{seed}")

    @staticmethod
    def tasks_done(checkpoint: Path) -> int:
        """How many tasks had finished when ``checkpoint`` was written (``task-03...`` -> 3)."""
        return int(CHECKPOINT.fullmatch(checkpoint.name).group(1))

    # ---- state -----------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.results.exists()

    def checkpoints_newest_first(self) -> list[Path]:
        """The task checkpoints of the folder, the newest (the most tasks done) first."""
        found = [p for p in self.checkpoints.glob("task-*.safetensors") if CHECKPOINT.fullmatch(p.name)]
        return sorted(found, key=self.tasks_done, reverse=True)

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints_newest_first()
        return found[0] if found else None

    @property
    def interrupted(self) -> bool:
        return not self.finished and self.latest_checkpoint() is not None

    def lock(self) -> FolderLock:
        """The folder's lock (taken when :meth:`FolderLock.take` is called, held until the ``with`` ends)."""
        return FolderLock(self.path)

    # ---- starting and finishing ------------------------------------------------------------------
    def check_new(self, overwrite: bool = False) -> None:
        """Refuse a folder that cannot be written, or holds a run that --overwrite alone may replace."""
        writable(self.path, "--out", folder=True)
        if overwrite:
            return
        if self.finished:
            raise SecaError(f"'{self.path}' already holds results.json; pass --overwrite or choose another --out")
        latest = self.latest_checkpoint()
        if latest is not None:
            raise SecaError(
                f"'{self.path}' holds an interrupted run (saved after task {self.tasks_done(latest)}); "
                "continue it by adding --resume to the same command, or pass --overwrite to start again"
            )

    def start(self, config_yaml: str, overwrite: bool = False, lock: FolderLock | None = None) -> None:
        """Begin a new run here: the folder's lock (before anything is read, so a run that started at the same
        moment is refused), an earlier run's files set aside in ``.previous/``, and ``config.yaml``."""
        from .files import atomic_write_text

        writable(self.path, "--out", folder=True)
        self.path.mkdir(parents=True, exist_ok=True)
        if lock is not None:
            lock.take()
        self.check_new(overwrite)
        earlier = [self.path / name for name in RUN_FILES if (self.path / name).exists()]
        if earlier:
            shutil.rmtree(self.path / PREVIOUS, ignore_errors=True)
            (self.path / PREVIOUS).mkdir()
            for path in earlier:
                os.replace(path, self.path / PREVIOUS / path.name)
        atomic_write_text(self.config, config_yaml)

    def keep_checkpoints(self, newest: Path, policy: str) -> None:
        """After ``newest`` was written: with ``train.checkpoints: last`` the older ones go but the one before it,
        which a resume falls back to should ``newest`` be damaged."""
        if policy == "last":
            for old in self.checkpoints_newest_first()[2:]:
                old.unlink()

    def finish(self, policy: str) -> None:
        """The run is whole: its task checkpoints go (unless ``all`` are kept), and so does the earlier run."""
        if policy != "all":
            for old in self.checkpoints.glob("task-*.safetensors"):
                old.unlink()
        shutil.rmtree(self.path / PREVIOUS, ignore_errors=True)


def last_saved(root: Path) -> tuple[Path, int] | None:
    """The newest task checkpoint anywhere below ``root`` (a run, or the seeds of one) and its task count."""
    saved = sorted(
        (p for p in Path(root).glob("**/checkpoints/task-*.safetensors") if CHECKPOINT.fullmatch(p.name)),
        key=lambda p: p.stat().st_mtime,
    )
    return (saved[-1], RunFolder.tasks_done(saved[-1])) if saved else None
