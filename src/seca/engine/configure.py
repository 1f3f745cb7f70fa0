"""From plain config data to a checked experiment config: the one place where the configuration meets the
registries of learners, data sets and protocols (docs/design.md).

``seca.config`` declares the experiment's own keys and knows no plug-in. Here the registries are read, once per
set of registered plug-ins, into a :class:`~seca.config.Schema`: the ``method`` section holds every learner's keys
and ``data`` every data set's; ``method.name``, ``data.dataset`` and ``scenario.order`` take their choices from the
registries; ``train.lr`` knows every learner's groups. :func:`resolve` builds a config on it: the learner's
default learning rates and training recipe under the preset's values, the type and range of every key, and the
learner's own checks (``Learner.check_config``), all before any model or data is loaded.

    python -m seca.engine.configure docs/config.md    # rewrites the tables of docs/config.md
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import (
    RECIPE_KEYS,
    ExperimentConfig,
    Rule,
    Schema,
    apply_overrides,
    build,
    check,
    coerce,
    declared,
    deep_merge,
    differences,
    environment_plugins,
    extend_section,
    load_plugins,
    load_raw,
    one_of_registered,
    packaged_preset,
    sections,
    to_dict,
)
from ..config.tables import GENERATED, learning_rate_table, markdown_table, update_generated
from ..data.protocols import PROTOCOLS
from ..data.sets import DATASETS
from ..errors import SecaError
from ..methods import LEARNERS
from .memory import check_budget

# Plug-ins for every command: SECA_PLUGINS=path/to/file.py:package.module
load_plugins(environment_plugins())


# ---- the schema: what the registered plug-ins add to the experiment's own keys ---------------------------------


_schemas: dict[tuple, Schema] = {}


def schema() -> Schema:
    """The schema of the learners and data sets registered now (made once for each set of them)."""
    key = (tuple(LEARNERS.items()), tuple(DATASETS.items()))
    if key not in _schemas:
        method = extend_section(
            sections.MethodConfig, [(f"the learner '{n}'", c.Config) for n, c in LEARNERS.items()], "method", __name__
        )
        data = extend_section(
            sections.DataConfig, [(f"the data set '{n}'", c.Config) for n, c in DATASETS.items()], "data", __name__
        )
        orders = Rule(
            lambda v: not isinstance(v, str) or v in PROTOCOLS,
            lambda: "one of " + ", ".join(PROTOCOLS.names()) + ", or a list of class ids",
        )
        rules = {
            "method.name": one_of_registered(LEARNERS),
            "data.dataset": one_of_registered(DATASETS),
            "scenario.order": orders,
        }
        extended = {sections.MethodConfig: method, sections.DataConfig: data}
        _schemas[key] = Schema(extended, rules, learning_rate_defaults())
        globals().update(MethodConfig=method, DataConfig=data)  # where pickled configs (spawned processes) find them
    return _schemas[key]


def __getattr__(name: str) -> Any:
    # A process that unpickles a config before anything here has run finds its sections all the same.
    if name in ("MethodConfig", "DataConfig"):
        schema()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def learning_rate_defaults() -> dict[str, float]:
    """Every parameter group of a registered learner, with its default learning rate."""
    groups: dict[str, float] = {}
    for name, cls in LEARNERS.items():
        for group, rate in cls.learning_rates().items():
            if groups.setdefault(group, rate) != rate:
                raise SecaError(
                    f"learners declare different default learning rates for train.lr.{group}: "
                    f"{groups[group]} and {rate} ({name}); give the group a name of its own"
                )
    return groups


def method_config(**values: Any) -> Any:
    """A ``method`` section of the given values (the rest at their defaults): ``method_config(name="seca",
    sg_akt=SGAKTConfig(teacher="avg"))``."""
    return schema().resolve(sections.MethodConfig)(**values)


def data_config(**values: Any) -> Any:
    """A ``data`` section of the given values (the rest at their defaults): ``data_config(dataset="shapes",
    shapes=ShapesConfig(colors=2))``."""
    return schema().resolve(sections.DataConfig)(**values)


# ---- resolving: plain data -> a checked config --------------------------------------------------------------


def resolve(data: Mapping[str, Any]) -> ExperimentConfig:
    """The checked config of plain ``data`` (a preset after its overrides, or a saved config).

    The learner's default learning rates and the rest of its training recipe (``Learner.recipe``) fill the
    ``train`` keys that ``data`` leaves unset. Plug-ins named under ``plugins`` are imported first; names of earlier
    versions are read as today's (``Learner.renamed_lr``).
    """
    if not isinstance(data, Mapping):
        raise SecaError(f"a config must be a mapping of keys, got {data!r}")
    data = deep_merge({}, data)
    if data.get("plugins"):
        load_plugins(coerce(data["plugins"], tuple[str, ...], "plugins"))
    current = schema()
    data = _renamed(data, current)
    name = _section(data, "method").get("name", sections.MethodConfig.name)
    learner = LEARNERS.get(name) if isinstance(name, str) else None
    if learner is not None:
        data = _with_recipe(data, learner)
    data["method"] = _dataset_templates(_section(data, "method"), _section(data, "data"))
    return validate(build(ExperimentConfig, data, current))


def _dataset_templates(method: dict[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """``method`` with every ``template: dataset`` (the learner's text template, at any depth) replaced by the
    data set's own (``DataSet.template``: CoOp's for CUB, Food-101, ...), so the saved config holds the text used."""
    out = {}
    for key, value in method.items():
        if isinstance(value, Mapping):
            value = _dataset_templates(dict(value), data)
        elif key == "template" and value == "dataset":
            dataset = data.get("dataset", sections.DataConfig.dataset)
            value = DATASETS[dataset].template if dataset in DATASETS else None
            if value is None:
                raise SecaError(
                    f"method template 'dataset': the data set '{dataset}' declares no prompt template; write one, "
                    "e.g. --set method.template='a photo of a {}.'"
                )
        out[key] = value
    return out


def validate(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` if every value is in its range and its learner accepts it (``Learner.check_config``), with a
    learning rate for every group its learner trains (a config built in Python may leave them to the learner);
    else a SecaError naming the first key that is not."""
    current = schema()
    check(config, current)
    learner = LEARNERS[config.method.name]
    _check_other_learners_sections(config)
    learner.check_config(config)
    check_budget(config.train, learner)
    rates = {**learner.learning_rates(), **config.train.lr}
    if rates == config.train.lr:
        return config
    return dataclasses.replace(config, train=dataclasses.replace(config.train, lr=rates))


