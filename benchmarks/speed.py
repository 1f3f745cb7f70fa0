"""A learner's fast paths against the naive computation, on the same model, data and seed (spec §7b).

The naive path computes what the reference implementation computes: every training step runs each pool
snapshot's teacher from the image and encodes every seen class over the whole text context, every
evaluation batch re-encodes every prompt, and every block runs over every token. The fast path is what
``seca`` runs: shared-prefix text encoding, teachers and frozen stems kept per task, text features
encoded once per prompt and class, the last block on the class token alone.

A first process brings a learner to the last task with a full pool (each earlier task moves the trainable
parameters by a seeded random draw instead of training, so the snapshots differ) and saves it. Each path
then runs in its own process (so its peak memory is its own) from that state: it begins the last task,
takes an untimed step, then timed steps, ends the task and predicts timed evaluation batches, all in float32
(or the chosen AMP precision). The optimiser runs with learning rate 0, so both paths stay on the same
parameters. One task's time is composed from the measured parts (a full task would take hours on a CPU):
the set-up per image times the task's images, the steps of its epochs, the end of the task.

Exactness is checked apart from the timing, in float64: each path, in its own process again, begins the
last task, takes one step and predicts one batch with every tensor in float64, and the two are compared
loss term by loss term, gradient by gradient and score by score. A reformulation that is exact agrees to
rounding in float64 (about 1e-13 here); a real difference, even one as small as a float32 rounding, stands
out by orders of magnitude (docs/performance.md#exactness). ``--break`` puts such a difference into the
fast path, to show that the check sees it.

    python benchmarks/speed.py                      # ViT-B/16 architecture, random weights, 200 classes in 10 tasks
    python benchmarks/speed.py --small              # the offline seca-shapes CLIP, 100 classes in 10 tasks
    python benchmarks/speed.py --json speed.json    # also write the table and the ratios as JSON
    python benchmarks/speed.py --small --break prefix-token   # a broken fast path: agree: false
    python benchmarks/speed.py --method rapf        # a competitor against its official code's computation

``--method`` picks the learner (default seca). Each competitor's naive path is what its official code computes
(docs/specs/<method>.md §9): RAPF runs the image encoder at every step and again for the task's statistics;
MoE-Adapters and Mind the Gap encode texts over the whole context and run the last image block over every
token, re-encode the seen classes' texts for every test batch, and Mind the Gap encodes every seen class at
every step and the task's images again in every agent epoch. MoE-Adapters' exactness check turns the experts'
dropout off in both paths (a text cut after its end token draws masks of another shape than the whole context).
PROOF, ENGINE, BOFA and CLG-CBM (C3Box's codes) encode every text over the whole context and run the last image
block over every token. PROOF runs the frozen image encoder at every step, encodes every seen class's text and each
row's class text again at every step, and projects the fusion's shared tokens once per image's sequence; ENGINE runs
the image encoder at every step, encodes every seen class's text (for the step's training accuracy) and each row's
class text at every step, the task's images again at its end (prototypes), and per test batch runs the image encoder
twice and encodes the re-ranking's descriptions; BOFA runs the image encoder at every step, twice per test batch, and
again over the task while its λ is 0; CLG-CBM keeps the task's features for its concept search as seca does, and
encodes the task's images twice more at the task's end (class statistics, then the bottleneck's training set), so
its steps are the same on both paths. ENGINE's re-ranking runs in float32 on both paths of the check (seca keeps its
texts in float32), and CLG-CBM's search cross-entropy is float32 on both (the learner casts its logits).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from seca.clip.backbone import ClipBackbone, FrozenStem, load_backbone
from seca.clip.text import PromptedClassTexts
from seca.config import TrainConfig
from seca.data.scenario import ClassIncrementalScenario
from seca.data.sets import packaged_table
from seca.data.shapes import class_names as shapes_class_names
from seca.engine.configure import method_config
from seca.engine.data import TaskImages
from seca.engine.device import amp_dtype, autocast, resolve_device, set_threads
from seca.engine.frozen import FrozenInputs
from seca.engine.train import make_optimizer
from seca.io.feature_store import content_digest
from seca.methods import Batch, TaskData, build_learner
from seca.methods._precision import widen
from seca.methods._scores import stable_exp
from seca.methods._statistics import class_means
from seca.methods.bofa import BOFA, bofa_scores
from seca.methods.clg_cbm import CLGCBM
from seca.methods.engine import Engine, discriminant
from seca.methods.mind_the_gap import MindTheGap
from seca.methods.moe_adapters import MoEAdapters
from seca.methods.proof import Fusion, Proof, clip_loss
from seca.methods.rapf import RAPF
from seca.methods.seca import SECA
from seca.methods.seca_parts.teachers import SGAKTConfig

# The exactness check runs in float64 (unit roundoff 1.1e-16). An exact reformulation differs from the naive
# computation by rounding only: about 1e-13 relative on these models. TOLERANCE sits four orders above that and
# two below a single float32 rounding (6e-8), so any real difference, even a stray float32 cast, fails it
# (docs/performance.md#exactness).
TOLERANCE = 1e-9
ZERO_GRADIENT = 1e-10  # a gradient below this fraction of the largest one, in both paths, is zero (in exact arithmetic)
BREAKS = {
    "prefix-token": "the shared text prefix loses its last prompt vector",
    "float32-teachers": "the kept teacher features are rounded to float32",
}


# ---- the naive path --------------------------------------------------------------------------------


class ReferenceBackbone(ClipBackbone):
    """The image encoder as the reference runs it: every block over every token, from the image every time
    (its "stem" is only the patch embedding, so nothing frozen is shared between passes)."""

    def stem(self, images: torch.Tensor, block: int) -> FrozenStem:
        x = self.model.visual._embeds(images)
        return FrozenStem(-1, x, x, x.shape[1])

    def _block_parts(self, index: int, x: torch.Tensor, attention=None) -> tuple[torch.Tensor, torch.Tensor]:
        return full_block(self, index, x, attention)


def full_block(
    backbone: ClipBackbone, index: int, x: torch.Tensor, attention=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Block ``index`` over every token (no class-token shortcut in the last block)."""
    block = backbone.blocks[index]
    h = block.ln_1(x)
    residual = x + block.ls_1(block.attention(q_x=h) if attention is None else attention(block.attn, h, h))
    return residual, residual + block.ls_2(block.mlp(block.ln_2(residual)))


