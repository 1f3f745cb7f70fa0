"""Fuzzed list files of the data sets (Hypothesis): a valid miniature of each data set (the builders of
test_sets_*.py) with ONE of its list or metadata files replaced by arbitrary bytes, arbitrary text, or its own lines
spoiled (a field dropped, added or swapped for a non-number, a huge or negative number, an id of another line, a
duplicate line, a '../' path; then CRLF, a BOM, UTF-16 or Latin-1) loads, with every target a class and every file
one under data.root, or is refused in one line without a control character (a SecaError): never another exception.

The budget is the Hypothesis profile's (tests/conftest.py): ``ci`` by default, ``long`` for a long local run:
``python -m pytest tests/unit/test_fuzz_sets.py --hypothesis-profile long``."""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from PIL import Image

from seca.data.images import CONTROL
from seca.data.sets import load_dataset, prepare_dataset
from seca.data.sets._lists import IMAGENET_WNIDS
from seca.data.sets.imagenet100 import PODNET_100, ImageNet100Config
from seca.data.sets.objectnet import ObjectNetConfig
from seca.engine.configure import data_config
from seca.errors import SecaError
from tests.unit.test_sets_fine_grained import write_aircraft, write_cars, write_cub
from tests.unit.test_sets_more import _c3box, write_domainnet, write_objectnet, write_tiny, write_tv100
from tests.unit.test_sets_scenes import food, sun, ucf

# ---- the miniatures ------------------------------------------------------------------------------------------


@dataclass
class Mini:
    """A valid miniature: ``root`` is data.root, ``settings`` the rest of the data section."""

    dataset: str
    root: Path
    settings: dict[str, Any] = field(default_factory=dict)


def _decoys(top: Path) -> None:
    """An image outside the data set's folder, where a '../' path of a list would reach it."""
    for folder in (top, top / "outside"):
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (1, 2, 3)).save(folder / "outside.jpg")


def _imagenet100(top: Path) -> Mini:
    root = _c3box(top / "ILSVRC2012", PODNET_100[:4], ".JPEG")
    for wnid in IMAGENET_WNIDS[100:200]:  # the rest of ImageNet-1k: more than 100 folders, so the list decides
        (root / "train" / wnid).mkdir()
    listed = top / "classes.txt"
    listed.write_text("".join(f"train/{w}/{i}.JPEG {k}\n" for k, w in enumerate(PODNET_100[:4]) for i in range(2)))
    return Mini("imagenet100", root, {"imagenet100": ImageNet100Config(classes=str(listed))})


def _prepared(name: str, write: Callable[[Path], Path], top: Path, **settings: Any) -> Mini:
    raw = write(top / "raw")
    prepare_dataset(name, raw, top / name, progress=False)
    return Mini(name, top / name, settings)


BUILD: dict[str, Callable[[Path], Mini]] = {
    "cub200": lambda top: Mini("cub200", write_cub(top, present=6)),
    "cars196": lambda top: Mini("cars196", write_cars(top, present=6)),
    "aircraft": lambda top: Mini("aircraft", write_aircraft(top, present=6)),
    "food101": lambda top: Mini("food101", food(top)),
    "sun397": lambda top: Mini("sun397", sun(top)),
    "ucf101": lambda top: Mini("ucf101", ucf(top)),
    "tinyimagenet": lambda top: Mini("tinyimagenet", write_tiny(top / "tiny-imagenet-200")),
    "imagenet100": _imagenet100,
    "domainnet": lambda top: Mini("domainnet", write_domainnet(top / "domainnet")),
    "objectnet": lambda top: _prepared("objectnet", write_objectnet, top, objectnet=ObjectNetConfig(classes="all")),
    "tv100": lambda top: _prepared("tv100", write_tv100, top),
}


@pytest.fixture(scope="module")
def minis(tmp_path_factory):
    """Each data set's miniature, built once for the module on first use (a fuzzed file is put back after each
    example)."""
    built: dict[str, Mini] = {}

    def get(name: str) -> Mini:
        if name not in built:
            top = tmp_path_factory.mktemp(name)
            _decoys(top)
            built[name] = mini = BUILD[name](top)
            _check(load_dataset(data_config(dataset=mini.dataset, root=str(mini.root), **mini.settings)), mini.root)
        return built[name]

    return get


# ---- what every outcome must be ------------------------------------------------------------------------------


