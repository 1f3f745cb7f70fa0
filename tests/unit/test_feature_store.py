"""The feature store: features found by their image's digest, shards written whole and checked against their name,
a damaged shard reported in one line and computed again, the least recently used shards evicted past the bound."""

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from seca.io.feature_store import FeatureStore, content_digest, evict, key_name, shards

KEY = {"kind": "embedding", "weights_sha256": "abc"}


def _digests(n, start=0):
    return [content_digest(f"image {i}".encode()) for i in range(start, start + n)]


def _store(root, lines=None, key=KEY, max_bytes=2**30):
    return FeatureStore(root, key, max_bytes, (lines if lines is not None else []).append)


def test_features_come_back_by_digest_in_the_order_asked(tmp_path):
    features = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    _store(tmp_path).put(_digests(4), features)
    found, missing = _store(tmp_path).get(list(reversed(_digests(4))))  # a new store, as in another process
    assert missing == []
    assert torch.equal(found, features.flip(0))


def test_what_the_store_lacks_is_named_by_position(tmp_path):
    _store(tmp_path).put(_digests(2), torch.ones(2, 3))
    found, missing = _store(tmp_path).get(_digests(4))  # images 0, 1 stored; 2, 3 not
    assert missing == [2, 3]
    assert found.shape == (2, 3)
    nothing, all_missing = _store(tmp_path).get(_digests(2, start=10))
    assert nothing is None and all_missing == [0, 1]


def test_a_key_is_a_folder_of_its_own(tmp_path):
    _store(tmp_path).put(_digests(2), torch.ones(2, 3))
    other = {**KEY, "weights_sha256": "def"}
    assert _store(tmp_path, key=other).get(_digests(2))[0] is None
    assert (tmp_path / key_name(KEY) / "key.json").is_file()
    assert key_name(KEY) != key_name(other)


def test_a_shard_is_named_by_its_content_and_written_whole(tmp_path):
    store = _store(tmp_path)
    store.put(_digests(3), torch.randn(3, 5))
    store.put(_digests(3), torch.randn(3, 5))  # the same images again: a second shard, the first copy is read
    files = shards(tmp_path)
    assert len(files) == 2
    assert not list(tmp_path.rglob("*.tmp*"))  # no temporary file left behind


def test_a_damaged_shard_is_reported_in_one_line_and_computed_again(tmp_path):
    _store(tmp_path).put(_digests(3), torch.randn(3, 5))
    (shard,) = shards(tmp_path)
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    lines = []
    found, missing = _store(tmp_path, lines).get(_digests(3))
    assert found is None and missing == [0, 1, 2]
    assert len(lines) == 1 and "damaged" in lines[0] and shard.name in lines[0]
    assert not shard.exists()


def test_the_least_recently_used_shards_go_first(tmp_path):
    store = _store(tmp_path)
    for k in range(3):
        store.put(_digests(1, start=k), torch.randn(1, 256))
    old, middle, new = sorted(shards(tmp_path), key=lambda p: p.stat().st_mtime)
    now = time.time()
    for age, path in ((30, old), (20, middle), (10, new)):
        os.utime(path, (now - age, now - age))
    _store(tmp_path).get(_digests(1, start=0))  # reading the oldest makes it the most recent
    size = old.stat().st_size
    assert evict(tmp_path, max_bytes=2 * size) == 1
    assert not middle.exists() and old.exists() and new.exists()


def test_a_store_past_its_bound_keeps_what_was_just_written(tmp_path):
    store = _store(tmp_path, max_bytes=1)  # smaller than any shard
    store.put(_digests(2), torch.randn(2, 4))
    store.put(_digests(2, start=5), torch.randn(2, 4))
    assert len(shards(tmp_path)) == 1  # the first evicted, the newest kept
    assert _store(tmp_path).get(_digests(2, start=5))[1] == []


def test_a_store_that_cannot_be_written_says_so_once_and_goes_on(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    lines = []
    store = _store(blocker / "features", lines)
    store.put(_digests(2), torch.ones(2, 3))
    store.put(_digests(2, start=2), torch.ones(2, 3))
    assert len(lines) == 1 and "cannot be written" in lines[0]
    assert store.get(_digests(2))[1] == [0, 1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_features_keep_their_type(tmp_path, dtype):
    features = torch.randn(2, 3).to(dtype)
    _store(tmp_path).put(_digests(2), features)
    found, _ = _store(tmp_path).get(_digests(2))
    assert found.dtype == dtype and torch.equal(found, features)


def test_seca_cache_info_and_clear(tmp_path, monkeypatch, capsys):
    from seca.cli import main

    monkeypatch.setenv("SECA_CACHE", str(tmp_path))
    key = {**KEY, "backbone": "ViT-B-16", "pretrained": "openai", "device": "cuda", "precision": "torch.bfloat16"}
    _store(tmp_path / "features", key=key).put(_digests(3), torch.ones(3, 8))
    (tmp_path / "worlds").mkdir()
    (tmp_path / "worlds" / "shapes-test.npy").write_bytes(b"x" * 100)
    (tmp_path / "seca-shapes-r1-abc.safetensors").write_bytes(b"w" * 10)

    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out and "$SECA_CACHE" in out
    assert "ViT-B-16 (openai), embedding on cuda in torch.bfloat16" in out and "1 shard" in out
    assert main(["cache", "info", "--json"]) == 0
    parts = json.loads(capsys.readouterr().out)["parts"]
    assert parts["features"]["files"] == 2 and parts["worlds"]["bytes"] == 100 and parts["weights"]["files"] == 1

    assert main(["cache", "clear"]) == 0  # features and worlds; the weights stay
    assert "cleared features and worlds" in capsys.readouterr().out
    assert not shards(tmp_path / "features") and not (tmp_path / "worlds" / "shapes-test.npy").exists()
    assert (tmp_path / "seca-shapes-r1-abc.safetensors").exists()
    assert main(["cache", "clear", "all"]) == 0
    assert not (tmp_path / "seca-shapes-r1-abc.safetensors").exists()
    assert main(["cache", "clear", "weigths"]) == 2
    assert "no part 'weigths'" in capsys.readouterr().err


@given(payload=st.binary(max_size=400))
def test_fuzz_any_file_in_the_store_is_a_shard_or_one_line(payload):
    """Whatever bytes lie in the store under a shard's name, even named by their own digest (so the digest check
    passes), reading the store answers or says one line: never a traceback."""
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / key_name(KEY)
        folder.mkdir()
        for name in ("0" * 32, hashlib.sha256(payload).hexdigest()[:32]):
            (folder / f"{name}.safetensors").write_bytes(payload)
        lines = []
        found, missing = _store(Path(root), lines).get(_digests(2))
        assert found is None and missing == [0, 1]
        assert 1 <= len(lines) <= 2 and all("is damaged" in line and "\n" not in line for line in lines)
