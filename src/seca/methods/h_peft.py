"""H-PEFT: the hybrid parameter-efficient baseline of SECA (spec §2).

He et al., "Harnessing Textual Semantic Priors for Knowledge Transfer and Refinement in CLIP-Driven
Continual Learning", AAAI 2026 (arXiv 2508.01579), Sec. 3.2. Bottleneck adapters in the image encoder,
trained sequentially through all tasks, and a new learnable text prompt per task; the only loss is the
cross-entropy over the current task's classes. SECA (seca.py) extends exactly this learner.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..clip.backbone import FrozenStem
from ..clip.text import PromptedClassTexts
from ..config import ABOVE_ZERO, DROPOUT, Rule, at_least, section, setting
from ..data.scenario import Task
from ..peft.adapter import resolve_blocks
from ..peft.prompt import TaskPrompts
from ._precision import widen
from ._scores import ClassifierConfig, MaxOver, inference_temperature, stable_exp
from .base import Batch, Learner, TaskData, register


def text_branch(
    features: torch.Tensor, text: torch.Tensor, temperature: float, max_over: MaxOver = "image"
) -> torch.Tensor:
    """p_T of spec §6: ``features`` [B, E] and ``text`` [prompts, C, E], both normalised.

    Logits ``temperature * cos`` for every (prompt, class); subtract the maximum over all of them,
    exponentiate, and average over prompts -> ``[B, C]``.
    """
    logits = temperature * torch.einsum("be,pce->bpc", features, text)
    return stable_exp(logits, max_over).mean(dim=1)


@dataclass(frozen=True)
class AdapterConfig:
    """Bottleneck adapters parallel to each block's MLP (spec §2)."""

    bottleneck: int = setting(16, "adapter bottleneck width (spec §2)", at_least(1))
    scale: float = setting(0.1, "adapter output scale")
    dropout: float = setting(0.1, "dropout on the bottleneck", DROPOUT)
    blocks: str | tuple[int, ...] = setting(
        "all",
        "`all` or a list of the indices (from 0) of the blocks that get an adapter",
        Rule(
            lambda v: v == "all" or (not isinstance(v, str) and len(v) > 0 and min(v) >= 0),
            "all, or a non-empty list of block indices >= 0",
        ),
    )


@dataclass(frozen=True)
class PromptConfig:
    """Per-task learnable text prompts (spec §2)."""

    length: int = setting(8, "M, the number of learnable prompt vectors per task", at_least(1))
    init_std: float = setting(0.02, "prompts start from N(0, init_std²)", at_least(0))


@dataclass(frozen=True)
class PromptClassifierConfig(ClassifierConfig):
    """How classes are scored at inference (spec §6)."""

    cache_text: bool = setting(
        True,
        "keep the text features of every prompt and seen class for inference, encoding each prompt-class pair "
        "once (the new prompt and the new classes at each task), instead of re-encoding every prompt for every "
        "batch as the reference does (the same results up to floating-point order)",
    )


