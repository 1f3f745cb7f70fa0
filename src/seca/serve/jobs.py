"""The model a server serves, and the learn jobs that grow it: one at a time, on a copy, swapped in when saved.

Predictions read :attr:`ModelServer.model` once per request, so a request that started before a swap finishes
on the model it started with, and one that starts after it sees the grown model: none fails or sees a model
half grown. A job waits in the queue (in order) until the worker takes it; the worker then holds the model
file's lock (the same lock as ``seca learn``'s, so a CLI learn on the same file cannot interleave), trains a
copy of the served model (``SecaModel.copy``: the same frozen CLIP, which neither changes), evaluates it,
writes it to the file atomically, and only then swaps it in. A job that fails, is cancelled, or is stopped
with the server changes neither the served model nor the file.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api import SecaModel, load
from ..data.images import ImagesByClass, class_key
from ..errors import SecaError
from ..io import locks
from ..io.files import check_replaceable, file_digest
from .uploads import UploadError, Workspace, scrub

log = logging.getLogger("seca.serve")

FINISHED = ("done", "failed", "cancelled")  # a job's last states; before them: queued, training, evaluating, saving
KEEP_FINISHED = 100  # finished jobs remembered for GET /jobs/{id}


class Cancelled(Exception):
    """The job was cancelled (DELETE /jobs/{id}) or the server is stopping."""


class Conflict(UploadError):
    """The request contradicts the model or the queue (a class already known or already being learned)."""


class NotFound(SecaError):
    """No job of that id."""


@dataclass
class Job:
    """One learn job: a new task of ``classes`` from images in ``workspace``, and how far it has come."""

    classes: list[str]
    images: int
    epochs: int
    batch_size: int
    workspace: Workspace
    train: ImagesByClass  # the new classes and their uploaded images
    evaluation: ImagesByClass | None = None  # test images by class
    keep_eval: bool = True  # keep the test images with the model (its standing test set)
    loss_words: dict[str, str] = field(default_factory=dict)  # plain words for the loss terms
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = "queued"
    epoch: int = 0
    step: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    images_per_s: float | None = None
    error: str | None = None
    entry: dict | None = None  # the model's history entry of the task, when done
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def steps(self) -> int:
        return self.epochs * math.ceil(self.images / self.batch_size)

    def view(self) -> dict[str, Any]:
        """What GET /jobs/{id} answers."""
        return {
            "id": self.id,
            "state": self.state,
            "classes": self.classes,
            "images": self.images,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "step": self.step,
            "steps": self.steps,
            "losses": self.losses,
            "loss_words": {term: self.loss_words.get(term, term) for term in self.losses},
            "images_per_s": self.images_per_s,
            "error": self.error,
            "entry": self.entry,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
        }


class ModelServer:
    """The served model (:attr:`model`), the jobs, and the worker thread that runs them in order."""

    def __init__(self, path: Path, device: str = "auto"):
        self.path = Path(path).expanduser()
        self.device = device
        self.model: SecaModel = load(self.path, device=device)
        self.model.learner.eval()
        self.jobs: dict[str, Job] = {}
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._guard = threading.Lock()  # the jobs and the queue's classes
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work, name="seca-learn", daemon=True)
        self._worker.start()

    # ---- jobs ------------------------------------------------------------------------------------
    def submit(self, job: Job) -> Job:
        """Queue ``job``; refused (changing nothing) if one of its classes is known or being learned."""
        try:
            check_replaceable(self.path)  # a job would train and then fail to save: refused now instead
        except SecaError as e:
            raise Conflict(str(e)) from None
        with self._guard:
            known = {class_key(name): name for name in self.model.classes}
            pending = {class_key(name) for j in self.jobs.values() if j.state not in FINISHED for name in j.classes}
            for name in job.classes:  # the same spelling rule as learn's: case, spaces and underscores aside
                if class_key(name) in known:
                    same = "" if known[class_key(name)] == name else f" (as '{known[class_key(name)]}')"
                    raise Conflict(
                        f"the model already knows the class '{name}'{same}; a learn job adds new classes only"
                    )
                if class_key(name) in pending:
                    raise Conflict(f"the class '{name}' is being learned by a job already queued or running")
            self.jobs[job.id] = job
            self._forget_old()
        self._queue.put(job)
        return job

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job '{job_id}' on this server (finished jobs are kept for the last {KEEP_FINISHED})")
        return job

    def cancel(self, job_id: str) -> Job:
        """Stop a job: a queued one never runs, a running one stops at its next step, changing nothing."""
        job = self.job(job_id)
        with self._guard:  # the worker takes a job under the guard: a job not taken yet is finished here
            if job.state not in FINISHED:
                job.cancel.set()
                if job.started is None:
                    self._finish(job, "cancelled")
        return job

    def queued(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.state == "queued"]

    def running(self) -> Job | None:
        return next((j for j in self.jobs.values() if j.state in ("training", "evaluating", "saving")), None)

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.state in FINISHED]
        for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.jobs[old.id]

    def _finish(self, job: Job, state: str, error: str | None = None) -> None:
        job.state, job.error, job.finished = state, None if error is None else scrub(error), time.time()
        job.workspace.close()  # the uploads go with the job

    # ---- the worker ------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._guard:
                if job.cancel.is_set() or self._stopping.is_set():
                    if job.state not in FINISHED:
                        self._finish(job, "cancelled")
                    continue
                job.started = time.time()  # taken: from now on only the worker finishes it
            self._run(job)

    def _run(self, job: Job) -> None:
        try:
            with self._file_lock(job):
                grown = self._grow(job)
                job.state = "saving"
                grown.save(self.path)
                self.model = grown  # the swap: requests from now on see the grown model
            job.entry = grown.history[-1]
            self._finish(job, "done")
        except Cancelled:
            self._finish(job, "cancelled")
        except SecaError as e:
            self._finish(job, "failed", str(e))
        except Exception as e:
            log.exception("learn job %s failed", job.id)
            self._finish(job, "failed", f"internal error ({type(e).__name__}); the server's log has the details")

    def _file_lock(self, job: Job):
        """The model file's lock, waited for while another process (a CLI learn) holds it, unless cancelled."""
        while True:
            self._check(job)
            try:
                held = locks.model_file(self.path)
                held.__enter__()
                return _Held(held)
            except locks.Busy:
                time.sleep(0.5)

    def _grow(self, job: Job) -> SecaModel:
        """A copy of the served model (of the file, if another process saved it meanwhile), taught the job's task."""
        base = self.model
        if not self.path.is_file() or base.source is None or file_digest(self.path) != base.source[1]:
            base = load(self.path, device=self.device)  # the file changed under the server: build on what it holds
            base.learner.eval()
            self.model = base
        grown = base.copy()
        job.state = "training"
        grown.learn(
            job.train,
            epochs=job.epochs,
            batch_size=job.batch_size,
            progress=False,
            eval_data=job.evaluation,
            keep_eval=job.keep_eval,
            on_event=lambda event, fields: self._progress(job, event, fields),
        )
        entry = grown.history[-1]  # the uploads' temporary folder is gone with the job: say where they came from
        entry["data"] = f"seca serve upload (job {job.id})"
        if entry.get("eval"):
            evaluation = entry["eval"]
            given = [f"seca serve upload (job {job.id}, test images)"] if job.evaluation else []
            evaluation["data"] = " + ".join(
                given + ([f"{evaluation['kept']} kept test images"] if evaluation["kept"] else [])
            )
        return grown

    def _progress(self, job: Job, event: str, fields: dict) -> None:
        self._check(job)
        if event == "train_step":
            job.step += 1
            job.epoch = int(fields.get("epoch", 0)) + 1
            job.images_per_s = fields.get("images_per_s")
            job.losses = {k: v for k, v in fields.items() if k not in ("task", "epoch", "step", "images_per_s", "lr")}
        elif event == "evaluating":
            job.state = "evaluating"

    def _check(self, job: Job) -> None:
        if job.cancel.is_set() or self._stopping.is_set():
            raise Cancelled

    # ---- stopping --------------------------------------------------------------------------------
    def stop(self, timeout: float = 600.0) -> None:
        """Stop the worker: the running job is cancelled (it changes nothing), queued ones never run."""
        self._stopping.set()
        self._queue.put(None)
        self._worker.join(timeout)
        for job in list(self.jobs.values()):
            if job.state not in FINISHED:
                self._finish(job, "cancelled")


class _Held:
    """A held lock as a context manager (taken already)."""

    def __init__(self, held):
        self.held = held

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.held.__exit__(*exc)
