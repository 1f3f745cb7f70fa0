"""ImageNet-A: 200 ImageNet classes in natural adversarial photographs, 7,500 images (Hendrycks et al., CVPR 2021);
seca prepare splits it 80/20 per class. No reference class order exists: its presets draw one (``seeded``)."""

from __future__ import annotations

from ._wordnet import WordNetFolders
from .base import register


@register
class ImageNetA(WordNetFolders):
    """ImageNet-A: natural adversarial photos of 200 ImageNet classes, 7,500 images, split 80/20 by seca prepare."""

    name = "imagenet-a"
    table = "imagenet_a"
    c3box_key = "imageneta"  # its names there differ (first words only, "American"): data.names_file reads them
    template = "a good photo of a {}."
    benchmarks = ("b0-inc20",)
    obtain = (
        "download https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar, extract it and run "
        "`seca prepare imagenet-a RAW ROOT`"
    )