class FullSequenceBackbone(ClipBackbone):
    """The image encoder as the competitors' official codes run it: the last block over every token too."""

    def _block_parts(self, index: int, x: torch.Tensor, attention=None) -> tuple[torch.Tensor, torch.Tensor]:
        return full_block(self, index, x, attention)


class NaiveSECA(SECA):
    """SECA computed as the reference computes it. With ``cache_teachers``, ``cache_text`` off and no stem
    budget (see :func:`naive_method`), on a :class:`ReferenceBackbone`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # every class text over the whole context, each sequence whole
        self.texts = PromptedClassTexts(
            self.backbone, self.class_names, self.config.prompt.length, shared_prefix=False, cut=False
        )

    def teacher_inputs(self, stem: FrozenStem, frozen=None) -> torch.Tensor:
        with torch.no_grad():  # one snapshot after another, each through the whole encoder
            tokens = [
                self.backbone.encode_image(stem=stem, adapters=m, output="class_token")
                for m in self.teacher.pool.members
            ]
            return F.normalize(widen(torch.stack(tokens, dim=1)), dim=-1)


def naive_method(method):
    return dataclasses.replace(
        method,
        stem_cache_gb=0.0,
        sg_akt=dataclasses.replace(method.sg_akt, cache_teachers=False),
        classifier=dataclasses.replace(method.classifier, cache_text=False),
    )


class NaiveRAPF(RAPF):
    """RAPF as its official code computes it: the image encoder at every step, and again for the statistics."""

    def _embed_task(self, data: TaskData):
        return None

    def _image_features(self, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            return widen(self.backbone.encode_image(batch.images))

    def end_task(self, task, data: TaskData) -> None:
        self._features = RAPF._embed_task(self, data)
        super().end_task(task, data)


class WholeContextTexts:
    """Texts tokenized over the whole context, and the seen classes' texts encoded for every test batch."""

    def _tokenize(self, names) -> torch.Tensor:
        return self.backbone.tokenize([self.settings.template.format(name) for name in names])

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        self._cache_texts()
        return super().predict(images)


class NaiveMoEAdapters(WholeContextTexts, MoEAdapters):
    """MoE-Adapters as its official code computes it."""


class NaiveMindTheGap(WholeContextTexts, MindTheGap):
    """Mind the Gap as its official code computes it: every seen class's text at every step (the loss reads the
    current task's columns), and the task's images encoded again in every epoch of the agent."""

    def begin_task(self, task, data: TaskData) -> None:
        super().begin_task(task, data)
        self._tokens = self._tokenize(self.class_names[: task.stop])

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        images = F.normalize(self.backbone.encode_image(batch.images, adapters=self.image), dim=-1)
        texts = F.normalize(self._encode(self._tokens), dim=-1)
        logits = self.backbone.logit_scale * images @ texts.T
        loss = F.cross_entropy(widen(logits[:, self.task.start :]), batch.labels - self.task.start)
        return {"ce": loss, "loss": loss}

    def end_task(self, task, data: TaskData) -> None:
        self._tokens = None
        self._cache_texts()
        features, labels = self._task_features(data)
        means = class_means(features.double(), labels, list(task.labels)).float()
        for _ in range(self.settings.agent_epochs):  # the official agent loop encodes them again (the same values)
            features = self._task_features(data)[0]
        self.agent = torch.cat([self.agent, self._train_agent(task, means, features, labels)])


class WholeContextBackbone(FullSequenceBackbone):
    """The official codes' CLIP for PROOF, ENGINE, BOFA and CLG-CBM: the last image block over every token, and every
    text tokenized to the whole context and encoded over all of it (seca cuts a text after its end token)."""

    @torch.no_grad()
    def encode_texts(self, texts, batch_size: int = 256) -> torch.Tensor:
        features = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenize(texts[start : start + batch_size])
            features.append(self.text.encode_embeddings(self.text.embed(tokens), tokens))
        return torch.cat(features)


class SequenceFusion(Fusion):
    """PROOF's fusion as the official ``MultiHeadAttention`` runs it: queries, keys and values of every token of every
    image's sequence, the shared tokens (texts, prototypes, prompts) projected again for each image."""

    def forward(self, image: torch.Tensor, shared: torch.Tensor, dropout: float) -> torch.Tensor:
        tokens = torch.cat([image[:, None], shared.expand(image.shape[0], *shared.shape)], dim=1)
        q, k, v = tokens @ self.query.T, tokens @ self.key.T, tokens @ self.value.T
        attention = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(image.shape[-1]), dim=2)
        attention = F.dropout(attention, dropout, dropout > 0)
        fused = F.dropout(self.out(attention @ v), dropout, dropout > 0)
        return self.norm(fused + tokens)


