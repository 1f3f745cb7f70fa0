"""``seca import c3box FILE.json``: the seca config of a C3Box experiment (LAMDA-CL/C3Box; PyCIL and PILOT write the
same JSON), or a one-line refusal naming the key or method it cannot map.

C3Box's ``main.py`` reads one flat JSON (``exps/<method>.json``); ``trainer.py`` runs it once per ``seed``. Each key
is mapped from what C3Box's code does with it, not from its name:

    model_name     rapf, simplecil, proof, engine, bofa -> the same, zs_clip -> zero-shot, clg_cbm -> clg-cbm
                   (utils/factory.py; any other refused)
    dataset        C3Box's name (utils/data_manager.py _get_idata) -> data.dataset; data.names: c3box (the class
                   names of its utils/labels.json, which every method puts in its prompts)
    shuffle, seed  true, [S] -> scenario.order: lamda, order_seed: S (DataManager._setup_data:
                   np.random.seed(S); np.random.permutation(K)); false -> identity (utils/data.py class_order: 0..K-1)
    init_cls       scenario.first_task; increment -> scenario.increment (its last task takes what is left:
                   refused where that differs from increment)
    backbone_type  clip -> ViT-B-16 laion400m_e32, clip_laion2b -> laion2b_s34b_b88k, openai_clip -> openai
                   (utils/inc_net.py get_convnet, open_clip, fp32: train.amp: off)
    rapf           models/rapf.py: Adam on the adapter at init_lr, weight decay 0 and MultiStepLR [4, 10] x0.1
                   hard-coded; epochs, batch_size; beta -> int(10 beta) replay samples per class, int(20 beta) hinge
                   samples per pair; 2 old classes per batch hard-coded; threshold, mix_bias, shrinkage (default false)
    zs_clip        models/zs_clip.py averages the text features of the data set's templates (utils/templates.json):
                   mapped where there is one (method.template), refused where several
    simplecil      models/simplecil.py: the mean frozen feature of each class; its keys train nothing
    proof, engine  models/proof.py, models/engine.py: tuned_epoch, batch_size, init_lr, weight_decay; optimizer sgd
                   (momentum 0.9 hard-coded) or adam (AdamW); CosineAnnealingLR(T_max=tuned_epoch, eta_min=min_lr)
                   per epoch (min_lr / init_lr); the templates of utils/templates.json[dataset]. proof: its exemplars
                   (fixed_memory true: memory_per_class, else memory_size), context_prompt_length_per_task,
                   projection_type pure_mlp only. engine: text_des, image_aug, rerank, rerank_top, stat, sample_num,
                   sample_noise (noise 0.25 and 3 re-ranking draws hard-coded); its description files are the user's
    bofa           models/bofa.py: as proof's SGD (adam: Adam, weight decay 0.001, x0.1 after epochs 4, 10), Kt, stat;
                   its stage 2 (`epoch`) has no seca counterpart (noted)
    clg_cbm        models/clg_cbm.py: the concept search (epochs, lr: Adam, no schedule, batch_size) and the bottleneck
                   (FB_epoch, FB_epoch_inc, init_lr, milestones x0.1), pool, sg_num, sim, division_power,
                   linear_model; the Mahalanobis regulariser, the elastic net (0.001, 0.99), the concept prefix and
                   the class-name template (utils/data_manager.py get_prefix, templates.json) hard-coded
    memory_size    of a method without exemplars (rapf, simplecil, zs_clip: listed; engine, bofa, clg_cbm: a nonzero
                   one refused, as seca's learner trains without stored images)

Keys that change no result (``prefix``, ``device``, a method's unused ``init_lr`` ...) are dropped and listed in a
comment at the top of the YAML; a key the method's code does not read is refused, as is a value seca cannot run.
Nothing of C3Box's code is imported or copied: the facts above were read from it; docs/cli.md documents the command.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SecaError
from ..io.files import atomic_write_text, writable
from .common import overwrite_flag

# ---- the command ------------------------------------------------------------------------------------------


def add_import(sub) -> None:
    p = sub.add_parser(
        "import",
        help="write the seca config of another toolbox's experiment config (C3Box)",
        description="Read another toolbox's experiment config and print the seca config (YAML) that runs the same "
        "method, data set, protocol and hyperparameters, or refuse in one line what it cannot map.",
    )
    kinds = p.add_subparsers(dest="toolbox", metavar="TOOLBOX", required=True)
    c3box = kinds.add_parser(
        "c3box",
        help="a C3Box (LAMDA-CL; PyCIL- and PILOT-style) exps/*.json",
        description="Print the seca config of a C3Box experiment JSON (exps/rapf.json, ...): method, data set, "
        "class order (scenario.order: lamda), task sizes and hyperparameters. Keys that change no result are "
        "dropped and listed in a comment at the top; a method, key or value seca cannot run is refused in one line.",
    )
    c3box.add_argument("file", metavar="FILE.json", help="the C3Box experiment config")
    c3box.add_argument("--out", metavar="FILE.yaml", help="write the config there (default: print it)")
    overwrite_flag(c3box, "replace an existing file at --out")
    c3box.set_defaults(handler=import_c3box)


def import_c3box(args: argparse.Namespace) -> int:
    out = None
    if args.out:
        out = writable(args.out, "--out", folder=False)
        if out.exists() and not args.overwrite:
            raise SecaError(f"'{out}' already exists; pass --overwrite to replace it, or choose another path")
    text = c3box_yaml(args.file)
    if out is None:
        sys.stdout.write(text)
        return 0
    atomic_write_text(out, text)
    print(f"wrote {out}; run it with: seca run {out} --set data.root=DIR")
    return 0


# ---- what C3Box's code does with each key -------------------------------------------------------------------

# C3Box's data set names (utils/data_manager.py _get_idata) -> seca's, and the classes of C3Box's copy (utils/data.py
# class_order; None where its files disagree: utils/labels.json names 102 cars, class_order 100).
DATASETS: dict[str, tuple[str, int | None]] = {
    "cifar224": ("cifar100", 100),
    "imagenetr": ("imagenet-r", 200),
    "imageneta": ("imagenet-a", 200),
    "cub200": ("cub200", 200),
    "cars": ("cars196", None),
    "aircraft": ("aircraft", 100),
    "food101": ("food101", 100),
    "sun": ("sun397", 300),
    "objectnet": ("objectnet", 200),
    "ucf101": ("ucf101", 100),
    "tv100": ("tv100", 100),
}

# backbone_type (utils/inc_net.py get_convnet) -> open_clip's model and pretrained tag
BACKBONES = {
    "clip": ("ViT-B-16", "laion400m_e32"),
    "clip_laion2b": ("ViT-B-16", "laion2b_s34b_b88k"),
    "openai_clip": ("ViT-B-16", "openai"),
}

# utils/factory.py's methods; those mapped are in METHODS below
C3BOX_METHODS = (
    "aper_adapter aper_finetune aper_ssf aper_vpt bofa clg_cbm coda coop dualprompt ease engine finetune foster "
    "l2p l2p_without memo mind proof rapf simplecil tuna zs_clip"
).split()

# utils/templates.json: each data set's class text templates (DataManager._data_to_prompt), data read from C3Box;
# a data set it has none for (imageneta, tv100) fails in C3Box's DataManager (KeyError)
# fmt: off
C3BOX_TEMPLATES: dict[str, tuple[str, ...]] = {
    "cifar224": (
        "a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.",
        "a low contrast photo of a {}.", "a high contrast photo of a {}.", "a bad photo of a {}.",
        "a good photo of a {}.", "a photo of a small {}.", "a photo of a big {}.", "a photo of the {}.",
        "a blurry photo of the {}.", "a black and white photo of the {}.", "a low contrast photo of the {}.",
        "a high contrast photo of the {}.", "a bad photo of the {}.", "a good photo of the {}.",
        "a photo of the small {}.", "a photo of the big {}.",
    ),
    "imagenetr": (
        "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
        "a {} in a video game.", "art of the {}.", "a photo of the small {}.",
    ),
    "objectnet": (
        "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
        "a {} in a video game.", "art of the {}.", "a photo of the small {}.",
    ),
    "ucf101": (
        "a photo of a person {}.", "a video of a person {}.", "a example of a person {}.",
        "a demonstration of a person {}.", "a photo of the person {}.", "a video of the person {}.",
        "a example of the person {}.", "a demonstration of the person {}.", "a photo of a person using {}.",
        "a video of a person using {}.", "a example of a person using {}.", "a demonstration of a person using {}.",
        "a photo of the person using {}.", "a video of the person using {}.", "a example of the person using {}.",
        "a demonstration of the person using {}.", "a photo of a person doing {}.", "a video of a person doing {}.",
        "a example of a person doing {}.", "a demonstration of a person doing {}.", "a photo of the person doing {}.",
        "a video of the person doing {}.", "a example of the person doing {}.",
        "a demonstration of the person doing {}.", "a photo of a person during {}.", "a video of a person during {}.",
        "a example of a person during {}.", "a demonstration of a person during {}.",
        "a photo of the person during {}.", "a video of the person during {}.", "a example of the person during {}.",
        "a demonstration of the person during {}.", "a photo of a person performing {}.",
        "a video of a person performing {}.", "a example of a person performing {}.",
        "a demonstration of a person performing {}.", "a photo of the person performing {}.",
        "a video of the person performing {}.", "a example of the person performing {}.",
        "a demonstration of the person performing {}.", "a photo of a person practicing {}.",
        "a video of a person practicing {}.", "a example of a person practicing {}.",
        "a demonstration of a person practicing {}.", "a photo of the person practicing {}.",
        "a video of the person practicing {}.", "a example of the person practicing {}.",
        "a demonstration of the person practicing {}.",
    ),
    "aircraft": (
        "a photo of a {}, a type of aircraft.", "a photo of the {}, a type of aircraft.",
    ),
    "cars": (
        "a photo of a {}.", "a photo of the {}.", "a photo of my {}.", "i love my {}!", "a photo of my dirty {}.",
        "a photo of my clean {}.", "a photo of my new {}.", "a photo of my old {}.",
    ),
    "sun": (
        "a photo of a {}.", "a photo of the {}.",
    ),
    "food101": (
        "a photo of {}, a type of food.",
    ),
    "cub200": (
        "a photo of a {}, a type of bird.",
    ),
}
# fmt: on

# zs_clip's text classifier: the mean of the data set's templates in utils/templates.json (their number; the one
# template where there is only one)
ZS_TEMPLATES: dict[str, int | str] = {
    name: templates[0] if len(templates) == 1 else len(templates) for name, templates in C3BOX_TEMPLATES.items()
}

# utils/data_manager.py get_prefix: the text CLG-CBM writes before each concept, by C3Box's data set name
CLG_CBM_PREFIXES = {
    "cifar224": "A bad photo of an object with ",
    "cub200": "The bird has ",
    "food101": "A photo of the food with",
    "cars": "A photo of the car with",
    "ucf101": "A photo of a person with ",
    "imagenetr": "A photo of the object with ",
    "aircraft": "a photo of an aircraft with",
    "sun": "a photo with",
    "objectnet": "A photo of the object with ",
}

# utils/data_manager.py get_attributes: CLG-CBM's concept file of each data set (keyed by class index)
CLG_CBM_CONCEPTS = {
    "cifar224": "cifar100/concepts.json",
    "cub200": "cub200/cub200_4o_simple_cpts.json",
    "food101": "food101/food_4o_simple_cpts.json",
    "cars": "cars/cars_4o_simple_cpts.json",
    "ucf101": "ucf101.json",
    "imagenetr": "imagenetr.json",
    "aircraft": "aircraft.json",
    "sun": "sun.json",
    "objectnet": "objectnet.json",
}

# What trainer.py and DataManager read for every method; the importer needs each of them.
REQUIRED = ("model_name", "dataset", "shuffle", "seed", "init_cls", "increment", "backbone_type")

# Keys of every C3Box config that change no result, with why.
INERT = {
    "prefix": "names C3Box's log file",
    "device": "the GPUs C3Box runs on",
    "total_class_num": "read by none of C3Box's code",
}
MEMORY = ("memory_size", "memory_per_class", "fixed_memory")
UNUSED_OPTIMISER = ("batch_size", "init_lr", "weight_decay", "min_lr")


@dataclass
class Imported:
    """The seca config being made: plain data with a comment per line, and the notes of the header."""

    source: str
    values: dict[str, Any] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)  # "train.epochs" -> "epochs"
    origin: dict[str, str] = field(default_factory=dict)  # seca key -> the C3Box key it came from
    dropped: list[tuple[str, Any, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def set(self, key: str, value: Any, comment: str = "", origin: str | None = None) -> None:
        node = self.values
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
        if comment:
            self.comments[key] = comment
        if origin:
            self.origin[key] = origin


@dataclass(frozen=True)
class Method:
    """How one C3Box method maps: its file, the keys its code reads with their defaults there (``get_attribute``),
    the keys it reads without their changing a result (with why), ``build``, which sets the seca keys, and the keys
    it reads with no default."""

    source: str  # its file in C3Box
    reads: dict[str, Any]  # key -> C3Box's default
    inert: dict[str, str]
    build: Callable[[Imported, Mapping[str, Any]], None]
    needs: tuple[str, ...] = ()  # keys its code reads with no default (args[key]): C3Box stops without them


def _rapf(cfg: Imported, s: Mapping[str, Any]) -> None:
    beta = _number(s, "beta", 0)
    if not math.isfinite(20 * beta):
        raise SecaError(f"beta: {beta:g}: int(20 x beta) hinge samples per pair (C3Box's rapf) is past a float's range")
    replay, hinge = int(10 * beta), int(20 * beta)  # models/rapf.py: int(10*self.beta), int(20*self.beta)
    if replay < 1:
        raise SecaError(
            f"beta: {beta:g} draws int(10 x {beta:g}) = {replay} pseudo-features per old class in C3Box's rapf; "
            "seca's rapf draws at least 1 (method.rapf.replay_samples_per_class)"
        )
    cfg.set("train.epochs", _whole(s, "epochs", 1), "epochs", "epochs")
    cfg.set("train.batch_size", _whole(s, "batch_size", 1), "batch_size", "batch_size")
    cfg.set("train.optimizer", "adam", "models/rapf.py: torch.optim.Adam on the adapter")
    cfg.set("train.weight_decay", 0.0, "models/rapf.py: Adam(weight_decay=0.0), whatever weight_decay says")
    cfg.set("train.schedule", "multistep", "models/rapf.py: MultiStepLR, stepped per epoch")
    cfg.set("train.milestones", [4, 10], "models/rapf.py: self.milestones = [4, 10]")
    cfg.set("train.gamma", 0.1, "models/rapf.py: MultiStepLR(gamma=0.1)")
    cfg.set("train.lr", {"rapf": _number(s, "init_lr", 0)}, "init_lr", "init_lr")
    cfg.set("train.amp", "off", "open_clip's CLIP in fp32, no autocast (models/rapf.py)")
    cfg.set("method.name", "rapf", "model_name: rapf", "model_name")
    r = "method.rapf."
    cfg.set(r + "template", "a good photo of a {}.", "models/rapf.py adaptation()")
    cfg.set(r + "threshold", _number(s, "threshold", None), "threshold", "threshold")
    cfg.set(r + "replay_classes_per_batch", 2, "models/rapf.py _train: 2 old classes per batch, in turn")
    cfg.set(r + "replay_samples_per_class", replay, f"beta: {beta:g}, int(10 x beta)", "beta")
    cfg.set(r + "hinge_samples_per_pair", hinge, f"beta: {beta:g}, int(20 x beta)", "beta")
    cfg.set(r + "hinge_margin", 0.1, "models/rapf.py: the hinge's + 0.1")
    cfg.set(r + "shrinkage", _flag(s, "shrinkage"), "shrinkage (C3Box's default: false)", "shrinkage")
    cfg.set(r + "covariance_eps", 1.0e-4, "models/rapf.py analyze_mean_cov: + 1e-4 * I")
    cfg.set(r + "mix_bias", _number(s, "mix_bias", None), "mix_bias", "mix_bias")
    cfg.set(r + "adapter_init", "default", "nn.Linear(512, 512, bias=False): PyTorch's initialisation")


def _simplecil(cfg: Imported, s: Mapping[str, Any]) -> None:
    cfg.set("train.amp", "off", "open_clip's CLIP in fp32 (models/simplecil.py)")
    cfg.set(
        "method.name", "simplecil", "model_name: simplecil: the mean frozen image feature of each class", "model_name"
    )


def _zs_clip(cfg: Imported, s: Mapping[str, Any]) -> None:
    dataset = s["dataset"].lower()
    template = ZS_TEMPLATES.get(dataset)
    if not isinstance(template, str):
        held = f"the mean of its {template} templates" if template else "templates it does not have"
        raise SecaError(
            f"model_name: zs_clip on {dataset} scores {held} (C3Box's utils/templates.json, models/zs_clip.py); "
            "seca's zero-shot takes one template (method.template): no seca config runs it"
        )
    cfg.set("train.amp", "off", "open_clip's CLIP in fp32 (models/zs_clip.py)")
    cfg.set("method.name", "zero-shot", "model_name: zs_clip", "model_name")
    cfg.set("method.template", template, f"C3Box's one template of {dataset} (utils/templates.json)")


def _inert_optimiser(method: str) -> dict[str, str]:
    return {key: f"read by models/{method}.py, which trains nothing" for key in UNUSED_OPTIMISER}


def _no_memory(method: str) -> dict[str, str]:
    return {key: f"models/{method}.py keeps no exemplars (it never builds its memory)" for key in MEMORY}


def _no_stored_images(cfg: Imported, s: Mapping[str, Any], method: str, learner: str) -> None:
    """memory_size of a method without exemplars: 0 (BaseLearner reads it; the method never builds a memory)."""
    size = _whole(s, "memory_size", 0)
    if size:
        raise SecaError(
            f"memory_size: {size}: seca's {learner} trains without stored images (models/{method}.py keeps no "
            "exemplars either: it never builds its memory); set memory_size to 0"
        )
    cfg.set("train.memory_size", 0, f"memory_size: 0: models/{method}.py keeps no exemplars", "memory_size")


def _templates(s: Mapping[str, Any], method: str) -> tuple[str, tuple[str, ...]]:
    """C3Box's data set name and its utils/templates.json list, which ``method`` prompts with."""
    dataset = s["dataset"].lower()
    templates = C3BOX_TEMPLATES.get(dataset)
    if templates is None:
        raise SecaError(
            f"dataset '{_shown(s['dataset'])}': C3Box's utils/templates.json has no templates of it (its DataManager "
            f"stops there), and models/{method}.py prompts with them: no seca config runs it as C3Box would"
        )
    return dataset, templates


