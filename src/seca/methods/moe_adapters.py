"""MoE-Adapters: a mixture of bottleneck-adapter experts in every block of both CLIP encoders, trained by CLIP's loss.

Yu, Zhuge, Zhang, Hu, Wang, Lu, He, "Boosting Continual Learning of Vision-Language Models via Mixture-of-Experts
Adapters", CVPR 2024 (arXiv 2403.11549); official code github.com/JiazuoYu/MoE-Adapters4CL. This is its
class-incremental form (the repository's ``cil/`` code), which docs/specs/moe-adapters.md specifies section by
section (§ below), with the official code's defaults.

Every residual block of the image and the text encoder gains E experts ``scale * up(dropout(relu(down(h))))``
(with biases) and a router that weighs them for each sequence from the stream ``h`` at its first position
(the class token; the start token of a text) after the block's attention: ``x = h + mlp(ln_2(h)) +
Σ_e g_e expert_e(h)``, ``g = softmax over the top k of (h₀ W_g + ε ⊙ (softplus(h₀ W_n) + 0.01))`` (§2). One set of
experts and routers learns every task in turn with the cross-entropy of ``logit_scale · cos(f(x), g(c))`` over
the current task's classes (§3); nothing is stored between tasks (§4.1). A test image is scored against the
texts of every class seen so far (§4.2); without gate noise at test (the default) those text features are fixed
once a task ends, so they are encoded once then, not for every test batch (§9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ABOVE_ZERO, DROPOUT, FRACTION, TEMPLATE, at_least, section, setting
from ..data.scenario import Task
from ..errors import SecaError
from ._precision import widen
from ._texts import AdaptedTexts
from .base import Batch, Learner, TaskData, register

NOISE_FLOOR = 1e-2  # the official ``noise_epsilon``: the least standard deviation of the gate noise (§2)


@dataclass(frozen=True)
class MoEAdaptersConfig:
    """MoE-Adapters' settings (docs/specs/moe-adapters.md §5; defaults: the official class-incremental code)."""

    template: str = setting("a bad photo of a {}.", "MoE-Adapters: the text template of every class (§3)", TEMPLATE)
    experts: int = setting(2, "MoE-Adapters: experts in every block of both encoders (§2)", at_least(1))
    top_k: int = setting(
        2,
        "MoE-Adapters: experts each sequence's router keeps (softmax over their gate logits; at most `experts`) (§2)",
        at_least(1),
    )
    bottleneck: int = setting(64, "MoE-Adapters: the width of each expert's bottleneck (§2)", at_least(1))
    scale: float = setting(0.1, "MoE-Adapters: each expert's output is multiplied by this (§2)", ABOVE_ZERO)
    dropout: float = setting(0.1, "MoE-Adapters: dropout inside each expert while training (§2)", DROPOUT)
    gate_noise: bool = setting(
        True, "MoE-Adapters: add learned Gaussian noise to the gate logits while training (noisy top-k gating, §2)"
    )
    test_gate_noise: bool = setting(
        False,
        "MoE-Adapters: add it at test too, as the official code does (its "
        "switch is read once, when the blocks are built): predictions become random "
        "(§6 item 3)",
    )
    label_smoothing: float = setting(0.0, "MoE-Adapters: label smoothing of the cross-entropy (`ls`, §3)", FRACTION)


class Mixture(nn.Module):
    """The experts and the router of one block, for a stream of width ``width`` (spec §2).

    The experts' weights are stacked (``down[e]`` is expert e's down-projection, transposed), and every expert
    runs on every sequence, weighted by its gate: a gate that top-k zeroes contributes exactly nothing, so this
    is the official sparse dispatch's sum (it runs an expert only on the sequences that kept it).
    """

    def __init__(self, width: int, settings: MoEAdaptersConfig, generator: torch.Generator):
        super().__init__()
        experts, bottleneck = settings.experts, settings.bottleneck
        bound = 1 / math.sqrt(width)  # nn.Linear's Kaiming-uniform (a = sqrt 5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        self.down = nn.Parameter(torch.empty(experts, width, bottleneck).uniform_(-bound, bound, generator=generator))
        self.down_bias = nn.Parameter(torch.zeros(experts, bottleneck))
        self.up = nn.Parameter(torch.zeros(experts, bottleneck, width))  # a fresh expert adds nothing
        self.up_bias = nn.Parameter(torch.zeros(experts, width))
        self.router = nn.Parameter(torch.zeros(width, experts))
        self.noise = nn.Parameter(torch.zeros(width, experts))
        self.top_k, self.scale, self.dropout = settings.top_k, settings.scale, settings.dropout
        self.gate_noise, self.test_gate_noise = settings.gate_noise, settings.test_gate_noise

    def gates(self, first: torch.Tensor) -> torch.Tensor:
        """``[B, E]`` gates from ``[B, width]`` first positions: the top k noisy logits, softmaxed; zero elsewhere."""
        logits = first @ self.router.to(first.dtype)
        if self.gate_noise and (self.training or self.test_gate_noise):
            spread = F.softplus(first @ self.noise.to(first.dtype)) + NOISE_FLOOR
            logits = logits + torch.randn_like(logits) * spread
        top, chosen = logits.topk(self.top_k, dim=1)
        return torch.zeros_like(logits).scatter(1, chosen, top.softmax(dim=1))

    def forward(self, x: torch.Tensor, sequence_length: int | None = None) -> torch.Tensor:
        """``Σ_e g_e · expert_e(x)`` for ``x`` ``[B, L, width]``, the stream after a block's attention.

        When ``x`` holds only the first L positions of sequences of ``sequence_length`` (the class token of the
        image encoder's last block), the dropout masks are still drawn for whole sequences, so the random
        stream is that of the full computation."""
        gates = self.gates(x[:, 0])
        dtype = x.dtype
        hidden = torch.relu(
            torch.einsum("blw,ewk->eblk", x, self.down.to(dtype)) + self.down_bias.to(dtype)[:, None, None]
        )
        if self.training and self.dropout > 0:
            length = sequence_length or x.shape[1]
            mask = F.dropout(hidden.new_ones(*hidden.shape[:2], length, hidden.shape[-1]), self.dropout)
            hidden = hidden * mask[:, :, : x.shape[1]]
        out = torch.einsum("eblk,ekw->eblw", hidden, self.up.to(dtype)) + self.up_bias.to(dtype)[:, None, None]
        return self.scale * torch.einsum("be,eblw->blw", gates, out)


