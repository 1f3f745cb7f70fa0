"""Frozen work done once: the frozen inputs of test images, computed at their first evaluation and reused.

A learner whose prediction starts with a frozen function of the image (:meth:`Learner.frozen_kind`: the frozen
CLIP feature, or the stem before its first adapter) would otherwise encode every seen test image again after
every task: 55 task-sized test sets over 10 tasks for 10 computed. :class:`FrozenInputs` keeps each test set's
frozen inputs from the evaluation that first sees it (on the CPU, within ``train.test_features_gb``), and
evaluation scores them with :meth:`Learner.predict_frozen` in the same batches as the images would form: the
same predictions, entry for entry. Frozen CLIP features (kind ``"embedding"``) are also read from and written
to the feature store (:mod:`seca.io.feature_store`), so a second seed, another method or another process finds
them on disk; an image is found there by its content digest (:func:`seca.data.images.item_digests`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import torch

from ..clip.backbone import ClipBackbone, FrozenStem
from ..config import TrainConfig
from ..data.images import item_digests
from ..io.cache import cache_root
from ..io.feature_store import FeatureStore, key_name
from ..methods.base import Learner
from .data import TaskImages, loader
from .device import autocast

Frozen = torch.Tensor | FrozenStem  # what a learner's frozen_input gives
STORE_FORMAT = 1  # what a stored feature is; a change here starts new keys


def _stderr(line: str) -> None:
    print(f"seca: {line}", file=sys.stderr)


class FrozenInputs:
    """The frozen inputs of the image sets a learner meets, each computed once (see the module).

    ``encode`` computes the inputs of a batch of images and ``kind`` says what they are
    (:meth:`Learner.frozen_kind`; None: there are none, :meth:`of` always answers None); ``budget_gb`` bounds the
    memory of those kept; ``store`` reads and writes frozen CLIP features (kind ``"embedding"``) in the feature
    store, of at most ``store_gb``; ``echo`` takes the one line said about a damaged or unwritable store.
    """

    def __init__(
        self,
        backbone: ClipBackbone,
        kind: str | None,
        encode: Callable[[torch.Tensor], Frozen],
        budget_gb: float = math.inf,
        store: bool = False,
        store_gb: float = 4.0,
        echo: Callable[[str], None] = _stderr,
    ):
        self.backbone = backbone
        self.kind = kind
        self.encode = encode
        self.budget = budget_gb * 2**30
        self.use_store = store and kind == "embedding"
        self.store_bytes = int(store_gb * 2**30)
        self.echo = echo
        self.used = 0
        self._per_image = 0.0  # bytes of one image's inputs, once a set has been kept
        self._kept: dict[int, tuple[TaskImages, Frozen]] = {}  # id of a set -> (the set, its inputs)
        self._too_big: set[int] = set()
        self._stores: dict[str, FeatureStore] = {}

    @classmethod
    def for_tests(cls, learner: Learner, train: TrainConfig, echo: Callable[[str], None] = _stderr) -> FrozenInputs:
        """The learner's frozen inputs of test sets, kept within ``train.test_features_gb`` for a run."""
        return cls(
            learner.backbone,
            learner.frozen_kind(),
            learner.frozen_input,
            train.test_features_gb,
            train.feature_store,
            train.feature_store_gb,
            echo,
        )

    @classmethod
    def embeddings(cls, backbone: ClipBackbone, train: TrainConfig) -> FrozenInputs:
        """The frozen CLIP features of a task's training images (:attr:`TaskData.embeddings`)."""
        encode = backbone.encode_image
        return cls(backbone, "embedding", encode, store=train.feature_store, store_gb=train.feature_store_gb)

    def of(
        self,
        images: TaskImages,
        batch_size: int,
        device: torch.device,
        amp: torch.dtype | None,
        num_workers: int = 0,
    ) -> Frozen | None:
        """The frozen inputs of every item of ``images`` (on the CPU, in item order), computed now if they were not
        before; None when the learner has none, or they would pass the memory bound (predict from the images)."""
        kept = self._kept.get(id(images))
        if kept is not None and kept[0] is images:
            return kept[1]
        if self.kind is None or self.budget <= 0 or not len(images) or id(images) in self._too_big:
            return None
        if self.used + self._per_image * len(images) > self.budget:  # known from the sets before: too big
            self._too_big.add(id(images))
            return None
        store = self._store(images, device, amp)
        digests = item_digests(images.base, images.indices) if store is not None else None
        found, missing = store.get([d for d in digests if d]) if digests else (None, list(range(len(images))))
        if digests:  # positions among the digested items -> positions among all items
            digested = [p for p, d in enumerate(digests) if d]
            missing = sorted({digested[p] for p in missing} | {p for p, d in enumerate(digests) if not d})
        computed = self._compute(images, missing, batch_size, device, amp, num_workers) if missing else None
        if missing and computed is None:
            return None
        if store is not None and computed is not None:
            new = [p for p, position in enumerate(missing) if digests[position]]
            store.put([digests[missing[p]] for p in new], computed[new])
        inputs = _merge(found, computed, missing, len(images))
        size = inputs.nbytes
        if self.used + size > self.budget:
            self._too_big.add(id(images))
            return None
        self.used += size
        self._per_image = size / len(images)
        self._kept[id(images)] = (images, inputs)
        return inputs

    @torch.no_grad()
    def _compute(
        self,
        images: TaskImages,
        positions: list[int],
        batch_size: int,
        device: torch.device,
        amp: torch.dtype | None,
        num_workers: int,
    ) -> Frozen | None:
        """The frozen inputs of the items at ``positions``, batch by batch as evaluation loads them; None as soon
        as the first batch shows that the whole set would pass the memory bound."""
        part = images if len(positions) == len(images) else images.subset(positions)
        out = []
        with torch.random.fork_rng(devices=[]):  # a loader draws its seed: computed or found, the stream is the same
            for batch in loader(part, batch_size, None, num_workers, device.type == "cuda"):
                with autocast(device, amp):
                    frozen = self.encode(batch.images.to(device, non_blocking=True)).to("cpu")
                if not out and self.used + frozen.nbytes / len(batch.labels) * len(images) > self.budget:
                    self._per_image = frozen.nbytes / len(batch.labels)  # the next sets are measured by it
                    self._too_big.add(id(images))
                    return None
                out.append(frozen)
        return concat(out)

    def _store(self, images: TaskImages, device: torch.device, amp: torch.dtype | None) -> FeatureStore | None:
        """The feature store of these images' frozen CLIP features (None: not kept on disk)."""
        if not self.use_store:
            return None
        backbone = self.backbone
        key = {
            "format": STORE_FORMAT,
            "kind": self.kind,
            "backbone": backbone.model_name,
            "pretrained": backbone.pretrained,
            "weights_sha256": backbone.weights_digest,
            "transform": repr(getattr(images.base, "transform", None)),
            "device": device.type,
            "precision": str(amp or torch.get_default_dtype()),
        }
        name = key_name(key)
        if name not in self._stores:
            self._stores[name] = FeatureStore(cache_root() / "features", key, self.store_bytes, self.echo)
        return self._stores[name]


def concat(parts: list[Frozen]) -> Frozen:
    return torch.cat(parts) if isinstance(parts[0], torch.Tensor) else FrozenStem.cat(parts)


def _merge(found: torch.Tensor | None, computed: Frozen | None, missing: list[int], size: int) -> Frozen:
    """All items' inputs from those found in the store and those computed (at ``missing``)."""
    if found is None:
        return computed
    if computed is None:
        return found
    merged = computed.new_empty((size, *computed.shape[1:]))
    holes = torch.as_tensor(missing, dtype=torch.long)
    mask = torch.ones(size, dtype=torch.bool)
    mask[holes] = False
    merged[holes] = computed
    merged[mask] = found.to(computed.dtype)
    return merged
