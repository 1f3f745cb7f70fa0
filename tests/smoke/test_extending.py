"""docs/extending.md's complete example works as the page says: saved as a new file in seca/methods/ (of a copy
of the package) with no other file changed, it runs `seca run` and `seca new`/`learn` and is listed by `seca
presets`; from outside the package it works as a plugin, through the config or SECA_PLUGINS."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import seca
from seca.io.checkpoint import read_metadata

from ..conftest import FAST_RUN, write_shapes_folder

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def example(heading: str = "A complete example") -> str:
    """The fenced python block under the heading ``heading``."""
    section = DOC.read_text().split(f"## {heading}\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_example_is_a_complete_learner_under_60_lines():
    code = example()
    assert len(code.splitlines()) < 60
    assert "@register" in code and 'name = "probe"' in code


def _seca(*argv, env=None, cwd=None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "seca", *map(str, argv)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def package_with_example(tmp_path_factory):
    """A copy of the seca package with the example saved as seca/methods/probe.py: the only file added."""
    root = tmp_path_factory.mktemp("package")
    shutil.copytree(Path(seca.__file__).parent, root / "seca", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "seca" / "methods" / "probe.py").write_text(example())
    return root


def test_saved_in_the_methods_folder_it_runs_and_grows_a_model(package_with_example, tmp_path):
    env = {"PYTHONPATH": str(package_with_example)}
    listed = _seca("presets", env=env).stdout
    assert "probe" in listed and "a cosine classifier on frozen CLIP image features" in listed
    assert "probe" in _seca("new", "--help", env=env).stdout

    out = tmp_path / "run"
    _seca("run", "cpu-small", "--out", out, *FAST_RUN, "--set", "method.name=probe", env=env)
    results = json.loads((out / "results.json").read_text())
    assert results["method"] == "probe" and len(results["acc_matrix"]) == 5
    assert results["config"]["method"]["probe"] == {"scale": 16.0}
    assert results["config"]["train"]["lr"]["probe"] == 0.01  # the learner's default, beside the preset's rates

    model = tmp_path / "probe.safetensors"
    _seca("new", model, "--backbone", "seca-test", "--method", "probe", env=env)
    _seca(
        "learn",
        model,
        "--data",
        write_shapes_folder(tmp_path / "task", ["red circle", "blue star"], split="train"),
        env=env,
    )
    assert read_metadata(model)["class_names"] == ["blue star", "red circle"]
    predicted = _seca("predict", model, tmp_path / "task", "--json", env=env).stdout
    assert {p["label"] for p in json.loads(predicted)} <= {"blue star", "red circle"}


def test_outside_the_package_it_is_a_plugin(tmp_path):
    plugin = tmp_path / "lab" / "probe.py"
    plugin.parent.mkdir()
    plugin.write_text(example())
    out = tmp_path / "run"
    _seca("run", "cpu-small", "--out", out, *FAST_RUN, "--set", "method.name=probe", "--set", f"plugins=[{plugin}]")
    assert json.loads((out / "results.json").read_text())["config"]["plugins"] == [str(plugin)]
    # the model records its plugin: a fresh process loads and uses it with nothing else said
    task = write_shapes_folder(tmp_path / "task", ["purple star"], split="train")
    _seca("learn", out / "model.safetensors", "--data", task, "--out", tmp_path / "grown.safetensors")

    model = tmp_path / "env.safetensors"
    _seca("new", model, "--backbone", "seca-test", "--method", "probe", env={"SECA_PLUGINS": str(plugin)})
    assert read_metadata(model)["method"] == "probe"


def test_a_broken_plugin_is_named(tmp_path, capsys):
    from seca.cli import main

    plugin = tmp_path / "broken.py"
    plugin.write_text("import no_such_module\n")
    assert main(["run", "cpu-small", "--out", str(tmp_path / "o"), "--set", f"plugins=[{plugin}]"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"plugin '{plugin}' could not be imported: ModuleNotFoundError" in err


# ---- a data set ---------------------------------------------------------------------------------------------


def _dtd(root: Path) -> Path:
    """A miniature of DTD in its own layout: images/<class>/<file>.jpg and the split lists of labels/."""
    lists = {"train1": [], "val1": [], "test1": []}
    for k, texture in enumerate(["banded", "cracked", "dotted", "zigzagged"]):
        (root / "images" / texture).mkdir(parents=True)
        for i, split in enumerate(["train1", "train1", "val1", "test1", "test1"]):
            Image.new("RGB", (40, 30), (60 * k, 40 * i, 0)).save(root / "images" / texture / f"{texture}_{i}.jpg")
            lists[split].append(f"{texture}/{texture}_{i}.jpg")
    (root / "labels").mkdir()
    for name, files in lists.items():
        (root / "labels" / f"{name}.txt").write_text("\n".join(files) + "\n")
    return root


DTD_RUN = [
    "--set",
    "data.dataset=dtd",
    "--set",
    "scenario.order=seeded",
    "--set",
    "scenario.first_task=2",
    "--set",
    "scenario.increment=2",
    "--set",
    "train.epochs=1",
]


def test_the_data_set_example_is_one_file_that_runs(tmp_path_factory, tmp_path):
    code = example("A complete data set")
    assert "@register" in code and 'name = "dtd"' in code and len(code.splitlines()) < 40
    root = tmp_path_factory.mktemp("package")
    shutil.copytree(Path(seca.__file__).parent, root / "seca", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "seca" / "data" / "sets" / "dtd.py").write_text(code)
    env = {"PYTHONPATH": str(root)}
    listed = _seca("presets", env=env).stdout
    assert "dtd" in listed and "47 describable textures" in listed

    data = _dtd(tmp_path / "dtd")
    out = tmp_path / "run"
    _seca("run", "cpu-small", "--out", out, "--set", f"data.root={data}", *DTD_RUN, env=env)
    results = json.loads((out / "results.json").read_text())
    assert sorted(results["class_names"]) == ["banded", "cracked", "dotted", "zigzagged"]
    assert len(results["acc_matrix"]) == 2 and results["test_counts"] == [4, 4]  # test1 holds 2 images a class


def test_the_data_set_example_is_a_plugin_outside_the_package(tmp_path):
    plugin = tmp_path / "lab" / "dtd.py"
    plugin.parent.mkdir()
    plugin.write_text(example("A complete data set"))
    data = _dtd(tmp_path / "dtd")
    out = tmp_path / "run"
    _seca("run", "cpu-small", "--out", out, "--set", f"data.root={data}", "--set", f"plugins=[{plugin}]", *DTD_RUN)
    assert json.loads((out / "results.json").read_text())["config"]["data"]["dataset"] == "dtd"
    missing = tmp_path / "not-dtd"  # a folder that is not DTD's: one line ending with how to obtain it
    missing.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "seca",
            "run",
            "cpu-small",
            "--out",
            str(tmp_path / "o"),
            "--set",
            f"data.root={missing}",
        ]
        + ["--set", f"plugins=[{plugin}]", *DTD_RUN],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and not (tmp_path / "o").exists()
    assert "has no labels/test1.txt" in done.stderr and "dtd-r1.0.1.tar.gz" in done.stderr
