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

import seca
from seca.io.checkpoint import read_metadata

from ..conftest import FAST_RUN, write_shapes_folder

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def example() -> str:
    """The fenced python block under the heading "A complete example"."""
    section = DOC.read_text().split("## A complete example", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_example_is_a_complete_learner_under_60_lines():
    code = example()
    assert len(code.splitlines()) < 60
    assert "@register" in code and 'name = "probe"' in code


def _seca(*argv, env=None, cwd=None) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "seca", *map(str, argv)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=600)
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
    _seca("learn", model, "--data", write_shapes_folder(tmp_path / "task", ["red circle", "blue star"], split="train"),
          env=env)
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
