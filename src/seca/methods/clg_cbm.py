"""CLG-CBM: a concept bottleneck over the frozen CLIP image feature, its concepts written by a language model.

Yu, Han, Tao, Yao, Xu, "Language Guided Concept Bottleneck Models for Interpretable Continual Learning", CVPR 2025
(arXiv 2503.23283); official code github.com/FisherCats/CLG-CBM (models/clgcbm.py), also in LAMDA's C3Box
(models/clg_cbm.py). docs/specs/clg-cbm.md is the specification this file implements, section by section (§ below).

Each task has two phases (§3). The concept search (§3.1, the engine's training: ``training_step``) fits a small
classifier of the task's classes whose first layer has one row per candidate concept of the task's classes (the
concepts a language model wrote, encoded by CLIP's text encoder), with a Mahalanobis penalty that keeps the rows'
directions as far from the concepts' mean as the concepts are. After it (``end_task``, §3.2) each row picks its
nearest concept not yet picked; the first ``pool`` per class become the task's part of the bottleneck. The bottleneck
(§3.3) is then trained in ``end_task`` by an inner loop of its own (Adam, its own multi-step schedule, §4): a linear
map E from the normalised image feature to one activation per concept, aligned with the image's CLIP similarities to
the concepts (a cubed cosine over the batch), and a sparse linear classifier U on the activations, over the task's
features, pseudo-features of old classes (a related new class's features moved to the old class's mean) and
Gaussian draws of old classes. A class scores (U E x̂)_c (§5). Nothing trains inside CLIP: features are taken once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ABOVE_ZERO, FRACTION, LEARNING_RATE, TEMPLATE, Rule, at_least, one_of, section, setting
from ..data.scenario import Task
from ..distributed import gather_rows
from ..errors import SecaError
from ._class_texts import keyed_by_index, offline_class_texts, read_class_texts, read_indexed_class_texts
from ._precision import widen
from ._scores import stable_exp
from ._statistics import ClassGaussians, class_statistics
from .base import Batch, Learner, TaskData, register

SEARCH_MODELS = ("linear-bn-linear", "linear-linear")


def _increasing(v: tuple) -> bool:
    return all(m >= 1 for m in v) and all(a < b for a, b in zip(v, v[1:]))


@dataclass(frozen=True)
class CLGCBMConfig:
    """CLG-CBM's settings (docs/specs/clg-cbm.md §4; defaults: C3Box's exps/clg_cbm.json)."""

    concepts: str | None = setting(
        None,
        "CLG-CBM: the JSON file of each class's concepts a language model wrote (the official files: "
        "docs/specs/clg-cbm.md §2), by class name or by the data set's class index (then give `concept_names`); "
        "null: each word of a class's name is one concept (offline)",
    )
    concept_names: str | None = setting(
        None,
        'CLG-CBM: for a `concepts` file keyed by class index ("0", "1", ...): the data set\'s class names in index '
        "order, a JSON list or an object from index to name (the official *_label2class.json)",
    )
    concept_prefix: str = setting(
        "A photo of the object with ",
        "CLG-CBM: written before every concept when it is encoded (official get_prefix: per data set)",
    )
    template: str = setting(
        "a photo of a {}.",
        "CLG-CBM: the text of a class name, whose feature relates an old class to its nearest new class (§3.4)",
        TEMPLATE,
    )
    pool: int = setting(10, "CLG-CBM: concepts kept per class of a task (official `pool`)", at_least(1))
    search_model: str = setting(
        "linear-bn-linear",
        "CLG-CBM: the concept search's classifier (official `linear_model`): `linear-bn-linear` or `linear-linear`",
        one_of(*SEARCH_MODELS),
    )
    regularizer: str = setting(
        "mahalanobis",
        "CLG-CBM: the concept search's penalty on its first layer: `mahalanobis` (official) or `none`",
        one_of("mahalanobis", "none"),
    )
    division_power: float = setting(
        5.0, "CLG-CBM: the Mahalanobis penalty is divided by the concepts' mean distance to this power", at_least(0.0)
    )
    similarity: float = setting(
        1.0, "CLG-CBM: the weight of the concept alignment loss (official `sim`; 0: none)", at_least(0.0)
    )
    sparse_lambda: float = setting(
        1e-3, "CLG-CBM: the elastic-net weight λ on the final layer (official: 0.001, hard-coded)", at_least(0.0)
    )
    sparse_alpha: float = setting(
        0.99, "CLG-CBM: the elastic net's share of the L1 term (official: 0.99, hard-coded)", FRACTION
    )
    gaussian_samples: int = setting(
        1,
        "CLG-CBM: Gaussian draws of each of the 2 old classes replayed per batch of the bottleneck's training "
        "(official `sg_num`; 0: none)",
        at_least(0),
    )
    covariance_eps: float = setting(1e-4, "CLG-CBM: added to each class covariance's diagonal", ABOVE_ZERO)
    bottleneck_epochs: int = setting(
        60, "CLG-CBM: epochs of the bottleneck's training on the first task (official `FB_epoch`)", at_least(0)
    )
    bottleneck_epochs_later: int = setting(
        60, "CLG-CBM: epochs of the bottleneck's training on every later task (official `FB_epoch_inc`)", at_least(0)
    )
    bottleneck_lr: float = setting(
        1e-3, "CLG-CBM: Adam's learning rate of the bottleneck's training (official `init_lr`/`FB_lr_*`)", LEARNING_RATE
    )
    bottleneck_milestones: tuple[int, ...] = setting(
        (30, 40, 50),
        "CLG-CBM: epochs after which the bottleneck's rate is multiplied by `bottleneck_gamma` (official `milestones`)",
        Rule(_increasing, "a list of increasing epochs, each at least 1"),
    )
    bottleneck_gamma: float = setting(
        0.1, "CLG-CBM: the bottleneck's MultiStepLR factor", Rule(lambda v: 0 < v <= 1, "above 0 and at most 1")
    )
    bottleneck_batch_size: int = setting(
        48, "CLG-CBM: the batch of the bottleneck's training (official `batch_size`)", at_least(1)
    )


# ---- the parts, as functions of tensors (spec §3) -------------------------------------------------------------
def concept_statistics(concepts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(μ, Σ⁻¹, m̄) of the normalised concept features ``[N, D]`` (§3.1): their mean, the inverse of their unbiased
    covariance (its pseudo-inverse when N ≤ D, where the covariance is singular), and their mean squared Mahalanobis
    distance to μ."""
    mu = concepts.mean(dim=0)
    covariance = torch.cov(concepts.T)
    precision = torch.linalg.inv(covariance) if concepts.shape[0] > concepts.shape[1] else torch.linalg.pinv(covariance)
    return mu, precision, squared_mahalanobis(concepts, mu, precision).mean()