def _check(loaded, root: Path) -> None:
    """A loaded data set: names are text, every target names a class, every file exists under ``root``."""
    names = loaded.class_names
    assert names and all(isinstance(n, str) and n.strip() for n in names), names
    top = root.resolve()
    for split in (loaded.train, loaded.test):
        assert len(split.files) == len(split.targets)
        assert all(0 <= t < len(names) for t in split.targets.tolist()), (split.targets, names)
        for file in split.files:
            assert Path(file).is_file(), file
            assert Path(file).resolve().is_relative_to(top), file


def _loads_or_one_line(mini: Mini, **settings: Any) -> None:
    data = data_config(dataset=mini.dataset, root=str(mini.root), **{**mini.settings, **settings})
    try:
        loaded = load_dataset(data)
    except SecaError as e:
        message = str(e)
        assert message and message.splitlines() == [message] and not CONTROL.search(message), repr(message)
        assert "Traceback" not in message
        return
    _check(loaded, mini.root)


def _fuzzed(mini: Mini, relative: str, payload: bytes, **settings: Any) -> None:
    """Load ``mini`` with the file ``relative`` (under its root) holding ``payload``; put the file back after."""
    target = mini.root / relative
    original = target.read_bytes() if target.exists() else None
    target.write_bytes(payload)
    try:
        _loads_or_one_line(mini, **settings)
    finally:
        if original is None:
            target.unlink()
        else:
            target.write_bytes(original)


# ---- spoiled text --------------------------------------------------------------------------------------------

# fields that are almost right: numbers that are not, or out of any range; paths that leave the folder; odd characters
HOSTILE = [
    *("", "0", "1", "2", "-1", "-0", "+3", "01", "1.0", "1e3", "nan", "inf", "0x1", "1_0", "\u0663", "\uff11"),
    *("9" * 30, str(2**63), str(-(2**63) - 1), "4" * 5000),
    *(".", "..", "../outside.jpg", "../../outside.jpg", "../../../outside.jpg", "outside/outside.jpg"),
    *("../outside/outside.jpg", "../../outside/outside.jpg", "/etc/passwd", "a/../../outside.jpg", "..\\outside.jpg"),
    *("images/../..", "/", "//", "/a/", "a//b", "x/y/z", "\x00", "\x1b[31m", "\ufeff", "\x7f", "\u200b", "é", "日本"),
]
ENDINGS = ["\n", "\r\n", "\r"]


def near(token: str) -> st.SearchStrategy[str]:
    """Fields a little off ``token``: one up or down, negated or huge where it is a number; climbing out of the
    folder (to the decoy image), absolute, cut short or doubled where it is a name or a path."""
    off = [*(f"{'../' * k}{token}" for k in (1, 2, 3)), *(f"{'../' * k}outside.jpg" for k in (1, 2, 3))]
    off += [*(f"{'../' * k}outside/outside.jpg" for k in (1, 2)), f"/{token}", f"{token}/..", f"./{token}"]
    off += [f"{token}/", token.upper(), token[:-1], token + token]
    if re.fullmatch(r"-?[0-9]+", token):
        value = int(token)
        off += [str(value + d) for d in (-2, -1, 1, 2, 100)] + [str(-value), str(value * 10**20), f"{value}.0"]
    return st.sampled_from(off)


@st.composite
def spoiled_lines(draw, original: str) -> str:
    """``original``'s lines after 1 to 4 edits: a field replaced (by one a little off it, another line's, a hostile
    one, a number, any text), dropped or added; a line replaced, inserted, duplicated, deleted or swapped; or every
    line gone."""
    lines = original.splitlines()
    tokens = sorted({t for line in lines for t in line.split()}) or ["x"]
    value = st.one_of(
        st.sampled_from(tokens).flatmap(near),
        st.sampled_from(tokens).flatmap(near),
        st.sampled_from(tokens),
        st.sampled_from(HOSTILE),
        st.integers(-(10**30), 10**30).map(str),
        st.text(max_size=12),
    )
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 4]))):
        op = draw(
            st.sampled_from(["field", "field", "field", "drop", "add", "line", "insert", "duplicate", "delete", "swap"])
        )
        if not lines:
            lines = [draw(st.text(max_size=40))]
            continue
        i = draw(st.integers(0, len(lines) - 1))
        parts = re.split(r"(\s+)", lines[i])  # fields at even places, the spaces between them kept
        at = 2 * draw(st.integers(0, len(parts) // 2))
        if op == "field":
            parts[at] = draw(value)
            lines[i] = "".join(parts)
        elif op == "drop":
            lines[i] = "".join(parts[:at] + parts[at + 2 :]).strip()
        elif op == "add":
            lines[i] = "".join(parts[:at] + [draw(value), draw(st.sampled_from([" ", "\t", "  "]))] + parts[at:])
        elif op == "line":
            lines[i] = draw(st.text(max_size=40))
        elif op == "insert":
            lines.insert(i, draw(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40))))
        elif op == "duplicate":
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
        elif op == "delete":
            del lines[i]
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    if draw(st.integers(0, 9)) == 0:
        lines = []
    ending = draw(st.sampled_from(ENDINGS))
    return ending.join(lines) + draw(st.sampled_from(["", ending]))


