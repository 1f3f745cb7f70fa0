"""CIFAR-100: 100 classes of 32x32 photographs, 500 training and 100 test images each (Krizhevsky, 2009)."""

from __future__ import annotations

from pathlib import Path

from ...config import DataConfig
from ...errors import SecaError
from .base import BenchmarkData, DataSet, packaged_table, register


@register
class CIFAR100(DataSet):
    """CIFAR-100: 100 classes of small photographs, 50,000 training and 10,000 test images (torchvision's reader)."""

    name = "cifar100"
    obtain = (
        "set data.download=true to fetch it (about 170 MB), or put the extracted 'cifar-100-python' folder of "
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz in data.root"
    )

    def load(self, data: DataConfig) -> BenchmarkData:
        from torchvision.datasets import CIFAR100 as Reader

        path = Path(data.root or "data/cifar100").expanduser()
        try:
            train = Reader(str(path), train=True, download=data.download)
            test = Reader(str(path), train=False, download=data.download)
        except RuntimeError:
            raise SecaError(f"CIFAR-100 not found under {path}: {self.obtain}") from None
        except OSError as e:
            raise SecaError(
                f"could not download CIFAR-100 to {path} ({e.__class__.__name__}: {e}); "
                "fetch cifar-100-python.tar.gz elsewhere and extract it there"
            ) from None
        return BenchmarkData(train, test, packaged_table("class_names")["cifar100"])

    def reference_orders(self, num_classes: int):
        return packaged_table("class_orders")["cifar100"]
