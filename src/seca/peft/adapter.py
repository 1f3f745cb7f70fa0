"""Bottleneck adapters for the image encoder (spec §2): one per chosen transformer block."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from ..errors import SecaError


class Adapter(nn.Module):
    """``scale * up(dropout(relu(down(x))))``; no biases, up-projection zero so a fresh adapter adds nothing."""

    def __init__(self, width: int, bottleneck: int = 16, scale: float = 0.1, dropout: float = 0.1):
        super().__init__()
        self.down = nn.Linear(width, bottleneck, bias=False)
        self.up = nn.Linear(bottleneck, width, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.scale = scale
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor, sequence_length: int | None = None) -> torch.Tensor:
        """``x`` [B, L, width]. When ``x`` holds only the first L positions of sequences of
        ``sequence_length`` (the class token of the last block), the dropout mask is still drawn for the
        whole sequence, so the random stream, and every later draw, is that of the full computation."""
        hidden = torch.relu(self.down(x))
        if sequence_length is not None and sequence_length != x.shape[1] and self.training and self.dropout.p > 0:
            # dropout(ones) is exactly the mask that dropout(hidden) multiplies hidden by
            mask = self.dropout(hidden.new_ones(x.shape[0], sequence_length, hidden.shape[-1]))
            hidden = hidden * mask[:, : x.shape[1]]
        else:
            hidden = self.dropout(hidden)
        return self.up(hidden) * self.scale


def resolve_blocks(blocks: str | Sequence[int], num_blocks: int) -> tuple[int, ...]:
    """``"all"`` or a list of block indices (negative ones count from the end) -> sorted valid indices."""
    if isinstance(blocks, str):
        if blocks != "all":
            raise SecaError(f"method.adapter.blocks must be 'all' or a list of block indices, got '{blocks}'")
        return tuple(range(num_blocks))
    resolved = sorted({b + num_blocks if b < 0 else b for b in blocks})
    bad = [b for b in resolved if not 0 <= b < num_blocks]
    if bad or not resolved:
        raise SecaError(
            f"method.adapter.blocks {list(blocks)} is invalid: the image encoder has blocks 0..{num_blocks - 1}"
        )
    return tuple(resolved)


class AdapterSet(nn.Module):
    """The adapters of one image encoder, keyed by block index; ``adapter_for(i)`` is None where none sits."""

    def __init__(
        self, width: int, blocks: Iterable[int], bottleneck: int = 16, scale: float = 0.1, dropout: float = 0.1
    ):
        super().__init__()
        self.blocks = tuple(blocks)
        self.adapters = nn.ModuleDict({str(b): Adapter(width, bottleneck, scale, dropout) for b in self.blocks})

    @property
    def first_block(self) -> int:
        """The first block an adapter sits in: everything before it is frozen."""
        return self.blocks[0]

    def adapter_for(self, block: int) -> Adapter | None:
        key = str(block)
        return self.adapters[key] if key in self.adapters else None

    def frozen_copy(self) -> AdapterSet:
        """A snapshot that no optimiser will touch: same weights, no gradients, eval mode."""
        snapshot = copy.deepcopy(self)
        snapshot.requires_grad_(False)
        snapshot.eval()
        return snapshot


class StackedAdapters:
    """Several adapter sets with the same blocks (the pool's snapshots), run at once on a batch stacked
    member-major: ``[members * B, L, width]``, rows ``m * B .. (m + 1) * B`` going through member m.

    For inference only (no dropout, no gradient): one batched matrix product per block instead of one
    pass of the whole image encoder per member.
    """

    def __init__(self, sets: Sequence[AdapterSet]):
        if not sets or any(s.blocks != sets[0].blocks for s in sets):
            raise ValueError("stacked adapter sets must be non-empty and sit in the same blocks")
        self.members = len(sets)
        self.blocks = sets[0].blocks
        self.first_block = self.blocks[0]
        self._weights = {
            b: (
                torch.stack([s.adapter_for(b).down.weight.T for s in sets]),  # [members, width, bottleneck]
                torch.stack([s.adapter_for(b).up.weight.T for s in sets]),  # [members, bottleneck, width]
                sets[0].adapter_for(b).scale,
            )
            for b in self.blocks
        }

    def adapter_for(self, block: int) -> Callable[..., torch.Tensor] | None:
        if block not in self._weights:
            return None
        down, up, scale = self._weights[block]

        def stacked(x: torch.Tensor, sequence_length: int | None = None) -> torch.Tensor:
            rows = x.reshape(self.members, -1, x.shape[-1])  # [members, B * L, width]
            return (torch.relu(rows @ down.to(x.dtype)) @ up.to(x.dtype) * scale).view_as(x)

        return stacked