class NaiveProof(Proof):
    """PROOF as C3Box's ``_train_proj`` computes it: at every step the frozen image encoder on the batch, the text
    encoder on every seen class and again on the batch's own class texts (L_clip's), and the fusion's projections of
    every token of every image's sequence (also at test). The task's images are encoded once at its start, for the
    prototypes (``cal_prototype``), as seca does."""

    backbone_kind = WholeContextBackbone

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fusion.__class__ = SequenceFusion

    def begin_task(self, task, data: TaskData) -> None:
        super().begin_task(task, data)
        self._features = self._feature_labels = None  # the official code keeps no image feature

    def _class_texts(self, labels) -> torch.Tensor:
        template = self.settings.templates[0]
        return widen(
            self.backbone.encode_texts([template.format(self.class_names[c].replace("_", " ")) for c in labels])
        )

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        self._test = None
        labels = batch.labels
        with torch.no_grad():  # the frozen CLIP, from the image and the texts, at every step
            frozen = widen(self.backbone.encode_image(batch.images))
            seen = self._class_texts(range(self.num_seen))
            own = self._class_texts(labels.tolist())
        image = F.normalize(self.project_images(frozen, training=True), dim=-1)
        texts = F.normalize(self._project(self.text_projections, seen.to(image.dtype), training=True), dim=-1)
        fused_image, fused_texts, fused_prototypes = self.fuse(image, texts, self._prototype_tokens(True), True)
        clip_texts = F.normalize(self._project(self.text_projections, own.to(image.dtype), training=True), dim=-1)
        losses = {
            "ce": F.cross_entropy(self._match(fused_image, fused_texts), labels),
            "clip": clip_loss(image, clip_texts, self.logit_scale.exp()),
            "proto": F.cross_entropy(self._match(fused_image, fused_prototypes), labels),
        }
        losses["loss"] = losses["ce"] + losses["clip"] + losses["proto"]
        return losses


class NaiveEngine(Engine):
    """ENGINE as its official ``train`` and ``_eval_cnn`` compute it: at every step the frozen image encoder on the
    batch, the text encoder on every seen class (for the step's training accuracy, which the loss does not read) and
    again on each row's class text; at the end of the task the task's images encoded again for the prototypes; for
    every test batch the image encoder twice (``encode_image`` and ``visual_forward_``) and the re-ranking's
    descriptions of each image's top classes. Both draw the same descriptions (seca's seeded choice)."""

    backbone_kind = WholeContextBackbone

    def begin_task(self, task, data: TaskData) -> None:
        super().begin_task(task, data)  # update_stat: one pass over the task's images, before training
        self._features = None

    def _texts(self, labels) -> torch.Tensor:
        template = self.settings.templates[0]
        return widen(self.backbone.encode_texts([template.format(self.class_names[c]) for c in labels]))

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        task = self.task
        with torch.no_grad():  # encode_image: the frozen encoder at every step
            frozen = widen(self.backbone.encode_image(batch.images))
        frozen, labels = self.with_old_prototypes(frozen, batch.labels)
        images = F.normalize(self._sum(self.image_adapters, frozen), dim=-1)
        seen = F.normalize(self._sum(self.text_adapters, self._texts(range(task.stop)).to(frozen.dtype)), dim=-1)
        images.detach() @ seen.detach().T  # the official step's logits: its training accuracy only
        texts = F.normalize(self._sum(self.text_adapters, self._texts(labels.tolist()).to(frozen.dtype)), dim=-1)
        return self.losses(batch, images, texts, labels)

    @torch.no_grad()
    def end_task(self, task, data: TaskData) -> None:
        features = None  # the official sample_loader: every training image through the encoder again
        for batch in data.batches():
            encoded = widen(self.backbone.encode_image(batch.images))
            features = encoded.new_empty(data.size, encoded.shape[1]) if features is None else features
            features[batch.index] = encoded
        self._features = features
        super().end_task(task, data)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        settings, seen = self.settings, self.num_seen
        visual = self.backbone.model.visual
        embedded = widen(self.backbone.encode_image(images))  # encode_image
        pooled = widen(visual.ln_post(self.backbone.encode_image(images, output="class_token")))  # visual_forward_
        cosine = self._adapted(embedded) @ self.text_features[:seen].T.to(embedded.dtype)
        gda = discriminant(pooled, self.means[:seen], self.precision()).to(cosine.dtype)
        if settings.rerank > 0 and settings.stat < 1:
            top = cosine.topk(min(settings.rerank_top, seen), dim=1).indices
            raw = F.normalize(pooled @ widen(visual.proj).to(pooled.dtype), dim=-1)
            reranked = self._rerank(raw, top, seen)
        else:
            reranked = torch.zeros_like(cosine)
        score = settings.stat * gda + (1 - settings.stat) * (
            settings.rerank * reranked.to(cosine.dtype) + (1 - settings.rerank) * cosine
        )
        return (settings.temperature * (score - score.amax(dim=1, keepdim=True))).exp()

    def _rerank(self, unit_image: torch.Tensor, top: torch.Tensor, seen: int) -> torch.Tensor:
        """The official ``rerank``: per draw, the description of each top class against each other top class of each
        image, encoded for this batch and averaged over the others. In float32, as seca keeps and uses them
        (:func:`seca.methods.engine.rerank_scores`)."""
        batch, k = top.shape
        scores = unit_image.new_zeros(batch, seen)
        if k < 2:
            return scores
        off = ~torch.eye(k, dtype=torch.bool, device=top.device)
        names, logits = self.class_names, 0
        self._described(names[:seen])
        for r in range(self.settings.rerank_draws):
            texts = []
            for row in top.tolist():
                for main in row:
                    for second in row:
                        if main != second:
                            options = self._pair_descriptions(names[main], names[second])
                            seed = f"{self.seed}/{names[main]}/{names[second]}/{r}"
                            texts.append(
                                f"{names[main]} with {options[random.Random(seed).randrange(len(options))].lower()}"
                            )
            encoded = widen(self.backbone.encode_texts(texts)).float()
            chosen = encoded.new_zeros(batch, k, k, encoded.shape[-1])
            chosen[off.expand(batch, k, k)] = encoded  # row by row: image, top class, each other top class
            mean = F.normalize(chosen.sum(2) / (k - 1), dim=-1)
            logits = logits + (mean * unit_image[:, None, :].to(mean.dtype)).sum(-1)
        return scores.scatter(1, top, (logits / self.settings.rerank_draws).to(scores.dtype))


