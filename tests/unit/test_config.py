"""Config loading: presets, extends, --set overrides and one-line errors for bad keys and values."""

import pytest

from seca.config import ExperimentConfig, apply_overrides, list_presets, to_dict
from seca.engine.configure import config_differences, load_config, resolve
from seca.errors import SecaError


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(SecaError, match="unknown config key 'train.epoch'; did you mean 'train.epochs'"):
        resolve({"train": {"epoch": 3}})
    with pytest.raises(SecaError, match="did you mean 'scenario'"):
        resolve({"scenaro": {}})


def test_override_with_a_misspelt_key_is_an_error():
    with pytest.raises(SecaError, match="did you mean 'method.adapter.bottleneck'"):
        load_config("cpu-small", ["method.adapter.botleneck=8"])


def test_overrides_are_parsed_as_yaml_and_typed():
    cfg = load_config(
        "cpu-small",
        [
            "train.epochs=5",
            "train.milestones=[1,3]",
            "train.lr.adapter=5e-4",
            "scenario.order=[0,1,2]",
            "backbone.pretrained=null",
        ],
    )
    assert cfg.train.epochs == 5
    assert cfg.train.milestones == (1, 3)
    assert cfg.train.lr["adapter"] == pytest.approx(5e-4)  # "5e-4" is a string in YAML 1.1; coerced
    assert cfg.scenario.order == (0, 1, 2)
    assert cfg.backbone.pretrained is None


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=three", "'train.epochs' must be an integer"),
        ("train.amp=[1]", "'train.amp' must be a string"),
        ("data.download=maybe", "'data.download' must be true or false"),
        ("train=3", "'train' is a section"),
        ("train.epochs", "must look like key.sub=value"),
    ],
)
def test_bad_values_are_one_line_errors(override, message):
    with pytest.raises(SecaError, match=message) as info:
        load_config("cpu-small", [override])
    assert "\n" not in str(info.value)


def test_extends_inherits_and_overrides():
    cfg = load_config("imagenet-a")
    assert cfg.benchmark == "imagenet-a"
    assert cfg.train.milestones == (4, 8)  # own value
    assert cfg.train.epochs == 10 and cfg.train.batch_size == 64  # inherited from imagenet-r
    assert cfg.scenario.order == "seeded"


def test_paper_presets_carry_the_spec_hyperparameters():
    r, c = load_config("imagenet-r"), load_config("cifar100")
    assert (r.train.epochs, r.train.milestones, r.train.batch_size) == (10, (2, 5), 64)
    assert (c.train.epochs, c.train.milestones, c.train.batch_size) == (3, (2, 10), 100)
    assert (r.scenario.first_task, r.scenario.increment, c.scenario.increment) == (20, 20, 10)
    assert r.train.weight_decay == pytest.approx(5e-4)
    assert (r.train.lr["adapter"], r.train.lr["prompt"]) == (pytest.approx(1e-3), pytest.approx(5e-4))
    assert r.backbone.model == "ViT-B-16" and r.backbone.pretrained == "openai"


def test_every_preset_loads():
    for name in list_presets():
        assert isinstance(load_config(name), ExperimentConfig)


def test_round_trip_through_plain_data():
    cfg = load_config("imagenet-r", ["scenario.order=[2,0,1]"])
    assert resolve(to_dict(cfg)) == cfg


def test_overrides_do_not_mutate_their_input():
    data = {"train": {"epochs": 1}}
    apply_overrides(data, ["train.epochs=2"])
    assert data == {"train": {"epochs": 1}}


def test_missing_config_file_lists_presets(tmp_path):
    with pytest.raises(SecaError, match="not found; give a YAML path or one of the presets: .*imagenet-r"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_is_reported(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1,\n")
    with pytest.raises(SecaError, match="not valid YAML"):
        load_config(bad)


def test_docs_config_tables_are_those_the_declarations_generate(tmp_path):
    import shutil
    from pathlib import Path

    from seca.engine.configure import GENERATED, doc_tables, update_config_doc

    doc = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert all(GENERATED.format(name) in doc.read_text() for name in doc_tables())  # every table has its place
    copy = tmp_path / "config.md"
    shutil.copy(doc, copy)
    assert not update_config_doc(copy), "docs/config.md is stale: run python -m seca.engine.configure docs/config.md"
    text = doc.read_text()
    for key in ("sg_akt.teacher", "classifier.visual", "eval_order", "lr.se_vpr", "plugins"):
        assert f"`{key}`" in text


def test_a_run_differing_only_in_what_no_part_of_it_reads_is_the_same_run():
    # a run's config holds every learner's and data set's own sections; a default changed since in another learner's
    # (a section the run never read) must not refuse its resumption or the reuse of its results by seca ablate
    config = load_config("cpu-small")
    saved = to_dict(config)
    saved["method"]["bofa"]["templates"] = ["a photo of a {}.", "a photo of the {}."]
    saved["method"]["template"] = "a bad photo of a {}."  # zero-shot's single key
    saved["data"]["sun397"]["partition"] = 7
    assert config_differences(config, saved) == []
    saved["method"]["se_vpr"]["gamma"] = 3.0  # read by seca: a different run
    assert [d.split(" ")[0] for d in config_differences(config, saved)] == ["method.se_vpr.gamma"]
