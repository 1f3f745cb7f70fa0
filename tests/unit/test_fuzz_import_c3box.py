"""Fuzzed input (Hypothesis) to `seca import c3box FILE.json`: any bytes, any JSON, and C3Box's own rapf and simplecil
configs with one key replaced, removed or added, each end in a config that `seca run` loads or in the project's
one-line refusal (exit status 2), never in a traceback, another exception or output that does not load.

The budget is the Hypothesis profile's (tests/conftest.py): ``ci`` (25 examples, no deadline) by default, ``long``
for a long local run: ``python -m pytest tests/unit/test_fuzz_import_c3box.py --hypothesis-profile long``."""

import contextlib
import io
import json
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from seca.cli import main
from seca.cli.import_config import BACKBONES, C3BOX_METHODS, DATASETS, INERT, MEMORY, METHODS, UNUSED_OPTIMISER

from ..conftest import mutated
from .test_import_c3box import RAPF, SIMPLECIL

# ---- running the command ------------------------------------------------------------------------------------


def check_import(data: bytes) -> None:
    """`seca import c3box` on a file holding ``data``: status 0 with YAML that `seca run` loads (data.root set),
    or status 2 with one line ``error: ...`` on stderr and nothing on stdout. Anything else fails the test."""
    from seca.engine.configure import load_config

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c3box.json"
        path.write_bytes(data)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["import", "c3box", str(path)])
        except (Exception, SystemExit) as e:  # main returns its status: nothing may escape it
            pytest.fail(f"{type(e).__name__} escaped main: {e!r}")
        out, err = out.getvalue(), err.getvalue()
        if code == 2:
            assert out == "", out
            assert err.startswith("error: ") and err.endswith("\n") and len(err.splitlines()) == 1, err
            err.encode("utf-8", "backslashreplace")  # what a terminal's stderr does with it
            return
        assert code == 0, (code, err)
        assert err == "", err
        out.encode("utf-8")  # stdout (UTF-8, strict) takes it: no lone surrogate
        try:
            cfg = yaml.safe_load(out)
        except yaml.YAMLError as e:
            pytest.fail(f"the printed config is not YAML: {e}\n{out}")
        assert isinstance(cfg, dict), out
        saved = Path(folder) / "imported.yaml"
        saved.write_text(out, encoding="utf-8")
        try:
            config = load_config(saved, [f"data.root={folder}"])
        except Exception as e:
            pytest.fail(f"seca run refuses the printed config: {type(e).__name__}: {e}\n{out}")
        assert config.method.name == cfg["method"]["name"]


def as_json(value) -> bytes:
    return json.dumps(value, indent=4).encode("utf-8")  # NaN and Infinity as Python's json (C3Box's reader) writes


# ---- what is fed to it --------------------------------------------------------------------------------------

# the words a C3Box config is made of, so that drawn dicts and strings reach past the first checks
KEYS = sorted(
    {*RAPF, *SIMPLECIL, *INERT, *MEMORY, *UNUSED_OPTIMISER, *(k for m in METHODS.values() for k in m.reads)}
    | {k for m in METHODS.values() for k in m.inert}
)
WORDS = sorted({*DATASETS, *BACKBONES, *C3BOX_METHODS, *(w.upper() for w in DATASETS), "clip ", ""})

numbers = st.one_of(
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 2, 10, 20, 50, 100, -1, 2**32, 2**63, 2**64, 10**30, -(10**30), 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 5e-324, -0.0, 0.05, 0.5, 1.5, 1e-300]),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, st.text(), st.sampled_from(WORDS))
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text()), children, max_size=4),
    ),
    max_leaves=12,
)


# text no JSON writer makes but a file may hold: deep nesting, long numbers, a byte-order mark, other encodings
ODD_FILES = [
    b"[" * 3_000 + b"]" * 3_000,
    b'{"seed": ' + b"[" * 3_000 + b"]" * 3_000 + b"}",
    as_json({**RAPF, "device": "DEEP"}).replace(b'"DEEP"', b"[" * 900 + b"]" * 900),
    as_json({**RAPF, "seed": "DEEP"}).replace(b'"DEEP"', b"[" * 900 + b"]" * 900),
    b'{"init_cls": ' + b"9" * 5_000 + b"}",
    b"1" * 10_000,
    b"\xef\xbb\xbf" + as_json(RAPF),
    as_json(RAPF).decode().encode("utf-16"),
    as_json(RAPF).replace(b'"aircraft"', b'"\\ud800"'),
    b'{"a": 1, "a": 2}',
    b"",
    b"\x00",
]

any_bytes = st.one_of(
    st.binary(max_size=256),
    st.sampled_from([RAPF, SIMPLECIL]).map(as_json).flatmap(mutated),
    st.sampled_from(ODD_FILES),
    st.text().map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@st.composite
def one_key_changed(draw) -> dict:
    """C3Box's rapf or simplecil config with one key replaced by any JSON value, removed, or one key added."""
    settings = dict(draw(st.sampled_from([RAPF, SIMPLECIL])))
    edit = draw(st.sampled_from(["replace", "replace", "remove", "add"]))
    if edit == "add":
        key = draw(st.one_of(st.sampled_from(KEYS), st.text()))
    else:
        key = draw(st.sampled_from(sorted(settings)))
    if edit == "remove":
        del settings[key]
    else:
        settings[key] = draw(st.one_of(numbers, leaves, json_values))  # numbers most often: most keys hold one
    return settings


# ---- the tests ----------------------------------------------------------------------------------------------


@given(data=any_bytes)
def test_fuzz_any_bytes_as_the_c3box_file_map_or_are_refused_in_one_line(data):
    check_import(data)


@given(value=json_values)
def test_fuzz_any_json_as_the_c3box_file_maps_or_is_refused_in_one_line(value):
    check_import(as_json(value))


@given(settings=one_key_changed())
def test_fuzz_a_c3box_config_with_one_key_changed_maps_or_is_refused_in_one_line(settings):
    check_import(as_json(settings))


EDGES = [
    None,
    True,
    "",
    "x\ny",
    [],
    {},
    0,
    -1,
    2**32,
    10**400,
    1e308,
    5e-324,
    float("nan"),
    float("inf"),
    -float("inf"),
]


@pytest.mark.parametrize(
    "base, key",
    [(base, key) for base in (RAPF, SIMPLECIL) for key in sorted(base)],
    ids=[f"{name}-{key}" for name, base in (("rapf", RAPF), ("simplecil", SIMPLECIL)) for key in sorted(base)],
)
def test_every_key_with_an_edge_value_maps_or_is_refused_in_one_line(base, key):
    """What the fuzzing above draws rarely, for every key at once: the edges of each JSON type."""
    for value in EDGES:
        check_import(as_json({**base, key: value}))
    check_import(as_json({k: v for k, v in base.items() if k != key}))


@pytest.mark.parametrize("data", ODD_FILES, ids=range(len(ODD_FILES)))
def test_odd_files_map_or_are_refused_in_one_line(data):
    check_import(data)


@pytest.mark.parametrize("settings", [RAPF, SIMPLECIL], ids=["rapf", "simplecil"])
def test_the_fuzzed_configs_map_unchanged(settings, capsys):
    """The base of the third test maps: the fuzzing starts from configs that load."""
    check_import(as_json(settings))
