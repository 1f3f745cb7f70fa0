"""Shared fixtures. No test touches the network: the Hugging Face hub is forced offline here."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tiny_backbone():
    """The two-block test CLIP with random weights (seeded), on the CPU."""
    from seca.clip.backbone import load_backbone

    torch.manual_seed(0)
    return load_backbone("seca-test", None)
