"""SimpleCIL against numbers worked out by hand: a class is the mean of its images' (un-normalised) frozen
features, normalised; an image scores exp(T cos - max) against each class seen so far."""

import math

import pytest
import torch

from seca.data.scenario import ClassIncrementalScenario
from seca.engine.configure import method_config
from seca.methods import LEARNERS, Batch, TaskData


class PixelBackbone:
    """The frozen CLIP reduced to a map one can follow by hand: an image's feature is its first two pixels."""

    device = torch.device("cpu")
    embed_dim = 2

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)[:, :2]


def _images(*features):
    return torch.tensor(features, dtype=torch.float32).view(len(features), 1, 1, 2)


def _learn(learner, task, images, labels):
    batch = Batch(images, torch.tensor(labels), torch.arange(len(labels)))
    data = TaskData(task, len(labels), lambda: iter([batch]))
    learner.begin_task(task, data)
    learner.end_task(task, data)


def test_prototypes_are_normalised_means_of_raw_features_and_scores_follow_the_cosine():
    learner = LEARNERS["simplecil"](PixelBackbone(), ["a", "b", "c"], method_config(name="simplecil"))
    assert not learner.trains and learner.parameter_groups() == []
    first, second = ClassIncrementalScenario([0, 1, 2], 2, 1)
    # class a: (1, 0) and (0, 3) -> mean (0.5, 1.5); class b: (0, 2) and (0, 4) -> mean (0, 3)
    _learn(learner, first, _images((1, 0), (0, 3), (0, 2), (0, 4)), [0, 0, 1, 1])
    a = torch.tensor([0.5, 1.5]) / math.sqrt(2.5)  # not the mean of the normalised features, (0.707, 0.707)
    torch.testing.assert_close(learner.prototypes, torch.stack([a, torch.tensor([0.0, 1.0])]))

    scores = learner.predict(_images((3, 1)))  # cos to a: (1.5 + 1.5) / sqrt(2.5 * 10) = 0.6; to b: 1 / sqrt(10)
    expected = [1.0, math.exp(20 * (1 / math.sqrt(10) - 0.6))]
    assert scores.tolist()[0] == pytest.approx(expected, rel=1e-5)

    _learn(learner, second, _images((-2, 0)), [2])  # class c arrives: a and b keep their prototypes
    assert learner.prototypes.shape == (3, 2) and learner.prototypes[2].tolist() == [-1.0, 0.0]
    torch.testing.assert_close(learner.prototypes[0], a)
    scores = learner.predict(_images((-1, 0.1)))
    assert scores.shape == (1, 3) and int(scores.argmax()) == 2 and float(scores.max()) == 1.0
