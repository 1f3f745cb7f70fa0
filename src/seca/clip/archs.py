"""Small CLIP architectures of this project, built with open_clip's own classes and tokenizer.

They exist for the test suite and the offline world (no download, fast on a CPU). Any open_clip model
name (``ViT-B-16``, ...) works as well; these names are simply tried first.
"""

from __future__ import annotations

from typing import Any

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
        "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 128, "layers": 4, "head_width": 32, "mlp_ratio": 4.0},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 4},
    },
}
