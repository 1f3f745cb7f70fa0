"""Models saved by earlier versions of seca still load, keep their classes, history and config, and predict the same
probabilities: tests/fixtures/v0.1 (written before learners became plugins) and main-43008d1 (every other learner,
written by version 0.1.0 before 0.2.0 rebuilt the house: learning-rate groups `linear`, `moe` and `lora`, since
renamed `rapf`, `moe_adapters` and `mind_the_gap`)."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

import seca

from ..conftest import write_shapes_folder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VERSIONS = ("v0.1", "main-43008d1")
CASES = [
    (version, name)
    for version in VERSIONS
    for name in sorted(json.loads((FIXTURES / version / "expected.json").read_text())["probabilities"])
]


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    """The probe images of each version's make.py."""
    images = {}
    for version in VERSIONS:
        spec = importlib.util.spec_from_file_location(
            f"make_{version.replace('.', '_').replace('-', '_')}", FIXTURES / version / "make.py"
        )
        make = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(make)
        images[version] = [str(p) for p in make.probe_images(tmp_path_factory.mktemp(version))]
    return images


@pytest.mark.parametrize("version, name", CASES)
def test_an_old_checkpoint_loads_and_predicts_the_same(version, name, probes):
    model = seca.load(FIXTURES / version / f"{name}.safetensors", device="cpu")
    assert model.classes == ["orange star", "red circle", "blue square", "pink heart"]
    assert len(model.history) == 2 and len(model.learner.tasks) == 2
    probabilities = model.probabilities(probes[version])
    expected = torch.tensor(json.loads((FIXTURES / version / "expected.json").read_text())["probabilities"][name])
    assert torch.equal(probabilities.argmax(dim=1), expected.argmax(dim=1))
    torch.testing.assert_close(probabilities, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name, group", [("rapf", "rapf"), ("moe-adapters", "moe_adapters"), ("mind-the-gap", "mind_the_gap")]
)
def test_an_old_models_learning_rate_group_is_read_under_its_name_now(name, group, tmp_path):
    model = seca.load(FIXTURES / "main-43008d1" / f"{name}.safetensors", device="cpu")
    assert model.config.train.lr[group] == pytest.approx(1e-3)
    assert {"linear", "moe", "lora"}.isdisjoint(model.config.train.lr)
    # and it keeps learning: the renamed group trains
    task = write_shapes_folder(tmp_path / "task", ["purple star"], per_class=3, split="train")
    before = {k: v.clone() for k, v in model.learner.state_dict().items()}
    model.learn(task, epochs=1, progress=False)
    assert model.classes[-1] == "purple star"
    assert any(not torch.equal(before[k], v) for k, v in model.learner.state_dict().items() if k in before)