def own_section(name: str) -> str:
    """The section of a learner's own keys: its name spelt as a key (``mind-the-gap`` -> ``mind_the_gap``)."""
    return name.replace("-", "_")


def _check_other_learners_sections(config: ExperimentConfig) -> None:
    """Refuse a value set in another learner's own section (``method.rapf.*`` under ``method.name: seca``): it would be
    read by no one, and the user meant something by it."""
    active = config.method.name
    reads = {f.name for f in dataclasses.fields(LEARNERS[active].Config)}
    for name, cls in LEARNERS.items():
        section = own_section(name)
        if name == active or section in reads or section not in {f.name for f in dataclasses.fields(cls.Config)}:
            continue
        given, default = to_dict(getattr(config.method, section)), to_dict(type(getattr(config.method, section))())
        changed = differences(given, default, prefix=f"method.{section}.")
        if changed:
            key = changed[0].split(" ")[0]
            raise SecaError(
                f"config key '{key}' is a setting of {name}, and the method run is {active} (method.name): remove "
                f"it, or set method.name={name}"
            )


# A benchmark preset's name: a data set, its task sizes (B-m Inc-n) and optionally a protocol: cub200-b0-inc20,
# cifar100-b50-inc10-lamda. Without a protocol, the data set's first (reference where it has one, else lamda).
BENCHMARK_PRESET = re.compile(
    r"(?P<dataset>[a-z0-9-]+?)-b(?P<base>\d+)-inc(?P<increment>\d+)(?:-(?P<protocol>[a-z]+))?"
)
BENCHMARK_BASE = "imagenet-r"  # the backbone and training every benchmark preset starts from: the paper's