@st.composite
def encoded(draw, text: str) -> bytes:
    """``text`` as a file's bytes: UTF-8 mostly, or with a BOM, UTF-16, Latin-1, or with a stray byte."""
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]))
    data = text.encode(encoding, errors="surrogatepass" if encoding.startswith("utf") else "replace")
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80"])) + data[at:]
    return data


def text_file(original: bytes) -> st.SearchStrategy[bytes]:
    """A replacement for the list file ``original``: its lines spoiled (mostly), any text lines, or any bytes."""
    lines = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE)), max_size=8)
    return st.one_of(
        spoiled_lines(original.decode("utf-8")).flatmap(encoded),
        spoiled_lines(original.decode("utf-8")).flatmap(encoded),
        spoiled_lines(original.decode("utf-8")).flatmap(encoded),
        st.tuples(lines, st.sampled_from(ENDINGS)).map(lambda t: t[1].join(t[0])).flatmap(encoded),
        st.binary(max_size=200),
    )


# ---- JSON -----------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | st.sampled_from(HOSTILE),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)
# JSON that the parser itself chokes on: nesting past the recursion limit, integers past the digit limit
HOSTILE_JSON = [b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000, b"[" + b"1" * 5000 + b"]", b"1" * 5000]
HOSTILE_JSON += [b'{"a": ' * 5000 + b"1" + b"}" * 5000, b"NaN", b"\xef\xbb\xbf[]", b'"\\ud800"', b"[1e999]"]


