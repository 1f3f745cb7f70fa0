"""Bottleneck adapters for the image encoder (spec §2): one per chosen transformer block."""

from __future__ import annotations

import copy
import math
from typing import Iterable, Optional, Sequence, Union

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.dropout(torch.relu(self.down(x)))) * self.scale


def resolve_blocks(blocks: Union[str, Sequence[int]], num_blocks: int) -> tuple[int, ...]:
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

    def __init__(self, width: int, blocks: Iterable[int], bottleneck: int = 16, scale: float = 0.1,
                 dropout: float = 0.1):
        super().__init__()
        self.blocks = tuple(blocks)
        self.adapters = nn.ModuleDict(
            {str(b): Adapter(width, bottleneck, scale, dropout) for b in self.blocks}
        )

    def adapter_for(self, block: int) -> Optional[Adapter]:
        key = str(block)
        return self.adapters[key] if key in self.adapters else None

    def frozen_copy(self) -> "AdapterSet":
        """A snapshot that no optimiser will touch: same weights, no gradients, eval mode."""
        snapshot = copy.deepcopy(self)
        snapshot.requires_grad_(False)
        snapshot.eval()
        return snapshot