@register
class HPEFT(Learner):
    """H-PEFT: adapters in the image encoder and a new text prompt per task (SECA's baseline, spec §2)."""

    name = "h-peft"
    default_lr = {"adapter": 1e-3, "prompt": 5e-4}
    # the paper's (spec §8): 10 epochs of batch 64, Adam with weight decay 5e-4, ×0.1 after epochs 2 and 5
    recipe = {
        "epochs": 10,
        "batch_size": 64,
        "optimizer": "adam",
        "weight_decay": 5e-4,
        "schedule": "multistep",
        "milestones": (2, 5),
        "gamma": 0.1,
    }

    @dataclass(frozen=True)
    class Config:
        temperature: float = inference_temperature()
        ce_scale: float | None = setting(
            None,
            "the scale of the training cross-entropies (L_ce-T, L_ce-V, L_agg, L_gs); `null` is the backbone's "
            "own `logit_scale.exp()`, as the reference (100 for OpenAI's ViT-B/16 and for the offline `seca-shapes` "
            "CLIP)",
            ABOVE_ZERO,
        )
        adapter: AdapterConfig = section(AdapterConfig)
        prompt: PromptConfig = section(PromptConfig)
        classifier: PromptClassifierConfig = section(PromptClassifierConfig)
        stem_cache_gb: float = setting(
            4.0,
            "memory for the frozen stems of a task's training images: everything the image encoder computes "
            "before the first adapter, kept per image so that no step recomputes it (2 × tokens × width × 4 bytes per "
            "image: 1.15 MiB for ViT-B/16, 2.7 GiB for an ImageNet-R task of 2,400 images). A task whose stems would "
            "need more recomputes them every step; `0` never keeps them. Identical results either way "
            "([performance.md](performance.md))",
            Rule(lambda v: v >= 0, "0 or more (0: never keep the stems)"),
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        a, p = self.config.adapter, self.config.prompt
        blocks = resolve_blocks(a.blocks, self.backbone.num_blocks)
        self.adapters = self.backbone.new_adapters(blocks, a.bottleneck, a.scale, a.dropout)
        self.prompts = TaskPrompts(self.backbone.text_width, p.length, p.init_std)
        self.texts = PromptedClassTexts(self.backbone, self.class_names, p.length)
        # Normalised text features of seen classes under the prompts that no longer train, [prompts, classes, E].
        # It grows at the start of a task (old prompts x new classes, which SG-AKT reads) and at its end (the
        # finished prompt x every class), so each prompt-class pair is encoded once (spec §7b).
        self._frozen_text = torch.empty(0, 0, self.backbone.embed_dim, device=self.device)
        # The frozen stem of every training image of the current task (spec §7b), when it fits the budget.
        self._stems: FrozenStem | None = None

    # ---- features --------------------------------------------------------------------------------
    def image_features(self, images: torch.Tensor | None = None, stem: FrozenStem | None = None) -> torch.Tensor:
        """Normalised adapted image features f(x), of ``images`` or of their frozen ``stem``."""
        return F.normalize(self.backbone.encode_image(images, self.adapters, stem=stem), dim=-1)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The normalised adapted image features f(x) that both classifier branches score (SECA's and SECA++'s
        visual head too), in float32."""
        return widen(self.image_features(images))

    def class_text(self, prompt: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Normalised text features of classes ``start..stop-1`` under ``prompt``."""
        return F.normalize(self.texts.encode(prompt, slice(start, stop)), dim=-1)

    @torch.no_grad()
    def frozen_text(self, prompts: int, classes: int) -> torch.Tensor:
        """``[prompts, classes, E]``: classes ``0..classes-1`` under the first ``prompts`` prompts, which must
        no longer train; encodes only the pairs not encoded before."""
        done_prompts, done_classes = self._frozen_text.shape[:2]
        if prompts <= done_prompts and classes <= done_classes:  # every inference batch: nothing to encode
            return self._frozen_text[:prompts, :classes]
        total_prompts, total_classes = max(prompts, done_prompts), max(classes, done_classes)
        stacked = torch.stack(list(self.prompts)[:total_prompts]) if total_prompts else None
        cache = self._frozen_text
        if total_classes > done_classes:  # old prompts, new classes
            cache = (
                torch.cat([cache, self._encode_frozen(stacked[:done_prompts], done_classes, total_classes)], 1)
                if done_prompts
                else cache.new_empty(0, total_classes, cache.shape[2])
            )
        if total_prompts > done_prompts:  # new prompts, every class
            cache = torch.cat([cache, self._encode_frozen(stacked[done_prompts:], 0, total_classes)], 0)
        self._frozen_text = cache
        return cache[:prompts, :classes]

    def _encode_frozen(self, prompts: torch.Tensor, start: int, stop: int, pairs: int = 4096) -> torch.Tensor:
        """Normalised ``[T, stop - start, E]``, a bounded number of prompt-class pairs at a time."""
        step = max(1, pairs // prompts.shape[0])
        return torch.cat(
            [
                F.normalize(self.texts.encode_prompts(prompts, slice(c, min(c + step, stop))), dim=-1)
                for c in range(start, stop, step)
            ],
            dim=1,
        )

    def batch_stem(self, batch: Batch) -> FrozenStem:
        """The frozen stem of a batch of the current task's training images: kept, or computed now."""
        if self._stems is not None:
            return self._stems[batch.index]
        return self.backbone.stem(batch.images, self.adapters.first_block)

    def keeps_stems(self, data: TaskData) -> bool:
        """Whether the task's stems fit in ``method.stem_cache_gb``."""
        return self.backbone.stem_bytes(self.adapters.first_block, data.size) <= self.config.stem_cache_gb * 2**30

    def stem_pass(self, data: TaskData) -> Iterator[tuple[Batch, FrozenStem]]:
        """Every training image of the task once, in order, with its frozen stem; the stems are kept for
        the task's steps if they fit (``method.stem_cache_gb``)."""
        keep = self.keeps_stems(data)
        residual = output = stem = None
        for batch in data.batches():
            stem = self.backbone.stem(batch.images, self.adapters.first_block)
            if keep:
                if residual is None:
                    residual = stem.residual.new_empty((data.size, *stem.residual.shape[1:]))
                    output = stem.output.new_empty((data.size, *stem.output.shape[1:]))
                residual[batch.index], output[batch.index] = stem.residual, stem.output
            yield batch, stem
        if keep and stem is not None:
            self._stems = FrozenStem(stem.block, residual, output, stem.tokens)

    # ---- the protocol ----------------------------------------------------------------------------
    def begin_task(self, task: Task, data: TaskData) -> None:
        super().begin_task(task, data)
        self.prompts.add_task(self.task_rng(task), device=self.device)
        self._stems = None
        self._precompute(task, data)

    @torch.no_grad()
    def _precompute(self, task: Task, data: TaskData) -> None:
        """What stays fixed during the task, in one pass over its images (spec §7b): here the stems."""
        if self.keeps_stems(data):
            for _ in self.stem_pass(data):
                pass

    def extend_classes(self, names) -> None:
        super().extend_classes(names)
        self.texts = PromptedClassTexts(self.backbone, self.class_names, self.config.prompt.length)

    def rebuild(self, structure: dict) -> None:
        while len(self.prompts) < len(self.tasks):
            self.prompts.add_task(device=self.device)

    def after_restore(self) -> None:
        # Grown task by task as during training, so a restored model computes exactly the same numbers.
        self._frozen_text = self._frozen_text[:0, :0]
        for task in self.tasks:
            self.frozen_text(task.index + 1, task.stop)

    def parameter_groups(self) -> list[dict]:
        return [
            {"name": "adapter", "params": list(self.adapters.parameters())},
            {"name": "prompt", "params": [self.prompts.current]},
        ]

    @property
    def ce_scale(self) -> float:
        """The scale of the training cross-entropies: ``method.ce_scale``, else CLIP's own ``logit_scale.exp()``."""
        return self.backbone.logit_scale if self.config.ce_scale is None else self.config.ce_scale

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        task = self.task
        features = self.image_features(stem=self.batch_stem(batch))
        text = self.class_text(self.prompts.current, task.start, task.stop)
        logits = self.ce_scale * features @ text.T
        loss = F.cross_entropy(logits, batch.labels - task.start)  # L_ce-T over the current classes
        return {"loss": loss, "ce_text": loss.detach()}

    def end_task(self, task: Task, data: TaskData) -> None:
        self._stems = None
        if self.config.classifier.cache_text:
            self.frozen_text(len(self.prompts), task.stop)  # the finished prompt on every class

    @torch.no_grad()
    def inference_text_features(self) -> torch.Tensor:
        """[prompts, seen classes, E]: every seen class under every task prompt, normalised.

        All prompts are frozen at inference, so this is encoded once (incrementally, task by task) and
        kept; with ``classifier.cache_text: false`` every prompt is re-encoded for every batch, as the
        reference does.
        """
        if self.config.classifier.cache_text:
            return self.frozen_text(len(self.prompts), self.num_seen)
        return F.normalize(self.texts.encode_prompts(torch.stack(list(self.prompts)), slice(0, self.num_seen)), dim=-1)

    def scores_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """Class scores of normalised adapted features: the text branch of spec §6."""
        c = self.config
        return text_branch(features, self.inference_text_features(), c.temperature, c.classifier.hybrid_max)

    def frozen_kind(self) -> str:
        return f"stem@{self.adapters.first_block}"  # everything before the first adapter (spec §7b)

    def frozen_input(self, images: torch.Tensor) -> FrozenStem:
        return self.backbone.stem(images, self.adapters.first_block)

    @torch.no_grad()
    def predict_frozen(self, frozen: FrozenStem) -> torch.Tensor:
        return self.scores_from_features(self.image_features(stem=frozen))