class NaiveBOFA(BOFA):
    """BOFA as C3Box's ``bofa.py`` computes it: at every step the frozen encoder on the batch (``visual_forward_``),
    for every test batch the encoder twice (``encode_image_eval`` and ``gda_pred``), and while λ is 0 the task's
    images again for its search. The task's images are encoded once at its start, for the statistics (``update_stat``),
    as seca does; their second moment (``update_old_features``) is taken from that pass."""

    backbone_kind = WholeContextBackbone

    @torch.no_grad()
    def begin_task(self, task, data: TaskData) -> None:
        if float(self.mix) == 0:  # search_lambda_for_prompt: the task's images through the encoder again
            self._pooled_task(data)
        super().begin_task(task, data)
        self._statistics_features, self._features = self._features, None  # update_stat's pass, for the moment only

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        with torch.no_grad():  # visual_forward_: the frozen encoder at every step
            pooled = self._pool(self.backbone.encode_image(batch.images, output="class_token")).to(self.weight.dtype)
        with torch.autocast(pooled.device.type, enabled=False):
            features = F.normalize(pooled @ self.weight.T.to(pooled.dtype), dim=-1)
            logits = self._log_scale() * features @ self._train_prototypes.to(pooled.dtype).T
            ce = F.cross_entropy(logits, batch.labels)
        return {"ce": ce, "loss": ce}

    @torch.no_grad()
    def end_task(self, task, data: TaskData) -> None:
        self._features, self._statistics_features = self._statistics_features, None
        super().end_task(task, data)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        if not self._cache:
            self._refresh()
        c, stat = self._cache, self.settings.stat
        pooled = self._pool(self.backbone.encode_image(images, output="class_token"))  # encode_image_eval
        again = self._pool(self.backbone.encode_image(images, output="class_token"))  # gda_pred: visual_forward_
        update = bofa_scores(pooled, c["bridge"], c["prototypes"], c["weight"], c["bias"], 0.0)
        gda = bofa_scores(again, c["bridge"], c["prototypes"], c["weight"], c["bias"], 1.0)
        return stable_exp(stat * gda + (1 - stat) * update)


class NaiveCLGCBM(CLGCBM):
    """CLG-CBM as its official code computes it: after the concept search (whose steps read the task's features, kept
    in both), the task's images encoded again for the class statistics (``building_protos``) and again, class by
    class, for the bottleneck's training set (``_build_feature_set``)."""

    backbone_kind = WholeContextBackbone

    def _encoded_task(self, data: TaskData) -> torch.Tensor:
        with torch.no_grad():
            return F.normalize(widen(data.frozen_embeddings(self.backbone)[0]), dim=-1)

    def end_task(self, task, data: TaskData) -> None:
        self._data = data
        self._features = self._encoded_task(data)  # building_protos
        super().end_task(task, data)
        self._data = None

    def _whole_task(self):
        self._features = self._encoded_task(self._data)  # _build_feature_set
        return super()._whole_task()


NAIVE = {
    "rapf": NaiveRAPF,
    "moe-adapters": NaiveMoEAdapters,
    "mind-the-gap": NaiveMindTheGap,
    "proof": NaiveProof,
    "engine": NaiveEngine,
    "bofa": NaiveBOFA,
    "clg-cbm": NaiveCLGCBM,
}
METHODS = ["seca", *NAIVE]
# Learners whose end of task trains over the task's features (CLG-CBM's bottleneck, over them and as many
# pseudo-features): its time scales with the task's images on both paths, whether or not it reads the images.
END_SCALES = {"clg-cbm"}


def fast_method(args):
    """The method section of the fast path (the naive path's is the same)."""
    method = method_config(name=args.method)
    if args.method == "moe-adapters" and args.check:  # dropout masks of cut and whole texts differ in shape
        method = dataclasses.replace(method, moe_adapters=dataclasses.replace(method.moe_adapters, dropout=0.0))
    return method


# ---- one path, in its own process ------------------------------------------------------------------


def class_names(count: int, small: bool = False) -> list[str]:
    """``count`` class names: ImageNet-R's (the shapes world's with ``small``), numbered past the end."""
    names = shapes_class_names() if small else packaged_table("class_names")["imagenet_r"]
    return [names[i % len(names)] + (f" {i // len(names)}" if i >= len(names) else "") for i in range(count)]


def random_images(count: int, size: int, seed: int, device: torch.device) -> torch.Tensor:
    return torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(seed)).to(device)


def task_data(task, images: torch.Tensor, batch_size: int) -> TaskData:
    """Every class of ``task`` has images: the labels cycle through them."""
    labels = task.start + torch.arange(len(images), device=images.device) % task.num_classes
    index = torch.arange(len(images), device=images.device)

    def batches():
        for i in range(0, len(images), batch_size):
            yield Batch(images[i : i + batch_size], labels[i : i + batch_size], index[i : i + batch_size])

    return TaskData(task, len(images), batches)


def bring_to_last_task(learner, scenario, image_size: int, device: torch.device) -> None:
    """Tasks 1..T-1 without training: each task's trainable parameters take a seeded random step."""
    for task in scenario.tasks[:-1]:
        data = task_data(task, random_images(task.num_classes, image_size, task.index, device), task.num_classes)
        learner.begin_task(task, data)
        generator = torch.Generator().manual_seed(10_000 + task.index)
        with torch.no_grad():
            for p in learner.parameters():
                if p.requires_grad:
                    p.add_(0.02 * torch.randn(p.shape, generator=generator).to(p))
        learner.end_task(task, data)


