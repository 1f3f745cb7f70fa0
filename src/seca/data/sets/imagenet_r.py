"""ImageNet-R: 200 ImageNet classes as renditions (art, cartoons, sculptures, ...), 30,000 images (Hendrycks et al.,
ICCV 2021); seca prepare splits it 80/20 per class."""

from __future__ import annotations

from ._wordnet import WordNetFolders
from .base import packaged_table, register


@register
class ImageNetR(WordNetFolders):
    """ImageNet-R: renditions of 200 ImageNet classes, 30,000 images, split 80/20 per class by seca prepare."""

    name = "imagenet-r"
    table = "imagenet_r"
    c3box_key = "imagenetr"  # its names there differ (e.g. "hammerhead"): data.names_file reads them
    template = "a good photo of a {}."
    benchmarks = ("b0-inc20", "b0-inc10", "b100-inc10")
    obtain = (
        "download https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar, extract it and run "
        "`seca prepare imagenet-r RAW ROOT`"
    )

    def reference_orders(self, num_classes: int):
        return packaged_table("class_orders")["imagenet_r"]