def _optimizer(s: Mapping[str, Any], method: str) -> str:
    value = s["optimizer"]
    if value not in ("sgd", "adam"):
        raise SecaError(
            f"optimizer '{_shown(value)}': models/{method}.py makes an optimiser for 'sgd' and 'adam' only "
            "(C3Box stops on any other)"
        )
    return value


def _cosine_recipe(cfg: Imported, s: Mapping[str, Any], method: str, adam: str = "adamw") -> None:
    """proof's and engine's training (bofa's with sgd): tuned_epoch epochs of batch_size, SGD (momentum 0.9) or
    AdamW at init_lr with weight_decay, CosineAnnealingLR(T_max=tuned_epoch, eta_min=min_lr) stepped per epoch."""
    file = f"models/{method}.py"
    optimizer = _optimizer(s, method)
    lr, floor = _number(s, "init_lr", 0), _number(s, "min_lr", None)
    cfg.set("train.epochs", _whole(s, "tuned_epoch", 1), "tuned_epoch", "tuned_epoch")
    cfg.set("train.batch_size", _whole(s, "batch_size", 1), "batch_size", "batch_size")
    if optimizer == "sgd":
        cfg.set("train.optimizer", "sgd", f"optimizer: sgd ({file}: torch.optim.SGD)", "optimizer")
        cfg.set("train.momentum", 0.9, f"{file}: SGD(momentum=0.9)")
    else:
        cfg.set("train.optimizer", adam, f"optimizer: adam ({file}: torch.optim.AdamW)", "optimizer")
    cfg.set("train.weight_decay", _number(s, "weight_decay", None), "weight_decay", "weight_decay")
    cfg.set("train.schedule", "cosine_epoch", f"{file}: CosineAnnealingLR(T_max=tuned_epoch, eta_min=min_lr)")
    cfg.set("train.min_lr_ratio", floor / lr, f"min_lr {floor:g} / init_lr {lr:g}: eta_min", "min_lr")
    cfg.set("train.lr", {method: lr}, "init_lr", "init_lr")
    cfg.set("train.amp", "off", f"open_clip's CLIP in fp32 ({file})")


