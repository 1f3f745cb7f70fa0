"""Models saved by an earlier version of seca (tests/fixtures/v0.1, written before learners became plugins) still
load, keep their classes, history and config, and predict the same probabilities."""

import json
from pathlib import Path

import pytest
import torch

import seca

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "v0.1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())["probabilities"]


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    return [str(p) for p in make.probe_images(tmp_path_factory.mktemp("probe"))]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_an_old_checkpoint_loads_and_predicts_the_same(name, probe):
    model = seca.load(FIXTURES / f"{name}.safetensors", device="cpu")
    assert model.classes == ["orange star", "red circle", "blue square", "pink heart"]
    assert len(model.history) == 2 and len(model.learner.tasks) == 2
    probabilities = model.probabilities(probe)
    expected = torch.tensor(EXPECTED[name])
    assert torch.equal(probabilities.argmax(dim=1), expected.argmax(dim=1))
    torch.testing.assert_close(probabilities, expected, rtol=1e-5, atol=1e-6)
