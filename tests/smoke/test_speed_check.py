"""The speed benchmark's float64 exactness check (benchmarks/speed.py): the fast path agrees with the naive one
to rounding, and a fast path broken on purpose (a dropped prefix token, teachers rounded to float32) is caught.
The benchmark's own functions run here in one process, on the tiny test CLIP."""

import importlib.util
from pathlib import Path

import pytest
import torch

SPEED = Path(__file__).resolve().parents[2] / "benchmarks" / "speed.py"
TINY = ["--model", "seca-test", "--classes", "12", "--increment", "4", "--check-batch", "4"]


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("speed_benchmark", SPEED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def state(speed, tmp_path_factory):
    """The learner at the start of the last task with a full pool, as the benchmark saves it."""
    path = tmp_path_factory.mktemp("speed") / "state.pt"
    speed.prepare(speed.parse_args(TINY), path)
    return torch.load(path, weights_only=False)


def _check(speed, state, *extra) -> dict:
    args = speed.parse_args([*TINY, *extra])
    try:
        fast, naive = speed.check_path(args, "fast", state), speed.check_path(args, "naive", state)
    finally:
        torch.set_default_dtype(torch.float32)  # the check sets float64 for its own process
    return speed.agreement(fast, naive)


def test_the_fast_path_agrees_with_the_naive_one_to_float64_rounding(speed, state):
    checks = _check(speed, state)
    assert checks["agree"] and checks["precision"] == ["float64"]
    assert set(checks["losses"]) == {"loss", "ce_text", "ce_visual", "reg", "agg", "kd"}
    assert checks["largest"]["difference"] < 1e-11  # far below the tolerance, not just under it
    assert "prompts.prompts.2" in checks["gradients"] and len(checks["gradients"]) > 10
    assert checks["zero_gradients"] == ["visual.refiner.ln_text.bias"]


@pytest.mark.parametrize("broken, worse_than", [("prefix-token", 1e-3), ("float32-teachers", 1e-8)])
def test_a_broken_fast_path_is_caught(speed, state, broken, worse_than):
    checks = _check(speed, state, "--break", broken)
    assert not checks["agree"] and checks["largest"]["difference"] > worse_than


def test_terms_missing_from_one_path_disagree(speed):
    grads = {"a": torch.ones(2)}
    fast = {"losses": {"loss": 1.0}, "grads": grads, "scores": torch.ones(1), "dtypes": ["float64"]}
    naive = {**fast, "losses": {"loss": 1.0, "kd": 0.5}}
    checks = speed.agreement(fast, naive)
    assert not checks["agree"] and "kd" in checks["largest"]["what"]


def test_a_loss_term_near_zero_is_compared_on_the_scale_of_one(speed):
    """A term of 1e-6 that differs by 1e-16 agrees: its rounding is relative to quantities of order one."""
    grads = {"a": torch.tensor([1.0, -2.0], dtype=torch.float64)}
    naive = {"losses": {"loss": 2.0, "kd": 1e-6}, "grads": grads, "scores": torch.ones(1), "dtypes": ["float64"]}
    fast = {**naive, "losses": {"loss": 2.0, "kd": 1e-6 + 1e-16}}
    checks = speed.agreement(fast, naive)
    assert checks["agree"] and checks["losses"]["kd"]["difference"] == pytest.approx(1e-16, rel=1e-3)


@pytest.mark.parametrize(
    "method, terms",
    [
        ("rapf", {"loss", "ce", "hinge"}),
        ("moe-adapters", {"loss", "ce"}),
        ("mind-the-gap", {"loss", "ce"}),
        ("proof", {"loss", "ce", "clip", "proto"}),
        ("engine", {"loss", "clip", "descriptions", "noise"}),
        ("bofa", {"loss", "ce"}),
        ("clg-cbm", {"loss", "ce", "mahalanobis"}),
    ],
)
def test_each_competitors_fast_path_agrees_with_its_official_computation(speed, method, terms, tmp_path):
    """RAPF without its image encoder in the step, MoE-Adapters and Mind the Gap with texts cut short, the last
    block on the class token and the texts kept per task; PROOF, ENGINE and BOFA without the image encoder (and
    PROOF and ENGINE without the text encoder) in the step, PROOF's shared fusion tokens projected once, ENGINE's
    re-ranking texts and BOFA's test passes kept, CLG-CBM's task features reused at the task's end: the same step
    and scores as their official codes'."""
    args = speed.parse_args([*TINY, "--method", method, "--check"])
    path = tmp_path / "state.pt"
    speed.prepare(args, path)
    state = torch.load(path, weights_only=False)
    try:
        fast, naive = speed.check_path(args, "fast", state), speed.check_path(args, "naive", state)
    finally:
        torch.set_default_dtype(torch.float32)
    checks = speed.agreement(fast, naive)
    assert checks["agree"] and set(checks["losses"]) == terms and checks["largest"]["difference"] < 1e-11
    assert len(checks["gradients"]) >= 1 and checks["scores"] < 1e-11
