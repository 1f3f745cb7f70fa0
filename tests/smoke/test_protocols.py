"""Benchmark presets (a data set, B-m Inc-n and a protocol, by name) with any learner, and results that say how
they were made: the data set, the protocol, the split and the class names, in results.json and in every table."""

import json

import numpy as np
import pytest

from seca.cli import main
from seca.engine.configure import benchmark_preset, load_config
from seca.errors import SecaError

from ..conftest import write_shapes_folder

CLASSES = ["blue square", "green triangle", "orange star", "red circle"]
TINY = ["--set", "backbone.model=seca-test", "--set", "backbone.pretrained=null", "--set", "train.epochs=1"]


def test_a_benchmark_preset_is_a_data_set_its_task_sizes_and_a_protocol():
    config = load_config("cifar100-b50-inc10-lamda", method="rapf")
    assert (config.data.dataset, config.scenario.order, config.scenario.first_task, config.scenario.increment) == (
        "cifar100",
        "lamda",
        50,
        10,
    )
    assert config.benchmark == "cifar100-b50-inc10-lamda" and config.method.name == "rapf"
    assert config.train.epochs == 15  # RAPF's own recipe, not SECA's
    assert config.backbone.model == "ViT-B-16" and config.backbone.pretrained == "openai"
    # without a protocol: the data set's first, reference where it has reference orders
    assert load_config("cifar100-b0-inc10").scenario.order == "reference"
    assert load_config("cifar100-b0-inc10").scenario.first_task == 10
    assert benchmark_preset("no-such-set-b0-inc10") is None and benchmark_preset("cifar100") is None
    with pytest.raises(SecaError, match="no protocol 'shuffled'"):
        benchmark_preset("cifar100-b0-inc10-shuffled")


def test_a_run_names_its_protocol_split_and_class_names(tmp_path, capsys):
    root = tmp_path / "data"
    write_shapes_folder(root / "train", CLASSES, per_class=3, split="train")
    write_shapes_folder(root / "test", CLASSES, per_class=2)
    out = tmp_path / "out"
    args = ["run", "imagefolder-b0-inc2-lamda", "--method", "zero-shot", "--set", f"data.root={root}", *TINY]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    np.random.seed(1993)
    assert results["class_order"] == np.random.permutation(4).tolist()  # C3Box's shuffle of the 4 classes
    assert results["dataset"] == "imagefolder" and results["split"] == "official" and results["names"] == "official"
    assert results["protocol"] == {"order": "lamda", "order_seed": 1993, "trial": None, "tasks": "B0-Inc2"}
    made = "imagefolder, lamda order (seed 1993), B0-Inc2, official split, official class names"
    assert made in printed and f"- protocol: {made}" in (out / "summary.md").read_text()

    # a base task of 3, then 1; and an explicit order
    out = tmp_path / "b3"
    assert main([*args[:2], "--set", f"data.root={root}", *TINY, "--set", "scenario.first_task=3", "--set",
                 "scenario.increment=1", "--set", "scenario.order=[3, 2, 1, 0]", "--out", str(out)]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert results["protocol"]["tasks"] == "B3-Inc1" and results["protocol"]["order"] == "explicit"
    # a table of runs made on different protocols says so; of runs made on one, which
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "out"), str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"warning: not all runs were made on {made} ({tmp_path / 'out'})" in printed
    assert "explicit order, B3-Inc1" in printed and "are not comparable" in printed
    assert main(["compare", str(tmp_path / "out"), str(tmp_path / "out")]) == 0
    assert f"made on: {made}" in capsys.readouterr().out


def test_a_learners_template_may_be_its_data_sets():
    config = load_config("cub200-b0-inc20", ["method.template=dataset"], method="zero-shot")
    assert config.method.template == "a photo of a {}, a type of bird."  # CoOp's form, held as text in the config
    assert load_config("food101-b0-inc10", ["method.rapf.template=dataset"], method="rapf").method.rapf.template == (
        "a photo of {}, a type of food."
    )
    with pytest.raises(SecaError, match="the data set 'domainnet' declares no prompt template; write one"):
        load_config("domainnet-b0-inc69", ["method.template=dataset"], method="zero-shot")