def _proof(cfg: Imported, s: Mapping[str, Any]) -> None:
    projection = s["projection_type"]
    if projection != "pure_mlp":
        raise SecaError(
            f"projection_type '{_shown(projection)}': C3Box's Proof_Net builds 'pure_mlp' projections only (one "
            "nn.Linear per task; utils/inc_net.py extend_item raises NotImplementedError on any other, its default "
            "'mlp' too), and seca's proof is that one"
        )
    cfg.notes.append("projection_type: pure_mlp: one nn.Linear(d, d) per task and encoder, as seca's proof builds")
    dataset, templates = _templates(s, "proof")
    _cosine_recipe(cfg, s, "proof")
    batch = cfg.values["train"]["batch_size"]
    cfg.set("train.eval_batch_size", batch, "batch_size: C3Box's test loader (fusion_mean batch: scores depend on it)")
    if _flag(s, "fixed_memory"):
        per_class = s["memory_per_class"]
        if per_class is None:
            raise SecaError(
                "fixed_memory: true with no memory_per_class: C3Box's exemplars per class are then None "
                "(models/base.py samples_per_class), which it cannot build"
            )
        per_class = _whole(s, "memory_per_class", 0)
        cfg.set("train.memory_per_class", per_class, "memory_per_class (fixed_memory: true)", "memory_per_class")
        cfg.set("train.memory_size", 0, "fixed_memory: true: memory_per_class decides, not memory_size")
        _whole(s, "memory_size", 0)
        cfg.dropped.append(("memory_size", s["memory_size"], "with fixed_memory: true C3Box keeps memory_per_class"))
    else:
        size = _whole(s, "memory_size", 0)
        cfg.set("train.memory_size", size, "memory_size (fixed_memory: false): // classes seen, each", "memory_size")
        cfg.set("train.memory_per_class", 0, "fixed_memory: false: memory_size decides")
        if "memory_per_class" in s:
            cfg.dropped.append(
                ("memory_per_class", s["memory_per_class"], "with fixed_memory: false C3Box shares memory_size")
            )
    cfg.set("train.memory_selection", "herding", "models/base.py: herding on the frozen CLIP image feature")
    cfg.set("method.name", "proof", "model_name: proof", "model_name")
    p = "method.proof."
    cfg.set(p + "templates", list(templates), f"utils/templates.json[{dataset}]: the first trains, a test averages all")
    cfg.set(
        p + "prompt_length",
        _whole(s, "context_prompt_length_per_task", 1),
        "context_prompt_length_per_task",
        "context_prompt_length_per_task",
    )
    cfg.set(p + "dropout", 0.1, "utils/inc_net.py Proof_Net: MultiHeadAttention(..., dropout=0.1)")
    cfg.set(p + "fusion_mean", "batch", "Proof_Net.forward_transformer: fused tokens averaged over the batch")
    cfg.set(p + "normalize_test_image", False, "models/proof.py _compute_accuracy: the test image un-normalised")
    cfg.set(p + "train_old_text_projections", True, "Proof_Net.freeze_projection_weight_new: every text projection")
    cfg.set(p + "frozen_decay", False, "C3Box's torch 2: zero_grad() sets None, SGD skips the frozen parameters")


