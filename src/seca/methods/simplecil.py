"""SimpleCIL: each class is the mean frozen-CLIP image feature of its training images; nothing is trained.

Zhou, Cai, Ye, Zhan, Liu, "Revisiting Class-Incremental Learning with Pre-Trained Models: Generalizability
and Adaptivity are All You Need", IJCV 2024 (arXiv 2303.07338). The prototype classifier over a frozen
pre-trained encoder: an image goes to the class whose mean feature is nearest in cosine. The floor that
every class-incremental method over a pre-trained model reports; here the encoder is CLIP's image tower.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import section
from ..data.scenario import Task
from ._precision import widen
from ._scores import ClassifierConfig, inference_temperature, stable_exp
from ._statistics import class_means
from .base import Learner, TaskData, register


@register
class SimpleCIL(Learner):
    """SimpleCIL: a class is the mean frozen-CLIP image feature of its training images (cosine, no training)."""

    name = "simplecil"

    @dataclass(frozen=True)
    class Config:
        temperature: float = inference_temperature()
        classifier: ClassifierConfig = section(ClassifierConfig)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("prototypes", torch.empty(0, self.backbone.embed_dim))  # one per class, normalised

    @torch.no_grad()
    def end_task(self, task: Task, data: TaskData) -> None:
        features, labels = data.frozen_embeddings(self.backbone)
        means = class_means(widen(features), labels, task.labels)  # sums and counts over processes
        self.prototypes = torch.cat([self.prototypes, F.normalize(means, dim=-1).to(self.prototypes)])

    def frozen_kind(self) -> str:
        return "embedding"

    @torch.no_grad()
    def predict_frozen(self, frozen: torch.Tensor) -> torch.Tensor:
        features = F.normalize(frozen, dim=-1)
        logits = self.config.temperature * features @ self.prototypes[: self.num_seen].T.to(features)
        return stable_exp(logits, self.config.classifier.hybrid_max)