def benchmark_preset(name: str) -> dict[str, Any] | None:
    """The preset ``name`` names when it is a benchmark preset (:data:`BENCHMARK_PRESET`) of a registered data set:
    the paper's backbone and training (CLIP ViT-B/16, SECA's recipe; ``--method`` gives another learner its own),
    the data set, and the protocol; None when ``name`` is no such name."""
    match = BENCHMARK_PRESET.fullmatch(str(name))
    if match is None or match["dataset"] not in DATASETS:
        return None
    dataset = DATASETS[match["dataset"]]()
    protocol = match["protocol"] or dataset.protocols()[0]
    if protocol not in PROTOCOLS:
        raise SecaError(f"'{name}': no protocol '{protocol}'; the protocols are {', '.join(PROTOCOLS)}")
    base, increment = int(match["base"]), int(match["increment"])
    if increment < 1:
        raise SecaError(f"'{name}': the increment (inc{increment}) must be at least 1")
    data = {k: v for k, v in load_raw(BENCHMARK_BASE).items() if k not in ("data", "scenario", "benchmark")}
    return {
        **data,
        "benchmark": str(name),
        "data": {"dataset": match["dataset"]},
        "scenario": {"order": protocol, "first_task": base or increment, "increment": increment},
    }


def load_preset(name_or_path: str | Path) -> dict[str, Any]:
    """A preset as plain data: a YAML file, a packaged preset, or a benchmark preset (:func:`benchmark_preset`)."""
    if not Path(name_or_path).is_file() and packaged_preset(str(name_or_path)) is None:
        preset = benchmark_preset(str(name_or_path))
        if preset is not None:
            return preset
    return load_raw(name_or_path)


def load_config(name_or_path: str | Path, overrides: Sequence[str] = (), method: str | None = None) -> ExperimentConfig:
    """Load a preset (a path, a packaged name or a benchmark preset), run ``method`` on it if given
    (:func:`for_method`), apply ``--set`` overrides, and check everything."""
    data = load_preset(name_or_path)
    if method is not None:
        data = for_method(data, method)
    return resolve(apply_overrides(data, list(overrides)))


def for_method(data: Mapping[str, Any], method: str) -> dict[str, Any]:
    """A preset's ``data`` running the learner ``method`` (``--method``) with that learner's own training recipe,
    unless the preset was written for it: a preset's recipe keys (``train.epochs``, ...: RECIPE_KEYS) are those of
    the learner it names. Apply ``--set`` overrides after this."""
    data = deep_merge({}, data)
    written_for = _section(data, "method").get("name", sections.MethodConfig.name)
    data["method"] = {**_section(data, "method"), "name": method}
    if method != written_for:
        data["train"] = {k: v for k, v in _section(data, "train").items() if k not in RECIPE_KEYS}
        if isinstance(written_for, str):
            data["method"].pop(own_section(written_for), None)  # that learner's own keys go with it
    return data


def config_differences(config: ExperimentConfig, saved: Mapping[str, Any]) -> list[str]:
    """The keys at which ``config`` (now) and ``saved`` (a run's config as plain data) differ in a way that changes
    results. ``saved`` is read through today's declarations first, so a key added since it was written counts as
    its default and a name since renamed as today's."""
    try:
        saved = to_dict(resolve(saved))
    except SecaError:  # it no longer reads (a key since removed): compare it as it was written
        pass
    unread = unread_sections(config)
    return [d for d in differences(to_dict(config), dict(saved)) if not d.startswith(unread)]


