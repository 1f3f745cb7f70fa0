"""The precision of losses and class statistics: float32 at least, whatever autocast computed the inputs in.

Under mixed precision the encoders return half-precision features; losses, statistics and the small learned
modules read them in float32. In float64 (the exactness check of ``benchmarks/speed.py``) they stay float64:
a cast to float32 there would round both paths alike and hide a difference below float32's resolution.
"""

from __future__ import annotations

import torch


def widen(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or as it is if it is float64."""
    return x if x.dtype == torch.float64 else x.float()
