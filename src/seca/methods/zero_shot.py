"""Zero-shot CLIP: each class is the text feature of ``"a good photo of a {class}."``; nothing is learned.

Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021.
The lower bound every continual learner over CLIP must beat (spec §5, §8).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import TEMPLATE, section, setting
from ..data.scenario import Task
from ._scores import ClassifierConfig, inference_temperature, stable_exp
from .base import Learner, TaskData, register


@register
class ZeroShot(Learner):
    """CLIP's own zero-shot classifier: a text template per class; learns nothing (the lower bound)."""

    name = "zero-shot"
    learns_from_images = False

    @dataclass(frozen=True)
    class Config:
        template: str = setting("a good photo of a {}.", "the zero-shot text template (spec §5)", TEMPLATE)
        temperature: float = inference_temperature()
        classifier: ClassifierConfig = section(ClassifierConfig)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("text_features", torch.empty(0, self.backbone.embed_dim), persistent=False)

    def begin_task(self, task: Task, data: TaskData) -> None:
        super().begin_task(task, data)
        self._encode_new_classes()

    def after_restore(self) -> None:
        # Task by task, as during training: a restored model computes exactly the same numbers.
        for task in self.tasks:
            self._encode_new_classes(task.stop)

    def _encode_new_classes(self, stop: int | None = None) -> None:
        names = self.class_names[self.text_features.shape[0] : self.num_seen if stop is None else stop]
        if names:
            texts = [self.config.template.format(name.replace("_", " ")) for name in names]
            new = F.normalize(self.backbone.encode_texts(texts), dim=-1)
            self.text_features = torch.cat([self.text_features, new.to(self.text_features.dtype)])

    def frozen_kind(self) -> str:
        return "embedding"

    @torch.no_grad()
    def predict_frozen(self, frozen: torch.Tensor) -> torch.Tensor:
        features = F.normalize(frozen, dim=-1)
        logits = self.config.temperature * features @ self.text_features[: self.num_seen].T
        return stable_exp(logits, self.config.classifier.hybrid_max)