def step_parts(learner, batch: Batch, device: torch.device, amp) -> dict[str, float]:
    """Seconds of a training step's big parts, each run alone: the text of every seen class under the
    current prompt (forward and backward), the student's image features (forward and backward) and the
    teachers (a lookup where they are kept)."""

    def timed(run) -> float:
        synchronize(device)
        start = time.perf_counter()
        with autocast(device, amp):
            run()
        synchronize(device)
        return time.perf_counter() - start

    task = learner.task
    stem = learner.batch_stem(batch)
    return {
        "text": timed(lambda: learner.class_text(learner.prompts.current, 0, task.stop).sum().backward()),
        "image": timed(lambda: learner.image_features(stem=learner.batch_stem(batch)).sum().backward()),
        "teachers": timed(
            lambda: (
                learner._teacher_cache[batch.index]
                if learner._teacher_cache is not None
                else learner.teacher_inputs(stem)
            )
        ),
    }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cpu_name() -> str:
    try:
        return next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        return platform.processor() or "CPU"


def peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def prepare(args, out: Path) -> None:
    """The learner at the start of the last task, saved for both paths: tasks 1..T-1 without training, by a
    learner that keeps no per-task caches (it takes no step, so they would be wasted)."""
    device = resolve_device(args.device)
    set_threads(args.threads)
    backbone = load_backbone(args.model, args.pretrained, device=device)
    if args.method == "seca":
        method = method_config(name="seca", stem_cache_gb=0.0, sg_akt=SGAKTConfig(cache_teachers=False))
    else:
        method = fast_method(args)
    learner = build_learner(backbone, class_names(args.classes, args.small), method, seed=0)
    bring_to_last_task(learner, scenario_of(args), backbone.image_size, device)
    torch.save(
        {
            "tensors": learner.state_dict(),
            "structure": learner.structure(),
            "frozen_text": getattr(learner, "_frozen_text", None),
        },
        out,
    )


def scenario_of(args) -> ClassIncrementalScenario:
    return ClassIncrementalScenario(list(range(args.classes)), args.increment, args.increment)


def path_learner(args, path: str, state: dict):
    """The learner of one path at the start of the last task (``state`` restored), and its backbone."""
    device = resolve_device(args.device)
    backbone = load_backbone(args.model, args.pretrained, device=device)
    names = class_names(args.classes, args.small)
    if path == "naive" and args.method == "seca":
        reference = ReferenceBackbone(
            backbone.model, backbone.preprocess, backbone.tokenizer, backbone.model_name, None
        )
        learner = NaiveSECA(reference, names, naive_method(method_config(name="seca")), seed=0).to(device)
    elif path == "naive":
        kind = getattr(NAIVE[args.method], "backbone_kind", FullSequenceBackbone)
        full = kind(backbone.model, backbone.preprocess, backbone.tokenizer, backbone.model_name, None)
        learner = NAIVE[args.method](full, names, fast_method(args), seed=0).to(device)
    else:
        learner = build_learner(backbone, names, fast_method(args), seed=0)
        if args.break_:
            sabotage(learner, args.break_)
        if args.method == "engine":
            float32_pair_texts(learner)
    learner.restore(state["tensors"], state["structure"])
    return learner, backbone


def float32_pair_texts(learner) -> None:
    """ENGINE keeps its re-ranking texts in float32 (``_fill_pair_texts``: ``.float()`` into a tensor of the default
    dtype, which fails under the float64 check's default): fill them with float32 the default, as a run has it."""
    fill = learner._fill_pair_texts

    def filled() -> None:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)
        try:
            fill()
        finally:
            torch.set_default_dtype(previous)

    learner._fill_pair_texts = filled


def sabotage(learner, what: str) -> None:
    """Break the fast path on purpose (``--break``), so that the exactness check can be seen to fail."""
    if what == "prefix-token":
        text = learner.texts.text
        encode = text.encode_shared_prefix
        text.encode_shared_prefix = lambda prefixes, *rest: encode(prefixes[:, :-1], *rest)
    else:
        inputs = learner.teacher_inputs
        learner.teacher_inputs = lambda stem, frozen=None: inputs(stem, frozen).float().to(stem.output.dtype)


def run_path(args, path: str, state: dict) -> dict:
    """The timings and peak memory of one path, in float32 (or ``--amp``)."""
    device = resolve_device(args.device)
    set_threads(args.threads)
    torch.manual_seed(0)
    learner, backbone = path_learner(args, path, state)
    if args.method == "seca":
        # The earlier prompts' text features, which a run has encoded task by task (the same numbers either way).
        learner._frozen_text = state["frozen_text"].to(device)
    pool = len(learner.teacher.pool) if args.method == "seca" else 0
    amp = amp_dtype(args.amp, device)
    last = scenario_of(args).tasks[-1]
    images = random_images(max((args.steps + 1) * args.batch, last.num_classes), backbone.image_size, 99, device)
    data = task_data(last, images, args.batch)

    synchronize(device)
    start = time.perf_counter()
    learner.begin_task(last, data)
    synchronize(device)
    setup = time.perf_counter() - start

    zero = TrainConfig(lr={group: 0.0 for group in learner.learning_rates()})
    optimizer = make_optimizer(learner, zero)
    learner.train()
    steps = []
    for i, batch in enumerate(data.batches()):
        if i > args.steps:
            break
        torch.manual_seed(1_000 + i)
        synchronize(device)
        start = time.perf_counter()
        with autocast(device, amp):
            losses = learner.training_step(batch)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        synchronize(device)
        if i > 0:  # the first step warms up
            steps.append(time.perf_counter() - start)

    parts = step_parts(learner, next(iter(data.batches())), device, amp) if args.parts else {}

    read = counting(data)
    start = time.perf_counter()
    learner.end_task(last, read)
    synchronize(device)
    end = time.perf_counter() - start

    learner.eval()
    evaluation = []
    with torch.no_grad():
        for j in range(args.eval_batches):
            batch = random_images(args.eval_batch, backbone.image_size, 500 + j, device)
            synchronize(device)
            start = time.perf_counter()
            with autocast(device, amp):
                learner.predict(batch)
            synchronize(device)
            evaluation.append(time.perf_counter() - start)
    return {
        "path": path,
        "setup_seconds": setup,
        "setup_images": len(images),
        "step_seconds": steps,
        "end_seconds": end,
        "end_passes": read.images / len(images),
        "eval_seconds": evaluation,
        "peak_memory": peak_memory(device),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "pool": pool,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "parts": parts,
    }


