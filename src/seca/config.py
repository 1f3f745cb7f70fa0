"""Experiment configuration: typed, frozen dataclasses built from YAML presets and ``--set`` overrides.

Every key is declared once, with its default, the values it allows and one line of help: the experiment's
sections here, and the ``method`` section by the learners themselves, next to their code (each learner's
``Config``; the section is the union of every registered learner's keys, so a preset keeps working when
``method.name`` changes). Building, ``--set``, validation, checkpoints and docs/config.md's tables
(``python -m seca.config docs/config.md``) all read these declarations. A preset may start with
``extends: other.yaml`` (relative to the preset, or the name of a packaged preset) to inherit another.
Unknown keys, ill-typed values and values out of range are errors that name the key (and the closest valid
one).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import sys
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

import yaml

from .errors import SecaError


# --------------------------------------------------------------------------------------------------
# Declaring keys: a default, the allowed values, one line of help


@dataclass(frozen=True)
class Rule:
    """What a value must be: ``test(value)`` holds, described as ``what`` (``at least 1``). ``what`` may be a
    function, for choices that are known only once the learners are registered."""

    test: Callable[[Any], bool]
    what: Union[str, Callable[[], str]]

    def describe(self) -> str:
        return self.what() if callable(self.what) else self.what


def at_least(low: float) -> Rule:
    return Rule(lambda v: v >= low, f"at least {low:g}")


ABOVE_ZERO = Rule(lambda v: v > 0, "above 0")
FRACTION = Rule(lambda v: 0 <= v <= 1, "between 0 and 1")


def between(low: float, high: float) -> Rule:
    return Rule(lambda v: low <= v <= high, f"between {low:g} and {high:g}")


def one_of(*choices: str) -> Rule:
    return Rule(lambda v: v in choices, "one of " + ", ".join(choices))


def one_of_registered(names: Callable[[], Iterable[str]]) -> Rule:
    """One of a registry's names (learners, teachers, visual heads), read when a value is checked."""
    return Rule(lambda v: v in set(names()), lambda: "one of " + ", ".join(names()))


def setting(default: Any, help: str, rule: Optional[Rule] = None) -> Any:
    """A config key: its default, one line of help (docs/config.md), and the values it allows."""
    metadata = {"help": help, "rule": rule}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def section(cls: type, help: str = "") -> Any:
    """A sub-section of keys, declared by its own frozen dataclass."""
    return field(default_factory=cls, metadata={"help": help or (cls.__doc__ or "").strip().splitlines()[0]})


# --------------------------------------------------------------------------------------------------
# The experiment's sections


@dataclass(frozen=True)
class BackboneConfig:
    """Which CLIP to load (spec §1)."""

    model: str = setting("ViT-B-16", "an open_clip model name (`open_clip.list_models()`), or one of this project's "
                         "small architectures: `seca-test` (tests), `seca-shapes` (the offline world)")
    pretrained: Optional[str] = setting(
        "openai", "an open_clip pretrained tag of that model, the path of a local weights file (`.bin`, `.pt`, "
        "`.safetensors`), `shapes` (with `seca-shapes` only: the offline world's pretrained weights, built into the "
        "cache on first use, [offline.md](offline.md)), or `null` for random weights (drawn from a fixed seed, so "
        "always the same)")
    cache_dir: Optional[str] = setting(None, "where open_clip keeps downloaded weights (default: the Hugging Face cache)")


