"""PROOF: task-specific projections over a frozen CLIP, fused with texts, prototypes and prompts by self-attention.

Zhou, Zhang, Wang, Ning, Ye, Zhan, Liu, "Learning without Forgetting for Vision-Language Models", TPAMI 2025
(arXiv 2305.19270); official code LAMDA-CL/C3Box (models/proof.py, utils/inc_net.py Proof_Net), first released as
github.com/zhoudw-zdw/PROOF. docs/specs/proof.md is the specification this file implements, section by section
(§ below), with C3Box's defaults.

Each task adds one linear projection of the frozen CLIP image embedding and one of the frozen text embedding (the
projected feature is the sum of the projections of every task so far, §2), three context prompts, and the visual
prototypes of its classes (the mean normalised frozen image embedding of each class, §2.3). One self-attention
layer fuses an image with the texts of the seen classes, their projected prototypes and the prompts (§3); the loss is
the cross-entropy of fused image against fused texts, a CLIP contrastive loss of the projected image and its class's
text, and the cross-entropy of fused image against fused prototypes (§4). A test image scores the sum of the three
matchings (§5). Training batches hold exemplars of old classes (the engine's memory, §6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DROPOUT, TEMPLATES, at_least, one_of, section, setting
from ..data.scenario import Task
from ._precision import widen
from ._recipes import LAMDA_SGD
from ._scores import stable_exp
from ._statistics import class_means
from .base import Batch, Learner, TaskData, register


@dataclass(frozen=True)
class ProofConfig:
    """PROOF's settings (docs/specs/proof.md §5-§6; defaults: C3Box's models/proof.py and utils/inc_net.py)."""

    templates: tuple[str, ...] = setting(
        ("a photo of a {}.",),
        "PROOF: the class text templates; training uses the first, a test averages the normalised projected texts "
        "of all (§2.2; the presets carry C3Box's per data set list)",
        TEMPLATES,
    )
    prompt_length: int = setting(3, "PROOF: context prompts added per task (§3)", at_least(1))
    dropout: float = setting(
        0.1, "PROOF: dropout on the fusion's attention weights and on its output while training (§3)", DROPOUT
    )
    fusion_mean: str = setting(
        "batch",
        "PROOF: the fused texts and prototypes an image is matched with: their mean over the batch (`batch`, the "
        "official code: an image's score depends on its batch) or the image's own (`image`) (§6 item 1)",
        one_of("batch", "image"),
    )
    normalize_test_image: bool = setting(
        False,
        "PROOF: L2-normalise the projected image at test as in training (the official code does not, §6 item 2)",
    )
    train_old_text_projections: bool = setting(
        True,
        "PROOF: every task trains the text projections of earlier tasks too (the official code; false freezes "
        "them, as the paper's words say, §6 item 3)",
    )
    frozen_decay: bool = setting(
        False,
        "PROOF: frozen old image projections and prompts still take the optimiser's weight decay and momentum "
        "with a zero gradient, as under torch 1.11 in the original repository (§6 item 4; C3Box: false)",
    )


def clip_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric contrastive loss of paired rows (image i with text i), at scale ``scale`` (§4.2)."""
    logits = scale * image @ text.T
    targets = torch.arange(len(image), device=image.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


class Fusion(nn.Module):
    """One-head self-attention with a residual and a layer norm (C3Box's MultiHeadAttention(1, d, d, d), §3).

    The sequence of image i is [image_i, shared...]; the shared tokens (texts, prototypes, prompts) are the same for
    every image, so their queries, keys and values are computed once."""

    def __init__(self, dim: int, generator: torch.Generator):
        super().__init__()
        std = math.sqrt(2.0 / (dim + dim))
        self.query = nn.Parameter(torch.randn(dim, dim, generator=generator) * std)
        self.key = nn.Parameter(torch.randn(dim, dim, generator=generator) * std)
        self.value = nn.Parameter(torch.randn(dim, dim, generator=generator) * std)
        self.out = nn.Linear(dim, dim)
        bound = 1 / math.sqrt(dim)
        with torch.no_grad():
            self.out.weight.copy_(torch.randn(dim, dim, generator=generator) * std)  # xavier_normal_
            self.out.bias.copy_(torch.empty(dim).uniform_(-bound, bound, generator=generator))
        self.norm = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, shared: torch.Tensor, dropout: float) -> torch.Tensor:
        """``[B, 1 + L, d]``: the fused tokens of each image's sequence (image [B, d], shared [L, d]); ``dropout`` is
        the rate while training, 0 at test."""
        batch = image.shape[0]
        tokens = torch.cat([image[:, None], shared.expand(batch, *shared.shape)], dim=1)

        def project(weight: torch.Tensor) -> torch.Tensor:
            own, common = image @ weight.T, shared @ weight.T
            return torch.cat([own[:, None], common.expand(batch, *common.shape)], dim=1)

        q, k, v = project(self.query), project(self.key), project(self.value)
        attention = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(image.shape[-1]), dim=2)
        attention = F.dropout(attention, dropout, dropout > 0)
        fused = F.dropout(self.out(attention @ v), dropout, dropout > 0)
        return self.norm(fused + tokens)