def counting(data: TaskData) -> TaskData:
    """``data``, counting in ``.images`` the images its batches yield (what an end of task reads)."""

    def batches():
        for batch in data.batches():
            counted.images += len(batch.labels)
            yield batch

    counted = TaskData(data.task, data.size, batches)
    counted.images = 0
    return counted


def check_path(args, path: str, state: dict) -> dict:
    """One step's losses (every term) and gradients, and one evaluation batch's scores, all in float64.

    Every tensor is float64: the CLIP's weights, the restored parameters, everything created from here on
    (the default dtype), and the inference caches, which each path encodes again in its own way. Both paths
    draw the same dropout masks."""
    set_threads(args.threads)
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    learner, backbone = path_learner(args, path, state)
    backbone.model.double()
    learner.double()
    learner.after_restore()  # the earlier prompts' text features, encoded by this path in float64
    device = backbone.device
    last = scenario_of(args).tasks[-1]
    data = task_data(
        last, random_images(max(args.check_batch, last.num_classes), backbone.image_size, 99, device), args.check_batch
    )
    learner.begin_task(last, data)
    learner.train()
    batch = next(iter(data.batches()))
    torch.manual_seed(1_000)
    losses = learner.training_step(batch)
    losses["loss"].backward()
    grads = {n: p.grad.detach().cpu() for n, p in learner.named_parameters() if p.grad is not None}
    learner.end_task(last, data)
    learner.eval()
    with torch.no_grad():
        images = random_images(args.check_batch, backbone.image_size, 500, device)
        if path == "fast" and learner.frozen_kind() is not None:
            scores = scores_from_kept_inputs(learner, images).cpu()
        else:
            scores = learner.predict(images).cpu()
    dtypes = {str(t.dtype).removeprefix("torch.") for t in [*grads.values(), scores, *(v for v in losses.values())]}
    return {
        "path": path,
        "losses": {k: float(v.detach()) for k, v in losses.items()},
        "grads": grads,
        "scores": scores,
        "dtypes": sorted(dtypes),
    }


class DigestedImages(torch.utils.data.Dataset):
    """Test images that the feature store can find (by their bytes)."""

    def __init__(self, images: torch.Tensor):
        self.images = images.cpu()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], 0

    def digest(self, i: int) -> bytes:
        return content_digest(self.images[i].numpy().tobytes())


def scores_from_kept_inputs(learner, images: torch.Tensor) -> torch.Tensor:
    """Scores as a run evaluates once it has seen the images: their frozen inputs computed in batches of 3 (not
    the scored batch), kept, written to a feature store and read back from it by a new reader (another run), then
    scored in one batch by ``predict_frozen``."""
    test = TaskImages(DigestedImages(images), range(len(images)), [0] * len(images))
    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get("SECA_CACHE")
        os.environ["SECA_CACHE"] = cache
        try:
            for _ in range(2):  # the first computes and stores, the second reads the store (where it applies)
                kept = FrozenInputs(learner.backbone, learner.frozen_kind(), learner.frozen_input, store=True)
                inputs = kept.of(test, 3, images.device, None)
        finally:
            if previous is None:
                del os.environ["SECA_CACHE"]
            else:
                os.environ["SECA_CACHE"] = previous
    return learner.predict_frozen(inputs.to(images.device))