@dataclass(frozen=True)
class ShapesConfig:
    """The generated colour x shape world used offline."""

    colors: int = setting(10, "shapes world: number of colours (at most 10)", between(1, 10))
    shapes: int = setting(10, "number of shapes (at most 10); classes = colours x shapes", between(1, 10))
    train_per_class: int = setting(40, "training images per class", at_least(1))
    test_per_class: int = setting(20, "test images per class", at_least(1))
    image_size: int = setting(64, "image side in pixels (the `shapes` preset: 32, the input size of `seca-shapes`)",
                              at_least(8))
    domain: str = setting("renditions", "`clean` (pretraining domain) or `renditions` (the shifted domain)",
                          one_of("clean", "renditions"))
    seed: int = setting(0, "the world's seed: every image is a pure function of it", at_least(0))


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from ([data.md](data.md))."""

    dataset: str = setting("imagenet-r", "the data set ([data.md](data.md))",
                           one_of("cifar100", "imagenet-r", "imagenet-a", "imagefolder", "shapes"))
    root: Optional[str] = setting(None, "the data set's folder (`cifar100` defaults to `data/cifar100`)")
    download: bool = setting(False, "CIFAR-100 only: download it into `root` if absent")
    num_workers: int = setting(4, "data loader worker processes", at_least(0))
    cache_images: bool = setting(
        False, "keep each task's preprocessed images in memory after their first pass (training uses no "
        "augmentation, so they never change, and results are identical either way); about 0.6 MB per 224x224 image")
    max_pixels: int = setting(
        89_478_485, "an image file of more pixels is refused from its header, before it is decoded (no "
        "decompression bomb reaches the decoder); PIL's own bound", at_least(1))
    skip_bad_images: bool = setting(
        False, "every image file is read once before training; by default a file that cannot be used (unreadable, "
        "truncated, too large) stops the run with the list; `true` leaves such files out and names each (`seca run "
        "--skip-bad-images`)")
    shapes: ShapesConfig = section(ShapesConfig)


@dataclass(frozen=True)
class ScenarioConfig:
    """How classes arrive: a class order and the task sizes."""

    order: Union[str, tuple[int, ...]] = setting(
        "reference", "`reference` (the reference implementation's class order for `trial`; CIFAR-100 and "
        "ImageNet-R, a fixed order for `shapes`, the sorted folder names for `imagefolder`), `seeded` (a "
        "permutation drawn from `order_seed`), `identity`, or an explicit list of class ids")
    trial: int = setting(0, "which reference order (0, 1, 2: the paper's three trials)", at_least(0))
    order_seed: Optional[int] = setting(None, "seed of a `seeded` order; `null` uses `seed`", at_least(0))
    first_task: int = setting(20, "classes in the first task", at_least(1))
    increment: int = setting(20, "classes in every later task; the sizes must add up to the number of classes",
                             at_least(1))
    tasks: Optional[tuple[tuple[Union[str, int], ...], ...]] = setting(
        None, "the tasks as lists of class names, e.g. `[[cat, dog], [fox, owl, emu]]`: the order and the task "
        "sizes (any), instead of `order`, `first_task` and `increment`; every class once "
        "([data.md](data.md#your-own-folders))")


# Words of the vocabulary that several places read (configs, the CLI, the API), spelled once.
EVAL_ORDERS = ("task", "dataset")  # train.eval_order
HYBRID_MAX = ("image", "batch")  # method.classifier.hybrid_max


def _increasing(v: tuple) -> bool:
    return all(m >= 1 for m in v) and all(a < b for a, b in zip(v, v[1:]))


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation of each task, evaluation, devices and outputs."""

    epochs: int = setting(10, "epochs per task", at_least(1))
    batch_size: int = setting(64, "training batch size; under torchrun the global batch, split equally over the "
                              "processes ([distributed.md](distributed.md))", at_least(1))
    eval_batch_size: int = setting(128, "batch size for evaluation and feature precomputation (per process under "
                                   "torchrun)", at_least(1))
    eval_order: str = setting(
        "task", "how test images form evaluation batches: `task`, each seen task's images through a loader of their "
        "own; `dataset`, every seen class's test images through one loader in the data set's own order, so batches "
        "mix tasks, as the reference implementation evaluates. The same predictions either way unless "
        "`method.classifier.hybrid_max: batch` ([method.md](method.md#checked-against-the-reference))",
        one_of(*EVAL_ORDERS))
    lr: dict[str, float] = setting(
        {}, "learning rate of each of the learner's parameter groups, by the group's name (`lr.adapter`, "
        "`lr.prompt`, ...); a group not given takes the learner's default. The groups and their defaults are "
        "listed [below](#learning-rates)", ABOVE_ZERO)
    optimizer: str = setting("adam", "the optimiser, made afresh every task: `adam` (weight decay added to the "
                             "gradient, as SECA's reference) or `adamw` (decoupled weight decay, as MoE-Adapters)",
                             one_of("adam", "adamw"))
    weight_decay: float = setting(5e-4, "the optimiser's weight decay", at_least(0))
    schedule: str = setting(
        "multistep", "the learning rates within a task: `multistep` (multiplied by `gamma` after each of "
        "`milestones`, per epoch), `cosine` (per step: a linear warm-up over `warmup_steps` steps, then a "
        "half cosine to zero at the task's last step, as open_clip's `cosine_lr`) or `cosine_epoch` (per epoch: "
        "torch's CosineAnnealingLR with T_max = `epochs` and eta_min = `min_lr_ratio` × lr, as Mind the Gap)",
        one_of("multistep", "cosine", "cosine_epoch"))
    milestones: tuple[int, ...] = setting(
        (2, 5), "epochs after which the learning rates are multiplied by `gamma` (MultiStepLR, restarted every task)",
        Rule(_increasing, "a list of increasing epochs, each at least 1"))
    gamma: float = setting(0.1, "the MultiStepLR factor", ABOVE_ZERO)
    warmup_steps: int = setting(0, "`schedule: cosine`: steps of linear warm-up at the start of every task "
                                "(the rate of step s < warmup is lr (s + 1) / warmup)", at_least(0))
    min_lr_ratio: float = setting(0.0, "`schedule: cosine_epoch`: the rate the half cosine ends at, as a fraction of "
                                  "the group's rate (Mind the Gap: 0.01)", at_least(0))
    amp: str = setting("auto", "mixed precision on CUDA: `auto` (bf16 where supported, else fp16), `bf16`, `fp16`, "
                       "`off`; never used on CPU or MPS", one_of("auto", "bf16", "fp16", "off"))
    device: str = setting("auto", "`auto` (CUDA, then MPS, then CPU), `cpu`, `cuda`, `cuda:N`, `mps`")
    log_every: int = setting(10, "write a `train_step` record to log.jsonl every this many steps", at_least(1))
    progress: bool = setting(True, "show progress bars (they are hidden anyway when the output is not a terminal)")
    checkpoints: str = setting("last", "task checkpoints for `--resume`: keep the latest (`last`), every one "
                               "(`all`), or write none (`none`)", one_of("last", "all", "none"))
    tensorboard: bool = setting(False, "also log to `<out>/tensorboard` (needs `pip install 'seca[tensorboard]'`)")
    threads: Optional[int] = setting(
        None, "CPU threads for torch's operators; `null` leaves torch's choice (one per core, or "
        "`OMP_NUM_THREADS`). The run's first line and the `start` record of log.jsonl say how many run "
        "([performance.md](performance.md#threads))", at_least(1))
    dist_timeout: float = setting(
        1800.0, "runs under torchrun: seconds a collective waits for the other processes before the run fails, so "
        "that a process that died or hangs stops the run instead of hanging it ([distributed.md](distributed.md))",
        ABOVE_ZERO)