def json_file(almost: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """A replacement for a JSON file: almost right (``almost``), any JSON, hostile JSON, or any bytes."""
    as_json = st.one_of(almost, almost, json_values).map(lambda v: json.dumps(v, allow_nan=True).encode())
    return st.one_of(as_json, st.sampled_from(HOSTILE_JSON), st.binary(max_size=200))


# ---- the list files --------------------------------------------------------------------------------------------

LISTS = [
    ("cub200", "classes.txt"),
    ("cub200", "images.txt"),
    ("cub200", "image_class_labels.txt"),
    ("cub200", "train_test_split.txt"),
    ("aircraft", "data/variants.txt"),
    ("aircraft", "data/images_variant_trainval.txt"),
    ("aircraft", "data/images_variant_test.txt"),
    ("food101", "meta/classes.txt"),
    ("food101", "meta/train.txt"),
    ("food101", "meta/test.txt"),
    ("sun397", "ClassName.txt"),
    ("sun397", "Partitions/Training_01.txt"),
    ("sun397", "Partitions/Testing_01.txt"),
    ("ucf101", "ucfTrainTestlist/classInd.txt"),
    ("ucf101", "ucfTrainTestlist/trainlist01.txt"),
    ("ucf101", "ucfTrainTestlist/testlist01.txt"),
    ("tinyimagenet", "wnids.txt"),
    ("tinyimagenet", "words.txt"),
    ("tinyimagenet", "val/val_annotations.txt"),
    ("imagenet100", "../classes.txt"),
    ("domainnet", "clipart_train.txt"),
    ("domainnet", "sketch_test.txt"),
]


@pytest.mark.parametrize(("dataset", "relative"), LISTS)
@given(data=st.data())
def test_fuzz_a_spoiled_list_file_loads_or_is_refused_in_one_line(minis, dataset, relative, data):
    mini = minis(dataset)
    original = (mini.root / relative).read_bytes()
    _fuzzed(mini, relative, data.draw(text_file(original), label="file"))


# ---- Stanford Cars' .mat files ---------------------------------------------------------------------------------

CARS_FILES = ["devkit/cars_meta.mat", "devkit/cars_train_annos.mat", "cars_test_annos_withlabels.mat"]
matlab_value = st.one_of(
    st.integers(-(2**31), 2**31),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(HOSTILE[:40]),
    st.sampled_from([f"{n:05d}.jpg" for n in range(1, 60)]),
)


@st.composite
def cars_mat(draw, relative: str) -> dict[str, Any]:
    """What a Stanford Cars .mat file might hold: its key with odd entries, or another key."""
    if relative.endswith("cars_meta.mat"):
        names = draw(st.lists(matlab_value, max_size=8))
        return {draw(st.sampled_from(["class_names", "class_names", "names"])): np.array(names, dtype=object)}
    fields = ["bbox_x1", "class", "fname"]
    if draw(st.booleans()):
        fields = draw(st.lists(st.sampled_from([*fields, "label", "file"]), min_size=1, max_size=4, unique=True))
    rows = draw(st.lists(st.tuples(*[matlab_value for _ in fields]), max_size=6))
    shape = (1, len(rows)) if draw(st.booleans()) else (len(rows),)
    table = np.zeros(shape, dtype=[(f, "O") for f in fields])
    for i, row in enumerate(rows):
        table.flat[i] = row
    return {draw(st.sampled_from(["annotations", "annotations", "annos"])): table}


def _mat_bytes(contents: dict[str, Any]) -> bytes:
    import io

    import scipy.io

    buffer = io.BytesIO()
    try:
        scipy.io.savemat(buffer, contents)
    except Exception:  # a value scipy cannot write (not what is being tested)
        assume(False)
    return buffer.getvalue()


@pytest.mark.parametrize("relative", CARS_FILES)
@given(data=st.data())
def test_fuzz_a_cars_mat_file_loads_or_is_refused_in_one_line(minis, relative, data):
    pytest.importorskip("scipy.io")
    mini = minis("cars196")
    original = (mini.root / relative).read_bytes()
    kind = data.draw(st.sampled_from(["mat", "mat", "cut", "bytes"]), label="kind")
    if kind == "mat":
        payload = _mat_bytes(data.draw(cars_mat(relative), label="contents"))
    elif kind == "cut":
        at = data.draw(st.integers(0, len(original)), label="at")
        payload = original[:at] + data.draw(st.binary(max_size=16), label="tail")
    else:
        payload = data.draw(st.binary(max_size=200), label="bytes")
    _fuzzed(mini, relative, payload)


# ---- JSON files: ObjectNet's mapping, the manifest of a prepared folder, data.names_file ----------------------

OBJECTNET_FOLDERS = ["air_freshener", "bills_money", "butchers_knife", "coffee_french_press", "zipper"]
mapping = st.dictionaries(
    st.one_of(st.sampled_from(OBJECTNET_FOLDERS), st.sampled_from(HOSTILE), st.text(max_size=12)),
    st.one_of(st.text(max_size=12), json_values),
    max_size=7,
)


@given(payload=json_file(mapping))
def test_fuzz_objectnets_mapping_loads_or_is_refused_in_one_line(minis, payload):
    _fuzzed(minis("objectnet"), "mappings/folder_to_objectnet_name.json", payload)


manifest = st.fixed_dictionaries(
    {"split": st.one_of(json_values, st.dictionaries(st.sampled_from(["seed", "split_file"]), json_values))}
)


@pytest.mark.parametrize("dataset", ["tv100", "objectnet"])
@given(data=st.data())
def test_fuzz_the_manifest_of_a_prepared_folder_loads_or_is_refused_in_one_line(minis, dataset, data):
    _fuzzed(minis(dataset), "manifest.json", data.draw(json_file(manifest), label="manifest"))


names = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(HOSTILE), json_values), min_size=4, max_size=8)
names_or_keyed = st.one_of(names, st.dictionaries(st.sampled_from(["cub200", "cars", "cub", ""]), names, max_size=3))


@given(payload=json_file(names_or_keyed), dataset=st.sampled_from(["cub200", "food101", "sun397"]))
def test_fuzz_a_names_file_loads_or_is_refused_in_one_line(minis, payload, dataset):
    mini = minis(dataset)
    path = mini.root.parent / "names.json"
    path.write_bytes(payload)
    _loads_or_one_line(mini, names_file=str(path))
