"""Per-task learnable text prompts (spec §2): task s adds P^s (M vectors); earlier prompts are frozen."""

from __future__ import annotations

import torch
from torch import nn


class TaskPrompts(nn.Module):
    """A growing list of prompts, one ``[length, width]`` parameter per task."""

    def __init__(self, width: int, length: int = 8, init_std: float = 0.02):
        super().__init__()
        self.width = width
        self.length = length
        self.init_std = init_std
        self.prompts = nn.ParameterList()

    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, task: int) -> nn.Parameter:
        return self.prompts[task]

    @property
    def current(self) -> nn.Parameter:
        if not len(self.prompts):
            raise RuntimeError("no task prompt yet: call add_task() first")
        return self.prompts[-1]

    def add_task(self, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> nn.Parameter:
        """Freeze every existing prompt and append a fresh one drawn from N(0, init_std^2)."""
        for prompt in self.prompts:
            prompt.requires_grad_(False)
        values = torch.randn(self.length, self.width, generator=generator) * self.init_std
        self.prompts.append(nn.Parameter(values.to(device)))
        return self.prompts[-1]
