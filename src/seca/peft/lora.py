"""Low-rank (LoRA) updates of the keys and values inside CLIP's attention, never merged into the frozen weights.

For a block input ``h`` (after ``ln_1``), the frozen packed projection gives ``q, k, v``; :class:`KVLora` adds
``σ · (h A_kᵀ) B_kᵀ`` to the keys and ``σ · (h A_vᵀ) B_vᵀ`` to the values (σ = α / r), the queries and the output
projection stay as they are. A starts Xavier-uniform and B at zero, so a fresh update is plain CLIP. This is the
``only_kv`` LoRA of Mind the Gap (docs/specs/mind-the-gap.md §2). :class:`LoraSet` holds one per block and
offers them to the encoders through ``attention_for(block)`` (the hook both encoders of the backbone read).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SecaError


def is_packed_attention(attn: nn.Module) -> bool:
    """Whether ``attn`` is a batch-first ``nn.MultiheadAttention`` with one packed, biased q/k/v projection."""
    return (
        isinstance(attn, nn.MultiheadAttention)
        and attn._qkv_same_embed_dim
        and attn.batch_first
        and attn.bias_k is None
        and not attn.add_zero_attn
        and attn.in_proj_bias is not None
    )


class KVLora(nn.Module):
    """The low-rank key and value updates of one attention of width ``width``."""

    def __init__(self, width: int, rank: int, alpha: float, generator: torch.Generator):
        super().__init__()
        bound = math.sqrt(6 / (width + rank))  # Xavier-uniform of an [r, width] matrix
        self.k_down = nn.Parameter(torch.empty(rank, width).uniform_(-bound, bound, generator=generator))  # A_k
        self.k_up = nn.Parameter(torch.zeros(width, rank))  # B_k
        self.v_down = nn.Parameter(torch.empty(rank, width).uniform_(-bound, bound, generator=generator))  # A_v
        self.v_up = nn.Parameter(torch.zeros(width, rank))  # B_v
        self.scale = alpha / rank

    def forward(
        self, attn: nn.MultiheadAttention, q_x: torch.Tensor, kv_x: torch.Tensor, attn_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``attn``'s output for queries from ``q_x`` ``[B, Lq, W]`` over keys and values from ``kv_x``
        ``[B, L, W]`` (both after ``ln_1``), with this update added to the keys and values. ``attn_mask`` is
        additive (``-inf`` where a query may not look), as open_clip's causal text mask."""
        width, heads = attn.embed_dim, attn.num_heads
        weight, bias = attn.in_proj_weight, attn.in_proj_bias
        dtype = q_x.dtype
        q = F.linear(q_x, weight[:width], bias[:width])
        k = F.linear(kv_x, weight[width : 2 * width], bias[width : 2 * width])
        v = F.linear(kv_x, weight[2 * width :], bias[2 * width :])
        k = k + F.linear(F.linear(kv_x, self.k_down.to(dtype)), self.k_up.to(dtype)) * self.scale
        v = v + F.linear(F.linear(kv_x, self.v_down.to(dtype)), self.v_up.to(dtype)) * self.scale
        q, k, v = (z.unflatten(-1, (heads, width // heads)).transpose(1, 2) for z in (q, k, v))
        mask = attn_mask.to(dtype) if attn_mask is not None else None
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return attn.out_proj(attended.transpose(1, 2).flatten(2))


class LoraSet(nn.Module):
    """One :class:`KVLora` for each of ``blocks`` attention blocks of width ``width`` (an encoder's set).

    The encoders read ``attention_for(block)``; there are no parallel adapters (``adapter_for`` is None) and
    nothing of the encoder is frozen before the first block's attention (``first_block`` 0)."""

    first_block = 0

    def __init__(self, width: int, blocks: int, rank: int, alpha: float, generator: torch.Generator):
        super().__init__()
        self.blocks = nn.ModuleList(KVLora(width, rank, alpha, generator) for _ in range(blocks))

    def attention_for(self, block: int) -> KVLora:
        return self.blocks[block]

    def adapter_for(self, block: int) -> None:
        return None


def check_attention(blocks, where: str, method: str) -> None:
    """Refuse, in one line, blocks whose attention is not one packed ``nn.MultiheadAttention`` (LoRA needs its
    q/k/v weights)."""
    if not blocks or not all(is_packed_attention(getattr(b, "attn", None)) for b in blocks):
        raise SecaError(
            f"{method}: the {where} encoder's attention is not a packed batch-first "
            "nn.MultiheadAttention, so LoRA cannot update its keys and values (use an OpenAI-style "
            "CLIP such as ViT-B-16)"
        )