def learner_names() -> list[str]:
    from . import methods  # the learners register themselves when seca.methods is imported

    return sorted(methods.LEARNERS)


@dataclass(frozen=True)
class MethodConfig:
    """The learner and its settings: `name`, then the keys the learners declare ([method.md](method.md))."""

    name: str = setting("seca", "the learner ([method.md](method.md))", one_of_registered(learner_names))


def method_schema() -> type:
    """The ``method`` section as a dataclass: ``name`` and every registered learner's keys."""
    from . import methods

    return methods.method_config_class()


def plugin_help() -> str:
    return ("modules that register learners from outside the package, imported before the config is read: "
            "importable names (`my_lab.methods`) or `.py` files ([extending.md](extending.md))")


@dataclass(frozen=True)
class ExperimentConfig:
    benchmark: str = setting("custom", "the name recorded in results.json and used in the default output folder")
    seed: int = setting(0, "seeds Python, NumPy and torch, the training order, prompt initialisation and (unless "
                        "`scenario.order_seed` is set) a seeded class order", at_least(0))
    seeds: Optional[tuple[int, ...]] = setting(
        None, "a list (`[0, 1, 2]`): run the experiment once per seed into `OUT/seed<k>/` and write the aggregate "
        "(mean, std, 95% interval) to `OUT/results.json`; `seed` is then ignored. The same as `seca run --seeds` "
        "([statistics.md](statistics.md))")
    plugins: tuple[str, ...] = setting((), plugin_help())
    backbone: BackboneConfig = section(BackboneConfig)
    data: DataConfig = section(DataConfig)
    scenario: ScenarioConfig = section(ScenarioConfig)
    train: TrainConfig = section(TrainConfig)
    method: MethodConfig = field(default_factory=lambda: method_schema()(),
                                 metadata={"help": "the learner and its settings"})


