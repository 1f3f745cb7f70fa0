"""Devices, mixed precision and seeding: the few places where the machine shows through."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from ..errors import SecaError


def resolve_device(name: str = "auto", key: str = "train.device") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an explicit name must be available. ``key`` is how
    the user gave the device (``train.device`` in a config, ``--device`` on the command line), for the errors."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SecaError(f"{key} '{name}' is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SecaError(f"{key} '{name}' is not available: this machine has no CUDA GPU; use auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SecaError(f"{key} {name}: only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SecaError(f"{key} '{name}' is not available: this machine has no MPS device; use auto or cpu")
    return device


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.amp`` on ``device``, or None for full precision (always off the GPU)."""
    if setting not in ("auto", "bf16", "fp16", "off"):
        raise SecaError(f"train.amp must be auto, bf16, fp16 or off, got '{setting}'")
    if device.type != "cuda" or setting == "off":
        return None
    if setting == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[setting]


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def set_threads(threads: int | None = None) -> int:
    """Use ``threads`` CPU threads for torch's operators (None: torch's own choice, one per core, or
    OMP_NUM_THREADS); returns how many run."""
    if threads is not None:
        if threads < 1:
            raise SecaError(f"train.threads must be at least 1 (or null for one per core), got {threads}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