class Mixtures(nn.Module):
    """One :class:`Mixture` per block of an encoder (``adapter_for(block)``, as the backbone's encoders take)."""

    def __init__(self, width: int, blocks: int, settings: MoEAdaptersConfig, generator: torch.Generator):
        super().__init__()
        self.mixtures = nn.ModuleList(Mixture(width, settings, generator) for _ in range(blocks))
        self.first_block = 0

    def adapter_for(self, block: int) -> Mixture:
        return self.mixtures[block]


@register
class MoEAdapters(AdaptedTexts, Learner):
    """MoE-Adapters (CVPR 2024): mixtures of adapter experts with noisy top-k routers in both CLIP encoders."""

    name = "moe-adapters"
    default_lr = {"moe_adapters": 1e-3}
    renamed_lr = {"moe": "moe_adapters"}  # its group's name before 0.2
    # the official class-incremental recipe (docs/specs/moe-adapters.md §5): one epoch, AdamW without weight decay,
    # a cosine per step after 30 warm-up steps, in fp32; batch 64 (TinyImageNet's; ImageNet-R has no official one)
    recipe = {
        "epochs": 1,
        "batch_size": 64,
        "optimizer": "adamw",
        "weight_decay": 0.0,
        "schedule": "cosine",
        "warmup_steps": 30,
        "amp": "off",
    }

    @dataclass(frozen=True)
    class Config:
        moe_adapters: MoEAdaptersConfig = section(MoEAdaptersConfig)

    @classmethod
    def check_config(cls, config) -> None:
        settings = getattr(config, "method", config).moe_adapters
        if settings.top_k > settings.experts:
            raise SecaError(
                f"moe-adapters: method.moe_adapters.top_k {settings.top_k} is more than its "
                f"{settings.experts} experts; choose top_k between 1 and method.moe_adapters.experts"
            )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings = self.settings
        self.check_config(self.config)
        text = self.backbone.text
        text.blocks_for_adapters()  # refused here, with one line, if adapters cannot join the text blocks
        generator = torch.Generator().manual_seed(self.seed)
        self.image = Mixtures(self.backbone.vision_width, self.backbone.num_blocks, settings, generator)
        self.text = Mixtures(text.width, text.num_blocks, settings, generator)
        self.register_buffer("text_features", torch.empty(0, self.backbone.embed_dim), persistent=False)
        self._tokens: torch.Tensor | None = None

    @property
    def settings(self) -> MoEAdaptersConfig:
        return self.config.moe_adapters

    # ---- a task ---------------------------------------------------------------------------------
    def begin_task(self, task: Task, data: TaskData) -> None:
        super().begin_task(task, data)
        self._tokens = self._tokenize(self.class_names[task.start : task.stop])

    def parameter_groups(self) -> list[dict]:
        return [{"name": "moe_adapters", "params": list(self.image.parameters()) + list(self.text.parameters())}]

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """§3: the cross-entropy over the current task's classes; both encoders' experts get gradients."""
        images = F.normalize(self.backbone.encode_image(batch.images, adapters=self.image), dim=-1)
        texts = F.normalize(self._encode(self._tokens), dim=-1)
        logits = self.backbone.logit_scale * images @ texts.T
        loss = F.cross_entropy(logits, batch.labels - self.task.start, label_smoothing=self.settings.label_smoothing)
        return {"ce": loss, "loss": loss}

    @torch.no_grad()
    def end_task(self, task: Task, data: TaskData) -> None:
        self._tokens = None
        self._cache_texts()

    # ---- inference and restoring ---------------------------------------------------------------------
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """f(x): the normalised image features through the image encoder's experts, in float32 (§4.2)."""
        return F.normalize(widen(self.backbone.encode_image(images, adapters=self.image)), dim=-1)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """§4.2: ``softmax(logit_scale · cos(f(x), g(c)))`` over every seen class, up to its sum."""
        features = self.embed(images)
        texts = self.text_features
        if self.settings.test_gate_noise:  # the text side's gates are random too: encode for every batch
            texts = F.normalize(widen(self._encode(self._tokenize(self.class_names[: self.num_seen]))), dim=-1)
        logits = self.backbone.logit_scale * features @ texts.T.to(features)
        return (logits - logits.amax(dim=1, keepdim=True)).exp()

    def after_restore(self) -> None:
        self._cache_texts()
