"""Fuzzing the files of class texts a language model wrote (ENGINE's descriptions, CLG-CBM's concepts and their class
names): any bytes read to texts for every class, or are refused with one line that names the config key."""

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from seca.errors import SecaError
from seca.methods._class_texts import read_class_names, read_class_texts, read_indexed_class_texts

from ..conftest import mutated

CLASSES = ["red star", "blue circle"]
GOOD = json.dumps({"red star": ["five points", "red"], "blue_circle": {"shape": ["round"], "colour": ["blue"]}})
INDEXED = json.dumps({"0": ["five points"], "1": ["round"]})
NAMES = json.dumps({"0": "red star", "1": "blue circle"})

keys = st.one_of(st.sampled_from(["red star", "Blue_Circle", "0", "1", "²", "٣", "12", ""]), st.text(max_size=6))
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
documents = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(keys, values, max_size=4)),
    st.builds(lambda d: json.dumps(d).encode(), st.lists(st.text(max_size=12), max_size=4)),
    mutated(GOOD.encode()),
    mutated(INDEXED.encode()),
    mutated(NAMES.encode()),
)


def _read(reader, *contents: bytes):
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for k, data in enumerate(contents):
            paths.append(Path(folder) / f"f{k}.json")
            paths[-1].write_bytes(data)
        return reader(*paths)


def _one_line(error: SecaError, key: str) -> None:
    assert "\n" not in str(error) and str(error).startswith(f"{key}: "), str(error)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_any_texts_file_reads_to_texts_for_every_class_or_one_line(data):
    try:
        texts = _read(lambda p: read_class_texts(p, CLASSES, "method.engine.descriptions"), data)
    except SecaError as e:
        _one_line(e, "method.engine.descriptions")
        return
    assert len(texts) == len(CLASSES) and all(t and all(isinstance(x, str) and x for x in t) for t in texts)


@settings(max_examples=400, deadline=None)
@given(documents, documents)
def test_any_indexed_concepts_and_names_read_or_are_refused_in_one_line(concepts, names):
    reader = lambda c, n: read_indexed_class_texts(  # noqa: E731
        c, n, CLASSES, "method.clg_cbm.concepts", "method.clg_cbm.concept_names"
    )
    try:
        texts = _read(reader, concepts, names)
    except SecaError as e:
        assert "\n" not in str(e) and str(e).startswith("method.clg_cbm."), str(e)
        return
    assert len(texts) == len(CLASSES) and all(texts)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_any_names_file_reads_to_names_or_one_line(data):
    try:
        names = _read(lambda p: read_class_names(p, "method.clg_cbm.concept_names"), data)
    except SecaError as e:
        _one_line(e, "method.clg_cbm.concept_names")
        return
    assert names and all(isinstance(n, str) and n.strip() for n in names)


def test_the_official_shapes_read():
    assert _read(lambda p: read_class_texts(p, CLASSES, "k"), GOOD.encode()) == [
        ["five points", "red"],
        ["round", "blue"],
    ]
    reader = lambda c, n: read_indexed_class_texts(c, n, CLASSES, "k", "n")  # noqa: E731
    assert _read(reader, INDEXED.encode(), NAMES.encode()) == [["five points"], ["round"]]
