"""Continual-learning methods over a frozen CLIP. Each module is one method; its file name is its name."""

from __future__ import annotations

from typing import Sequence

from ..clip.backbone import ClipBackbone
from ..config import MethodConfig
from ..errors import SecaError
from . import h_peft, seca, zero_shot  # noqa: F401  (importing a method registers it)
from .base import LEARNERS, Batch, Learner, TaskData, register

__all__ = ["LEARNERS", "Batch", "Learner", "TaskData", "register", "build_learner", "check_method"]


def check_method(name: str) -> None:
    """Refuse a method name no learner is registered under (cheap: call it before loading a backbone)."""
    if name not in LEARNERS:
        raise SecaError(f"unknown method.name '{name}'; choose one of: {', '.join(sorted(LEARNERS))}")


def build_learner(backbone: ClipBackbone, class_names: Sequence[str], config: MethodConfig, seed: int = 0) -> Learner:
    """The learner ``config.name`` over ``backbone``, for classes ``class_names`` in label order."""
    check_method(config.name)
    return LEARNERS[config.name](backbone, class_names, config, seed).to(backbone.device)
