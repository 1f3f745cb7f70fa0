"""SE-VPR: semantic-enhanced visual prototype refinement (spec §4, docs/method.md#se-vpr).

Raw class prototypes are means of frozen-CLIP image features. The text encoder knows how the classes
relate; SE-VPR turns that into an affinity matrix A over classes and refines every prototype into an
A-weighted mix of all of them: c_hat = LN_post(A . LN_C(c)), A_kj = softmax_j(-||LN_T(Z_k)H - LN_T(Z_j)H||^2 / gamma).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...config import ABOVE_ZERO, setting
from .._precision import widen


@dataclass(frozen=True)
class SEVPRConfig:
    """Semantic-enhanced visual prototype refinement (spec §4)."""

    gamma: float | None = setting(None, "affinity temperature γ; `null` is 2√d (d the feature dimension)", ABOVE_ZERO)
    regularize: bool = setting(True, "add L_reg, the drift of old classes' refined prototypes")


def squared_distances(x: torch.Tensor) -> torch.Tensor:
    """D_kj = ||x_k - x_j||^2, written out so that the zero diagonal keeps a finite gradient."""
    sq = (x * x).sum(dim=-1)
    return (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * x @ x.T).clamp_min(0.0)


class PrototypeRefiner(nn.Module):
    """Refines class prototypes ``[C, E]`` with the affinity of the classes' text features ``[C, E]``."""

    def __init__(self, dim: int, gamma: float | None = None):
        super().__init__()
        self.ln_text = nn.LayerNorm(dim)
        self.project = nn.Linear(dim, dim, bias=False)  # H
        self.ln_prototype = nn.LayerNorm(dim)
        self.ln_post = nn.LayerNorm(dim)
        self.gamma = gamma if gamma is not None else 2.0 * math.sqrt(dim)

    def affinity(self, text: torch.Tensor) -> torch.Tensor:
        """A = softmax over each row of -D / gamma, D the squared distances of LN_T(Z) H."""
        return (-squared_distances(self.project(self.ln_text(text))) / self.gamma).softmax(dim=-1)

    def forward(self, prototypes: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Refined prototypes, L2-normalised. ``prototypes`` and ``text`` are normalised ``[C, E]``."""
        with torch.autocast(text.device.type, enabled=False):
            mixed = self.affinity(widen(text)) @ self.ln_prototype(widen(prototypes))
            return F.normalize(self.ln_post(mixed), dim=-1)


def prototype_drift(stored: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """L_reg: mean over classes of 1 - cos(stored, current) (the paper's squared distance / 2 on unit vectors)."""
    return (1.0 - F.cosine_similarity(widen(stored.detach()), widen(current), dim=-1)).mean()