def _linear(dim: int, generator: torch.Generator) -> nn.Linear:
    """nn.Linear(dim, dim) with PyTorch's default initialisation, drawn from ``generator``."""
    layer = nn.Linear(dim, dim)
    bound = 1 / math.sqrt(dim)
    with torch.no_grad():
        layer.weight.copy_(torch.empty(dim, dim).uniform_(-bound, bound, generator=generator))
        layer.bias.copy_(torch.empty(dim).uniform_(-bound, bound, generator=generator))
    return layer


def _zero_grad_path(p: torch.Tensor) -> torch.Tensor:
    """``p``'s value, through which ``p`` receives a gradient of exactly zero (§6 item 4)."""
    return p.detach() + 0 * p


@register
class Proof(Learner):
    """PROOF (TPAMI 2025): per-task projections over frozen CLIP, cross-modal fusion, prototypes, exemplars."""

    name = "proof"
    default_lr = {"proof": 1e-3}
    exemplars = True
    # C3Box's exps/proof.json and models/proof.py (docs/specs/proof.md §5)
    recipe = {
        **LAMDA_SGD,
        "epochs": 10,
        "batch_size": 64,
        "memory_per_class": 20,
    }
    loss_words = {"clip": "matching images with their class texts", "proto": "matching images with class prototypes"}

    @dataclass(frozen=True)
    class Config:
        proof: ProofConfig = section(ProofConfig)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        dim = self.backbone.embed_dim
        self.image_projections = nn.ModuleList()
        self.text_projections = nn.ModuleList()
        self.prompts = nn.ParameterList()
        self.fusion = Fusion(dim, torch.Generator().manual_seed(self.seed)).to(self.device)
        model_scale = getattr(getattr(self.backbone, "model", None), "logit_scale", None)
        start = (
            model_scale.detach().float().clone().reshape(())
            if isinstance(model_scale, torch.Tensor)
            else torch.tensor(math.log(self.backbone.logit_scale))
        )
        self.logit_scale = nn.Parameter(start.to(self.device))  # CLIP's, trained by the contrastive loss (§4.2)
        self.register_buffer("prototypes", torch.empty(0, dim, device=self.device))
        # the frozen CLIP text feature of every (seen class, template), not normalised: [C, T, d]
        self.register_buffer(
            "class_texts", torch.empty(0, len(self.settings.templates), dim, device=self.device), persistent=False
        )
        self._features: torch.Tensor | None = None  # frozen embeddings of the task's images, then of the exemplars
        self._feature_labels: torch.Tensor | None = None
        self._test: dict | None = None  # what a test computes of the texts and prototypes, once per learned state

    @property
    def settings(self) -> ProofConfig:
        return self.config.proof

    # ---- a task ---------------------------------------------------------------------------------
    def begin_task(self, task: Task, data: TaskData) -> None:
        super().begin_task(task, data)
        self._encode_texts()
        self._add_task_parts(task)
        self._set_trainable()
        features, labels = data.frozen_embeddings(self.backbone)
        features, labels = widen(features), labels.to(features.device)
        # §2.3: the mean normalised frozen embedding of each new class, over the task's own images (every shard)
        means = class_means(F.normalize(features, dim=-1), labels, task.labels)
        self.prototypes = torch.cat([self.prototypes, means.to(self.prototypes)])
        if data.memory is not None and data.memory.size:  # §7: training rows from len(task) on are the exemplars
            kept, kept_labels = data.memory.frozen_embeddings(self.backbone)
            features = torch.cat([features, widen(kept).to(features)])
            labels = torch.cat([labels, kept_labels.to(labels)])
        self._features, self._feature_labels = features, labels
        self._test = None

    def _add_task_parts(self, task: Task) -> None:
        dim = self.backbone.embed_dim
        generator, dtype = self.task_rng(task), self.logit_scale.dtype  # float64 if the learner was made so
        self.image_projections.append(_linear(dim, generator).to(self.device, dtype))
        self.text_projections.append(_linear(dim, generator).to(self.device, dtype))
        prompt = torch.randn(self.settings.prompt_length, dim, generator=self.task_rng(task, stream=1))
        self.prompts.append(nn.Parameter(prompt.to(self.device, dtype)))

    def _set_trainable(self) -> None:
        """§4.4: the newest image projection and prompt train; older ones are frozen (unless ``frozen_decay``, where
        they stay in the optimiser and receive zero gradients); the text projections, the fusion and the scale train."""
        s = self.settings
        for k, (image, text, prompt) in enumerate(zip(self.image_projections, self.text_projections, self.prompts)):
            newest = k == len(self.prompts) - 1
            for p in image.parameters():
                p.requires_grad_(newest or s.frozen_decay)
            prompt.requires_grad_(newest or s.frozen_decay)
            for p in text.parameters():
                p.requires_grad_(newest or s.train_old_text_projections)

    def parameter_groups(self) -> list[dict]:
        return [{"name": "proof", "params": list(self.parameters())}]

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        self._test = None
        labels = batch.labels
        image = F.normalize(self.project_images(self._batch_features(batch), training=True), dim=-1)
        texts = F.normalize(self._project(self.text_projections, self.class_texts[:, 0], training=True), dim=-1)
        fused_image, fused_texts, fused_prototypes = self.fuse(image, texts, self._prototype_tokens(True), True)
        losses = {
            "ce": F.cross_entropy(self._match(fused_image, fused_texts), labels),
            "clip": clip_loss(image, texts[labels], self.logit_scale.exp()),
            "proto": F.cross_entropy(self._match(fused_image, fused_prototypes), labels),
        }
        losses["loss"] = losses["ce"] + losses["clip"] + losses["proto"]
        return losses

    def _batch_features(self, batch: Batch) -> torch.Tensor:
        """The frozen image embeddings of the batch, from those computed at the task's start (§7): a row's index is
        its position in the task's images, then in the exemplars (the engine's joined set). A row whose label does
        not match the one kept there is encoded now."""
        labels = batch.labels
        if not len(self._features):  # an empty shard, with exemplars none
            with torch.no_grad():
                return widen(self.backbone.encode_image(batch.images))
        index = batch.index.to(self._features.device)
        found = (index >= 0) & (index < len(self._features))
        safe = torch.where(found, index, torch.zeros_like(index))
        found &= self._feature_labels[safe] == labels
        if bool(found.all()):
            return self._features[index]
        features = self._features[safe].clone()
        with torch.no_grad():
            features[~found] = widen(self.backbone.encode_image(batch.images[~found])).to(features.dtype)
        return features

    @torch.no_grad()
    def end_task(self, task: Task, data: TaskData) -> None:
        self._features = self._feature_labels = None
        self._test = None

    # ---- the model (§2-§3) ------------------------------------------------------------------------
    def _project(self, projections: nn.ModuleList, x: torch.Tensor, training: bool) -> torch.Tensor:
        """Σ_k P_k(x) over the tasks' projections (§2.1)."""
        total = None
        frozen = training and self.settings.frozen_decay
        for k, layer in enumerate(projections):
            weight, bias = layer.weight, layer.bias
            if frozen and k < len(projections) - 1 and projections is self.image_projections:
                weight, bias = _zero_grad_path(weight), _zero_grad_path(bias)
            out = F.linear(x, weight, bias)
            total = out if total is None else total + out
        return total

    def project_images(self, frozen: torch.Tensor, training: bool = False) -> torch.Tensor:
        """Σ_k P^I_k(e(x)) of frozen embeddings e(x), not normalised (§2.1)."""
        return self._project(self.image_projections, widen(frozen), training)

    def _prototype_tokens(self, training: bool) -> torch.Tensor:
        return F.normalize(self._project(self.image_projections, self.prototypes, training), dim=-1)

    def _prompt_tokens(self, training: bool) -> torch.Tensor:
        prompts = list(self.prompts)
        if training and self.settings.frozen_decay:
            prompts = [_zero_grad_path(p) for p in prompts[:-1]] + prompts[-1:]
        return torch.cat(prompts)

    def fuse(
        self, image: torch.Tensor, texts: torch.Tensor, prototypes: torch.Tensor, training: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(fused images [B, d], fused texts, fused prototypes) of §3: the texts and prototypes [C, d] averaged over
        the batch (``fusion_mean: batch``) or [B, C, d] per image."""
        classes = texts.shape[0]
        shared = torch.cat([texts, prototypes, self._prompt_tokens(training)])
        tokens = self.fusion(image, shared.to(image.dtype), self.settings.dropout if training else 0.0)
        fused_texts, fused_prototypes = tokens[:, 1 : 1 + classes], tokens[:, 1 + classes : 1 + 2 * classes]
        if self.settings.fusion_mean == "batch":
            fused_texts, fused_prototypes = fused_texts.mean(0), fused_prototypes.mean(0)
        return tokens[:, 0], fused_texts, fused_prototypes

    @staticmethod
    def _match(image: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Dot products of each fused image with the fused class tokens (shared [C, d], or its own [B, C, d])."""
        if classes.dim() == 2:
            return image @ classes.T
        return torch.einsum("bd,bcd->bc", image, classes)

    # ---- inference (§5) -----------------------------------------------------------------------------
    def frozen_kind(self) -> str:
        return "embedding"  # e(x): every learned part acts on the frozen CLIP image embedding (§2.1)

    @torch.no_grad()
    def _test_parts(self) -> dict:
        """The test-time texts (each class's normalised projected texts averaged over the templates, renormalised) and
        prototype tokens: fixed until the learner trains again."""
        if self._test is None:
            texts = F.normalize(self._project(self.text_projections, self.class_texts[: self.num_seen], False), dim=-1)
            self._test = {
                "texts": F.normalize(texts.mean(1), dim=-1),
                "prototypes": self._prototype_tokens(False)[: self.num_seen],
            }
        return self._test

    def _test_image(self, frozen: torch.Tensor) -> torch.Tensor:
        image = self.project_images(frozen)
        return F.normalize(image, dim=-1) if self.settings.normalize_test_image else image

    def test_logits(self, frozen: torch.Tensor) -> torch.Tensor:
        """§5: projected image · texts + fused image · fused texts + fused image · fused prototypes, over the seen
        classes (C3Box's _compute_accuracy / _eval_cnn)."""
        parts = self._test_parts()
        image = self._test_image(frozen)
        fused_image, fused_texts, fused_prototypes = self.fuse(image, parts["texts"], parts["prototypes"], False)
        return (
            image @ parts["texts"].T
            + self._match(fused_image, fused_texts)
            + self._match(fused_image, fused_prototypes)
        )

    @torch.no_grad()
    def predict_frozen(self, frozen: torch.Tensor) -> torch.Tensor:
        return stable_exp(self.test_logits(frozen))

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The normalised fused image token (§3) of each image, as a test computes it: it depends on the image alone."""
        parts = self._test_parts()
        fused_image, _, _ = self.fuse(
            self._test_image(self.frozen_input(images)), parts["texts"], parts["prototypes"], False
        )
        return F.normalize(fused_image, dim=-1)

    # ---- saving and restoring -----------------------------------------------------------------------
    def rebuild(self, structure: dict) -> None:
        for task in self.tasks[len(self.prompts) :]:
            self._add_task_parts(task)

    def after_restore(self) -> None:
        self.class_texts = self.class_texts[:0]
        for task in self.tasks:  # task by task, as during training: the same numbers to the last bit
            self._encode_texts(task.stop)
        self._set_trainable()
        self._test = None

    def _encode_texts(self, stop: int | None = None) -> None:
        names = self.class_names[self.class_texts.shape[0] : self.num_seen if stop is None else stop]
        if names:
            templates = self.settings.templates
            texts = [t.format(name.replace("_", " ")) for name in names for t in templates]
            with torch.no_grad():
                new = widen(self.backbone.encode_texts(texts)).reshape(len(names), len(templates), -1)
            self.class_texts = torch.cat([self.class_texts, new.to(self.class_texts)])