def _engine(cfg: Imported, s: Mapping[str, Any]) -> None:
    dataset, templates = _templates(s, "engine")
    _cosine_recipe(cfg, s, "engine")
    _no_stored_images(cfg, s, "engine", "engine")
    cfg.set("method.name", "engine", "model_name: engine", "model_name")
    e = "method.engine."
    cfg.set(e + "descriptions", None, f"C3Box's utils/engine/chat/{dataset}_des.json: see the note at the top")
    cfg.set(e + "templates", list(templates), f"utils/templates.json[{dataset}]: the first trains, a test averages all")
    for key in ("text_des", "image_aug", "sample_noise", "stat", "rerank"):
        cfg.set(e + key, _number(s, key, None), key, key)
    cfg.set(e + "image_noise", 0.25, "models/engine.py: inputs + randn_like(inputs) * 0.25")
    sample_num = _whole(s, "sample_num", 0)
    cfg.set(e + "sample_num", sample_num, "sample_num", "sample_num")
    cfg.set(e + "rerank_top", _whole(s, "rerank_top", 1), "rerank_top", "rerank_top")
    cfg.set(e + "rerank_draws", 3, "utils/inc_net.py Engine.rerank: for _ in range(3)")
    cfg.set(e + "loss_scale", None, "CLIP's logit_scale parameter (ln 100), as models/engine.py")
    cfg.notes.append(
        f"method.engine.descriptions is null: seca writes texts from the class names (docs/specs/engine.md §6 item "
        f"1); C3Box reads utils/engine/chat/{dataset}_des.json (empty files in C3Box's snapshot; the official ones "
        f"are chat/{dataset}_des.json of github.com/LAMDA-CL/ICCV25-ENGINE): add --set method.engine.descriptions=FILE"
    )
    if sample_num:
        cfg.notes.append(
            f"sample_num: {sample_num}: C3Box draws each step's old classes from the previous step's draw; seca draws "
            "them from all old classes every step (docs/specs/engine.md §6 item 5)"
        )


