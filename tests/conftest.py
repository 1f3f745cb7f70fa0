"""Shared fixtures. No test touches the network: the Hugging Face hub is forced offline here."""

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest
import torch
import torch.multiprocessing as mp
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# Fuzzing budgets: "ci" (the default) keeps the suite within minutes; a long local run is
# `python -m pytest tests -k fuzz --hypothesis-profile long` (or SECA_HYPOTHESIS_PROFILE=long).
_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=25, deadline=None, suppress_health_check=_QUIET)
settings.register_profile("long", max_examples=10_000, deadline=None, suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("SECA_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def tiny_backbone():
    """The two-block test CLIP with random weights (seeded), on the CPU."""
    from seca.clip.backbone import load_backbone

    torch.manual_seed(0)
    return load_backbone("seca-test", None)


FAST_RUN = [
    "--set",
    "train.epochs=1",
    "--set",
    "data.shapes.train_per_class=8",
    "--set",
    "data.shapes.test_per_class=4",
]


def write_shapes_folder(root, names, per_class=3, split="test", seed=0):
    """Images of shapes-world classes (e.g. "purple star") as ``root/<name with _>/<i>.png``."""
    from seca.data.shapes import ShapesWorld, class_names

    world = ShapesWorld(image_size=32, seed=seed)
    labels = {name: k for k, name in enumerate(class_names())}
    for name in names:
        folder = root / name.replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            world.image(labels[name], i, "renditions", split).save(folder / f"{i}.png")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, folder: str, compute: Callable[[], Any]) -> None:
    from seca import distributed

    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    distributed.join("cpu", timeout_s=120)
    finished = False
    try:
        torch.save(compute(), Path(folder) / f"rank{rank}.pt")
        finished = True
    finally:
        distributed.leave(synchronize=finished)


def in_two_processes(compute: Callable[[], Any], folder: Path) -> list[Any]:
    """What ``compute()`` (a module-level function) returns in each of two processes spawned here, joined in a gloo
    group on the CPU, in rank order (their files are kept in ``folder``)."""
    mp.spawn(_rank, args=(free_port(), str(folder), compute), nprocs=2, join=True)
    return [torch.load(Path(folder) / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """A finished `seca run cpu-small` (SECA, 5 tasks of 4 classes, one epoch); its output folder."""
    from seca.cli import main

    out = tmp_path_factory.mktemp("small-run") / "seca"
    assert main(["run", "cpu-small", "--out", str(out), *FAST_RUN]) == 0
    return out


def pytest_collection_modifyitems(config, items):
    """Every test that needs the pretrained offline CLIP is marked ``shapes_clip`` (``-m "not shapes_clip"``
    skips them on a machine without the cached weights)."""
    for item in items:
        if "shapes_clip_weights" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shapes_clip)


@pytest.fixture(scope="session")
def shapes_clip_weights(request):
    """The real pretrained shapes CLIP, from the cache ($SECA_CACHE or ~/.cache/seca); the first session on a
    machine builds it (3 to 5 minutes on 2 cores) and says so, later ones find it."""
    from seca.offline.pretrain import BUILD_MINUTES, ensure_shapes_clip, shapes_clip_path

    path = shapes_clip_path()
    if not path.is_file():  # one line past pytest's capture, so a long silence is explained
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(
                f"\nbuilding the pretrained shapes CLIP into {path} for the tests that need it (once; about "
                f"{BUILD_MINUTES} minutes on 2 CPU cores; skip them with -m 'not shapes_clip')",
                flush=True,
            )
    return ensure_shapes_clip(progress=False)


# bytes that are almost a valid file: the fuzz tests' way of reaching deep into a parser
@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` after 1 to 4 random edits: a byte flipped, the tail cut, bytes inserted or overwritten."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "overwrite"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=24))
        else:
            chunk = draw(st.binary(min_size=1, max_size=24))
            data[at : at + len(chunk)] = chunk
    return bytes(data)