def unread_sections(config: ExperimentConfig) -> tuple[str, ...]:
    """The prefixes of the keys that no part of ``config``'s run reads: the own sections and keys of the other
    learners and data sets (``method.bofa.``, ``data.sun397.``, ``method.template (``), where :func:`validate` refuses
    a value. A run's config holds them all; a change of their defaults since, or a plug-in's, changes no result."""
    prefixes = []
    for kind, registry, active in (("method", LEARNERS, config.method.name), ("data", DATASETS, config.data.dataset)):
        reads = {f.name for f in dataclasses.fields(registry[active].Config)} if active in registry else set()
        for _, cls in registry.items():
            for name in {f.name for f in dataclasses.fields(cls.Config)} - reads:  # a section, or a single key
                prefixes += [f"{kind}.{name}.", f"{kind}.{name} ("]
    return tuple(sorted(set(prefixes)))


def _section(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return dict(value) if isinstance(value, Mapping) else {}


def _renamed(data: dict[str, Any], current: Schema) -> dict[str, Any]:
    """``data`` with the learning-rate groups of earlier versions under their names now."""
    lr = _section(data, "train").get("lr")
    renamed = {old: new for _, cls in LEARNERS.items() for old, new in cls.renamed_lr.items()}
    if isinstance(lr, Mapping) and set(lr) & set(renamed):
        lr = {(renamed[k] if k in renamed and k not in current.lr_groups else k): v for k, v in lr.items()}
        data["train"] = {**_section(data, "train"), "lr": lr}
    return data


def _with_recipe(data: dict[str, Any], learner: type) -> dict[str, Any]:
    """``data`` with ``learner``'s recipe and default learning rates where ``data`` sets none."""
    if data.get("train") is not None and not isinstance(data["train"], Mapping):
        return data  # not a section: building it says so
    train = _section(data, "train")
    given = train.get("lr", {})
    lr = {**learner.learning_rates(), **given} if isinstance(given, Mapping) else given
    data["train"] = {**learner.recipe, **train, "lr": lr}
    return data


# ---- what the registries offer, for the command line and the docs ----------------------------------------------


def learner_names() -> list[str]:
    return LEARNERS.names()


def doc_tables() -> dict[str, str]:
    """Each generated block of docs/config.md, by its name."""
    current = schema()
    readers: dict[str, list[str]] = {}
    for name, cls in LEARNERS.items():
        for key, _, _ in declared(cls.Config):
            readers.setdefault(key, []).append(name)
    tables = {"top level": markdown_table(current, "")}
    tables.update({name: markdown_table(current, name) for name in ("backbone", "data", "scenario", "train")})
    tables["method"] = markdown_table(current, "method", readers)
    groups = {
        group: (rate, [n for n, c in LEARNERS.items() if group in c.learning_rates()])
        for group, rate in current.lr_groups.items()
    }
    tables["learning rates"] = learning_rate_table(groups)
    tables["recipes"] = recipe_table()
    return tables


def recipe_table() -> str:
    """Each learner's training recipe: its defaults of the recipe's keys (blank: the declared default, below)."""
    keys = [key for key in RECIPE_KEYS if key != "lr"]
    rows = ["| learner | " + " | ".join(f"`{key}`" for key in keys) + " |", "| --- |" + " --- |" * len(keys)]
    for name, cls in LEARNERS.items():
        if not cls.learning_rates():
            rows.append(f"| `{name}` | trains nothing |" + " |" * (len(keys) - 1))
            continue
        cells = [cls.recipe.get(key) for key in keys]
        rows.append(f"| `{name}` | " + " | ".join(_cell(v) for v in cells) + " |")
    return "\n".join(rows)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def update_config_doc(path: Path) -> bool:
    """Rewrite docs/config.md's generated tables (``GENERATED`` markers); returns whether anything changed."""
    return update_generated(Path(path), doc_tables())


__all__ = [
    "GENERATED",
    "config_differences",
    "data_config",
    "doc_tables",
    "for_method",
    "learner_names",
    "learning_rate_defaults",
    "load_config",
    "method_config",
    "resolve",
    "schema",
    "update_config_doc",
    "validate",
]

if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/config.md")
    print(f"{target}: {'updated' if update_config_doc(target) else 'up to date'}")
