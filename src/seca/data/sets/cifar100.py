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
    c3box_key = "cifar224"
    template = "a good photo of a {}."
    benchmarks = ("b0-inc10", "b0-inc20", "b50-inc10")
    obtain = (
        "set data.download=true to fetch it (about 170 MB), or put the extracted 'cifar-100-python' folder of "
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz in data.root"
    )

    def load(self, data: DataConfig) -> BenchmarkData:
        """torchvision's reader (which checks the files' MD5) of ``cifar-100-python/`` in ``data.root``, or in its
        ``train/`` (C3Box downloads it into ``[DATA-PATH]/train/`` and ``[DATA-PATH]/val/``). Pickles holding some
        of the classes use those."""
        from torchvision.datasets import CIFAR100 as Reader

        path = Path(data.root or "data/cifar100").expanduser()
        if not (path / "cifar-100-python").is_dir() and (path / "train" / "cifar-100-python").is_dir():
            path = path / "train"
        try:
            train = Reader(str(path), train=True, download=data.download)
            test = Reader(str(path), train=False, download=data.download)
        except RuntimeError:
            raise SecaError(f"CIFAR-100 not found under {path}: {self.obtain}") from None
        except (OSError, ValueError, KeyError, EOFError) as e:  # also a pickle that is not CIFAR-100's
            raise SecaError(
                f"could not read or download CIFAR-100 in {path} ({e.__class__.__name__}: {e}); "
                "fetch cifar-100-python.tar.gz elsewhere and extract it there"
            ) from None
        official = packaged_table("class_names")["cifar100"]
        names, label = self.class_names(data, official)
        present = sorted(set(train.targets))
        if len(present) < len(official):
            index = {c: k for k, c in enumerate(present)}
            for part in (train, test):
                keep = [k for k, t in enumerate(part.targets) if t in index]
                part.data, part.targets = part.data[keep], [index[part.targets[k]] for k in keep]
            names = [names[c] for c in present]
        note = self.subset_note(len(present), len(official))
        return BenchmarkData(train, test, names, names=label, notes=[note] if note else [])

    def c3box_names(self, official):
        """C3Box's CIFAR-100 names (its ``cifar224``) are these, name for name."""
        return list(official)

    def reference_orders(self, num_classes: int):
        return packaged_table("class_orders")["cifar100"]
