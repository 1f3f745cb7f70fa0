"""Checkpoint files: safetensors with JSON metadata, checked on load, written atomically."""

import json

import pytest
import torch
from safetensors.torch import save_file

from seca.errors import SecaError
from seca.io.checkpoint import FORMAT_VERSION, content_hash, load_checkpoint, read_metadata, save_checkpoint


def tensors():
    return {
        "a.weight": torch.arange(6.0).reshape(2, 3),
        "b": torch.tensor([1, 2], dtype=torch.int64),
        "scalar": torch.tensor(0.5),
        "empty": torch.empty(0, 4),
    }


def test_round_trip_keeps_tensors_and_metadata(tmp_path):
    meta = save_checkpoint(tmp_path / "m.safetensors", tensors(), {"method": "seca", "class_names": ["red star"]})
    loaded, read = load_checkpoint(tmp_path / "m.safetensors")
    assert read == meta and read["format_version"] == FORMAT_VERSION and read["class_names"] == ["red star"]
    for name, value in tensors().items():
        assert torch.equal(loaded[name], value) and loaded[name].dtype == value.dtype
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary file left


def test_content_hash_changes_with_any_value_name_or_dtype():
    base = content_hash(tensors())
    changed = tensors()
    changed["a.weight"][0, 0] = 0.001
    assert content_hash(changed) != base
    renamed = {("c" if k == "b" else k): v for k, v in tensors().items()}
    assert content_hash(renamed) != base
    retyped = {**tensors(), "b": torch.tensor([1, 2], dtype=torch.int32)}
    assert content_hash(retyped) != base


def test_damaged_tensors_are_detected(tmp_path):
    path = tmp_path / "m.safetensors"
    meta = save_checkpoint(path, tensors(), {})
    bad = tensors()
    bad["a.weight"][1, 1] = 42.0
    save_file(bad, str(path), metadata={"seca": json.dumps(meta)})  # same header, other numbers
    with pytest.raises(SecaError, match="damaged"):
        load_checkpoint(path)


def test_files_that_are_not_seca_checkpoints(tmp_path):
    with pytest.raises(SecaError, match="not found"):
        read_metadata(tmp_path / "missing.safetensors")
    (tmp_path / "text.safetensors").write_text("hello")
    with pytest.raises(SecaError, match="not a safetensors file"):
        read_metadata(tmp_path / "text.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(SecaError, match="not a seca checkpoint"):
        read_metadata(tmp_path / "plain.safetensors")
    save_file(
        {"x": torch.zeros(1)},
        str(tmp_path / "future.safetensors"),
        metadata={"seca": json.dumps({"format_version": 99})},
    )
    with pytest.raises(SecaError, match="format version 99"):
        read_metadata(tmp_path / "future.safetensors")


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, tensors(), {"version": "old"})

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("seca.io.checkpoint.save_file", explode)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, tensors(), {"version": "new"})
    assert read_metadata(path)["version"] == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