def _bofa(cfg: Imported, s: Mapping[str, Any]) -> None:
    for key, value in (("loss_type", "CE"), ("center_type", "mix"), ("use_up_cen", False)):
        if not (s[key] == value and type(s[key]) is type(value)):
            raise SecaError(
                f"{key}: {_shown(s[key])}: seca's bofa runs C3Box's default {json.dumps(value)} only (models/bofa.py)"
            )
    dataset, templates = _templates(s, "bofa")
    if _optimizer(s, "bofa") == "sgd":
        _cosine_recipe(cfg, s, "bofa")
        floor = cfg.values["train"]["min_lr_ratio"]
        if floor:
            cfg.notes.append(
                "min_lr: eta_min also floors the rate of BOFA's stage-2 parameters in C3Box, which seca does not "
                "train: the ratio is C3Box's schedule of W"
            )
    else:  # models/bofa.py: Adam(lr=init_lr, weight_decay=0.001), MultiStepLR([4, 10], 0.1)
        cfg.set("train.epochs", _whole(s, "tuned_epoch", 1), "tuned_epoch", "tuned_epoch")
        cfg.set("train.batch_size", _whole(s, "batch_size", 1), "batch_size", "batch_size")
        cfg.set("train.optimizer", "adam", "optimizer: adam (models/bofa.py: torch.optim.Adam)", "optimizer")
        cfg.set("train.weight_decay", 0.001, "models/bofa.py: Adam(weight_decay=0.001), whatever weight_decay says")
        cfg.set("train.schedule", "multistep", "models/bofa.py: MultiStepLR, stepped per epoch")
        cfg.set("train.milestones", [4, 10], "models/bofa.py: MultiStepLR([4, 10])")
        cfg.set("train.gamma", 0.1, "models/bofa.py: MultiStepLR(gamma=0.1)")
        cfg.set("train.lr", {"bofa": _number(s, "init_lr", 0)}, "init_lr", "init_lr")
        cfg.set("train.amp", "off", "open_clip's CLIP in fp32 (models/bofa.py)")
        for key in ("weight_decay", "min_lr"):
            if key in s:
                cfg.dropped.append((key, s[key], "with optimizer: adam models/bofa.py does not use it"))
    _no_stored_images(cfg, s, "bofa", "bofa")
    stage2 = _whole(s, "epoch", 0)
    cfg.notes.append(
        f"epoch: {stage2}: C3Box trains BOFA's stage 2 (the low-rank B) {stage2} more epochs each task; seca's bofa "
        "projects W at the end of the task and trains no stage 2 (docs/specs/bofa.md §6 item 3): no key maps it"
    )
    cfg.set("method.name", "bofa", "model_name: bofa", "model_name")
    b = "method.bofa."
    cfg.set(b + "templates", list(templates), f"utils/templates.json[{dataset}]: the first trains, a test averages all")
    cfg.set(b + "rank", _whole(s, "Kt", 1), "Kt", "Kt")
    cfg.set(b + "stat", _number(s, "stat", None), "stat", "stat")


CLG_CBM_GATES = {("linear", "bn", "linear"): "linear-bn-linear", ("linear", "linear"): "linear-linear"}


