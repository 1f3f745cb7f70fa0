"""Mind the Gap (MG-CLIP): LoRA on the keys and values of both CLIP encoders, and a visual agent beside the text.

Huang, Cao, Lu, Meng, Yang, Liu, "Mind the Gap: Preserving and Compensating for the Modality Gap in CLIP-Based
Continual Learning", ICCV 2025 (arXiv 2507.09118); official code github.com/linlany/MindtheGap.
docs/specs/mind-the-gap.md is the specification this file implements, section by section (§ below), with the
official code's defaults.

One set of low-rank updates of the keys and values in every attention block of both encoders (rank 8, α 1;
:mod:`seca.peft.lora`) learns every task in turn, for few epochs, with the cross-entropy of ``100 · cos(f(x),
g(c))`` over the current task's classes (§3.1): the modality gap is "preserved" by training little and locally.
After each task a "visual agent" gains one row per new class, the mean of the class's adapted image features,
trained for a few epochs with the cross-entropy of plain cosines over the task's classes (§3.2, §4.2); old rows
stay as they were. A test image scores ``(1 · softmax(softmax(100 cos(f, g))) + 4 · softmax(cos(f, w))) / 5``
over every seen class (§4.3): the agent "compensates" for the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import ABOVE_ZERO, LEARNING_RATE, TEMPLATE, at_least, one_of, section, setting
from ..data.scenario import Task
from ..distributed import gather_rows
from ..errors import SecaError
from ..peft.lora import LoraSet, check_attention
from ._precision import widen
from ._statistics import class_means
from ._texts import AdaptedTexts
from .base import Batch, Learner, TaskData, register


@dataclass(frozen=True)
class MindTheGapConfig:
    """Mind the Gap's settings (docs/specs/mind-the-gap.md §5-§6; defaults: the official ImageNet-R configuration)."""

    template: str = setting("a good photo of a {}.", "Mind the Gap: the text template of every class (§2)", TEMPLATE)
    rank: int = setting(
        8, "Mind the Gap: the rank of the key and value updates of every attention block (§2)", at_least(1)
    )
    alpha: float = setting(1.0, "Mind the Gap: the LoRA scale is alpha / rank (§2)", ABOVE_ZERO)
    ce_scope: str = setting(
        "task",
        "Mind the Gap: the classes of the LoRA's cross-entropy: `task` (the current "
        "task's, as the official code) or `seen` (every class seen so far) (§6 item 6)",
        one_of("task", "seen"),
    )
    agent: bool = setting(
        True,
        "Mind the Gap: train the visual agent and mix it into the scores (§4.2-§4.3); "
        "without it a test image scores its text probabilities",
    )
    agent_lr: float = setting(
        5e-4,
        "Mind the Gap: the visual agent's Adam learning rate (cosine per step to 1/100 of it, §4.2)",
        LEARNING_RATE,
    )
    agent_batch_size: int = setting(32, "Mind the Gap: the visual agent's batch size (§4.2)", at_least(1))
    agent_epochs: int = setting(
        3, "Mind the Gap: epochs of the visual agent's training after each task (§4.2)", at_least(0)
    )
    mix_text: float = setting(
        1.0, "Mind the Gap: the weight of the text branch in the test scores (§4.3)", at_least(0.0)
    )
    mix_visual: float = setting(
        4.0, "Mind the Gap: the weight of the visual agent in the test scores (§4.3)", at_least(0.0)
    )
    probe_epochs: int = setting(
        10,
        "Mind the Gap: `seca probe-epochs` trains the first task at most this many epochs "
        "(the official epoch.py: 10) (§4.4)",
        at_least(1),
    )
    probe_threshold: float = setting(
        0.1,
        "Mind the Gap: `seca probe-epochs` stops at the first epoch after which "
        "the mean non-target logit has moved by more than this fraction of its value "
        "before training; the epochs are those completed before it, at least 1 (§4.4)",
        ABOVE_ZERO,
    )
    text_branch: str = setting(
        "double_softmax",
        "Mind the Gap: the text branch of the test scores: "
        "`double_softmax` (a softmax of the text probabilities, as the official code) or "
        "`softmax` (the text probabilities) (§6 item 4)",
        one_of("double_softmax", "softmax"),
    )


