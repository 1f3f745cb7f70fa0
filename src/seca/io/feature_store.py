"""Frozen features of images kept on disk, shared by runs, seeds, methods and processes.

A feature that is a pure function of an image and a frozen encoder (the frozen CLIP image feature) is the same
in every run that meets that image: a store keeps it under the cache folder, in ``features/<key>/``, where the
key is made of everything the feature depends on besides the image (the encoder's weights digest, the image
transform, the device kind and precision, what is computed); each image is found by the digest of its content.

A key's folder holds ``key.json`` (what the key was made of, for ``seca cache info``) and shards: one
safetensors file per batch of features written (``digests``: ``[n, 16]`` bytes, ``features``: ``[n, ...]``),
named by the SHA-256 of its bytes. A shard is written whole (through a temporary file and a rename) by whichever
process computed it, so processes of a distributed run each write their own and a reader never sees half a file;
two processes writing the same features write the same file. A shard whose bytes no longer match its name is
reported in one line, deleted, and its features computed again. Reading a shard touches it; when the store
outgrows its bound, the shards used least recently are deleted first.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from .files import atomic_write, atomic_write_text

DIGEST_BYTES = 16  # an image's content digest (blake2b)
SHARD_SUFFIX = ".safetensors"


def content_digest(data: bytes | memoryview) -> bytes:
    """The digest by which the store finds an image: BLAKE2b of its content, 16 bytes."""
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


class FeatureStore:
    """The features of one key (:func:`key_name`) in ``root/<key>/``, at most ``max_bytes`` for all keys of
    ``root`` together. ``echo`` takes the one line said about a damaged shard or a store that cannot be written."""

    def __init__(self, root: Path, key: dict, max_bytes: int, echo: Callable[[str], None]):
        self.root = Path(root)
        self.key = key
        self.folder = self.root / key_name(key)
        self.max_bytes = max_bytes
        self.echo = echo
        self._rows: dict[bytes, tuple[str, int]] = {}  # digest -> (shard, row)
        self._shards: dict[str, torch.Tensor] = {}  # shard name -> its features
        self._writable = True

    def get(self, digests: Sequence[bytes]) -> tuple[torch.Tensor | None, list[int]]:
        """(the features of the images the store holds, in the order of ``digests``; the positions of those it
        does not hold). The features are None when it holds none."""
        self._read_new_shards()
        found, missing, used = [], [], set()
        for position, digest in enumerate(digests):
            where = self._rows.get(bytes(digest))
            if where is None:
                missing.append(position)
            else:
                found.append(self._shards[where[0]][where[1]])
                used.add(where[0])
        for name in used:
            _touch(self.folder / name)
        return (torch.stack(found) if found else None), missing

    def put(self, digests: Sequence[bytes], features: torch.Tensor) -> None:
        """Keep ``features`` (one row per digest) as one new shard, then keep the store within its bound."""
        if not len(digests) or not self._writable:
            return
        table = torch.frombuffer(bytearray(b"".join(bytes(d) for d in digests)), dtype=torch.uint8)
        payload = save_tensors(
            {"digests": table.reshape(len(digests), DIGEST_BYTES), "features": features.detach().cpu().contiguous()}
        )
        name = hashlib.sha256(payload).hexdigest()[:32] + SHARD_SUFFIX
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not (self.folder / "key.json").is_file():
                atomic_write_text(self.folder / "key.json", json.dumps(self.key, indent=2, sort_keys=True) + "\n")
            atomic_write(self.folder / name, lambda path: path.write_bytes(payload))
        except OSError as e:
            self._writable = False
            self.echo(
                f"the feature store in {self.root} cannot be written ({e.strerror or e}); features are kept "
                "for this run only"
            )
            return
        self._index(name, payload)
        evict(self.root, self.max_bytes, keep=self.folder / name)

    def _read_new_shards(self) -> None:
        """Index the shards written since the last look (by this process or another)."""
        try:
            names = sorted(p.name for p in self.folder.iterdir() if p.suffix == SHARD_SUFFIX)
        except OSError:
            return
        for name in names:
            if name in self._shards:
                continue
            try:
                payload = (self.folder / name).read_bytes()
            except OSError:  # evicted meanwhile by another process: its features are computed again
                continue
            reason = "its bytes do not match its digest"
            if name.startswith(hashlib.sha256(payload).hexdigest()[:32]):
                reason = self._index(name, payload)
                if reason is None:
                    continue
            self.echo(
                f"the feature store's shard {self.folder / name} is damaged ({reason}); its features are computed again"
            )
            _remove(self.folder / name)

    def _index(self, name: str, payload: bytes) -> str | None:
        """Index a shard's rows; None, or what is wrong with it when it is not a shard of this store."""
        try:
            tensors = load_tensors(payload)
            digests, features = tensors["digests"], tensors["features"]
        except Exception as e:  # safetensors raises errors of its own for any malformed header or body
            return f"not a shard: {type(e).__name__}"
        if digests.dtype != torch.uint8 or digests.shape[1:] != (DIGEST_BYTES,) or len(features) != len(digests):
            return "not a shard: its tables do not match"
        self._shards[name] = features
        for row, digest in enumerate(digests.numpy()):
            self._rows.setdefault(digest.tobytes(), (name, row))
        return None


def key_name(key: dict) -> str:
    """The folder name of a key: a digest of its JSON."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def shards(root: Path) -> list[Path]:
    """Every shard under ``root``."""
    return sorted(root.glob(f"*/*{SHARD_SUFFIX}")) if root.is_dir() else []


def evict(root: Path, max_bytes: int, keep: Path | None = None) -> int:
    """Delete the shards of ``root`` used least recently until they take at most ``max_bytes`` (``keep`` stays);
    returns how many were deleted."""
    sizes = {}
    for path in shards(root):
        try:
            stat = path.stat()
        except OSError:
            continue
        sizes[path] = (stat.st_mtime, stat.st_size)
    total, deleted = sum(size for _, size in sizes.values()), 0
    for path, (_, size) in sorted(sizes.items(), key=lambda item: item[1][0]):
        if total <= max_bytes:
            break
        if path == keep:
            continue
        if _remove(path):
            total -= size
            deleted += 1
    return deleted


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass  # evicted meanwhile, or a read-only store: only its place in the eviction order is lost


def _remove(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except OSError:
        return False
