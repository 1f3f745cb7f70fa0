"""Class statistics over a task's features, written as sums and counts so that they are exact over the shards of a
distributed run (docs/distributed.md): class means, means and covariances, and Gaussians to draw pseudo-features
from (SECA++'s replay, spec §7; RAPF's)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..distributed import all_sum
from ..errors import SecaError

# What a task's statistics say when the features they are taken over are no numbers (the model diverged).
DIVERGED = (
    "the features of the task's images are not finite (NaN or infinite): the model diverged; lower the learning "
    "rates (train.lr.*) or a scale (method.adapter.scale)"
)


def class_sums(
    features: torch.Tensor, labels: torch.Tensor, classes: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sums [K, E], counts [K]) of the features of each class in ``classes`` (labels are global), summed
    over every process of a distributed run."""
    first = classes[0]
    if list(classes) != list(range(first, first + len(classes))):
        raise ValueError(f"classes must be consecutive labels, got {list(classes)}")
    if not bool(torch.isfinite(features).all()):
        raise SecaError(DIVERGED)
    rows = labels.long() - first
    sums = features.new_zeros(len(classes), features.shape[1]).index_add_(0, rows, features)
    counts = torch.bincount(rows, minlength=len(classes)).to(features.device, torch.float64)
    return all_sum(sums), all_sum(counts)


def class_means(features: torch.Tensor, labels: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """Mean feature of each class in ``classes`` over the whole task (every process's shard), ``[K, E]``."""
    sums, counts = class_sums(features, labels, classes)
    _check_counts(counts, classes)
    return sums / counts.to(sums.dtype).unsqueeze(1)


def class_statistics(
    features: torch.Tensor, labels: torch.Tensor, classes: Sequence[int], eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """(means [K, E], covariances [K, E, E]) of the features of each class in ``classes``, in float64, over
    the whole task (every process's shard: the means are reduced first, then the scatter about them).

    The covariance is the unbiased sample covariance plus ``eps * I``, so it is positive definite even for
    classes with fewer images than dimensions (a class of one image has ``eps * I``).
    """
    features = features.double()
    sums, counts = class_sums(features, labels, classes)
    _check_counts(counts, classes)
    means = sums / counts.unsqueeze(1)
    centred = features - means[labels.long() - classes[0]]
    scatter = torch.stack([centred[labels == c].T @ centred[labels == c] for c in classes])
    scatter = all_sum(scatter)
    eye = torch.eye(features.shape[1], dtype=torch.float64, device=features.device)
    covariances = scatter / (counts - 1).clamp_min(1)[:, None, None] + eps * eye
    return means, covariances


def _check_counts(counts: torch.Tensor, classes: Sequence[int]) -> None:
    empty = [c for c, n in zip(classes, counts.tolist()) if n == 0]
    if empty:
        raise SecaError(
            f"the task has no training image of class label(s) {empty}; every class of a task needs at least one"
        )


class ClassGaussians(nn.Module):
    """Means and Cholesky factors of per-class Gaussians over (un-normalised) adapted image features."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("means", torch.empty(0, dim, dtype=torch.float64))
        self.register_buffer("cholesky", torch.empty(0, dim, dim, dtype=torch.float64))

    def __len__(self) -> int:
        return self.means.shape[0]

    def add(self, means: torch.Tensor, covariances: torch.Tensor) -> None:
        """Append classes (their labels must continue the existing ones: 0, 1, 2, ...)."""
        try:
            factors = torch.linalg.cholesky(covariances.double())
        except torch.linalg.LinAlgError:  # features so large that their squares overflowed
            raise SecaError(DIVERGED) from None
        self.means = torch.cat([self.means, means.double().to(self.means.device)])
        self.cholesky = torch.cat([self.cholesky, factors.to(self.cholesky.device)])

    def sample(
        self, per_class: int, generator: torch.Generator, num_classes: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class`` draws from each of the first ``num_classes`` Gaussians: (features [K*n, E], labels)."""
        k = len(self) if num_classes is None else num_classes
        noise = torch.randn(k, per_class, self.means.shape[1], generator=generator, dtype=torch.float64)
        noise = noise.to(self.means.device)
        draws = self.means[:k, None, :] + noise @ self.cholesky[:k].transpose(1, 2)
        labels = torch.arange(k, device=self.means.device).repeat_interleave(per_class)
        return draws.reshape(k * per_class, -1), labels