# ---- both paths, compared -------------------------------------------------------------------------


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| over max |b| (or the absolute difference where b is zero)."""
    scale = float(b.abs().max())
    return float((a - b).abs().max()) / scale if scale > 0 else float((a - b).abs().max())


def agreement(fast: dict, naive: dict) -> dict:
    """The float64 check: every loss term, the scores and every gradient, fast path against naive path.

    A loss term's difference is taken relative to max(|term|, 1): every term is a mean of per-image quantities
    of order one (cross-entropies, KL divergences, 1 - cos), so its rounding is bounded on that scale even when
    the term itself is near zero (a relative difference to a term of 1e-6 would turn rounding into 1e-10).
    Scores and gradients are relative to their largest entry. A gradient that is zero in exact arithmetic
    (SE-VPR's text layer-norm bias: shifting every text feature by one vector leaves their distances alone)
    is rounding noise in both paths: it is listed as zero, not compared."""
    if set(fast["grads"]) != set(naive["grads"]) or set(fast["losses"]) != set(naive["losses"]):
        missing = sorted(set(fast["grads"]) ^ set(naive["grads"]) | set(fast["losses"]) ^ set(naive["losses"]))
        return {
            "agree": False,
            "largest": {"what": f"terms or parameters in one path only: {', '.join(missing)}", "difference": math.inf},
            "tolerance": TOLERANCE,
        }
    losses = {
        k: {
            "naive": naive["losses"][k],
            "fast": fast["losses"][k],
            "difference": abs(fast["losses"][k] - naive["losses"][k]) / max(abs(naive["losses"][k]), 1.0),
        }
        for k in naive["losses"]
    }
    largest = max(float(g.abs().max()) for g in naive["grads"].values())
    zero = sorted(
        n
        for n, g in naive["grads"].items()
        if max(float(g.abs().max()), float(fast["grads"][n].abs().max())) <= ZERO_GRADIENT * largest
    )
    gradients = {n: relative_difference(fast["grads"][n], g) for n, g in naive["grads"].items() if n not in zero}
    differences = {
        **{f"loss {k}": v["difference"] for k, v in losses.items()},
        "scores": relative_difference(fast["scores"], naive["scores"]),
        **{f"gradient of {n}": d for n, d in gradients.items()},
    }
    worst = max(differences, key=differences.get)
    return {
        "precision": sorted(set(fast["dtypes"]) | set(naive["dtypes"])),
        "losses": losses,
        "scores": differences["scores"],
        "gradients": gradients,
        "zero_gradients": zero,
        "largest": {"what": worst, "difference": differences[worst]},
        "tolerance": TOLERANCE,
        "agree": differences[worst] <= TOLERANCE,
    }


def task_seconds(result: dict, args) -> float:
    """One task composed from measured times: set-up scaled to the task's images, steps, end of task (scaled to
    the task's images too when it reads them: its time is then mostly passes over them)."""
    steps = args.epochs * math.ceil(args.task_images / args.batch)
    setup = result["setup_seconds"] * args.task_images / result["setup_images"]
    scales = result.get("end_passes") or args.method in END_SCALES
    end = result["end_seconds"] * (args.task_images / result["setup_images"] if scales else 1)
    return setup + steps * statistics.median(result["step_seconds"]) + end


def summary(fast: dict, naive: dict, fast_check: dict, naive_check: dict, args) -> dict:
    rows = {
        "train_step_seconds": (statistics.median(naive["step_seconds"]), statistics.median(fast["step_seconds"])),
        "task_seconds": (task_seconds(naive, args), task_seconds(fast, args)),
        "inference_images_per_second": tuple(
            args.eval_batch * len(r["eval_seconds"]) / sum(r["eval_seconds"]) for r in (naive, fast)
        ),
        "peak_memory_bytes": (naive["peak_memory"], fast["peak_memory"]),
    }
    checks = agreement(fast_check, naive_check)
    return {
        "setting": {
            "method": args.method,
            "model": args.model,
            "classes": args.classes,
            "tasks": args.classes // args.increment,
            "pool": fast["pool"],
            "batch": args.batch,
            "eval_batch": args.eval_batch,
            "timed_steps": args.steps,
            "timed_eval_batches": args.eval_batches,
            "check_batch": args.check_batch,
            "task_images": args.task_images,
            "epochs": args.epochs,
            "device": fast["device"],
            "device_name": fast["device_name"],
            "threads": fast["threads"],
            "amp": args.amp,
            "torch": torch.__version__,
        },
        "rows": {k: {"naive": n, "fast": f, "ratio": f / n} for k, (n, f) in rows.items()},
        "break": args.break_,
        "checks": checks,
        "agree": checks["agree"],
        "train_ratio": rows["task_seconds"][1] / rows["task_seconds"][0],
        "inference_ratio": rows["inference_images_per_second"][1] / rows["inference_images_per_second"][0],
        "memory_ratio": rows["peak_memory_bytes"][1] / rows["peak_memory_bytes"][0],
        "step_parts": {"naive": naive["parts"], "fast": fast["parts"]},
    }


PARTS = {
    "text": "text of every seen class, forward and backward",
    "image": "student image features, forward and backward",
    "teachers": "teachers of the pool",
}


def print_table(report: dict, args) -> None:
    s = report["setting"]
    steps = args.epochs * math.ceil(args.task_images / args.batch)
    pool = f", pool of {s['pool']}" if s["method"] == "seca" else ""
    print(
        f"{s['method']}, {s['model']} on {s['device']} ({s['device_name'] or 'CPU'}, {s['threads']} threads), "
        f"{s['classes']} classes in {s['tasks']} tasks, the last task{pool}, batch {s['batch']}, eval batch "
        f"{s['eval_batch']}, {s['epochs']} epochs, amp {s['amp']}, torch {s['torch']}"
    )
    labels = {
        "train_step_seconds": (f"training step (s), median of {s['timed_steps']}", "{:.3f}"),
        "task_seconds": (f"one task (s), composed: set-up x {s['task_images']} images + {steps} steps + end", "{:.2f}"),
        "inference_images_per_second": (
            f"inference at the last task (images/s), {s['timed_eval_batches']} batches",
            "{:.2f}",
        ),
        "peak_memory_bytes": ("peak memory (MiB, %s)" % ("allocated" if "cuda" in s["device"] else "RSS"), "{:.0f}"),
    }
    width = max(len(label) for label, _ in labels.values())
    print(f"{'':<{width}}  {'naive':>10}  {'fast':>10}  {'fast/naive':>10}")
    print("-" * (width + 36))
    for key, (label, form) in labels.items():
        row = report["rows"][key]
        scale = 1 / 2**20 if key == "peak_memory_bytes" else 1
        print(
            f"{label:<{width}}  {form.format(row['naive'] * scale):>10}  {form.format(row['fast'] * scale):>10}  "
            f"{row['ratio']:>10.3f}"
        )
    if report["step_parts"]["fast"]:
        print()
        print(f"{'a training step, part by part (s)':<{width}}  {'naive':>10}  {'fast':>10}  {'fast/naive':>10}")
        for part in report["step_parts"]["fast"]:
            naive, fast = report["step_parts"]["naive"][part], report["step_parts"]["fast"][part]
            print(f"{'  ' + PARTS[part]:<{width}}  {naive:>10.3f}  {fast:>10.3f}  {fast / naive:>10.3f}")
    print()
    print_exactness(report)


def print_exactness(report: dict) -> None:
    """Each loss term's difference, the scores', the largest gradient difference per part, and the verdict."""
    check, s = report["checks"], report["setting"]
    broken = f"; fast path broken on purpose: {BREAKS[report['break']]}" if report["break"] else ""
    if "losses" not in check:
        print(f"exactness: {check['largest']['what']}{broken}\nagree: false")
        return
    print(
        f"exactness in {'/'.join(check['precision'])}, one step and one evaluation batch of {s['check_batch']} "
        f"images{broken}: the fast path's relative difference from the naive path"
    )
    print(f"  {'loss term':<26} {'naive':>22} {'difference':>11}")
    for term, row in check["losses"].items():
        print(f"  {term:<26} {row['naive']:>22.15f} {row['difference']:>11.1e}")
    print(f"  {'scores':<26} {'':>22} {check['scores']:>11.1e}")
    parts: dict[str, list[tuple[str, float]]] = {}
    for name, difference in check["gradients"].items():
        parts.setdefault(name.split(".")[0], []).append((name, difference))
    print(f"  {'gradients, by part':<26} {'parameters':>22} {'largest':>11}")
    for part, rows in parts.items():
        name, difference = max(rows, key=lambda row: row[1])
        print(f"  {part:<26} {len(rows):>22d} {difference:>11.1e}  ({name})")
    if check["zero_gradients"]:
        print(
            f"  zero in exact arithmetic (rounding noise in both paths, not compared): "
            f"{', '.join(check['zero_gradients'])}"
        )
    largest = check["largest"]
    print(f"largest difference: {largest['what']}, {largest['difference']:.1e} (tolerance {check['tolerance']:.0e})")
    print(
        f"agree: {str(report['agree']).lower()}  train_ratio {report['train_ratio']:.3f}  "
        f"inference_ratio {report['inference_ratio']:.1f}  memory_ratio {report['memory_ratio']:.3f}"
    )


def spawn(path: str, state: Path, out: Path, check: bool = False) -> dict:
    """Run one path in a fresh process (its own peak memory), passing the same arguments on: its timings, or
    with ``check`` its float64 losses, gradients and scores."""
    command = [
        sys.executable,
        __file__,
        *sys.argv[1:],
        "--path",
        path,
        "--state",
        str(state),
        "--result",
        str(out),
        *(["--check"] if check else []),
    ]
    subprocess.run(command, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    return torch.load(out, weights_only=False)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--method", choices=METHODS, default="seca", help="the learner whose fast paths are measured (default seca)"
    )
    parser.add_argument("--small", action="store_true", help="the offline seca-shapes CLIP, 100 classes in 10 tasks")
    parser.add_argument("--model", help="default ViT-B-16 (seca-shapes with --small)")
    parser.add_argument(
        "--pretrained", default=None, help="default: random weights (the timing does not depend on them)"
    )
    parser.add_argument("--classes", type=int, help="default 200 (100 with --small)")
    parser.add_argument("--increment", type=int, help="classes per task; default 20 (10 with --small)")
    parser.add_argument("--batch", type=int, default=64, help="training batch (default 64, the paper's)")
    parser.add_argument(
        "--eval-batch", type=int, default=64, help="evaluation batch (default 64, the reference's on ImageNet-R/A)"
    )
    parser.add_argument(
        "--check-batch",
        type=int,
        default=8,
        help="images of the float64 exactness check's step and evaluation batch (default 8)",
    )
    parser.add_argument(
        "--break",
        dest="break_",
        choices=sorted(BREAKS),
        help="break the fast path on purpose, to see the exactness check fail: "
        + "; ".join(f"{k}: {v}" for k, v in BREAKS.items()),
    )
    parser.add_argument("--steps", type=int, default=2, help="timed training steps after an untimed first one")
    parser.add_argument("--eval-batches", type=int, default=1, help="timed evaluation batches")
    parser.add_argument(
        "--task-images",
        type=int,
        help="training images of one task, for the composed task time; default 2400 (ImageNet-R), 400 with --small",
    )
    parser.add_argument("--epochs", type=int, help="epochs of one task; default 10 (5 with --small)")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--amp", default="off", help="auto, bf16, fp16 or off, for the timing (exactness is checked in float64)"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--parts", action="store_true", help="also time a step's parts: text, image, teachers")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--path", choices=("fast", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.method != "seca" and (args.break_ or args.parts):
        parser.error(f"--break and --parts measure SECA's own fast paths; leave them out with --method {args.method}")
    args.model = args.model or ("seca-shapes" if args.small else "ViT-B-16")
    args.classes = args.classes or (100 if args.small else 200)
    args.increment = args.increment or (10 if args.small else 20)
    args.task_images = args.task_images or (400 if args.small else 2400)
    args.epochs = args.epochs or (5 if args.small else 10)
    return args


def main() -> None:
    args = parse_args()

    if args.prepare:
        prepare(args, args.prepare)
        return
    if args.path:
        measure = check_path if args.check else run_path
        torch.save(measure(args, args.path, torch.load(args.state, weights_only=False)), args.result)
        return
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "state.pt"
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--prepare", str(state)], check=True)
        fast = spawn("fast", state, Path(folder) / "fast.pt")
        naive = spawn("naive", state, Path(folder) / "naive.pt")
        fast_check = spawn("fast", state, Path(folder) / "fast-check.pt", check=True)
        naive_check = spawn("naive", state, Path(folder) / "naive-check.pt", check=True)
    report = summary(fast, naive, fast_check, naive_check, args)
    print_table(report, args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
