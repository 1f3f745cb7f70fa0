"""Every registry, and every entry each holds (as timm's tests run over ``list_models()``): an entry added to a
registry is held to these checks without a line of its own. The learners' behaviour has its own contract test
(tests/smoke/test_contract.py); here, what each kind of entry declares and how a registry refuses a taken name."""

import importlib

import pytest
from PIL import Image

from seca.clip.archs import ARCHITECTURES, PRETRAINED_TAGS
from seca.config import RECIPE_KEYS, TrainConfig, build
from seca.data.protocols import PROTOCOLS, class_order, summary
from seca.data.sets import DATASETS, DataSet, load_dataset
from seca.engine.configure import data_config, resolve
from seca.errors import SecaError
from seca.methods import LEARNERS
from seca.methods.seca_parts.teachers import TEACHERS
from seca.methods.seca_parts.visual_heads import VISUAL_HEADS
from seca.registry import Registry

# ---- the registry itself ------------------------------------------------------------------------------------


class First:
    name = "twin"


class Second:
    name = "twin"


def test_a_taken_name_is_refused_naming_both_sources():
    registry = Registry("widget")
    registry.register(First)
    registry.register(First)  # the same entry again (its module imported twice): harmless
    with pytest.raises(ValueError) as info:
        registry.register(Second)
    message = str(info.value)
    assert "\n" not in message and "widget name 'twin'" in message
    assert f"{__name__}.First" in message and f"{__name__}.Second" in message
    assert registry.names() == ["twin"] and registry["twin"] is First


def test_an_unknown_name_is_one_line_with_the_closest_and_the_choices():
    registry = Registry("widget")
    for name in ("sprocket", "gear"):
        registry.add(name, object(), source=name)
    with pytest.raises(
        SecaError,
        match=r"^unknown widget 'sprockt' \(did you mean 'sprocket'\?\); choose one of: "
        r"gear, sprocket$",
    ):
        registry["sprockt"]


# ---- learners -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LEARNERS.names())
def test_a_learner_brings_its_recipe_and_rates_into_a_config_that_names_it(name):
    learner = LEARNERS[name]
    assert learner.summary() and learner.summary() != name
    assert set(learner.recipe) <= set(RECIPE_KEYS) - {"lr"}
    build(TrainConfig, learner.recipe)  # every value of the recipe is a valid train setting
    config = resolve({"method": {"name": name}})
    for key, value in learner.recipe.items():
        assert getattr(config.train, key) == (tuple(value) if isinstance(value, list) else value), key
    assert config.train.lr == learner.learning_rates()


@pytest.mark.parametrize("name", LEARNERS.names())
def test_a_preset_keeps_its_recipe_keys_over_the_learners(name):
    given = {group: 0.5 for group in LEARNERS[name].learning_rates()}
    config = resolve({"method": {"name": name}, "train": {"epochs": 3, "weight_decay": 0.25, "lr": given}})
    assert (config.train.epochs, config.train.weight_decay) == (3, 0.25)
    assert config.train.lr == given


def test_a_learners_renamed_group_reads_under_its_name_now():
    config = resolve({"method": {"name": "rapf"}, "train": {"lr": {"linear": 0.25}}})
    assert config.train.lr["rapf"] == 0.25 and "linear" not in config.train.lr


# ---- data sets ----------------------------------------------------------------------------------------------


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (len(path.parent.name) % 256, 0, 0)).save(path)


def _class_folders(root, folders):
    for split in ("train", "test"):
        for folder in folders:
            _image(root / split / folder / "0.png")
    return root


def _miniature(name, root):
    """``data`` settings of a miniature of the data set ``name``, made under ``root`` in the layout it reads; None
    where the data set cannot be made here (CIFAR-100: torchvision checks the archive's digests)."""
    if name == "shapes":
        return {"dataset": name, "shapes": {"colors": 2, "shapes": 2, "train_per_class": 2, "test_per_class": 1}}
    if name == "imagefolder":
        return {"dataset": name, "root": str(_class_folders(root, ["sea_lion", "zebra"]))}
    if name in ("imagenet-r", "imagenet-a"):
        wnids, _ = DATASETS[name]().classes()
        return {"dataset": name, "root": str(_class_folders(root, wnids))}
    return None


