"""The Python API: a model you keep. Load it, classify images, evaluate it, teach it new classes, save it.

import seca
model = seca.load("runs/imagenet-r/seca/seed0/model.safetensors")
model.classes                              # class names, in label order
model.predict(["cat.jpg", pil_image])      # [Prediction(label=..., score=..., top_k=[...]), ...]
model.embed(["cat.jpg"], frozen=True)      # [images, d] image features: the frozen CLIP's, or (default) the learner's
model.evaluate("data/test_folder")         # {"accuracy": ..., "per_class": {...}}
model.learn("data/new_classes")            # one new task: its folder names are the new classes
model.save("model-v2.safetensors")

model = seca.new("seca-shapes")            # a model that knows no class yet, on the offline CLIP
model.learn("digits/task-1", eval_data="digits/test")   # its first task, evaluated on what it knows
model.learn("digits/task-2", eval_data="digits/test")   # kept test images + new ones: a matrix row per task
model.history                              # one entry per task: classes, images, seconds, accuracy, yardsticks
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .clip.backbone import check_model_name, load_backbone
from .config import (
    EVAL_ORDERS,
    HYBRID_MAX,
    BackboneConfig,
    ExperimentConfig,
    TrainConfig,
    apply_overrides,
    describe_training,
    load_raw,
    parse_override,
)
from .data.images import (
    ImageFiles,
    ImagesByClass,
    class_key,
    labelled_images,
    open_image,
    source_of,
    unusable_images,
)
from .data.scenario import Task
from .data.sets import load_dataset
from .engine.configure import for_method, resolve
from .engine.data import TaskImages
from .engine.device import amp_dtype, autocast, resolve_device, seed_everything
from .engine.evaluate import predicted_labels
from .engine.frozen import FrozenInputs
from .engine.memory import ExemplarMemory, asked
from .engine.train import TaskTraining, learn_task
from .errors import SecaError
from .eval.history import EVAL_FIELDS, eval_record, history_entry
from .eval.metrics import percent
from .io import locks
from .io.checkpoint import load_checkpoint, model_metadata, save_checkpoint
from .io.files import check_replaceable, file_digest, real_path
from .io.kept_tests import KeptTests, folder_of
from .methods import LOSS_WORDS, Learner, build_learner

ImageLike = str | Path | Image.Image | torch.Tensor


@dataclass(frozen=True)
class LearnRequest:
    """One ``learn``: the folder of the new task's classes, the test folder to evaluate on after it (and whether to
    keep its images with the model), the epochs and batch size if not the model's, whether to show progress and to
    skip bad images, and who hears the steps."""

    data: str | Path | ImagesByClass
    eval_data: str | Path | ImagesByClass | None = None
    epochs: int | None = None
    batch_size: int | None = None
    progress: bool = True
    skip_bad_images: bool = False
    on_event: Callable[[str, dict], None] | None = None
    keep_eval: bool = True


# A prediction whose two most likely classes are within this much probability of each other is undecided.
UNDECIDED_MARGIN = 0.02


@dataclass
class Prediction:
    """The most likely class of one image, its probability, and the ``top_k`` classes with theirs. ``margin``: its
    probability minus the second most likely class's (1.0 with one class); ``undecided`` when that is under
    :data:`UNDECIDED_MARGIN` (2 points): the model cannot tell those classes apart on this image."""

    label: str
    index: int
    score: float
    top_k: list[tuple[str, float]]
    margin: float = 1.0

    @property
    def undecided(self) -> bool:
        return self.margin < UNDECIDED_MARGIN


def readable_images(files: Sequence[Sequence[Path]], max_pixels: int, skip_bad: bool, echo=print) -> list[list[Path]]:
    """``files`` (a list per class) after reading every image in full: a bad file (unreadable, truncated, too
    large) is an error that lists them, or with ``skip_bad`` is left out and named through ``echo``."""
    bad = unusable_images(
        [p for group in files for p in group],
        max_pixels,
        skip_bad,
        "pass --skip-bad-images (skip_bad_images=True)",
        echo,
    )
    kept = [[p for p in group if Path(p) not in bad] for group in files]
    emptied = [group[0].parent for group, left in zip(files, kept) if group and not left]
    if emptied:
        raise SecaError(f"'{emptied[0]}' holds no usable image once the bad ones are skipped")
    return kept


class SecaModel:
    """A trained continual learner over its frozen CLIP, with the class names it knows."""

    def __init__(
        self,
        learner: Learner,
        config: ExperimentConfig,
        meta: dict[str, Any],
        device: torch.device,
        source: tuple[Path, str] | None = None,
    ):
        self.learner, self.config, self.meta, self.device = learner, config, meta, device
        # (file, SHA-256 of its bytes) this model was loaded from or last saved to: saving over that file again
        # checks first that no other process has replaced it meanwhile, so that no one's update is lost
        self.source = source
        # the standing test set: the test images given to learn, kept with the model (seca.io.kept_tests)
        self.kept = KeptTests(meta.get("kept_tests"), folder_of(source[0]) if source else None)
        if meta.get("exemplars") is not None:  # checked on load: a damaged list is refused before any use
            ExemplarMemory.from_manifest(meta["exemplars"], str(source[0]) if source else "the model")

    @property
    def exemplars(self) -> dict[str, Any] | None:
        """What the model's exemplar memory keeps (images, classes, per class, selection, files), or None when it
        keeps none: references to training images, with their digests (docs/memory.md). A learner that trains with
        exemplars (PROOF) keeps them when its training settings give a budget (``train.memory_*``)."""
        manifest = self.meta.get("exemplars")
        return None if manifest is None else ExemplarMemory.from_manifest(manifest, "the model").summary()

    @property
    def history(self) -> list[dict]:
        """One entry per task learned: its classes, training images and seconds, and the accuracy measured after
        it (``seca run``'s test set, or ``learn(eval_data=...)``; None when not evaluated). See docs/results.md."""
        return self.meta.setdefault("history", [])

    @property
    def classes(self) -> list[str]:
        return self.learner.class_names[: self.learner.num_seen]

    @property
    def method(self) -> str:
        return self.learner.name

    @property
    def loss_words(self) -> dict[str, str]:
        """Plain words for the loss terms a task's training reports (``on_event``'s ``train_step`` fields)."""
        return {**LOSS_WORDS, **self.learner.loss_words}

    @property
    def version(self) -> str | None:
        """Names this state of the model: the first 16 hex digits of its file's SHA-256 (None before it is saved)."""
        return self.source[1][:16] if self.source and self.source[1] else None

    @property
    def preprocess(self):
        """The backbone's image preprocessing (PIL image -> tensor) that ``predict`` applies to paths and PIL images."""
        return self.learner.backbone.preprocess

    def __repr__(self) -> str:
        b = self.config.backbone
        return (
            f"SecaModel({self.method}, {len(self.classes)} classes in {len(self.learner.tasks)} tasks, "
            f"{b.model} {b.pretrained or ''})"
        )

    # ---- inference -------------------------------------------------------------------------------
    def _tensor(self, image: ImageLike) -> torch.Tensor:
        size = self.learner.backbone.image_size
        if isinstance(image, torch.Tensor):
            if image.dim() != 3 or tuple(image.shape) != (3, size, size):
                raise SecaError(
                    f"tensor images must be preprocessed to 3x{size}x{size} (model.preprocess does it); "
                    f"got shape {tuple(image.shape)}"
                )
            return image
        if isinstance(image, (str, Path)):
            path = Path(image).expanduser()
            if not path.is_file():
                raise SecaError(f"image '{image}' not found")
            image = open_image(path, self.config.data.max_pixels)
        if not isinstance(image, Image.Image):
            raise SecaError(f"cannot classify a {type(image).__name__}: give paths, PIL images or tensors")
        return self.preprocess(image.convert("RGB"))

    def _require_classes(self) -> None:
        if not self.classes:
            raise SecaError(
                "the model knows no class yet; teach it a first task with `seca learn MODEL --data DIR` "
                "(model.learn(folder) in Python)"
            )

    def _batches(self, images: Sequence[ImageLike], batch_size: int) -> Iterable[torch.Tensor]:
        if isinstance(images, torch.Tensor) and images.dim() == 4:
            images = list(images)
        elif isinstance(images, (str, Path, Image.Image, torch.Tensor)):
            images = [images]
        for start in range(0, len(images), batch_size):
            yield torch.stack([self._tensor(x) for x in images[start : start + batch_size]]).to(self.device)

    @torch.no_grad()
    def probabilities(self, images: ImageLike | Sequence[ImageLike], batch_size: int = 64) -> torch.Tensor:
        """``[images, classes]`` class probabilities (the learner's scores, normalised to sum to one)."""
        self._require_classes()
        self.learner.eval()
        amp = amp_dtype(self.config.train.amp, self.device)
        out = []
        for batch in self._batches(images, batch_size):
            with autocast(self.device, amp):
                scores = self.learner.predict(batch).float()
            out.append((scores / scores.sum(dim=1, keepdim=True)).cpu())
        return torch.cat(out) if out else torch.empty(0, len(self.classes))

    def predict(
        self, images: ImageLike | Sequence[ImageLike], top_k: int = 1, batch_size: int = 64
    ) -> list[Prediction]:
        """The class of each image (paths, PIL images, or preprocessed tensors), batched."""
        if top_k < 1:
            raise SecaError(f"top_k must be at least 1, got {top_k}")
        probs = self.probabilities(images, batch_size)
        k = min(top_k, len(self.classes))
        values, indices = probs.topk(k, dim=1)
        two = probs.topk(min(2, len(self.classes)), dim=1).values
        margins = (two[:, 0] - two[:, 1]).tolist() if two.shape[1] > 1 else [1.0] * len(probs)
        return [
            Prediction(
                self.classes[int(i[0])],
                int(i[0]),
                float(v[0]),
                [(self.classes[int(j)], float(p)) for p, j in zip(v, i)],
                float(m),
            )
            for v, i, m in zip(values, indices, margins)
        ]

    @torch.no_grad()
    def embed(
        self, images: ImageLike | Sequence[ImageLike], frozen: bool = False, batch_size: int = 64
    ) -> torch.Tensor:
        """``[images, d]`` image features (paths, PIL images, or preprocessed tensors), float32, on the CPU, in order.

        ``frozen=False``: the features the learner predicts with (``Learner.embed``: the adapted ones of SECA, H-PEFT,
        RAPF, MoE-Adapters and Mind the Gap; the frozen CLIP's of zero-shot and SimpleCIL), normalised. A model that
        has learned no task is refused (its adapters would be their untrained start): pass ``frozen=True``.
        ``frozen=True``: the frozen CLIP's features (``Learner.frozen_embedding``), normalised, with or without
        classes; the same for every model over the same backbone."""
        if not frozen and not self.classes:
            raise SecaError(
                "the model has learned no task yet, so it has no features of its own; pass frozen=True "
                "(seca embed --frozen) for the frozen CLIP's"
            )
        self.learner.eval()
        encode = self.learner.frozen_embedding if frozen else self.learner.embed
        amp = amp_dtype(self.config.train.amp, self.device)
        out = []
        for batch in self._batches(images, batch_size):
            with autocast(self.device, amp):
                out.append(encode(batch).float().cpu())
        return torch.cat(out) if out else torch.empty(0, self.learner.backbone.embed_dim)

    def evaluate(
        self,
        data: str | Path | ImagesByClass | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        confusion: bool = False,
        known_only: bool = False,
        skip_bad_images: bool = False,
        order: str | None = None,
        hybrid_max: str | None = None,
    ) -> dict:
        """Accuracy on ``data/<class>/`` images (or ``data/test/<class>/``), whose folder names are known classes, or
        on images given by class (``{"sea lion": [path, ...], ...}``: the names are data, never read as paths); by
        default (``data=None``) on the model's standing test set, the test images kept by ``learn``.

        Returns ``{"data", "accuracy", "images", "classes", "known", "chance", "majority", "per_class": {name:
        {"accuracy", "images"}}, "per_task": [accuracy or None per task], "task_images": [...], "task_correct":
        [...], "left_out": [...], "warning"}`` (percentages rounded once to 2 decimals; ``chance``: guessing among
        the ``known`` classes; ``majority``: always answering the most frequent class of these images; ``warning``: a
        sentence when the accuracy is no better than those). ``known_only=True`` evaluates the
        folders of known classes and lists the others under ``"left_out"`` (instead of refusing them): one test
        folder of every class serves every step.
        Every image is read before any is classified: a bad file is an error, or with ``skip_bad_images`` left
        out (and named). ``confusion=True`` adds ``"confusion"``: ``{"rows": evaluated classes, "columns": every
        known class (both in label order, so in task order),
        "counts": [row][column] images, "task_bounds": the label where each task starts, then the count}``.

        ``order`` (default: the model's ``train.eval_order``): ``task`` classifies each task's images in batches
        of their own; ``dataset`` classifies all of them in the folder's order (class folders sorted by name,
        then files), so batches mix tasks, as the reference evaluates. ``hybrid_max`` (default: the model's
        ``method.classifier.hybrid_max``) may be set to ``batch`` for this evaluation: with it, and only with
        it, the order and ``batch_size`` change predictions (docs/method.md#checked-against-the-reference).
        """
        order = self.config.train.eval_order if order is None else order
        batch_size = self.config.train.eval_batch_size if batch_size is None else batch_size
        kept = data is None
        if kept:
            data = self.kept_tests()
        for name, value, choices in (("order", order, EVAL_ORDERS), ("hybrid_max", hybrid_max, HYBRID_MAX)):
            if value is not None and value not in choices:
                raise SecaError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
        self._require_classes()
        names, files = labelled_images(data, "test")
        label_of = {class_key(c): k for k, c in enumerate(self.classes)}
        unknown = [n for n in names if class_key(n) not in label_of]
        if unknown and not known_only:
            raise SecaError(
                f"the model does not know class '{unknown[0]}' (of {source_of(data)}); "
                f"it knows {len(self.classes)} classes, see model.classes"
            )
        if len(unknown) == len(names):
            of = f"class folders of '{data}'" if not isinstance(data, Mapping) else "classes given"
            raise SecaError(
                f"none of the {len(names)} {of} is a class the model knows "
                f"(it knows {', '.join(self.classes[:3])}{', ...' if len(self.classes) > 3 else ''})"
            )
        files = readable_images(
            [f for n, f in zip(names, files) if n not in unknown], self.config.data.max_pixels, skip_bad_images
        )
        labels = [label_of[class_key(n)] for n in names if n not in unknown]
        names = [self.classes[label] for label in labels]  # the model's own spelling
        # One data set of every image in the folder's order; a set per task of its classes' images in that order.
        image_labels = np.concatenate([np.full(len(f), label, dtype=np.int64) for f, label in zip(files, labels)])
        everything = self._task_images([p for f in files for p in f], image_labels)
        tasks = self.learner.tasks
        task_of = np.array([next(t.index for t in tasks if t.start <= label < t.stop) for label in image_labels])
        seen = sorted(set(task_of.tolist()))
        sets = [everything.subset(np.flatnonzero(task_of == k)) for k in seen]
        amp = amp_dtype(self.config.train.amp, self.device)
        learner_config = self.learner.config
        if hybrid_max is not None:
            self.learner.config = dataclasses.replace(
                learner_config, classifier=dataclasses.replace(learner_config.classifier, hybrid_max=hybrid_max)
            )
        try:
            # one evaluation scores each image once: what helps is the feature store, for frozen CLIP features
            stored = self.config.train.feature_store and self.learner.frozen_kind() == "embedding"
            frozen = FrozenInputs.for_tests(self.learner, self.config.train) if stored else None
            predicted = predicted_labels(self.learner, sets, batch_size, self.device, amp, 0, progress, order, frozen)
        finally:
            self.learner.config = learner_config
        truth = torch.as_tensor(np.concatenate([s.labels for s in sets]))
        predicted = torch.cat(predicted)
        right = truth == predicted
        class_counts = [int((truth == label).sum()) for label in labels]
        per_class = {
            n: {"accuracy": percent(int(right[truth == label].sum()), count), "images": count}
            for n, label, count in zip(names, labels, class_counts)
        }
        task_correct, task_total = [0] * len(tasks), [0] * len(tasks)
        for k, s, hits in zip(seen, sets, right.split([len(s) for s in sets])):
            task_correct[k], task_total[k] = int(hits.sum()), len(s)
        record = eval_record(
            "kept test images" if kept else source_of(data),
            task_correct,
            task_total,
            len(names),
            unknown,
            known=len(self.classes),
            class_counts=class_counts,
            kept=int(truth.numel()) if kept else 0,
        )
        report = {**record, "per_class": per_class}
        if confusion:  # rows in label (task) order, as the columns, so the diagonal and task blocks show
            matrix = torch.zeros(len(self.classes), len(self.classes), dtype=torch.long)
            matrix.index_put_((truth, predicted), torch.ones_like(truth), accumulate=True)
            rows = sorted(labels)
            report["confusion"] = {
                "rows": [self.classes[k] for k in rows],
                "columns": list(self.classes),
                "counts": matrix[rows].tolist(),
                "task_bounds": [t.start for t in tasks] + [len(self.classes)],
            }
        return report

    def kept_tests(self) -> ImagesByClass:
        """The model's standing test set, by class: the test images given to ``learn`` (see
        :mod:`seca.io.kept_tests`); refused in one line when there is none, or when its files are missing."""
        images = self.kept.images()
        if self.kept.dropped:
            raise SecaError(
                f"{self.kept.dropped} of the model's {len(self.kept)} kept test images are missing from "
                f"'{self.kept.home}' (copy that folder beside the model file), or evaluate on --data DIR"
            )
        if not images:
            raise SecaError(
                "the model keeps no test images: give a test folder (--data DIR), or learn with --eval DIR to keep one"
            )
        return images

    def _task_images(self, files: Sequence[Path], labels: Sequence[int]) -> TaskImages:
        dataset = ImageFiles(files, labels, self.classes, self.preprocess, self.config.data.max_pixels)
        return TaskImages(dataset, range(len(files)), labels)

    # ---- learning ---------------------------------------------------------------------------------
    def learn(
        self,
        data: str | Path | ImagesByClass,
        epochs: int | None = None,
        batch_size: int | None = None,
        progress: bool = True,
        eval_data: str | Path | ImagesByClass | None = None,
        skip_bad_images: bool = False,
        out: str | Path | None = None,
        wait: bool = False,
        on_event: Callable[[str, dict], None] | None = None,
        keep_eval: bool = True,
    ) -> Task:
        """Learn one new task from ``data/<class>/`` (or ``data/train/<class>/``): its folder names are
        the new classes; or from images given by class (``{"sea lion": [path, ...], ...}``: the names are data, never
        read as paths). Classes the model already knows are refused, whatever their case, spaces or underscores.
        ``eval_data``: test images (a folder ``eval_data/<class>/`` or ``eval_data/test/<class>/``, or by class) to
        measure the accuracy on every class known after the task (classes not learned yet are left out). The
        evaluation also covers the model's standing test set (the test images of earlier learns), so each task's
        history entry is a row of the accuracy matrix over every task learned so far; with ``keep_eval`` (the
        default) this task's test images join that set, kept beside the model file when it is saved
        (:mod:`seca.io.kept_tests` says what is stored). Every
        training image is read before training
        starts: a bad file stops it with the list, or with ``skip_bad_images`` is left out (and named). On any
        error or interrupt the model is left exactly as it was. Appends an entry to :attr:`history` and
        returns the new task.

        ``out``: save the grown model there, holding the file's lock from before training to the end (see
        :meth:`save`); another writer of that file is refused at once (or, with ``wait``, waited for), and a
        file replaced since this model was read from it is refused before any training.

        ``on_event(event, fields)`` hears the task as it goes: ``train_step`` after every step (epoch, step,
        images/s, the loss terms), ``train_epoch`` after every epoch, ``evaluating`` before the evaluation on
        ``eval_data``. An exception it raises stops the task, which then changes nothing (how ``seca serve``
        cancels a job).
        """
        request = LearnRequest(data, eval_data, epochs, batch_size, progress, skip_bad_images, on_event, keep_eval)
        if out is None:
            return self._learn(request)
        check_replaceable(out)  # a read-only file is refused before any training
        with locks.model_file(Path(out).expanduser(), wait):
            self._check_unchanged(Path(out).expanduser())
            task = self._learn(request)
            self.save(out)
            return task

    def _learn(self, request: LearnRequest) -> Task:
        data, eval_data = request.data, request.eval_data
        names, files = labelled_images(data, "train")
        self.check_new_classes(names)
        if eval_data is not None:  # checked before any training: a wrong folder costs nothing
            eval_names, _ = labelled_images(eval_data, "test", report=False)
            if not {class_key(n) for n in eval_names} & {class_key(n) for n in self.classes + names}:
                what = (f"the evaluation folder '{eval_data}' holds" if not isinstance(eval_data, Mapping)
                        else f"the evaluation images ({source_of(eval_data)}) hold")  # fmt: skip
                raise SecaError(
                    f"{what} none of the classes the model will know after this task "
                    f"(its classes: {', '.join(eval_names[:3])}{', ...' if len(eval_names) > 3 else ''})"
                )
        for key, value in (("epochs", request.epochs), ("batch_size", request.batch_size)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SecaError(f"{key} must be a whole number of at least 1, got {value!r}")
        files = readable_images(files, self.config.data.max_pixels, request.skip_bad_images)
        before = self._snapshot()
        try:
            return self._learn_task(request, names, files)
        except BaseException:  # an error or an interrupt mid-task: the model is exactly as it was before
            self._restore(before)
            raise

    def check_new_classes(self, names: Sequence[str]) -> None:
        """Refuse, in one line, a class of ``names`` that the model knows already (whatever its case, spaces or
        underscores): ``learn`` adds new classes only."""
        known = {class_key(c): c for c in self.classes}
        for name in names:
            if class_key(name) in known:
                same = "" if known[class_key(name)] == name else f" (as '{known[class_key(name)]}')"
                raise SecaError(
                    f"class '{name}' is already known to the model{same}; learn adds new classes only "
                    "(remove or rename that folder)"
                )

    def _snapshot(self) -> tuple[dict[str, torch.Tensor], dict, dict, KeptTests]:
        tensors = {name: t.detach().clone() for name, t in self.learner.state_dict().items()}
        return tensors, copy.deepcopy(self.learner.structure()), copy.deepcopy(self.meta), self.kept.copy()

    def _restore(self, snapshot: tuple[dict[str, torch.Tensor], dict, dict, KeptTests]) -> None:
        tensors, structure, meta, kept = snapshot
        learner = build_learner(self.learner.backbone, structure["class_names"], self.config.method, self.config.seed)
        learner.restore(tensors, structure)
        learner.eval()
        self.learner, self.meta, self.kept = learner, meta, kept

    def training(self, epochs: int | None = None, batch_size: int | None = None) -> TrainConfig:
        """The train settings a new task gets: the model's (kept in its file), with ``epochs`` and ``batch_size``
        if given."""
        changes = {key: value for key, value in (("epochs", epochs), ("batch_size", batch_size)) if value is not None}
        return dataclasses.replace(self.config.train, **changes)

    def describe_training(self, epochs: int | None = None, batch_size: int | None = None) -> str:
        """How a new task is trained, in one line (``seca learn`` and ``seca new`` print it)."""
        return describe_training(self.training(epochs, batch_size), list(self.learner.learning_rates()))

    def _learn_task(self, request: LearnRequest, names: list[str], files: list[list[Path]]) -> Task:
        on_event = request.on_event
        train = dataclasses.replace(
            self.training(request.epochs, request.batch_size),
            progress=request.progress,
            **({"log_every": 1} if on_event is not None else {}),
        )
        learner = self.learner
        start = learner.num_seen
        task = Task(len(learner.tasks), tuple(range(start, start + len(names))), start, start + len(names))
        learner.extend_classes(names)
        labels = [start + k for k, f in enumerate(files) for _ in f]
        images = self._task_images([p for f in files for p in f], labels)
        memory, exemplars = self._memory(train)
        began = time.perf_counter()
        log = None if on_event is None else (lambda event, **fields: on_event(event, fields))
        how = TaskTraining(images, train, self.device, self.config.seed, log=log, memory=memory, exemplars=exemplars)
        learn_task(learner, task, how)
        if memory is not None:
            self.meta["exemplars"] = memory.manifest()
        seconds = time.perf_counter() - began
        learner.eval()
        self.meta["class_order"] = list(self.meta.get("class_order", [])) + list(task.classes)
        evaluation = None
        if request.eval_data is not None or any(self.kept.images().values()):  # kept images that are still there
            if on_event is not None:
                on_event("evaluating", {})
            evaluation = self._standing_evaluation(request, train.eval_batch_size)
        self.history.append(history_entry(task.index, names, len(labels), seconds, source_of(request.data), evaluation))
        return task

    def _memory(self, train: TrainConfig) -> tuple[ExemplarMemory | None, TaskImages | None]:
        """The exemplar memory a task trains with (None when the training settings give none) and its images, each
        checked against its digest (an image moved or changed is refused in one line before any training)."""
        if not asked(train):
            return None, None
        manifest = self.meta.get("exemplars")
        if manifest is None:
            return ExemplarMemory(train.memory_selection), None
        memory = ExemplarMemory.from_manifest(manifest, "the model")
        if not len(memory):
            return memory, None
        run_train = None
        if any(e.file is None for e in memory.exemplars()):  # items of the data set a seca run trained on
            run_train = load_dataset(self.config.data, self.preprocess).train
        classes = self.classes
        return memory, memory.images(run_train, self.preprocess, classes, self.config.data.max_pixels, check=True)

    def _standing_evaluation(self, request: LearnRequest, batch_size: int) -> dict:
        """The evaluation after a task: the standing test set and ``request.eval_data``'s images of known classes
        (an image given again counted once), every known task measured; the given images are then kept (unless
        ``keep_eval`` is off). The history entry's ``eval``."""
        given: dict[str, list[Path]] = {}
        left_out: list[str] = []
        if request.eval_data is not None:
            label_of = {class_key(c): c for c in self.classes}
            names, files = labelled_images(request.eval_data, "test", report=False)
            left_out = [n for n in names if class_key(n) not in label_of]
            known = [(label_of[class_key(n)], f) for n, f in zip(names, files) if class_key(n) in label_of]
            files = readable_images([f for _, f in known], self.config.data.max_pixels, request.skip_bad_images)
            given = {name: f for (name, _), f in zip(known, files)}
        standing = self.kept.images()
        merged = {name: list(paths) for name, paths in standing.items()}
        for name, files in given.items():
            have = self.kept.digests(name)
            merged.setdefault(name, []).extend(f for f in files if file_digest(f) not in have)
        report = self.evaluate(merged, batch_size, request.progress)
        from_kept = sum(len(paths) for paths in standing.values())
        parts = ([source_of(request.eval_data)] if request.eval_data is not None else []) + (
            [f"{from_kept} kept test images"] if from_kept else []
        )
        if request.keep_eval:
            self.kept.add(given)
        return {**{key: report[key] for key in EVAL_FIELDS}, "data": " + ".join(parts), "left_out": left_out,
                "kept": from_kept}  # fmt: skip

    def copy(self) -> SecaModel:
        """An independent copy of the model (its learner rebuilt from its state) over the same frozen CLIP,
        which neither changes: what ``seca serve`` trains while the original keeps answering."""
        snapshot = self._snapshot()
        twin = SecaModel(self.learner, self.config, snapshot[2], self.device, self.source)
        twin._restore(snapshot)
        return twin

    # ---- saving -----------------------------------------------------------------------------------
    def save(self, path: str | Path, wait: bool = False) -> Path:
        """Write the model to ``path`` (safetensors + metadata, atomically), holding the file's lock.

        Saving over the file this model was loaded from (or last saved to) first checks that the file is
        still the one read: if another process has replaced it meanwhile (it learned a task of its own),
        nothing is written and a SecaError says so, as it does when another process is writing it now
        (with ``wait``: wait for that one to finish, then check). No update is ever lost.
        """
        path = Path(path).expanduser()
        with locks.model_file(path, wait):
            self._check_unchanged(path)
            check_replaceable(path)  # a read-only model file is refused before any kept image is written
            kept, folder = self.kept.copy(), folder_of(path)
            kept.write(folder)  # the kept test images first: the model file, written last, commits them
            meta = model_metadata(self.config, self.learner, list(self.meta.get("class_order", [])), self.history)
            if len(kept):
                meta["kept_tests"] = kept.manifest()
            if self.meta.get("exemplars") is not None:
                meta["exemplars"] = self.meta["exemplars"]
            save_checkpoint(path, self.learner.state_dict(), meta)
            kept.saved(folder)
            self.kept, self.source = kept, (real_path(path), file_digest(path))
        return path

    def _check_unchanged(self, path: Path) -> None:
        """Refuse to replace ``path`` if it is the file this model came from and another process changed it."""
        if self.source is None or self.source[0] != real_path(path):
            return
        if path.exists() and file_digest(path) != self.source[1]:
            raise SecaError(
                f"'{path}' has changed since this model was read from it (another process saved "
                "it meanwhile); nothing was written, so that update is kept: load the file again and "
                "repeat this task, or save to another path"
            )


# The packaged preset whose training and method settings a new model starts from, by backbone; imagenet-r's
# (the paper's settings) for every other backbone.
DEFAULT_PRESETS = {"seca-shapes": "shapes", "seca-test": "cpu-small"}
_FROM_PRESET: Any = object()


def new(
    backbone: str = "ViT-B-16",
    pretrained: str | None = _FROM_PRESET,
    method: str | None = None,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    device: str = "auto",
) -> SecaModel:
    """A model that knows no class yet: frozen CLIP ``backbone`` and the ``method``'s learner, ready for
    :meth:`SecaModel.learn` to add a first task, then more.

    ``pretrained``: an open_clip tag (``openai``), ``shapes`` (the offline CLIP), a local weights file, or None
    for random weights; by default the preset's when the preset is for this backbone. ``preset`` (a packaged
    name or YAML file) gives the training and method settings: by default ``shapes`` for ``seca-shapes``,
    ``cpu-small`` for ``seca-test`` and ``imagenet-r`` (the paper's) otherwise. A ``method`` other than the
    preset's trains with its own recipe (``Learner.recipe``), not the preset's (seca.engine.configure.for_method).
    ``overrides`` are ``--set`` strings (``train.epochs=3``), applied last; data and scenario keys do not apply, as
    the data come to :meth:`SecaModel.learn`.
    """
    raw = load_raw(preset or DEFAULT_PRESETS.get(backbone, "imagenet-r"))
    if method is not None:
        raw = for_method(raw, method)
    for text in overrides:
        key = parse_override(text)[0][0]
        if key in ("data", "scenario", "seeds"):
            raise SecaError(
                f"'{text}' sets a {key} key, which a model grown with learn does not use: its data are "
                "the folders given to learn"
            )
    check_model_name(backbone)
    preset_backbone = raw.get("backbone") or {}
    if pretrained is _FROM_PRESET:
        if preset_backbone.get("model", BackboneConfig.model) != backbone:
            raise SecaError(
                f"say which weights '{backbone}' starts from: --pretrained TAG (e.g. openai), a weights "
                "file, or none for random weights"
            )
        pretrained = preset_backbone.get("pretrained", BackboneConfig.pretrained)
    raw = {key: value for key, value in raw.items() if key not in ("data", "scenario", "seeds")}
    raw["benchmark"] = "custom"
    raw["backbone"] = {**preset_backbone, "model": backbone, "pretrained": pretrained}
    config = resolve(apply_overrides(raw, list(overrides)))
    seed_everything(config.seed)  # as seca run does before building its learner: the same initial weights
    device = resolve_device(device, key="device")
    weights = load_backbone(config.backbone.model, config.backbone.pretrained, config.backbone.cache_dir, device)
    learner = build_learner(weights, [], config.method, config.seed)
    learner.eval()
    return SecaModel(learner, config, {"class_order": [], "history": []}, device)


def load(path: str | Path, device: str = "auto", pretrained: str | None = None) -> SecaModel:
    """Load a model saved by ``seca run`` (``model.safetensors``), ``seca learn`` or :meth:`SecaModel.save`.

    ``pretrained`` replaces the backbone weights' source recorded in the checkpoint (e.g. a local file
    when the checkpoint names the ``openai`` tag and there is no network).
    """
    device = resolve_device(device, key="device")
    path = Path(path).expanduser()
    # the digest before the read: a file replaced in between is refused at save, never overwritten unseen
    digest = file_digest(path) if path.is_file() else None
    tensors, meta = load_checkpoint(path, device)
    config = resolve(meta["config"])
    if pretrained is not None:
        config = dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, pretrained=pretrained))
    backbone = load_backbone(config.backbone.model, config.backbone.pretrained, config.backbone.cache_dir, device)
    learner = build_learner(backbone, meta["class_names"], config.method, config.seed)
    learner.restore(tensors, meta["learner"])
    learner.eval()
    return SecaModel(learner, config, meta, device, source=(real_path(path), digest))
