"""Fuzzed input (Hypothesis): every image decoder error, hostile zip, odd label and bad config value ends in the
project's one-line refusal, with nothing written. The server's own fuzzing is in test_serve.py.

The budget is the Hypothesis profile's (tests/conftest.py): ``ci`` by default, ``long`` for a long local run:
``python -m pytest tests -k fuzz --hypothesis-profile long``."""

import dataclasses
import io
import struct
import tempfile
import zipfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from seca.cli import main
from seca.config import ExperimentConfig, declared, rules
from seca.data.images import LABEL_BYTES, label_name, open_image
from seca.engine.configure import LEARNERS, schema
from seca.errors import SecaError
from seca.serve.uploads import Limits, Upload, UploadError, Workspace

from ..conftest import mutated

# ---- images -------------------------------------------------------------------------------------------------


def _encoded(fmt: str) -> bytes:
    image = Image.new("RGB", (12, 9), (200, 40, 30))
    image.putpixel((3, 3), (0, 250, 0))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


BASES = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "TIFF", "BMP", "PPM", "WEBP")}


image_bytes = st.one_of(
    st.sampled_from(sorted(BASES)).flatmap(lambda fmt: mutated(BASES[fmt])),
    st.binary(max_size=64),
)


@given(data=image_bytes, suffix=st.sampled_from([".png", ".jpg", ".gif", ".tif", ".bmp", ".ppm", ".webp", ".img"]))
def test_fuzz_any_image_bytes_open_or_are_refused_in_one_line_naming_the_file(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"image{suffix}"
        path.write_bytes(data)
        try:
            image = open_image(path, max_pixels=1_000_000)
        except SecaError as e:
            assert str(path) in str(e) and "\n" not in str(e)
            return
        assert image.mode == "RGB" and image.width * image.height <= 1_000_000


# ---- zips ---------------------------------------------------------------------------------------------------

PNG = BASES["PNG"]
HOSTILE = ["../evil/a.png", "..\\evil\\a.png", "/abs/a.png", "C:/a.png", "c:\\a.png", "cat/../../a.png",
           "cat/a\x00.png", "cat/" + "x" * 300 + ".png", "ca\tt/a.png", "cat/a.png", "dog/b.png", ".hidden/a.png",
           "__MACOSX/cat/a.png", "flat.png", "deep/er/a.png", "cat/", "日本/a.png", "Cat/a.png",
           "a\nb/c.png"]  # fmt: skip


def _patched(data: bytes, field: str, value: int) -> bytes:
    """``data`` (a zip) with every entry's flags, compression method or CRC set to ``value``, in the local headers and
    the central directory alike (zipfile writes neither an encryption flag nor a method it lacks)."""
    data = bytearray(data)
    offsets = {"flags": (6, 8, "<H"), "method": (8, 10, "<H"), "crc": (14, 16, "<I")}[field]
    for signature, offset in ((b"PK\x03\x04", offsets[0]), (b"PK\x01\x02", offsets[1])):
        at = data.find(signature)
        while at != -1:
            struct.pack_into(offsets[2], data, at + offset, value)
            at = data.find(signature, at + 4)
    return bytes(data)


@st.composite
def zips(draw) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in draw(st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30)), min_size=1, max_size=5)):
            info = zipfile.ZipInfo(name)
            try:
                archive.writestr(info, draw(st.sampled_from([PNG, b"", b"not an image"])))
            except (ValueError, UnicodeEncodeError):
                continue
    data = buffer.getvalue()
    change = draw(st.sampled_from(["none", "encrypted", "method", "crc", "bytes"]))
    if change == "encrypted":
        data = _patched(data, "flags", 0x1)
    elif change == "method":
        data = _patched(data, "method", draw(st.sampled_from([9, 12, 14, 99, 98])))  # deflate64, bzip2, lzma, ...
    elif change == "crc":
        data = _patched(data, "crc", draw(st.integers(0, 2**32 - 1)))
    elif change == "bytes":
        data = draw(mutated(data))
    return data


