"""Checkpoints: one safetensors file holding the learned tensors and JSON metadata (no pickled objects).

The metadata travels in the safetensors header under the key ``seca``: format version, backbone, class
names and order, tasks, the resolved config, the package version, the learner's structural state, the
run's progress, and a SHA-256 of the tensors so a damaged file is recognised. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..config import to_dict
from ..errors import SecaError
from ..version import __version__
from .files import atomic_write

FORMAT_VERSION = 1
METADATA_KEY = "seca"


def content_hash(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Write ``tensors`` and ``meta`` to ``path`` atomically; returns the metadata as written."""
    plain = {name: t.detach().cpu().contiguous().clone() for name, t in tensors.items()}
    meta = {**meta, "format_version": FORMAT_VERSION, "content_sha256": content_hash(plain)}
    atomic_write(path, lambda tmp: save_file(plain, str(tmp), metadata={METADATA_KEY: json.dumps(meta)}))
    return meta


def read_metadata(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SecaError(f"checkpoint '{path}' not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except Exception:  # not a safetensors file at all
        raise SecaError(f"'{path}' is not a seca checkpoint (not a safetensors file)") from None
    if METADATA_KEY not in header:
        raise SecaError(f"'{path}' is a safetensors file but not a seca checkpoint (no '{METADATA_KEY}' metadata)")
    try:
        meta = json.loads(header[METADATA_KEY])
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise SecaError(f"checkpoint '{path}' is damaged: its '{METADATA_KEY}' metadata is not a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise SecaError(f"checkpoint '{path}' has format version {version}; this seca reads version {FORMAT_VERSION}")
    return meta


def load_checkpoint(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a checkpoint, after checking its format version and content hash."""
    meta = read_metadata(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as e:  # a truncated or overwritten file: whatever safetensors raises
        raise SecaError(f"checkpoint '{path}' is damaged: its tensors cannot be read ({type(e).__name__})") from None
    if content_hash(tensors) != meta.get("content_sha256"):
        raise SecaError(f"checkpoint '{path}' is damaged: its tensors do not match the checksum it was saved with")
    return {name: t.to(device) for name, t in tensors.items()}, meta


def model_metadata(config: Any, learner: Any, order: Sequence[int], history: Sequence[dict] = ()) -> dict[str, Any]:
    """What a checkpoint says about the model besides its tensors: the method, backbone, classes in label order,
    tasks, the resolved config, the learner's structure (``Learner.structure``) and ``history``, one entry per
    task learned (see :mod:`seca.eval.history`)."""
    return {
        "seca_version": __version__,
        "method": learner.name,
        "benchmark": config.benchmark,
        "backbone": {"model": config.backbone.model, "pretrained": config.backbone.pretrained},
        "class_names": learner.class_names[: learner.num_seen],
        "class_order": list(order)[: learner.num_seen],
        "tasks": [list(t.classes) for t in learner.tasks],
        "config": to_dict(config),
        "learner": learner.structure(),
        "history": list(history),
    }