def agent_scores(features: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The visual agent's logits: plain cosines of the (normalised) image features with its rows (§3.2)."""
    return features @ F.normalize(rows, dim=-1).T


def mixed_scores(
    text_logits: torch.Tensor, agent_logits: torch.Tensor | None, settings: MindTheGapConfig
) -> torch.Tensor:
    """§4.3: ``(a · T(softmax(text)) + b · softmax(agent)) / (a + b)``, T a second softmax by default; the text
    probabilities alone without an agent."""
    text = text_logits.softmax(dim=1)
    if agent_logits is None:
        return text
    if settings.text_branch == "double_softmax":
        text = text.softmax(dim=1)
    a, b = settings.mix_text, settings.mix_visual
    return (a * text + b * agent_logits.softmax(dim=1)) / (a + b)


class GapProbe:
    """§4.4, the official ``epoch.py``: train the first task and, after each epoch, measure the mean non-target
    logit on its training data; the first epoch that moves it by more than ``threshold`` of its value before
    training ends the probe, and the epochs are those completed before that epoch (at least 1). If no epoch of
    ``max_epochs`` does, the official code says nothing; this probe answers ``max_epochs``."""

    def __init__(self, learner: MindTheGap, data: TaskData, max_epochs: int, threshold: float):
        if learner.num_seen < 2:
            raise SecaError(
                "mind-the-gap: the epoch probe measures the logits of the classes other than an image's "
                "own, so the first task needs at least 2 classes"
            )
        self.learner, self.data, self.max_epochs, self.threshold = learner, data, max_epochs, threshold
        self.before = learner.gap_statistic(data)
        self.after: list[float] = []
        self.epochs: int | None = None

    def after_epoch(self, epoch: int) -> bool:
        self.after.append(self.learner.gap_statistic(self.data))
        if abs(self.before - self.after[-1]) / abs(self.before) > self.threshold:
            self.epochs = max(1, epoch)
            return True
        return False

    def report(self) -> dict:
        return {
            "epochs": self.epochs or self.max_epochs,
            "crossed": self.epochs is not None,
            "statistic": "mean non-target logit",
            "before": self.before,
            "after_each_epoch": self.after,
            "threshold": self.threshold,
            "max_epochs": self.max_epochs,
        }


@register
class MindTheGap(AdaptedTexts, Learner):
    """Mind the Gap (ICCV 2025): LoRA on both CLIP encoders' keys and values, a visual agent mixed 4:1 with the text."""

    name = "mind-the-gap"
    default_lr = {"mind_the_gap": 1e-3}
    renamed_lr = {"lora": "mind_the_gap"}  # its group's name before 0.2
    # the official ImageNet-R configuration (docs/specs/mind-the-gap.md §5): 2 epochs (its epoch probe's choice) of
    # batch 64, Adam without weight decay, a cosine per epoch to lr / 100, in fp32
    recipe = {
        "epochs": 2,
        "batch_size": 64,
        "optimizer": "adam",
        "weight_decay": 0.0,
        "schedule": "cosine_epoch",
        "min_lr_ratio": 0.01,
        "amp": "off",
    }

    @dataclass(frozen=True)
    class Config:
        mind_the_gap: MindTheGapConfig = section(MindTheGapConfig)

    @classmethod
    def check_config(cls, config) -> None:
        settings = getattr(config, "method", config).mind_the_gap
        if settings.agent and settings.mix_text + settings.mix_visual <= 0:
            raise SecaError(
                "mind-the-gap: method.mind_the_gap.mix_text and mix_visual are both 0; give the test "
                "scores a branch (the official weights: 1 and 4), or set agent: false"
            )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.check_config(self.config)
        settings, backbone = self.settings, self.backbone
        check_attention(list(backbone.blocks), "image", self.name)
        check_attention(backbone.text.blocks_for_adapters(), "text", self.name)
        generator = torch.Generator().manual_seed(self.seed)  # A is drawn once, for the whole run (§9)
        self.image = LoraSet(backbone.vision_width, backbone.num_blocks, settings.rank, settings.alpha, generator)
        self.text = LoraSet(backbone.text.width, backbone.text.num_blocks, settings.rank, settings.alpha, generator)
        self.register_buffer("agent", torch.empty(0, backbone.embed_dim))  # one row per seen class (§4.2)
        self.register_buffer("text_features", torch.empty(0, backbone.embed_dim), persistent=False)
        self._tokens: torch.Tensor | None = None

    @property
    def settings(self) -> MindTheGapConfig:
        return self.config.mind_the_gap

    # ---- a task ---------------------------------------------------------------------------------
    def begin_task(self, task: Task, data: TaskData) -> None:
        super().begin_task(task, data)
        first = task.start if self.settings.ce_scope == "task" else 0
        self._tokens = self._tokenize(self.class_names[first : task.stop])

    def parameter_groups(self) -> list[dict]:
        return [{"name": "mind_the_gap", "params": list(self.image.parameters()) + list(self.text.parameters())}]

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """§3.1: the cross-entropy of 100 cos over the current task's classes; both encoders' LoRA get gradients.

        Only the classes that enter the loss are encoded (the official code encodes every seen class and drops
        the old columns: the same loss and gradients, §6 item 12)."""
        images = F.normalize(self.backbone.encode_image(batch.images, adapters=self.image), dim=-1)
        texts = F.normalize(self._encode(self._tokens), dim=-1)
        logits = self.backbone.logit_scale * images @ texts.T
        first = self.task.start if self.settings.ce_scope == "task" else 0
        loss = F.cross_entropy(widen(logits), batch.labels - first)
        return {"ce": loss, "loss": loss}

    def end_task(self, task: Task, data: TaskData) -> None:
        self._tokens = None
        self._cache_texts()
        if self.settings.agent:
            features, labels = self._task_features(data)
            means = class_means(features.double(), labels, list(task.labels)).float()  # over every process's images
            self.agent = torch.cat([self.agent, self._train_agent(task, means, *gather_rows(features, labels))])

    @torch.no_grad()
    def _task_features(self, data: TaskData) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised adapted features (float32) and the labels of this process's training images of the task."""
        features, labels = [], []
        for batch in data.batches():
            features.append(self.embed(batch.images))
            labels.append(batch.labels)
        return torch.cat(features).float(), torch.cat(labels)

    def _train_agent(
        self, task: Task, means: torch.Tensor, features: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """§4.2: the new classes' rows: their mean feature (not renormalised), then ``agent_epochs`` epochs of Adam
        on the cross-entropy of plain cosines over the task's classes, the rate annealed per step to 1/100.

        Old rows are not trained: in the official code they are parameters too, but their gradient is exactly
        zero (the loss reads only the task's columns), so Adam leaves them as they are."""
        settings = self.settings
        rows = torch.nn.Parameter(means.clone())
        steps = settings.agent_epochs * -(-len(labels) // settings.agent_batch_size)
        if steps:
            optimizer = torch.optim.Adam([rows], lr=settings.agent_lr)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=settings.agent_lr / 100)
            generator = self.task_rng(task, stream=1)
            with torch.enable_grad():
                for _ in range(settings.agent_epochs):
                    order = torch.randperm(len(labels), generator=generator).to(labels.device)
                    for chosen in order.split(settings.agent_batch_size):
                        loss = F.cross_entropy(agent_scores(features[chosen], rows), labels[chosen] - task.start)
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        optimizer.step()
                        schedule.step()
        return rows.detach()

    # ---- the epoch probe (§4.4) -------------------------------------------------------------------------
    def epoch_probe(self, data: TaskData) -> GapProbe:
        return GapProbe(self, data, self.settings.probe_epochs, self.settings.probe_threshold)

    @torch.no_grad()
    def gap_statistic(self, data: TaskData) -> float:
        """The official "negative mean": for each image, the mean of its logits 100 · cos(f(x), g(c)) over the seen
        classes c other than its own; averaged within each batch of ``data``, then over the batches."""
        was_training = self.training
        self.eval()
        texts = F.normalize(widen(self._encode(self._tokenize(self.class_names[: self.num_seen]))), dim=-1)
        means = []
        for batch in data.batches():
            features = self.embed(batch.images)
            logits = self.backbone.logit_scale * features @ texts.T
            own = logits.gather(1, batch.labels[:, None]).squeeze(1)
            means.append(float(((logits.sum(1) - own) / (logits.shape[1] - 1)).mean()))
        self.train(was_training)
        return sum(means) / len(means)

    # ---- inference and restoring ---------------------------------------------------------------------
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """f(x): the normalised image features through the image encoder's LoRA, in float32, which both the text
        branch and the visual agent score (§4.3)."""
        return F.normalize(widen(self.backbone.encode_image(images, adapters=self.image)), dim=-1)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """§4.3: the text probabilities (softmaxed once more) mixed 1:4 with the agent's softmax of cosines."""
        features = self.embed(images)
        text = self.backbone.logit_scale * features @ self.text_features.T.to(features)
        agent = agent_scores(features, self.agent.to(features)) if self.settings.agent else None
        return mixed_scores(text, agent, self.settings)

    def after_restore(self) -> None:
        if self.settings.agent and len(self.agent) != self.num_seen:
            raise SecaError(
                f"mind-the-gap: this model's visual agent has {len(self.agent)} rows for {self.num_seen} "
                "classes (it was learned with method.mind_the_gap.agent: false); load it with agent: "
                "false, or learn a new one with the agent"
            )
        self._cache_texts()