@pytest.mark.parametrize("name", DATASETS.names())
def test_a_data_set_says_what_it_is_and_how_to_obtain_it(name):
    dataset = DATASETS[name]
    assert issubclass(dataset, DataSet) and dataset.summary() and dataset.obtain
    assert name in DATASETS and build(type(data_config()), {"dataset": name}).dataset == name


@pytest.mark.parametrize("name", DATASETS.names())
def test_a_data_set_loads_its_miniature_or_says_in_one_line_where_it_is_missing(name, tmp_path):
    settings = _miniature(name, tmp_path)
    if settings is None:
        with pytest.raises(SecaError) as info:
            load_dataset(data_config(dataset=name, root=str(tmp_path / "absent")))
        assert "\n" not in str(info.value)
        return
    data = load_dataset(resolve({"data": settings}).data)
    assert data.num_classes == len(data.class_names) > 1
    for split in (data.train, data.test):
        assert len(split) == len(split.targets) > 0 and set(split.targets.tolist()) <= set(range(data.num_classes))
    image, label = data.test[0]
    assert isinstance(image, Image.Image) and label == int(data.test.targets[0])
    orders = DATASETS[name]().reference_orders(data.num_classes)
    if orders is not None:  # the reference protocol's orders are permutations of the classes
        assert all(sorted(order) == list(range(data.num_classes)) for order in orders)


# ---- protocols ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROTOCOLS.names())
@pytest.mark.parametrize("num_classes", [1, 7, 100])
def test_a_protocol_orders_every_class_once_and_the_same_way_each_time(name, num_classes):
    shapes = DATASETS["shapes"]()
    order = class_order(name, num_classes, shapes, trial=0, seed=5)
    assert sorted(order) == list(range(num_classes)) and all(isinstance(c, int) for c in order)
    assert class_order(name, num_classes, shapes, trial=0, seed=5) == order
    assert summary(name) and summary(name) != name


def test_the_seeded_protocol_depends_on_its_seed_and_reference_on_the_data_set():
    shapes = DATASETS["shapes"]()
    assert class_order("seeded", 50, shapes, seed=1) != class_order("seeded", 50, shapes, seed=2)
    assert class_order("reference", 100, DATASETS["cifar100"]())[:3] == [87, 0, 52]
    with pytest.raises(SecaError, match="no reference class order exists for 'imagenet-a'"):
        class_order("reference", 200, DATASETS["imagenet-a"]())


# ---- SECA's parts and the pretrained tags -------------------------------------------------------------------


@pytest.mark.parametrize("registry", [TEACHERS, VISUAL_HEADS])
def test_every_part_of_seca_is_a_choice_of_its_config_key(registry):
    key = {"teacher": "method.sg_akt.teacher", "visual head": "method.classifier.visual"}[registry.kind]
    section, leaf = key.rsplit(".", 1)
    for name in registry.names():
        config = resolve({"method": {"name": "seca", section.split(".")[1]: {leaf: name}}})
        assert getattr(getattr(config.method, section.split(".")[1]), leaf) == name
        assert (registry[name].__doc__ or "").strip()
    with pytest.raises(SecaError, match=f"config key '{key}' must be one of {', '.join(registry.names())}"):
        resolve({"method": {"name": "seca", section.split(".")[1]: {leaf: "nothing"}}})


@pytest.mark.parametrize("tag", PRETRAINED_TAGS.names())
def test_a_pretrained_tag_names_an_architecture_and_a_provider_that_exist(tag):
    architecture, provider = PRETRAINED_TAGS[tag]
    assert architecture in ARCHITECTURES
    module, _, function = provider.partition(":")
    assert callable(getattr(importlib.import_module(module), function))
