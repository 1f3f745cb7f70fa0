"""H-PEFT: the hybrid parameter-efficient baseline of SECA (spec §2).

He et al., "Harnessing Textual Semantic Priors for Knowledge Transfer and Refinement in CLIP-Driven
Continual Learning", AAAI 2026 (arXiv 2508.01579), Sec. 3.2. Bottleneck adapters in the image encoder,
trained sequentially through all tasks, and a new learnable text prompt per task; the only loss is the
cross-entropy over the current task's classes. SECA (seca.py) extends exactly this learner.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..clip.backbone import PromptedClassTexts
from ..data.scenario import Task
from ..peft.adapter import resolve_blocks
from ..peft.prompt import TaskPrompts
from .base import Batch, Learner, TaskData, register
from .inference import text_branch


@register
class HPEFT(Learner):
    name = "h-peft"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        a, p = self.config.adapter, self.config.prompt
        blocks = resolve_blocks(a.blocks, self.backbone.num_blocks)
        self.adapters = self.backbone.new_adapters(blocks, a.bottleneck, a.scale, a.dropout)
        self.prompts = TaskPrompts(self.backbone.text_width, p.length, p.init_std)
        self.texts = PromptedClassTexts(self.backbone, self.class_names, p.length)
        # Text features of every seen class under every (frozen) prompt, [prompts, classes, E]; valid from
        # end_task until the next begin_task, so inference never re-encodes prompts (spec §7b).
        self._inference_text: Optional[torch.Tensor] = None

    # ---- features --------------------------------------------------------------------------------
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised adapted image features f(x)."""
        return F.normalize(self.backbone.encode_image(images, self.adapters), dim=-1)

    def class_text(self, prompt: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Normalised text features of classes ``start..stop-1`` under ``prompt``."""
        return F.normalize(self.texts.encode(prompt, slice(start, stop)), dim=-1)

    # ---- the protocol ----------------------------------------------------------------------------
    def begin_task(self, task: Task, data: TaskData) -> None:
        super().begin_task(task, data)
        self._inference_text = None
        self.prompts.add_task(self.task_rng(task), device=self.device)

    def extend_classes(self, names) -> None:
        super().extend_classes(names)
        self.texts = PromptedClassTexts(self.backbone, self.class_names, self.config.prompt.length)

    def rebuild(self, structure: dict) -> None:
        while len(self.prompts) < len(self.tasks):
            self.prompts.add_task(device=self.device)

    def after_restore(self) -> None:
        self._inference_text = None
        if self.config.classifier.cache_text and self.tasks:
            self._inference_text = self.inference_text_features()

    def parameter_groups(self) -> list[dict]:
        return [
            {"name": "adapter", "params": list(self.adapters.parameters())},
            {"name": "prompt", "params": [self.prompts.current]},
        ]

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        task = self.task
        features = self.image_features(batch.images)
        text = self.class_text(self.prompts.current, task.start, task.stop)
        logits = self.backbone.logit_scale * features @ text.T
        loss = F.cross_entropy(logits, batch.labels - task.start)  # L_ce-T over the current classes
        return {"loss": loss, "ce_text": loss.detach()}

    def end_task(self, task: Task, data: TaskData) -> None:
        if self.config.classifier.cache_text:
            self._inference_text = self.inference_text_features()

    @torch.no_grad()
    def inference_text_features(self) -> torch.Tensor:
        """[prompts, seen classes, E]: every seen class under every task prompt, normalised.

        All prompts are frozen at inference, so this is computed once per task and kept; with
        ``classifier.cache_text: false`` it is recomputed for every batch, as the reference does.
        """
        if self._inference_text is not None:
            return self._inference_text
        return torch.stack([self.class_text(p, 0, self.num_seen) for p in self.prompts])

    def scores_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """Class scores of normalised adapted features: the text branch of spec §6."""
        c = self.config
        return text_branch(features, self.inference_text_features(), c.temperature, c.classifier.hybrid_max)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.scores_from_features(self.image_features(images))
