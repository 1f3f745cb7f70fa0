"""Gaussian pseudo-feature replay of SECA++ (spec §7): per-class mean and covariance, and sampling from them."""

from __future__ import annotations

import torch
from torch import nn


def class_statistics(features: torch.Tensor, labels: torch.Tensor, eps: float = 1e-4
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(classes, means [K, E], covariances [K, E, E]) of ``features`` grouped by label, in float64.

    The covariance is the unbiased sample covariance plus ``eps * I``, so it is positive definite even for
    classes with fewer images than dimensions.
    """
    features = features.double()
    classes = labels.unique(sorted=True)
    means, covs = [], []
    eye = torch.eye(features.shape[1], dtype=torch.float64, device=features.device)
    for c in classes:
        x = features[labels == c]
        means.append(x.mean(dim=0))
        cov = torch.cov(x.T) if x.shape[0] > 1 else torch.zeros_like(eye)
        covs.append(cov + eps * eye)
    return classes, torch.stack(means), torch.stack(covs)


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
        factors = torch.linalg.cholesky(covariances.double())
        self.means = torch.cat([self.means, means.double().to(self.means.device)])
        self.cholesky = torch.cat([self.cholesky, factors.to(self.cholesky.device)])

    def sample(self, per_class: int, generator: torch.Generator, num_classes: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class`` draws from each of the first ``num_classes`` Gaussians: (features [K*n, E], labels)."""
        k = len(self) if num_classes is None else num_classes
        noise = torch.randn(k, per_class, self.means.shape[1], generator=generator, dtype=torch.float64)
        noise = noise.to(self.means.device)
        draws = self.means[:k, None, :] + noise @ self.cholesky[:k].transpose(1, 2)
        labels = torch.arange(k, device=self.means.device).repeat_interleave(per_class)
        return draws.reshape(k * per_class, -1), labels