def _clg_cbm(cfg: Imported, s: Mapping[str, Any]) -> None:
    dataset, templates = _templates(s, "clg_cbm")
    gate = s["linear_model"]
    key = tuple(gate) if isinstance(gate, list) and all(isinstance(g, str) for g in gate) else None
    if key not in CLG_CBM_GATES:
        known = key in (("bn", "linear"), ("linear",))
        raise SecaError(
            f"linear_model: {_shown(gate)}: seca's clg-cbm searches concepts with "
            f"{' or '.join(json.dumps(list(g)) for g in CLG_CBM_GATES)} only"
            + ("" if known else " (utils/inc_net.py Gateway.generate_gate raises NotImplementedError on it)")
        )
    milestones = s["milestones"]
    if not (isinstance(milestones, list) and all(isinstance(m, int) and not isinstance(m, bool) for m in milestones)):
        raise SecaError(f"milestones: {_shown(milestones)} should be a list of whole numbers, as [30, 40, 50]")
    batch = _whole(s, "batch_size", 1)
    cfg.set("train.epochs", _whole(s, "epochs", 1), "epochs: the concept search", "epochs")
    cfg.set("train.batch_size", batch, "batch_size", "batch_size")
    cfg.set("train.optimizer", "adam", "models/clg_cbm.py _train: Adam on the search's gate")
    cfg.set("train.weight_decay", 0.0, "models/clg_cbm.py: Adam(model.gate.parameters(), lr): no weight decay")
    cfg.set("train.schedule", "multistep", "models/clg_cbm.py: no scheduler in the search")
    cfg.set("train.milestones", [], "none: the search's rate is constant")
    cfg.set("train.lr", {"clg_cbm": _number(s, "lr", 0)}, "lr", "lr")
    cfg.set("train.amp", "off", "open_clip's CLIP in fp32 (models/clg_cbm.py)")
    _no_stored_images(cfg, s, "clg_cbm", "clg-cbm")
    cfg.set("method.name", "clg-cbm", "model_name: clg_cbm", "model_name")
    c = "method.clg_cbm."
    cfg.set(c + "concepts", None, "see the note at the top")
    cfg.set(c + "concept_names", None, "see the note at the top")
    cfg.set(c + "concept_prefix", CLG_CBM_PREFIXES[dataset], f"utils/data_manager.py get_prefix: {dataset}")
    cfg.set(c + "template", templates[0], f"utils/templates.json[{dataset}][0]: the class-name prompt")
    cfg.set(c + "pool", _whole(s, "pool", 1), "pool", "pool")
    cfg.set(c + "search_model", CLG_CBM_GATES[key], "linear_model", "linear_model")
    cfg.set(c + "regularizer", "mahalanobis", "models/clg_cbm.py cluster(): regularizer='mahalanobis'")
    cfg.set(c + "division_power", _number(s, "division_power", None), "division_power", "division_power")
    cfg.set(c + "similarity", _number(s, "sim", None), "sim", "sim")
    cfg.set(c + "sparse_lambda", 0.001, "models/clg_cbm.py _sparse_linear_loss: lam = 0.001")
    cfg.set(c + "sparse_alpha", 0.99, "models/clg_cbm.py _sparse_linear_loss: alpha = 0.99")
    cfg.set(c + "gaussian_samples", _whole(s, "sg_num", 0), "sg_num", "sg_num")
    cfg.set(c + "covariance_eps", 1.0e-4, "models/clg_cbm.py building_protos: + 1e-4 * I")
    cfg.set(c + "bottleneck_epochs", _whole(s, "FB_epoch", 0), "FB_epoch", "FB_epoch")
    cfg.set(c + "bottleneck_epochs_later", _whole(s, "FB_epoch_inc", 0), "FB_epoch_inc", "FB_epoch_inc")
    cfg.set(c + "bottleneck_lr", _number(s, "init_lr", 0), "init_lr: the bottleneck's Adam", "init_lr")
    cfg.set(c + "bottleneck_milestones", milestones, "milestones: the bottleneck's MultiStepLR", "milestones")
    cfg.set(c + "bottleneck_gamma", 0.1, "models/clg_cbm.py: MultiStepLR(gamma=0.1)")
    cfg.set(c + "bottleneck_batch_size", batch, "batch_size", "batch_size")
    cfg.notes.append(
        "method.clg_cbm.concepts is null: seca makes one concept of each word of a class name, not the published "
        f"method; C3Box reads utils/clg_cbm/concepts/{CLG_CBM_CONCEPTS[dataset]} (utils/data_manager.py "
        "get_attributes; keyed by class index, named by utils/labels.json): add --set method.clg_cbm.concepts=FILE "
        "--set method.clg_cbm.concept_names=NAMES (utils/labels.json's list of the data set, as a JSON file)"
    )
    cfg.notes.append(
        "C3Box keeps the weights of the epoch with the best accuracy on the task's test images and stops the concept "
        "search early on them (models/clg_cbm.py _train_function); seca, with no test data in training, keeps the "
        "last epoch's (docs/specs/clg-cbm.md §6 item 1)"
    )


def _c3box_default(what: str) -> str:
    return f"read by {what}, used by nothing"


METHODS: dict[str, Method] = {
    "rapf": Method(
        "models/rapf.py",
        {
            "batch_size": 128,
            "init_lr": 0.001,
            "epochs": 15,
            "beta": 2,
            "mix_bias": 0.6,
            "threshold": 0.55,
            "shrinkage": False,
        },  # fmt: skip
        {
            "weight_decay": "read by models/rapf.py, whose Adam has weight_decay=0.0",
            "min_lr": "read by models/rapf.py, used by nothing",
            **_no_memory("rapf"),
        },
        _rapf,
    ),
    "simplecil": Method(
        "models/simplecil.py", {}, {**_inert_optimiser("simplecil"), **_no_memory("simplecil")}, _simplecil
    ),
    "zs_clip": Method("models/zs_clip.py", {}, {**_inert_optimiser("zs_clip"), **_no_memory("zs_clip")}, _zs_clip),
    "proof": Method(
        "models/proof.py",
        {
            "batch_size": 48,
            "init_lr": 0.01,
            "weight_decay": 0.0005,
            "min_lr": 1e-8,
            "tuned_epoch": 5,
            "projection_type": "mlp",
            "context_prompt_length_per_task": 3,
            "fixed_memory": False,
            "memory_per_class": None,
        },  # fmt: skip
        {
            "frozen_layers": _c3box_default("models/proof.py") + ": it freezes all of CLIP but logit_scale",
            "use_cos": _c3box_default("models/proof.py"),
        },
        _proof,
        ("optimizer", "memory_size"),
    ),
    "engine": Method(
        "models/engine.py",
        {
            "batch_size": 48,
            "init_lr": 0.01,
            "weight_decay": 0.0005,
            "min_lr": 1e-8,
            "tuned_epoch": 5,
            "memory_size": 0,
        },  # fmt: skip
        {
            "frozen_layers": _c3box_default("models/engine.py") + ": CLIP is frozen whole",
            "projection_type": "read by no code of C3Box's engine",
            **{key: "models/engine.py keeps no exemplars" for key in ("memory_per_class", "fixed_memory")},
        },
        _engine,
        ("optimizer", "text_des", "image_aug", "rerank", "rerank_top", "stat", "sample_num", "sample_noise"),
    ),
    "bofa": Method(
        "models/bofa.py",
        {
            "batch_size": 48,
            "init_lr": 0.01,
            "weight_decay": 0.0005,
            "min_lr": 1e-8,
            "tuned_epoch": 5,
            "epoch": 2,
            "loss_type": "CE",
            "center_type": "mix",
            "use_up_cen": False,
            "memory_size": 0,
        },  # fmt: skip
        {
            "frozen_layers": _c3box_default("models/bofa.py"),
            "last_mask": _c3box_default("models/bofa.py"),
            "use_up_cov": "read by utils/inc_net.py BofaAdapter, used only by sample_augmented_cls, never called",
            **{key: "read by no code path of C3Box's bofa" for key in ("text_des", "image_aug", "projection_type")},
            **{key: "models/bofa.py keeps no exemplars" for key in ("memory_per_class", "fixed_memory")},
        },
        _bofa,
        ("optimizer", "stat", "Kt"),
    ),
    "clg_cbm": Method(
        "models/clg_cbm.py",
        {"batch_size": 48, "init_lr": 0.01, "sim": 1, "memory_size": 0},
        {
            "regularizer": "read by no code: models/clg_cbm.py passes regularizer='mahalanobis' itself",
            "score_model": "read by no code of C3Box",
            "repeat": "read by no code of C3Box",
            "print_freq": "read only in a line models/clg_cbm.py comments out",
            **{key: "models/clg_cbm.py keeps no exemplars" for key in ("memory_per_class", "fixed_memory")},
        },
        _clg_cbm,
        ("epochs", "lr", "FB_epoch", "FB_epoch_inc", "pool", "sg_num", "milestones", "division_power", "linear_model"),
    ),
}