@pytest.mark.filterwarnings("ignore:Duplicate name")  # zipfile's, writing a zip with a name twice on purpose
@given(data=zips())
def test_fuzz_any_zip_unpacks_inside_its_folder_or_is_refused_in_one_line(data, tmp_path, monkeypatch):
    uploads = Path(tempfile.mkdtemp(dir=tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(uploads))
    space = Workspace(Limits(files=50, zip_bytes=1 << 20))
    try:
        space.add_zip("train", Upload("x.zip", io.BytesIO(data)), "zip")
        given = space.labelled("train")
        assert all(label_name(name) == name for name in given)  # every class name a checked label
        for files in given.values():
            assert files and all(f.is_relative_to(space.root) and f.is_file() for f in files)
    except UploadError as e:
        assert "\n" not in str(e) and str(space.root) not in str(e)
    finally:
        written = [p for p in uploads.rglob("*") if not p.is_relative_to(space.root)]
        space.close()
    assert written == []  # nothing outside the workspace, ever
    assert list(uploads.iterdir()) == []


# ---- labels -------------------------------------------------------------------------------------------------


@given(
    text=st.one_of(st.text(max_size=300), st.sampled_from(["train", "test", "..", "../up", "a\\b", " ", "日" * 100]))
)
def test_fuzz_a_label_is_a_checked_name_or_one_line_saying_why(text):
    try:
        name = label_name(text)
    except SecaError as e:
        assert "\n" not in str(e)
        return
    assert name and name == name.strip() and "_" not in name
    assert len(name.encode("utf-8")) <= LABEL_BYTES and label_name(name) == name


# ---- config values through the command line ---------------------------------------------------------------

TINY = ["--set", "data.shapes.colors=2", "--set", "data.shapes.shapes=2", "--set", "data.shapes.train_per_class=2",
        "--set", "data.shapes.test_per_class=1", "--set", "scenario.first_task=2", "--set", "scenario.increment=2",
        "--set", "train.epochs=1", "--set", "train.progress=false"]  # fmt: skip
KEYS = sorted(key for key, _, _ in declared(ExperimentConfig, schema()))
values = st.one_of(
    st.integers(-5, 12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.none(),
    st.booleans(),
    st.lists(st.integers(-3, 12), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2),
)


def _run(out: Path, *settings: str) -> tuple[int, str]:
    import contextlib

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", "cpu-small", "--out", str(out), *TINY, *settings])
    return code, err.getvalue()


@given(key=st.sampled_from(KEYS), value=values, method=st.sampled_from(LEARNERS.names()))
def test_fuzz_any_config_value_runs_or_is_refused_in_one_line(key, value, method, tmp_path):
    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "run"
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    code, err = _run(out, "--set", f"method.name={method}", "--set", f"{key}={text}")
    assert code in (0, 2), err
    if code == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert not (out / "results.json").exists()  # a refusal never leaves results (a failed task: a resumable run)


# ---- every declared setting, with a value it must refuse ----------------------------------------------------


def _wrong_type(tp) -> object:
    return {"x": 1} if tp in (str, int, float, bool) or "tuple" in str(tp) or "|" in str(tp) else "x"


def _out_of_range(rule) -> object | None:
    for value in (-1, 0, -0.5, 1.5, 10**6, 1e-300, "no-such-choice", [], [3, 1], [0], float("nan")):
        try:
            if not rule.test(value):
                return value
        except TypeError:
            continue
    return None


def _reader(key: str) -> str:
    """A learner that reads ``key`` (SECA for the experiment's own keys)."""
    if not key.startswith("method."):
        return "seca"
    leaf = key.split(".", 2)[1]
    return next(name for name, cls in LEARNERS.items() if leaf in {f.name for f in dataclasses.fields(cls.Config)})


RULES = rules(ExperimentConfig, schema())
CASES = []
for _key, _, _tp in declared(ExperimentConfig, schema()):
    if _key != "method.name":
        CASES.append((_key, _wrong_type(_tp)))
        if _key in RULES and _out_of_range(RULES[_key]) is not None:
            CASES.append((_key, _out_of_range(RULES[_key])))


@pytest.mark.parametrize("key, value", CASES, ids=[f"{k}={v!r}" for k, v in CASES])
def test_every_setting_refuses_a_bad_value_in_one_line_before_anything_is_written(key, value, tmp_path):
    out = tmp_path / "run"
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    code, err = _run(out, "--set", f"method.name={_reader(key)}", "--set", f"{key}={text}")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (code, err)
    assert not out.exists()


OWNERS = [name for name, cls in LEARNERS.items() if name.replace("-", "_") in cls.Config.__dataclass_fields__]


@pytest.mark.parametrize("owner", OWNERS)
def test_a_setting_of_another_methods_section_is_refused_naming_the_method_run(owner, tmp_path):
    section = owner.replace("-", "_")
    key, field = next(
        (k, f) for k, f, tp in declared(LEARNERS[owner].Config) if k.startswith(f"{section}.") and tp in (int, float)
    )
    value = 2 if field.default == 3 else 3  # not its default: a default is what an unset key holds
    code, err = _run(tmp_path / "run", "--set", "method.name=seca", "--set", f"method.{key}={value}")
    assert code == 2 and err.count("\n") == 1, err
    assert f"'method.{key}' is a setting of {owner}, and the method run is seca" in err
    assert not (tmp_path / "run").exists()
