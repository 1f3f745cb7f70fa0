"""Scores at inference shared by the learners (spec §6): the fixed temperature, and exponentiated logits made
stable by subtracting a maximum per image (or per batch, as the reference)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..config import ABOVE_ZERO, HYBRID_MAX, one_of, setting

MaxOver = Literal["image", "batch"]


def inference_temperature():
    """The ``method.temperature`` key: the fixed temperature of the cosine logits at inference."""
    return setting(20.0, "the fixed inference temperature (spec §1)", ABOVE_ZERO)


@dataclass(frozen=True)
class ClassifierConfig:
    """How classes are scored at inference (spec §6)."""

    hybrid_max: str = setting(
        "image",
        "subtract each image's maximum (`image`) or one per batch (`batch`, the reference)",
        one_of(*HYBRID_MAX),
    )


def stable_exp(logits: torch.Tensor, max_over: MaxOver = "image") -> torch.Tensor:
    """``exp(logits - M)``: M is each image's maximum (dims after the first), or the whole batch's.

    With ``"batch"`` an image's scores depend on the other images in its batch, as in the reference
    implementation (spec §6); ``"image"`` makes every prediction independent of its batch.
    """
    if max_over == "batch":
        return (logits - logits.max()).exp()
    return (logits - logits.flatten(1).amax(dim=1).view(-1, *[1] * (logits.dim() - 1))).exp()
