"""Experiment configuration, the ground floor: typed, frozen dataclasses declared key by key, read from YAML
presets and ``--set`` overrides.

Every key is declared once, with its default, the values it allows and one line of help (:mod:`.declare`): the
experiment's own sections here (:mod:`.sections`), the ``method`` and ``data`` keys by the learners and data sets
beside their code. This package imports nothing above it: what needs the registered plug-ins (the extended
sections, the registered names, each learner's checks and defaults) is assembled once in
``seca.engine.configure``, which also loads a config (``load_config``).

    declare.py   settings, sections, rules; the Schema of what plug-ins add; extending a section
    sections.py  backbone, data, scenario, train, method: the experiment's own keys
    build.py     plain data <-> typed configs; range checks; differences between two configs
    files.py     presets, ``extends``, ``--set`` overrides (plain data)
    plugins.py   importing plug-ins named by a config or SECA_PLUGINS
    tables.py    docs/config.md's tables
"""

from . import sections
from .build import build, check, check_section, check_seeds, coerce, differences, dump_yaml, to_dict, value_at
from .declare import (
    ABOVE_ZERO,
    DROPOUT,
    FRACTION,
    LEARNING_RATE,
    OWN,
    TEMPLATE,
    TEMPLATES,
    NoSettings,
    Rule,
    Schema,
    at_least,
    between,
    declared,
    default_of,
    extend_section,
    fields_of,
    is_section,
    one_of,
    one_of_registered,
    rules,
    section,
    setting,
    valid_keys,
)
from .files import (
    apply_overrides,
    deep_merge,
    list_presets,
    load_raw,
    packaged_preset,
    parse_override,
    resolve_preset_path,
    set_key,
)
from .plugins import environment_plugins, load_plugins
from .sections import (
    EVAL_ORDERS,
    HYBRID_MAX,
    RECIPE_KEYS,
    RESULT_FREE_KEYS,
    BackboneConfig,
    DataConfig,
    ExperimentConfig,
    MethodConfig,
    ScenarioConfig,
    TrainConfig,
    describe_training,
)

__all__ = [
    "ABOVE_ZERO",
    "DROPOUT",
    "TEMPLATE",
    "TEMPLATES",
    "FRACTION",
    "LEARNING_RATE",
    "OWN",
    "Rule",
    "Schema",
    "at_least",
    "between",
    "declared",
    "default_of",
    "extend_section",
    "fields_of",
    "is_section",
    "NoSettings",
    "one_of",
    "one_of_registered",
    "rules",
    "section",
    "setting",
    "valid_keys",
    "sections",
    "build",
    "check",
    "coerce",
    "check_section",
    "check_seeds",
    "differences",
    "dump_yaml",
    "to_dict",
    "value_at",
    "apply_overrides",
    "deep_merge",
    "list_presets",
    "load_raw",
    "packaged_preset",
    "parse_override",
    "resolve_preset_path",
    "set_key",
    "environment_plugins",
    "load_plugins",
    "EVAL_ORDERS",
    "HYBRID_MAX",
    "RECIPE_KEYS",
    "RESULT_FREE_KEYS",
    "BackboneConfig",
    "DataConfig",
    "ExperimentConfig",
    "MethodConfig",
    "ScenarioConfig",
    "TrainConfig",
    "describe_training",
]