def squared_mahalanobis(rows: torch.Tensor, mu: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """(r − μ)ᵀ Σ⁻¹ (r − μ) of every row r."""
    centred = rows - mu
    return ((centred @ precision) * centred).sum(dim=-1)


def mahalanobis_penalty(
    weight: torch.Tensor, mu: torch.Tensor, precision: torch.Tensor, mean_distance: torch.Tensor, power: float
) -> torch.Tensor:
    """|mean_i d²(w_i / ‖w_i‖) − m̄| / m̄^power (§3.1); the norm is a constant of the step (official ``.data``)."""
    unit = weight / weight.detach().norm(dim=-1, keepdim=True)
    return ((squared_mahalanobis(unit, mu, precision).mean() - mean_distance) / mean_distance**power).abs()


def select_concepts(centers: torch.Tensor, concepts: torch.Tensor, count: int) -> torch.Tensor:
    """The indices of ``count`` concepts (§3.2): row i of ``centers``, normalised, picks the concept nearest to it
    (squared Euclidean distance; the lowest index on a tie) among those rows 0..i−1 did not pick."""
    taken = torch.zeros(concepts.shape[0], dtype=torch.bool, device=concepts.device)
    picked = []
    for center in centers[: min(count, concepts.shape[0])]:
        distances = ((concepts - center / center.norm()) ** 2).sum(dim=1)
        distances[taken] = float("inf")
        index = int(torch.argmin(distances))
        taken[index] = True
        picked.append(index)
    return torch.tensor(picked, dtype=torch.long, device=concepts.device)


def similarity_loss(inputs: torch.Tensor, concepts: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """−mean over concepts j of cos_batch((x Bᵀ)³[:, j], (activations)³[:, j]) (§3.3): each concept's column of cubed
    CLIP similarities and of cubed bottleneck activations, compared over the batch."""
    target = F.normalize((inputs @ concepts.T) ** 3, dim=0)
    cubed = F.normalize(activations**3, dim=0)
    return -(cubed * target).sum(dim=0).mean()


def sparse_penalty(weight: torch.Tensor, lam: float, alpha: float) -> torch.Tensor:
    """λ α ‖U‖₁ + ½ λ (1 − α) ‖U‖²_F (§3.3)."""
    return lam * alpha * weight.abs().sum() + 0.5 * lam * (1 - alpha) * (weight**2).sum()


def related_new_classes(old_names: torch.Tensor, new_means: torch.Tensor) -> torch.Tensor:
    """For each old class, the index (within the task) of the new class whose normalised mean image feature is the
    most similar to the old class's normalised name feature (§3.4)."""
    return torch.argmax(F.normalize(old_names, dim=-1) @ F.normalize(new_means, dim=-1).T, dim=1)


def _uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """PyTorch's default init of a linear layer's weight and bias: U(−1/√fan_in, 1/√fan_in)."""
    bound = 1 / fan_in**0.5 if fan_in else 0.0
    return torch.empty(shape).uniform_(-bound, bound, generator=generator)


@register
class CLGCBM(Learner):
    """CLG-CBM (CVPR 2025): a sparse classifier over a bottleneck of language-model concepts aligned with CLIP."""

    name = "clg-cbm"
    default_lr = {"clg_cbm": 1e-2}  # the concept search's Adam (official `lr`)
    # C3Box exps/clg_cbm.json: the concept search is 30 epochs of Adam at 0.01, batch 48, no schedule (§4)
    recipe = {
        "epochs": 30,
        "batch_size": 48,
        "optimizer": "adam",
        "weight_decay": 0.0,
        "schedule": "multistep",
        "milestones": (),
        "gamma": 0.1,
    }
    loss_words = {
        "mahalanobis": "keeping the concept search among the concepts",
        "similarity": "aligning concepts with CLIP",
        "sparse": "keeping the classifier sparse",
    }

    @dataclass(frozen=True)
    class Config:
        clg_cbm: CLGCBMConfig = section(CLGCBMConfig)

    @classmethod
    def check_config(cls, config) -> None:
        settings = getattr(config, "method", config).clg_cbm
        if settings.concepts is not None and settings.concept_names is None:
            if keyed_by_index(settings.concepts, "method.clg_cbm.concepts"):
                raise SecaError(
                    f"clg-cbm: method.clg_cbm.concepts '{settings.concepts}' is keyed by class index; set "
                    "method.clg_cbm.concept_names to the data set's names in index order (e.g. the official "
                    "cifar_label2class.json)"
                )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        dim = self.backbone.embed_dim
        # the bottleneck: E maps x̂ to one activation per concept, U the activations to class logits (§3.3)
        self.explainer = nn.Parameter(torch.empty(0, dim, device=self.device), requires_grad=False)
        self.classifier = nn.Parameter(torch.empty(0, 0, device=self.device), requires_grad=False)
        self.register_buffer("concept_features", torch.empty(0, dim, device=self.device))  # B: the chosen concepts
        self.gaussians = ClassGaussians(dim).to(self.device)  # of the normalised frozen features
        self.concepts: list[str] = []  # the chosen concepts' texts, in bottleneck order (what a user reads)
        self.gate: nn.Sequential | None = None  # the concept search's classifier, during a task only
        self._candidates: list[str] = []
        self._candidate_features: torch.Tensor | None = None
        self._statistics: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._features: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None

    @property
    def settings(self) -> CLGCBMConfig:
        return self.config.clg_cbm

    # ---- concepts ---------------------------------------------------------------------------------
    def class_concepts(self, names: list[str]) -> list[list[str]]:
        """The concepts of each class of ``names`` (§2): from the user's file, else from the names (offline)."""
        s = self.settings
        if s.concepts is None:
            return offline_class_texts(names)
        if s.concept_names is not None:
            return read_indexed_class_texts(
                s.concepts, s.concept_names, names, "method.clg_cbm.concepts", "method.clg_cbm.concept_names"
            )
        return read_class_texts(s.concepts, names, "method.clg_cbm.concepts")

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(widen(self.backbone.encode_texts(texts)), dim=-1)

    # ---- a task: the concept search (the engine's training, §3.1) ----------------------------------------------
    def begin_task(self, task: Task, data: TaskData) -> None:
        super().begin_task(task, data)
        self.check_config(self.config)
        names = self.class_names[task.start : task.stop]
        self._candidates = [c for texts in self.class_concepts(names) for c in texts]
        prefix = self.settings.concept_prefix
        self._candidate_features = self._encode([prefix + c for c in self._candidates])
        self._statistics = concept_statistics(self._candidate_features)
        frozen, labels = data.frozen_embeddings(self.backbone)
        self._features, self._labels = F.normalize(widen(frozen), dim=-1), labels.to(frozen.device)
        self.gate = self._new_gate(len(self._candidates), len(task.classes), self.task_rng(task, 0))

    def _new_gate(self, concepts: int, classes: int, generator: torch.Generator) -> nn.Sequential:
        dim = self.backbone.embed_dim
        first = nn.Linear(dim, concepts, bias=False)
        last = nn.Linear(concepts, classes)
        with torch.no_grad():
            first.weight.copy_(_uniform((concepts, dim), dim, generator))
            last.weight.copy_(_uniform((classes, concepts), concepts, generator))
            last.bias.copy_(_uniform((classes,), concepts, generator))
        middle = [nn.BatchNorm1d(concepts)] if self.settings.search_model == "linear-bn-linear" else []
        dtype = self._features.dtype if self._features is not None else torch.float32
        return nn.Sequential(first, *middle, last).to(self.device, dtype)

    def parameter_groups(self) -> list[dict]:
        return [] if self.gate is None else [{"name": "clg_cbm", "params": list(self.gate.parameters())}]

    def _search_logits(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[0] == 1 and self.gate.training:  # batch norm has no batch statistics of one row
            hidden = self.gate[0](features)
            for layer in self.gate[1:]:
                hidden = (
                    F.batch_norm(hidden, layer.running_mean, layer.running_var, layer.weight, layer.bias, False)
                    if isinstance(layer, nn.BatchNorm1d)
                    else layer(hidden)
                )
            return hidden
        return self.gate(features)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        features = self._features[batch.index]
        logits = self._search_logits(features)
        ce = F.cross_entropy(logits.float(), batch.labels - self.task.start)
        losses = {"ce": ce}
        if self.settings.regularizer == "mahalanobis":
            mu, precision, mean_distance = self._statistics
            with torch.autocast(features.device.type, enabled=False):
                losses["mahalanobis"] = mahalanobis_penalty(
                    self.gate[0].weight.to(mu.dtype),
                    mu,
                    precision,
                    mean_distance,
                    self.settings.division_power,
                ).to(ce.dtype)
        losses["loss"] = sum(losses.values())
        return losses

    # ---- after the search: the bottleneck (§3.2 to §3.4), trained here ------------------------------------------
    def end_task(self, task: Task, data: TaskData) -> None:
        with torch.no_grad():
            chosen = select_concepts(
                self.gate[0].weight.detach().to(self._candidate_features.dtype),
                self._candidate_features,
                self.settings.pool * len(task.classes),
            )
        self.gate = None
        self.concepts += [self._candidates[int(i)] for i in chosen]
        new_concepts = self._candidate_features[chosen].to(self.concept_features)
        self.concept_features = torch.cat([self.concept_features, new_concepts])
        # over every process's shard (class_statistics sums them): the same statistics whatever the shards
        means, covariances = class_statistics(self._features, self._labels, task.labels, self.settings.covariance_eps)
        self.gaussians.add(means, covariances)
        features, labels = self._whole_task()
        inputs, targets = self._training_set(task, features, labels)
        self._grow(task, len(chosen))
        self._fit_bottleneck(task, inputs, targets)
        self._features = self._labels = self._candidate_features = self._statistics = None
        self._candidates = []

    def _whole_task(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every process's normalised features of the task (the bottleneck trains on all of them, the same on every
        process), in one order whatever the shards: by label, then by a fixed projection of the feature."""
        features, labels = gather_rows(self._features, self._labels)
        key = features.double() @ torch.linspace(
            1.0, 2.0, features.shape[1], dtype=torch.float64, device=features.device
        )
        order = torch.argsort(key, stable=True)
        order = order[torch.argsort(labels[order], stable=True)]
        return features[order], labels[order]

    @torch.no_grad()
    def _training_set(
        self, task: Task, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The task's features, then for each old class o those of its related new class r moved by μ_o − μ_r (§3.4)."""
        start = task.start
        inputs, targets = [features], [labels]
        if start:
            old_names = self._encode([self.settings.template.format(n) for n in self.class_names[:start]])
            means = self.gaussians.means.to(features.dtype)
            related = related_new_classes(old_names.to(features.dtype), means[start : task.stop]) + start
            for old in range(start):
                rows = features[labels == related[old]]
                inputs.append(rows - means[related[old]] + means[old])
                targets.append(torch.full((len(rows),), old, dtype=labels.dtype, device=labels.device))
        return torch.cat(inputs), torch.cat(targets)

    @torch.no_grad()
    def _grow(self, task: Task, count: int) -> None:
        """``count`` new rows of E (PyTorch's init, fan-in D) and a classifier over all concepts and seen classes whose
        new entries are drawn with fan-in P (the official heads are re-made at the new width, old entries kept)."""
        generator = self.task_rng(task, 1)
        dim, old_concepts, old_classes = self.backbone.embed_dim, self.explainer.shape[0], self.classifier.shape[0]
        total = old_concepts + count
        rows = _uniform((count, dim), dim, generator).to(self.explainer)
        classifier = _uniform((task.stop, total), total, generator).to(self.explainer)
        classifier[:old_classes, :old_concepts] = self.classifier
        self.explainer = nn.Parameter(torch.cat([self.explainer.detach(), rows]), requires_grad=False)
        self.classifier = nn.Parameter(classifier, requires_grad=False)

    def _fit_bottleneck(self, task: Task, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """The official second phase as an inner loop (§4): Adam over E and U, multi-step schedule, shuffles and draws
        from seeded generators; batch b of an epoch replays old classes at positions 2b, 2b+1 of one shuffled order."""
        s = self.settings
        epochs = s.bottleneck_epochs if task.index == 0 else s.bottleneck_epochs_later
        generator = self.task_rng(task, 2)
        params = [self.explainer, self.classifier]
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.Adam(params, lr=s.bottleneck_lr, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(s.bottleneck_milestones), s.bottleneck_gamma)
        old = task.start
        turns = torch.randperm(old, generator=generator) if old else None
        with torch.enable_grad():
            for _ in range(epochs):
                order = torch.randperm(len(targets), generator=generator).to(targets.device)
                for number, rows in enumerate(order.split(s.bottleneck_batch_size)):
                    x, y = inputs[rows], targets[rows]
                    if old and s.gaussian_samples:
                        draws, draw_labels = self._draw(turns[[(2 * number) % old, (2 * number + 1) % old]], generator)
                        x, y = torch.cat([x, draws.to(x)]), torch.cat([y, draw_labels.to(y)])
                    loss = self.bottleneck_losses(x, y)["loss"]
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                schedule.step()
        for p in params:
            p.requires_grad_(False)
            p.grad = None

    def _draw(self, classes: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n, g = self.settings.gaussian_samples, self.gaussians
        noise = torch.randn(len(classes), n, g.means.shape[1], generator=generator, dtype=torch.float64)
        classes = classes.to(g.means.device)
        draws = g.means[classes, None, :] + noise.to(g.means.device) @ g.cholesky[classes].transpose(1, 2)
        return draws.reshape(-1, draws.shape[-1]), classes.repeat_interleave(n)

    def bottleneck_losses(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The second phase's loss on a batch of (un-normalised) inputs (§3.3): CE + sim · alignment + sparsity."""
        s = self.settings
        activations = F.normalize(inputs, dim=-1) @ self.explainer.T
        logits = activations @ self.classifier.T
        losses = {"ce": F.cross_entropy(logits, labels)}
        if s.similarity:
            losses["similarity"] = s.similarity * similarity_loss(inputs, self.concept_features.to(inputs), activations)
        losses["sparse"] = sparse_penalty(self.classifier, s.sparse_lambda, s.sparse_alpha)
        losses["loss"] = sum(losses.values())
        return losses

    # ---- inference and restoring -------------------------------------------------------------------------------
    def frozen_kind(self) -> str:
        return "embedding"  # the bottleneck reads the frozen CLIP image feature (§5)

    def activations(self, frozen: torch.Tensor) -> torch.Tensor:
        """The concept activations E x̂ of frozen embeddings (§5): what the classifier weighs, one per concept."""
        return F.normalize(widen(frozen), dim=-1) @ self.explainer.T.to(widen(frozen).dtype)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The concept activations E x̂ (one per concept of the bottleneck, not normalised: the classifier is linear
        in them); the frozen CLIP feature before the first task."""
        if self.explainer.shape[0] == 0:
            return self.frozen_embedding(images)
        return self.activations(self.frozen_input(images))

    @torch.no_grad()
    def predict_frozen(self, frozen: torch.Tensor) -> torch.Tensor:
        activations = self.activations(frozen)
        logits = activations @ self.classifier[: self.num_seen].T.to(activations.dtype)
        return stable_exp(logits)

    def structure(self) -> dict:
        return {**super().structure(), "concepts": list(self.concepts)}

    def rebuild(self, structure: dict) -> None:
        self.concepts = list(structure.get("concepts", []))
        count, dim = len(self.concepts), self.backbone.embed_dim
        self.explainer = nn.Parameter(torch.zeros(count, dim, device=self.device), requires_grad=False)
        self.classifier = nn.Parameter(
            torch.zeros(structure["num_seen"], count, device=self.device), requires_grad=False
        )
        self.concept_features = torch.zeros(count, dim, device=self.device)
        self.gate = None
