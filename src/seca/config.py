"""Experiment configuration: typed, frozen dataclasses built from YAML presets and ``--set`` overrides.

Every key is declared here, with its default; docs/config.md explains each one. A preset may start with
``extends: other.yaml`` (relative to the preset, or the name of a packaged preset) to inherit another.
Unknown keys and ill-typed values are errors that name the offending key and the closest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import yaml

from .errors import SecaError


# --------------------------------------------------------------------------------------------------
# The schema


@dataclass(frozen=True)
class BackboneConfig:
    """Which CLIP to load (docs/config.md#backbone)."""

    model: str = "ViT-B-16"
    # An open_clip pretrained tag ("openai"), a local weights file, or null for random weights (tests).
    pretrained: Optional[str] = "openai"
    cache_dir: Optional[str] = None


@dataclass(frozen=True)
class ShapesConfig:
    """The generated colour x shape world used offline (docs/config.md#data)."""

    colors: int = 10
    shapes: int = 10
    train_per_class: int = 40
    test_per_class: int = 20
    image_size: int = 64
    domain: str = "renditions"  # clean | renditions
    seed: int = 0


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "imagenet-r"  # cifar100 | imagenet-r | imagenet-a | imagefolder | shapes
    root: Optional[str] = None
    download: bool = False
    num_workers: int = 4
    # Keep each task's preprocessed images in memory after their first pass (training uses no augmentation,
    # so they never change). Fast, but needs ~0.6 MB per 224x224 image: for small data sets.
    cache_images: bool = False
    max_pixels: int = 89_478_485  # larger images are refused before decoding (PIL's own bound)
    skip_bad_images: bool = False  # true: leave out (and name) image files that cannot be read, instead of stopping
    shapes: ShapesConfig = field(default_factory=ShapesConfig)


@dataclass(frozen=True)
class ScenarioConfig:
    """How classes arrive: a class order and the task sizes (docs/config.md#scenario)."""

    # "reference" (the paper's orders, by trial), "seeded" (a permutation from order_seed),
    # "identity", or an explicit list of class ids.
    order: Union[str, tuple[int, ...]] = "reference"
    trial: int = 0
    order_seed: Optional[int] = None  # null: the experiment seed
    first_task: int = 20
    increment: int = 20
    # The tasks by class name ([[cat, dog], [fox, owl]]): decides the order and the task sizes, so order,
    # first_task and increment are not read. Names as the data set gives them (folder names for imagefolder).
    tasks: Optional[tuple[tuple[Union[str, int], ...], ...]] = None


@dataclass(frozen=True)
class LearningRates:
    adapter: float = 1e-3
    prompt: float = 5e-4
    sg_akt: float = 1e-3
    se_vpr: float = 1e-3


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 128
    # task: each seen task's test images through their own loader; dataset: one loader over all seen classes'
    # test images in the data set's order, so batches mix tasks, as the reference (docs/method.md)
    eval_order: str = "task"
    lr: LearningRates = field(default_factory=LearningRates)
    weight_decay: float = 5e-4
    milestones: tuple[int, ...] = (2, 5)
    gamma: float = 0.1
    amp: str = "auto"  # auto | bf16 | fp16 | off (mixed precision is used on CUDA only)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    log_every: int = 10
    progress: bool = True
    checkpoints: str = "last"  # last (keep the latest task's, for --resume) | all | none
    tensorboard: bool = False  # also log to <out>/tensorboard (needs the tensorboard package)
    threads: Optional[int] = None  # CPU threads for torch; null: torch's choice (one per core)
    dist_timeout: float = 1800.0  # torchrun runs: seconds a collective may wait for a process before the run fails


@dataclass(frozen=True)
class AdapterConfig:
    """Bottleneck adapters parallel to each block's MLP (spec §2)."""

    bottleneck: int = 16
    scale: float = 0.1
    dropout: float = 0.1
    blocks: Union[str, tuple[int, ...]] = "all"  # "all" or a list of block indices


@dataclass(frozen=True)
class PromptConfig:
    """Per-task learnable text prompts (spec §2)."""

    length: int = 8
    init_std: float = 0.02


@dataclass(frozen=True)
class SGAKTConfig:
    """Semantic-guided adaptive knowledge transfer (spec §3)."""

    teacher: str = "sg-akt"  # none | clip | vanilla | avg | sg-akt
    pool_size: int = 5
    eviction: str = "lowest"  # lowest (reference) | highest (paper's text) | oldest
    relevance: str = "reference"  # reference (softmax per prompt, then mean) | paper (mean, then softmax)
    utility_momentum: float = 0.5
    teacher_dropout: bool = False  # true: snapshots keep adapter dropout, as the reference
    beta: float = 1.0  # beta_s = beta * (s - 1)
    temperature: float = 20.0
    cache_teachers: bool = True  # compute teacher features once per task (spec §7b); false: every step
    # Diagnostics of SG-AKT (docs/method.md#sg-akt-diagnostics); the defaults are the method.
    detach_query: bool = False  # true: the current prompt's semantic vector enters the relevance query detached
    agg_loss: bool = True  # false: no L_agg, so the relevance network keeps its initial weights
    reset_aggregator: bool = False  # true: a fresh relevance network at the start of every task


@dataclass(frozen=True)
class SEVPRConfig:
    """Semantic-enhanced visual prototype refinement (spec §4)."""

    gamma: Optional[float] = None  # null: 2 * sqrt(feature dim)
    regularize: bool = True  # L_reg against the stored prototypes of old classes


@dataclass(frozen=True)
class ClassifierConfig:
    """How classes are scored at inference (spec §6)."""

    branches: str = "hybrid"  # hybrid | text | visual
    visual: str = "se-vpr"  # se-vpr | centroid-clip | centroid-adapted | linear
    text_weight: float = 0.5  # weight of the text branch in the hybrid score
    hybrid_max: str = "image"  # image | batch (the reference: one maximum per batch)
    cache_text: bool = True  # encode every prompt once per task (spec §7b); false: once per batch


@dataclass(frozen=True)
class ReplayConfig:
    """Gaussian pseudo-feature replay of SECA++ (spec §7)."""

    samples_per_class: int = 10
    stats_dropout: bool = False  # true: class statistics with adapter dropout active, as the reference
    covariance_eps: float = 1e-4


@dataclass(frozen=True)
class MethodConfig:
    name: str = "seca"  # zero-shot | h-peft | seca | seca++
    template: str = "a good photo of a {}."
    temperature: float = 20.0  # fixed inference temperature (spec §1)
    ce_scale: Optional[float] = None  # scale of the training cross-entropies; null: the backbone's logit_scale.exp()
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    sg_akt: SGAKTConfig = field(default_factory=SGAKTConfig)
    se_vpr: SEVPRConfig = field(default_factory=SEVPRConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    # Memory for the frozen stems of a task's training images (spec §7b); a larger task recomputes them every step.
    stem_cache_gb: float = 4.0


@dataclass(frozen=True)
class ExperimentConfig:
    benchmark: str = "custom"
    seed: int = 0
    seeds: Optional[tuple[int, ...]] = None  # run once per seed into OUT/seed<k>/ and aggregate (docs/statistics.md)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: DataConfig = field(default_factory=DataConfig)
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: MethodConfig = field(default_factory=MethodConfig)


# --------------------------------------------------------------------------------------------------
# Building typed configs from plain data


def _dotted_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        keys.append(key)
        if dataclasses.is_dataclass(hints[f.name]):
            keys.extend(_dotted_keys(hints[f.name], key + "."))
    return keys


def valid_keys(cls: type = ExperimentConfig) -> list[str]:
    """Every dotted key a config of type ``cls`` accepts."""
    return _dotted_keys(cls)


def _unknown_key_error(path: str, root: type) -> SecaError:
    candidates = valid_keys(root)
    close = difflib.get_close_matches(path, candidates, n=1, cutoff=0.5)
    if not close:  # compare the last component only: "train.epoch" vs "epochs"
        leaf = path.rsplit(".", 1)[-1]
        close = [k for k in candidates if k.rsplit(".", 1)[-1] in difflib.get_close_matches(
            leaf, [c.rsplit(".", 1)[-1] for c in candidates], n=1, cutoff=0.6)][:1]
    hint = f"; did you mean '{close[0]}'?" if close else "; see docs/config.md for the valid keys"
    return SecaError(f"unknown config key '{path}'{hint}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str, root: type) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, option, path, root)
            except SecaError as e:
                errors.append(e)
        names = " or ".join(_type_name(a) for a in typing.get_args(tp))
        raise SecaError(f"config key '{path}' must be {names}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise SecaError(f"config key '{path}' is a section; give it as a mapping, got {value!r}")
        return _build(tp, value, path + ".", root)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise SecaError(f"config key '{path}' must be a list, got {value!r}")
        (item_type, _) = typing.get_args(tp)
        return tuple(_coerce(v, item_type, f"{path}[{i}]", root) for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise SecaError(f"config key '{path}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise SecaError(f"config key '{path}' must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "5e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise SecaError(f"config key '{path}' must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise SecaError(f"config key '{path}' must be a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # a bug in the schema, not user input


def _build(cls: type, data: Mapping[str, Any], prefix: str, root: type) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = prefix + str(key)
        if key not in names:
            raise _unknown_key_error(path, root)
        kwargs[key] = _coerce(value, hints[key], path, root)
    return cls(**kwargs)


# --------------------------------------------------------------------------------------------------
# Ranges and choices: every value is checked here, once, before any model or data is loaded


def _at_least(low: float) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v >= low), f"at least {low:g}"


_POSITIVE = ((lambda v: v > 0), "above 0")
_FRACTION = ((lambda v: 0 <= v <= 1), "between 0 and 1")


def _one_of(*choices: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in choices), "one of " + ", ".join(choices)


def _increasing(v: tuple) -> bool:
    return all(m >= 1 for m in v) and all(a < b for a, b in zip(v, v[1:]))


# key -> (test, what the value must be); None values pass where the key allows None (its default meaning)
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": _at_least(0),
    "data.dataset": _one_of("cifar100", "imagenet-r", "imagenet-a", "imagefolder", "shapes"),
    "data.num_workers": _at_least(0),
    "data.max_pixels": _at_least(1),
    "data.shapes.colors": ((lambda v: 1 <= v <= 10), "between 1 and 10"),
    "data.shapes.shapes": ((lambda v: 1 <= v <= 10), "between 1 and 10"),
    "data.shapes.train_per_class": _at_least(1),
    "data.shapes.test_per_class": _at_least(1),
    "data.shapes.image_size": _at_least(8),
    "data.shapes.domain": _one_of("clean", "renditions"),
    "data.shapes.seed": _at_least(0),
    "scenario.trial": _at_least(0),
    "scenario.order_seed": _at_least(0),
    "scenario.first_task": _at_least(1),
    "scenario.increment": _at_least(1),
    "train.epochs": _at_least(1),
    "train.batch_size": _at_least(1),
    "train.eval_batch_size": _at_least(1),
    "train.eval_order": _one_of("task", "dataset"),
    "train.lr.adapter": _POSITIVE,
    "train.lr.prompt": _POSITIVE,
    "train.lr.sg_akt": _POSITIVE,
    "train.lr.se_vpr": _POSITIVE,
    "train.weight_decay": _at_least(0),
    "train.milestones": (_increasing, "a list of increasing epochs, each at least 1"),
    "train.gamma": _POSITIVE,
    "train.amp": _one_of("auto", "bf16", "fp16", "off"),
    "train.log_every": _at_least(1),
    "train.checkpoints": _one_of("last", "all", "none"),
    "train.threads": _at_least(1),
    "train.dist_timeout": _POSITIVE,
    "method.temperature": _POSITIVE,
    "method.ce_scale": _POSITIVE,
    "method.stem_cache_gb": _at_least(0),
    "method.adapter.bottleneck": _at_least(1),
    "method.adapter.dropout": ((lambda v: 0 <= v < 1), "at least 0 and below 1"),
    "method.adapter.blocks": ((lambda v: v == "all" or (not isinstance(v, str) and len(v) > 0 and min(v) >= 0)),
                              "all, or a non-empty list of block indices >= 0"),
    "method.prompt.length": _at_least(1),
    "method.prompt.init_std": _at_least(0),
    "method.sg_akt.teacher": _one_of("none", "clip", "vanilla", "avg", "sg-akt"),
    "method.sg_akt.pool_size": _at_least(1),
    "method.sg_akt.eviction": _one_of("lowest", "highest", "oldest"),
    "method.sg_akt.relevance": _one_of("reference", "paper"),
    "method.sg_akt.utility_momentum": _FRACTION,
    "method.sg_akt.beta": _at_least(0),
    "method.sg_akt.temperature": _POSITIVE,
    "method.se_vpr.gamma": _POSITIVE,
    "method.classifier.branches": _one_of("hybrid", "text", "visual"),
    "method.classifier.visual": _one_of("se-vpr", "centroid-clip", "centroid-adapted", "linear"),
    "method.classifier.text_weight": _FRACTION,
    "method.classifier.hybrid_max": _one_of("image", "batch"),
    "method.replay.samples_per_class": _at_least(1),
    "method.replay.covariance_eps": _POSITIVE,
}


def check_seeds(seeds: Sequence[int], where: str = "seeds") -> tuple[int, ...]:
    """``seeds`` as a tuple if it is a non-empty list of distinct seeds >= 0; ``where`` names it in the error."""
    seeds = tuple(seeds)
    if not seeds:
        raise SecaError(f"{where} is empty; give at least one seed, e.g. 0,1,2")
    if any(k < 0 for k in seeds):
        raise SecaError(f"{where} must be 0 or more, got {min(seeds)}")
    if len(set(seeds)) != len(seeds):
        repeated = next(k for k in seeds if seeds.count(k) > 1)
        raise SecaError(f"{where} lists seed {repeated} twice; each seed runs once")
    return seeds


def validate(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` itself if every value is in its range; else a SecaError naming the first key that is not."""
    if config.seeds is not None:
        check_seeds(config.seeds, "config key 'seeds'")
    for key, (test, what) in RULES.items():
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        if value is not None and not test(value):
            shown = list(value) if isinstance(value, tuple) else value
            raise SecaError(f"config key '{key}' must be {what}, got {shown!r}")
    return config


def from_dict(data: Mapping[str, Any], cls: type = ExperimentConfig) -> Any:
    """Build a typed config from nested plain data; unknown keys, wrong types and values out of range
    (:data:`RULES`) raise SecaError."""
    config = _build(cls, data, "", cls)
    return validate(config) if cls is ExperimentConfig else config


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested data (lists, not tuples) that ``from_dict`` turns back into an equal config."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(config)


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


# --------------------------------------------------------------------------------------------------
# Presets and overrides


def _deep_merge(base: dict, update: Mapping) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def packaged_preset(name: str) -> Optional[Path]:
    """The path of a preset shipped with the package (``imagenet-r`` or ``ablations/kd``), if any."""
    stem = name[:-5] if name.endswith(".yaml") else name
    candidate = Path(str(resources.files("seca") / "configs" / f"{stem}.yaml"))
    return candidate if candidate.is_file() else None


def list_presets(folder: str = "") -> list[str]:
    """Packaged experiment presets (``folder=""``) or ablation sets (``folder="ablations"``)."""
    root = Path(str(resources.files("seca") / "configs"))
    return sorted(str(p.relative_to(root).with_suffix("")) for p in (root / folder).glob("*.yaml"))


def resolve_preset_path(name_or_path: str | Path, relative_to: Optional[Path] = None) -> Path:
    path = Path(name_or_path)
    if relative_to is not None and not path.is_absolute():
        if (relative_to / path).is_file():
            return relative_to / path
    if path.is_file():
        return path
    packaged = packaged_preset(str(name_or_path))
    if packaged is not None:
        return packaged
    raise SecaError(
        f"config file '{name_or_path}' not found; give a YAML path or one of the presets: "
        + ", ".join(list_presets())
    )


def load_raw(name_or_path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a preset as plain data, following ``extends`` chains."""
    path = resolve_preset_path(name_or_path, _seen[-1].parent if _seen else None).resolve()
    if path in _seen:
        raise SecaError(f"config '{path}' extends itself (cycle: {' -> '.join(p.name for p in _seen)})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SecaError(f"config '{path}' is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise SecaError(f"config '{path}' must hold a mapping of keys at top level")
    parent = data.pop("extends", None)
    if parent is not None:
        data = _deep_merge(load_raw(parent, _seen + (path,)), data)
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.epochs=3`` -> (["train", "epochs"], 3); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SecaError(f"override '{text}' must look like key.sub=value, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def set_key(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with the dotted ``key`` (``train.lr.adapter``) set to ``value``."""
    keys = key.split(".")
    data = _deep_merge({}, data)
    node = data
    for depth, part in enumerate(keys[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise SecaError(f"cannot set '{key}': '{'.'.join(keys[:depth + 1])}' is a value, not a section")
        else:
            child = node[part] = dict(child)
        node = child
    node[keys[-1]] = value
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set key.sub=value`` strings in order."""
    for text in overrides:
        keys, value = parse_override(text)
        data = set_key(data, ".".join(keys), value)
    return data


def load_config(name_or_path: str | Path, overrides: Optional[list[str]] = None) -> ExperimentConfig:
    """Load a preset (path or packaged name), apply ``--set`` overrides, and validate everything."""
    return from_dict(apply_overrides(load_raw(name_or_path), overrides or []))