# --------------------------------------------------------------------------------------------------
# Reading declarations


def fields_of(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """(field, resolved type) of a config dataclass; the ``method`` section resolves to the learners' union."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        out.append((f, method_schema() if tp is MethodConfig else tp))
    return out


def is_section(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp) and isinstance(tp, type)


def declared(cls: type = ExperimentConfig, prefix: str = "") -> list[tuple[str, dataclasses.Field, Any]]:
    """Every leaf key below ``cls``: (dotted key, field, type)."""
    keys = []
    for f, tp in fields_of(cls):
        if is_section(tp):
            keys.extend(declared(tp, prefix + f.name + "."))
        else:
            keys.append((prefix + f.name, f, tp))
    return keys


def rules() -> dict[str, Rule]:
    """Every key's rule (``train.lr`` applies to each of its values)."""
    return {key: f.metadata["rule"] for key, f, _ in declared() if f.metadata.get("rule") is not None}


def learning_rate_groups() -> dict[str, float]:
    """Every parameter group a registered learner trains, with its default learning rate."""
    from . import methods

    return methods.learning_rate_defaults()


def valid_keys(cls: type = ExperimentConfig) -> list[str]:
    """Every dotted key a config of type ``cls`` accepts (sections included)."""

    def walk(c: type, prefix: str) -> list[str]:
        keys = []
        for f, tp in fields_of(c):
            keys.append(prefix + f.name)
            if is_section(tp):
                keys.extend(walk(tp, prefix + f.name + "."))
        return keys

    keys = walk(cls, "")
    if cls is ExperimentConfig:
        keys += [f"train.lr.{group}" for group in learning_rate_groups()]
    return keys


# --------------------------------------------------------------------------------------------------
# Building typed configs from plain data


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
    if tp is MethodConfig:
        tp = method_schema()
    if is_section(tp):
        if not isinstance(value, Mapping):
            raise SecaError(f"config key '{path}' is a section; give it as a mapping, got {value!r}")
        return _build(tp, value, path + ".", root)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise SecaError(f"config key '{path}' must be a list, got {value!r}")
        (item_type, _) = typing.get_args(tp)
        return tuple(_coerce(v, item_type, f"{path}[{i}]", root) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise SecaError(f"config key '{path}' must be a mapping, e.g. {{adapter: 1.0e-3}}, got {value!r}")
        key_type, value_type = typing.get_args(tp)
        return {_coerce(k, key_type, path, root): _coerce(v, value_type, f"{path}.{k}", root) for k, v in value.items()}
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
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # a bug in a declaration, not user input


def _build(cls: type, data: Mapping[str, Any], prefix: str, root: type) -> Any:
    types_of = {f.name: tp for f, tp in fields_of(cls)}
    kwargs = {}
    for key, value in data.items():
        path = prefix + str(key)
        if key not in types_of:
            raise _unknown_key_error(path, root)
        kwargs[key] = _coerce(value, types_of[key], path, root)
    return cls(**kwargs)


# --------------------------------------------------------------------------------------------------
# Plugins: learners registered from outside the package


_loaded_plugins: dict[str, Any] = {}


def load_plugins(plugins: Sequence[str]) -> None:
    """Import each plugin (a module name, or a ``.py`` file) once, so that the learners in it register."""
    for plugin in plugins:
        if plugin in _loaded_plugins:
            continue
        try:
            if plugin.endswith(".py"):
                path = Path(plugin).expanduser()
                if not path.is_file():
                    raise SecaError(f"plugin '{plugin}' not found; give an importable module name or a .py file")
                name = f"seca_plugin_{path.stem}"
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
            else:
                module = importlib.import_module(plugin)
        except SecaError:
            raise
        except Exception as e:  # noqa: BLE001 - a user's module: say which one failed, and how
            raise SecaError(f"plugin '{plugin}' could not be imported: {type(e).__name__}: {e}") from None
        _loaded_plugins[plugin] = module


# --------------------------------------------------------------------------------------------------
# Validation: every value is checked here, once, before any model or data is loaded


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


def _value_at(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def validate(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` itself if every value is in its range; else a SecaError naming the first key that is not."""
    from .methods import check_method, learner_class

    if config.seeds is not None:
        check_seeds(config.seeds, "config key 'seeds'")
    check_method(config.method.name)
    for key, rule in rules().items():
        value = _value_at(config, key)
        values = value.items() if isinstance(value, dict) else [(None, value)]
        for sub, v in values:
            where = key if sub is None else f"{key}.{sub}"
            if v is not None and not rule.test(v):
                shown = list(v) if isinstance(v, tuple) else v
                raise SecaError(f"config key '{where}' must be {rule.describe()}, got {shown!r}")
    groups = learning_rate_groups()
    for group in config.train.lr:
        if group not in groups:
            raise _unknown_key_error(f"train.lr.{group}", ExperimentConfig)
    learner_class(config.method.name).check_config(config)
    return config


# Keys that may differ between an interrupted run and its resumption: they do not change results.
RESULT_FREE_KEYS = {"train.progress", "train.log_every", "train.tensorboard", "train.checkpoints", "data.num_workers",
                    "train.threads", "method.stem_cache_gb", "train.dist_timeout"}


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    key = prefix.rstrip(".")
    return [] if a == b or key in RESULT_FREE_KEYS else [f"{key} ({a!r} now, {b!r} in the run)"]


def config_differences(config: ExperimentConfig, saved: Mapping[str, Any]) -> list[str]:
    """The keys at which ``config`` (now) and ``saved`` (a run's config as plain data) differ in a way that
    changes results. ``saved`` is read through today's declarations first, so a key added since it was written
    counts as its default."""
    try:
        saved = to_dict(from_dict(saved))
    except SecaError:  # it no longer reads (a key since removed): compare it as it was written
        pass
    return _differences(to_dict(config), dict(saved))


def check_section(values: Any, prefix: str) -> None:
    """Refuse a value outside its declared range in a section built in Python (``method_config(...)``), with one
    line naming the key: ``method.ce_scale must be above 0, got 0.0``."""
    for key, f, _ in declared(type(values)):
        rule, value = f.metadata.get("rule"), _value_at(values, key)
        if rule is not None and value is not None and not rule.test(value):
            raise SecaError(f"{prefix}.{key} must be {rule.describe()}, got {value!r}")


def with_learning_rates(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` with ``train.lr`` holding a rate for every parameter group its learner trains (the learner's
    defaults, under the rates given)."""
    from . import methods

    defaults = methods.learner_class(config.method.name).learning_rates()
    lr = {**defaults, **config.train.lr}
    if lr == config.train.lr:
        return config
    return dataclasses.replace(config, train=dataclasses.replace(config.train, lr=lr))


def from_dict(data: Mapping[str, Any], cls: type = ExperimentConfig) -> Any:
    """Build a typed config from nested plain data; unknown keys, wrong types and values out of range raise
    SecaError. An experiment's ``plugins`` are imported first, so that their learners' keys are known."""
    if cls is ExperimentConfig and isinstance(data, Mapping) and data.get("plugins"):
        plugins = _coerce(data["plugins"], tuple[str, ...], "plugins", cls)
        load_plugins(plugins)
    config = _build(cls, data, "", cls)
    return with_learning_rates(validate(config)) if cls is ExperimentConfig else config


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested data (lists, not tuples) that ``from_dict`` turns back into an equal config."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
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


# --------------------------------------------------------------------------------------------------
# docs/config.md's tables, from the declarations


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, tuple):
        value = list(value)
    return f"`{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`"


def markdown_table(prefix: str) -> str:
    """The table of every key of the section at ``prefix`` (``""``: the top level, its sections left out):
    key, default, allowed values, meaning."""
    cls = ExperimentConfig
    for part in [p for p in prefix.split(".") if p]:
        cls = dict((f.name, tp) for f, tp in fields_of(cls))[part]
    readers = _method_readers() if prefix == "method" else None
    rows = ["| key | default | allowed | meaning |" + (" read by |" if readers else ""),
            "| --- | --- | --- | --- |" + (" --- |" if readers else "")]
    keys = [(f.name, f, tp) for f, tp in fields_of(cls) if not is_section(tp)] if not prefix else declared(cls)
    for key, f, _ in keys:
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        rule = f.metadata.get("rule")
        row = f"| `{key}` | {_shown(default)} | {rule.describe() if rule else ''} | {f.metadata['help']} |"
        if readers:
            row += " " + (", ".join(f"`{name}`" for name in readers.get(key, [])) or "all") + " |"
        rows.append(row)
    return "\n".join(rows)


def _method_readers() -> dict[str, list[str]]:
    """Each key of the method section, and the learners that declare it."""
    from . import methods

    readers: dict[str, list[str]] = {}
    for name, cls in sorted(methods.LEARNERS.items()):
        for key, _, _ in declared(cls.Config):
            readers.setdefault(key, []).append(name)
    return readers


def learning_rate_table() -> str:
    """Every parameter group of the registered learners, its default learning rate and who trains it."""
    from . import methods

    rows = ["| group | default | trained by |", "| --- | --- | --- |"]
    for group, rate in methods.learning_rate_defaults().items():
        users = [name for name, cls in sorted(methods.LEARNERS.items()) if group in cls.learning_rates()]
        rows.append(f"| `lr.{group}` | `{rate:g}` | {', '.join(f'`{u}`' for u in users)} |")
    return "\n".join(rows)


GENERATED = "<!-- generated by python -m seca.config docs/config.md: {} -->"


def generated_tables() -> dict[str, str]:
    """Each generated block of docs/config.md, by its name."""
    return {"top level": markdown_table(""), **{name: markdown_table(name) for name in
                                                ("backbone", "data", "scenario", "train", "method")},
            "learning rates": learning_rate_table()}


def update_config_doc(path: Path) -> bool:
    """Rewrite the generated blocks of ``path`` (each between its marker line and the next blank line);
    returns whether anything changed."""
    lines = path.read_text().splitlines()
    out, i = [], 0
    tables = generated_tables()
    while i < len(lines):
        out.append(lines[i])
        name = next((n for n in tables if lines[i] == GENERATED.format(n)), None)
        i += 1
        if name is not None:
            while i < len(lines) and lines[i].strip():
                i += 1
            out.extend(tables[name].splitlines())
    text = "\n".join(out) + "\n"
    changed = text != path.read_text()
    path.write_text(text)
    return changed


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/config.md")
    print(f"{target}: {'updated' if update_config_doc(target) else 'up to date'}")