# Methods seca has, whose C3Box version it cannot run as C3Box does: why.
NOT_AS_C3BOX = {
    "mind": "C3Box's mind (MG-CLIP, Mind the Gap) stops its first task's training when its modality-gap probe fires "
    "and trains every later task that many epochs (models/mind.py _train); seca's mind-the-gap trains a fixed "
    "train.epochs (chosen beforehand by `seca probe-epochs`): no seca config runs it as C3Box does; start from the "
    "mind-the-gap-* presets",
}


# ---- the mapping --------------------------------------------------------------------------------------------


def read_c3box(path: str | Path) -> dict[str, Any]:
    """The settings of a C3Box JSON, or a one-line SecaError."""
    file = Path(path).expanduser()
    try:
        settings = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SecaError(f"'{path}' not found; give a C3Box experiment config (exps/<method>.json)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SecaError(f"'{path}' cannot be read: {e}") from None
    except json.JSONDecodeError as e:
        raise SecaError(f"'{path}' is not JSON ({e}); give a C3Box experiment config (exps/<method>.json)") from None
    except (ValueError, RecursionError) as e:  # a number of over 4300 digits; nesting deeper than Python's stack
        raise SecaError(f"'{path}' is JSON that Python's json cannot read ({e}), so neither can C3Box") from None
    if not isinstance(settings, dict):
        raise SecaError(f"'{path}' holds JSON {type(settings).__name__}; a C3Box config is an object of keys")
    return settings


def c3box_yaml(path: str | Path) -> str:
    """The seca config (YAML text, with comments) of the C3Box config at ``path``; a SecaError, prefixed with the
    file's name, for what cannot be mapped."""
    try:
        return render(c3box_config(read_c3box(path), Path(path).name))
    except SecaError as e:
        text = str(e)
        raise SecaError(text if text.startswith(f"'{path}'") else f"{Path(path).name}: {text}") from None


def c3box_config(settings: Mapping[str, Any], source: str = "the C3Box config") -> Imported:
    """The seca config of C3Box ``settings`` (checked by seca's own validation), or a one-line SecaError."""
    name = settings.get("model_name")
    if not isinstance(name, str):
        raise SecaError("has no model_name (utils/factory.py picks the method by it)")
    method = METHODS.get(name.lower())
    if method is None:
        if name.lower() in NOT_AS_C3BOX:
            raise SecaError(f"model_name '{_shown(name)}': {NOT_AS_C3BOX[name.lower()]}")
        what = "seca has no '{}' learner yet" if name.lower() in C3BOX_METHODS else "'{}' is not a C3Box method"
        raise SecaError(
            f"model_name '{_shown(name)}': {what.format(_shown(name))} (the C3Box methods seca runs: "
            f"{', '.join(METHODS)})"
        )
    for key in REQUIRED:
        if key not in settings:
            raise SecaError(f"has no '{key}' (C3Box's trainer.py and DataManager need it)")
    for key in method.needs:
        if key not in settings:
            raise SecaError(f"has no '{key}' ({method.source} reads it with no default: C3Box stops without it)")
    inert = {**INERT, **method.inert}
    for key in settings:
        if key not in REQUIRED and key not in method.reads and key not in method.needs and key not in inert:
            raise SecaError(
                f"key '{_shown(key)}' is not one that C3Box's {name.lower()} reads ({method.source}, trainer.py, "
                "utils/data_manager.py), so seca cannot map it: remove it if your C3Box ignores it too"
            )
    s = {**method.reads, **settings}
    cfg = Imported(source)
    dataset = _scenario(cfg, s)
    model, pretrained = _backbone(s)
    cfg.set("backbone.model", model, f"backbone_type: {s['backbone_type']} (utils/inc_net.py)", "backbone_type")
    cfg.set("backbone.pretrained", pretrained, "open_clip's tag of C3Box's weights", "backbone_type")
    method.build(cfg, s)
    cfg.dropped[:0] = [(key, settings[key], why) for key, why in inert.items() if key in settings]
    if dataset not in ("cifar224",):  # CIFAR's images are square: resizing them either way is the same
        cfg.notes.append(
            "C3Box resizes every image to 224x224 (utils/data.py build_transform); seca resizes its short side to 224 "
            "and crops the centre: a difference no key sets"
        )
    _validate(cfg)
    return cfg


def _scenario(cfg: Imported, s: Mapping[str, Any]) -> str:
    """The data set, class order and task sizes; returns C3Box's data set name."""
    given = s["dataset"]
    if not isinstance(given, str) or given.lower() not in DATASETS:
        raise SecaError(
            f"dataset '{_shown(given)}': seca has no counterpart of this C3Box data set (it maps {', '.join(DATASETS)})"
        )
    dataset = given.lower()
    ours, classes = DATASETS[dataset]
    shuffle = _flag(s, "shuffle")
    seeds = s["seed"]
    seeds = [seeds] if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
    if not (isinstance(seeds, list) and seeds and all(isinstance(k, int) and not isinstance(k, bool) for k in seeds)):
        raise SecaError(f"seed: {json.dumps(s['seed'])} should be a list of whole numbers, as [1993]")
    if any(k < 0 or k >= 2**32 for k in seeds):
        raise SecaError(f"seed: {json.dumps(s['seed'])}: numpy's seeds are 0 to 2**32 - 1")
    if shuffle and len(seeds) > 1:
        raise SecaError(
            f"seed: {json.dumps(seeds)}: C3Box runs once per seed, each with the class order of that seed and torch "
            "seeded with 1 (trainer.py); a seca config has one class order (scenario.order_seed): import a config of "
            "each seed, as seed: [" + str(seeds[0]) + "]"
        )
    first, increment = _whole(s, "init_cls", 1), _whole(s, "increment", 1)
    if classes is not None and (first > classes or (classes - first) % increment):
        last = classes if first > classes else (classes - first) % increment
        raise SecaError(
            f"init_cls {first} and increment {increment} split {dataset}'s {classes} classes with a last task of "
            f"{last} (C3Box's DataManager); seca's tasks after the first all have scenario.increment classes"
        )
    benchmark = f"{ours}-b{0 if first == increment else first}-inc{increment}"
    cfg.set("benchmark", benchmark + (f"-lamda{'' if seeds[0] == 1993 else seeds[0]}" if shuffle else ""))
    cfg.set("data.dataset", ours, f"dataset: {given}", "dataset")
    cfg.set("data.names", "c3box", "the class names of C3Box's utils/labels.json", "dataset")
    if shuffle:
        cfg.set("scenario.order", "lamda", "shuffle: true: np.random.seed(seed); np.random.permutation(K)", "shuffle")
        cfg.set("scenario.order_seed", seeds[0], f"seed: {json.dumps(seeds)}", "seed")
    else:
        cfg.set("scenario.order", "identity", "shuffle: false: utils/data.py class_order, 0 .. K-1", "shuffle")
        cfg.dropped.append(("seed", seeds, "with shuffle: false it draws nothing (torch is seeded with 1)"))
    cfg.set("scenario.first_task", first, "init_cls", "init_cls")
    cfg.set("scenario.increment", increment, "increment", "increment")
    cfg.notes.append(
        f"data.root is left out: add --set data.root=DIR, the folder of {ours} (C3Box's [DATA-PATH] in "
        "utils/data.py, holding train/ and val/)"
    )
    cfg.notes.append(
        "C3Box seeds torch with 1 in every run (trainer.py); seca's `seed` seeds its own random streams, and no "
        "value of it makes them C3Box's"
    )
    return dataset


def _backbone(s: Mapping[str, Any]) -> tuple[str, str]:
    kind = s["backbone_type"]
    if not isinstance(kind, str) or kind.lower() not in BACKBONES:
        raise SecaError(
            f"backbone_type '{_shown(kind)}': seca runs CLIP, and C3Box's CLIPs are {', '.join(BACKBONES)} "
            "(utils/inc_net.py)"
        )
    return BACKBONES[kind.lower()]


def _validate(cfg: Imported) -> None:
    """Check the config as ``seca run`` does (data.root set to a placeholder); a refusal names the C3Box key."""
    from ..config import deep_merge
    from ..engine.configure import DATASETS as REGISTERED
    from ..engine.configure import resolve

    data = deep_merge(cfg.values, {"data": {"root": "DIR"}})
    dataset = data["data"]["dataset"]
    if dataset not in REGISTERED:  # a data set being added: check all the rest
        cfg.notes.append(f"this seca has no data set '{dataset}' registered yet: the config runs once it has")
        data["data"]["dataset"] = "cifar100"
    try:
        resolve(data)
    except SecaError as e:
        text = str(e)
        key = next((k for k in sorted(cfg.origin, key=len, reverse=True) if f"'{k}" in text), None)
        origin = cfg.origin.get(key) if key else None
        raise SecaError(f"{origin}: seca cannot run it: {text}" if origin else text) from None


def _shown(value: Any) -> str:
    """A value of the file as a refusal quotes it: on one line, whatever characters it holds (a newline, a lone
    surrogate: escaped as Python writes them)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _whole(s: Mapping[str, Any], key: str, least: int) -> int:
    value = s[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise SecaError(f"{key}: {json.dumps(value)} should be a whole number of at least {least}")
    return value


def _number(s: Mapping[str, Any], key: str, above: float | None) -> float:
    """The finite float at ``key``: NaN, Infinity and an integer past a float's range are refused too."""
    value = s[key]
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= sys.float_info.max:
        number = float(value)
    if number is None or (above is not None and number <= above):
        bound = f" above {above:g}" if above is not None else ""
        raise SecaError(f"{key}: {json.dumps(value)} should be a finite number{bound}")
    return number


def _flag(s: Mapping[str, Any], key: str) -> bool:
    value = s[key]
    if not isinstance(value, bool):
        raise SecaError(f"{key}: {json.dumps(value)} should be true or false")
    return value


# ---- the YAML text ------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_./-]+")


def _scalar(value: Any) -> str:
    import yaml

    if isinstance(value, str):
        plain = _PLAIN.fullmatch(value) and yaml.safe_load(value) == value
        return value if plain else json.dumps(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def render(cfg: Imported) -> str:
    """The YAML of ``cfg``: a header (the source, notes, the keys dropped and why), then the keys with the C3Box
    key or code each came from."""
    header = [f"# seca config of C3Box's {cfg.source}, written by `seca import c3box`"]
    header += [f"# {note}" for note in cfg.notes]
    if cfg.dropped:
        header.append("# C3Box keys left out, as they change no result there:")
        header += [f"#   {key}: {json.dumps(value)}: {why}" for key, value, why in cfg.dropped]
    body: list[tuple[str, str]] = []

    def walk(node: Mapping[str, Any], prefix: str, depth: int) -> None:
        for key, value in node.items():
            path = prefix + key
            if isinstance(value, dict) and path != "train.lr":
                body.append(("  " * depth + f"{key}:", ""))
                walk(value, path + ".", depth + 1)
            elif isinstance(value, list) and len(_scalar(value)) > 60:  # a list of templates: one a line
                body.append(("  " * depth + f"{key}:", cfg.comments.get(path, "")))
                body.extend(("  " * (depth + 1) + f"- {_scalar(item)}", "") for item in value)
            else:
                body.append(("  " * depth + f"{key}: {_scalar(value)}", cfg.comments.get(path, "")))

    order = ["benchmark", "backbone", "data", "scenario", "train", "method"]
    walk(dict(sorted(cfg.values.items(), key=lambda kv: order.index(kv[0]))), "", 0)
    width = max(len(line) for line, comment in body if comment) + 2
    lines = [f"{line:<{width}}# {comment}" if comment else line for line, comment in body]
    return "\n".join(header + lines) + "\n"
