"""Small CLIP architectures of this project, built with open_clip's own classes and tokenizer.

They exist for the test suite and the offline world (no download, fast on a CPU). Any open_clip model
name (``ViT-B-16``, ...) works as well; these names are simply tried first.
"""

from __future__ import annotations

from typing import Any

from ..errors import SecaError
from ..registry import Registry

# Each entry is the keyword arguments of ``open_clip.CLIP``. All use the 49,408-token CLIP vocabulary.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    # Two-block ViT on 32x32 images: a few milliseconds per batch, for unit and smoke tests.
    "seca-test": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32, "mlp_ratio": 2.0},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    # The offline world's CLIP: a 4-block, 128-wide ViT on 32x32 images with 8x8 patches (16 tokens), pretrained
    # by seca.offline.pretrain. 32 pixels, not 64: three times faster per step and it learns shapes faster.
    "seca-shapes": {
        "embed_dim": 128,
        "vision_cfg": {
            "image_size": 32,
            "patch_size": 8,
            "width": 128,
            "layers": 4,
            "head_width": 32,
            "mlp_ratio": 4.0,
        },
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 4},
    },
}


# Pretrained tags of these architectures, registered by the packages that can build the weights (the offline
# world registers "shapes"), so that clip/ depends on nothing above it. A provider is "module:function" naming a
# function that returns the path of the weights file (building it if needed); it is imported on first use only.
PRETRAINED_TAGS: Registry[tuple[str, str]] = Registry("pretrained tag")


def register_pretrained(tag: str, architecture: str, provider: str) -> None:
    """Make ``backbone.pretrained: TAG`` load ``architecture``'s weights from ``provider()`` ("module:function")."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"no architecture '{architecture}' to register the tag '{tag}' for")
    PRETRAINED_TAGS.add(tag, (architecture, provider), source=provider)


def pretrained_weights(tag: str, architecture: str) -> str | None:
    """The weights file of a registered tag (None if ``tag`` is not one); an error if it is another architecture's."""
    import importlib

    if tag not in PRETRAINED_TAGS:
        return None
    owner, provider = PRETRAINED_TAGS[tag]
    if owner != architecture:
        raise SecaError(f"the '{tag}' weights exist for model '{owner}' only, not '{architecture}'")
    module, _, function = provider.partition(":")
    return str(getattr(importlib.import_module(module), function)())
