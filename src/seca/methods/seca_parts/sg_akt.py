"""SG-AKT: semantic-guided adaptive knowledge transfer (spec §3, docs/method.md#sg-akt).

The adapter pool keeps frozen snapshots of the adapters of earlier tasks. For a training image, each
snapshot gives a teacher feature V^(p); the text features of the image's class under every task prompt
(the semantic vectors S^(i)) decide, through a small attention network, how much each teacher counts.
The aggregated teacher is distilled into the current model with a temperature-20 KL on current classes.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...distributed import all_sum
from ...errors import SecaError
from ...peft.adapter import AdapterSet
from .._precision import widen

Eviction = Literal["lowest", "highest", "oldest"]
Relevance = Literal["reference", "paper"]


class AdapterPool(nn.Module):
    """At most ``size`` frozen adapter snapshots, with a utility U^p per member.

    U is an exponential moving average of the relevance weight each member receives, reset to uniform
    1/size at the start of every task and updated only while the pool is full. Adding to a full pool
    first evicts one member: the lowest utility (reference), the highest (the paper's text) or the oldest.
    """

    def __init__(self, size: int = 5, eviction: Eviction = "lowest", momentum: float = 0.5, dropout: bool = False):
        super().__init__()
        if size < 1:
            raise SecaError(f"method.sg_akt.pool_size must be at least 1, got {size}")
        if eviction not in ("lowest", "highest", "oldest"):
            raise SecaError(f"method.sg_akt.eviction must be lowest, highest or oldest, got '{eviction}'")
        self.size, self.eviction, self.momentum = size, eviction, momentum
        self.dropout = dropout  # snapshots run with adapter dropout while training (the reference's behaviour)
        self.members = nn.ModuleList()
        self.register_buffer("utility", torch.full((size,), 1.0 / size))
        self.sources: list[int] = []  # the task each member was taken after

    def __len__(self) -> int:
        return len(self.members)

    @property
    def full(self) -> bool:
        return len(self.members) == self.size

    def train(self, mode: bool = True) -> AdapterPool:
        super().train(mode)
        for member in self.members:
            member.train(mode and self.dropout)
        return self

    def reset_utility(self) -> None:
        self.utility.fill_(1.0 / self.size)

    @torch.no_grad()
    def update_utility(self, weights: torch.Tensor) -> None:
        """U <- m U + (1 - m) * (batch mean of the relevance weights ``[B, members]``), if the pool is full.

        The mean is over the whole step's images: in a distributed run, the sums and counts of every
        process's part of the global batch are added up first."""
        if self.full:
            weights = widen(weights)
            sums = all_sum(torch.cat([weights.sum(dim=0), weights.new_tensor([weights.shape[0]])]))
            self.utility.mul_(self.momentum).add_((sums[:-1] / sums[-1]).to(self.utility), alpha=1 - self.momentum)

    def evict_index(self) -> int:
        if self.eviction == "oldest":
            return 0
        u = self.utility[: len(self.members)]
        return int(u.argmin() if self.eviction == "lowest" else u.argmax())

    def add(self, snapshot: AdapterSet, source_task: int) -> int | None:
        """Append a frozen snapshot; returns the index of the member evicted to make room, if any."""
        evicted = None
        if self.full:
            evicted = self.evict_index()
            del self.members[evicted]
            del self.sources[evicted]
        snapshot.requires_grad_(False)
        self.members.append(snapshot)
        self.sources.append(source_task)
        self.train(self.training)
        return evicted


class RelevanceAggregator(nn.Module):
    """The relevance network of SG-AKT: semantic vectors query the teachers.

    q_i = LN_S(S^(i)) W_S,  k_p = LN_V(V^(p)) W_V,  values LN_V(V^(p)),  lambda = 1/sqrt(width).
    ``reference``: a_ip = softmax_p(lambda q_i.k_p), V^agg = LN_out(mean_i sum_p a_ip LN_V(V^(p))).
    ``paper``:     a_p = softmax_p(lambda mean_i q_i.k_p), V^agg = LN_out(sum_p a_p LN_V(V^(p))).
    Returns V^agg and the weight each member received, averaged over prompts: ``[B, members]``.
    """

    def __init__(self, text_dim: int, vision_width: int, form: Relevance = "reference"):
        super().__init__()
        if form not in ("reference", "paper"):
            raise SecaError(f"method.sg_akt.relevance must be reference or paper, got '{form}'")
        self.form = form
        self.ln_text = nn.LayerNorm(text_dim)
        self.query = nn.Linear(text_dim, vision_width, bias=False)
        self.ln_teacher = nn.LayerNorm(vision_width)
        self.key = nn.Linear(vision_width, vision_width, bias=False)
        self.ln_out = nn.LayerNorm(vision_width)
        self.scale = 1.0 / math.sqrt(vision_width)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator) -> None:
        """A fresh network (``method.sg_akt.reset_aggregator``): unit gains, zero biases, and projections drawn
        as ``nn.Linear`` draws them (uniform within 1/sqrt(fan_in)), from ``generator`` for reproducibility."""
        for norm in (self.ln_text, self.ln_teacher, self.ln_out):
            norm.reset_parameters()
        for linear in (self.query, self.key):
            bound = 1.0 / math.sqrt(linear.in_features)
            weight = torch.empty(linear.weight.shape).uniform_(-bound, bound, generator=generator)
            linear.weight.copy_(weight)

    def forward(self, semantic: torch.Tensor, teachers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``semantic`` [B, prompts, text_dim], ``teachers`` [B, members, width]."""
        with torch.autocast(semantic.device.type, enabled=False):
            queries = self.query(self.ln_text(widen(semantic)))  # [B, T, W]
            values = self.ln_teacher(widen(teachers))  # [B, P, W]
            scores = self.scale * queries @ self.key(values).transpose(1, 2)  # [B, T, P]
            if self.form == "reference":
                weights = scores.softmax(dim=-1)
                aggregated = (weights @ values).mean(dim=1)
                member_weights = weights.mean(dim=1)
            else:
                member_weights = scores.mean(dim=1).softmax(dim=-1)  # [B, P]
                aggregated = (member_weights.unsqueeze(1) @ values).squeeze(1)
            return self.ln_out(aggregated), member_weights


def distillation_kl(
    student: torch.Tensor, teacher: torch.Tensor, text: torch.Tensor, temperature: float = 20.0
) -> torch.Tensor:
    """KL(p_teacher || p_student), p = softmax(temperature * cos(., text)) over the given classes.

    ``student``, ``teacher`` [B, E] and ``text`` [C, E] normalised; teacher and text carry no gradient.
    The per-image KL is summed over classes and averaged over the batch (no T^2 factor, as the reference).
    """
    text = text.detach()
    log_student = F.log_softmax(temperature * widen(student) @ widen(text).T, dim=-1)
    log_teacher = F.log_softmax(temperature * widen(teacher.detach()) @ widen(text).T, dim=-1)
    return (log_teacher.exp() * (log_teacher - log_student)).sum(dim=-1).mean()
