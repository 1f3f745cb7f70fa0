"""`seca import c3box`: C3Box's experiment configs as seca configs, key by key, or refused in one line.

The configs below are C3Box's own exps/*.json (github.com/LAMDA-CL/C3Box at 1378ab2, 2026-02-01), written here as
data so that no test needs C3Box or a network.
"""

import json

import numpy as np
import pytest
import yaml

# C3Box's exps/rapf.json
RAPF = {
    "prefix": "reproduce",
    "dataset": "aircraft",
    "memory_size": 0,
    "memory_per_class": 0,
    "fixed_memory": False,
    "shuffle": True,
    "init_cls": 50,
    "increment": 10,
    "model_name": "rapf",
    "backbone_type": "clip",
    "device": ["0"],
    "seed": [1993],
    "batch_size": 128,
    "init_lr": 0.001,
    "epochs": 10,
    "beta": 2,
    "mix_bias": 0.6,
    "threshold": 0.55,
    "total_class_num": 100,
}

# C3Box's exps/simplecil.json
SIMPLECIL = {
    "prefix": "reproduce",
    "dataset": "cifar224",
    "memory_size": 0,
    "memory_per_class": 0,
    "fixed_memory": False,
    "shuffle": True,
    "init_cls": 10,
    "increment": 10,
    "model_name": "simplecil",
    "backbone_type": "clip",
    "device": ["0"],
    "seed": [1993],
    "total_class_num": 100,
}

# C3Box's exps/zs_clip.json
ZS_CLIP = {**SIMPLECIL, "init_cls": 50, "model_name": "zs_clip"}

# C3Box's exps/proof.json
PROOF = {
    "prefix": "-",
    "dataset": "aircraft",
    "memory_size": 2000,
    "memory_per_class": 20,
    "fixed_memory": True,
    "shuffle": True,
    "init_cls": 10,
    "increment": 10,
    "model_name": "proof",
    "backbone_type": "clip",
    "device": ["0"],
    "seed": [1993],
    "projection_type": "pure_mlp",
    "frozen_layers": "visual",
    "tuned_epoch": 10,
    "init_lr": 0.001,
    "batch_size": 64,
    "weight_decay": 0.05,
    "min_lr": 0,
    "optimizer": "sgd",
    "total_class_num": 100,
}

# C3Box's exps/engine.json
ENGINE = {
    "prefix": "-",
    "dataset": "aircraft",
    "shuffle": True,
    "init_cls": 10,
    "increment": 10,
    "model_name": "engine",
    "backbone_type": "clip",
    "device": ["0"],
    "seed": [1993],
    "projection_type": "pure_mlp",
    "frozen_layers": "visual",
    "tuned_epoch": 10,
    "init_lr": 0.05,
    "batch_size": 64,
    "weight_decay": 0.05,
    "min_lr": 0,
    "optimizer": "sgd",
    "text_des": 2,
    "image_aug": 2,
    "rerank": 0.8,
    "stat": 0.99,
    "sample_num": 0,
    "sample_noise": 0.3,
    "rerank_top": 5,
    "memory_size": 0,
    "total_class_num": 100,
}

# C3Box's exps/bofa.json
BOFA = {
    "prefix": "-",
    "dataset": "cifar224",
    "shuffle": True,
    "init_cls": 50,
    "increment": 10,
    "backbone_type": "clip",
    "model_name": "bofa",
    "device": ["0"],
    "seed": [1993],
    "projection_type": "pure_mlp",
    "frozen_layers": "visual",
    "tuned_epoch": 15,
    "init_lr": 0.05,
    "batch_size": 128,
    "weight_decay": 0.05,
    "min_lr": 0,
    "optimizer": "sgd",
    "text_des": 2,
    "image_aug": 0.5,
    "stat": 0.1,
    "memory_size": 0,
    "Kt": 64,
    "use_up_cov": True,
    "total_class_num": 100,
}

# C3Box's exps/clg_cbm.json
CLG_CBM = {
    "dataset": "cifar224",
    "shuffle": True,
    "init_cls": 50,
    "increment": 10,
    "device": ["0"],
    "sim": 1,
    "epochs": 30,
    "lr": 0.01,
    "FB_epoch": 60,
    "FB_epoch_inc": 60,
    "init_lr": 0.001,
    "pool": 10,
    "sg_num": 1,
    "milestones": [30, 40, 50],
    "prefix": "continual-CLIP",
    "model_name": "clg_cbm",
    "backbone_type": "clip",
    "seed": [1993],
    "batch_size": 48,
    "division_power": 5,
    "linear_model": ["linear", "bn", "linear"],
    "score_model": ["bn", "linear"],
    "regularizer": "mahalanobis",
    "print_freq": 10,
    "memory_size": 0,
    "repeat": False,
    "total_class_num": 100,
}

# C3Box's utils/templates.json
AIRCRAFT_TEMPLATES = ["a photo of a {}, a type of aircraft.", "a photo of the {}, a type of aircraft."]
CIFAR_TEMPLATES = [
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a black and white photo of a {}.",
    "a low contrast photo of a {}.",
    "a high contrast photo of a {}.",
    "a bad photo of a {}.",
    "a good photo of a {}.",
    "a photo of a small {}.",
    "a photo of a big {}.",
    "a photo of the {}.",
    "a blurry photo of the {}.",
    "a black and white photo of the {}.",
    "a low contrast photo of the {}.",
    "a high contrast photo of the {}.",
    "a bad photo of the {}.",
    "a good photo of the {}.",
    "a photo of the small {}.",
    "a photo of the big {}.",
]

# C3Box's exps/mind.json
MIND = {
    "dataset": "aircraft",
    "batch_size": 64,
    "shuffle": True,
    "init_cls": 10,
    "increment": 10,
    "device": ["0"],
    "seed": [1993],
    "lora_rank": 8,
    "lora_mode": "vision+only_kv+text",
    "lr": 0.001,
    "reset": False,
    "only_reset_B": False,
    "freeze_A": False,
    "all_test": False,
    "visual_clsf": True,
    "visual_clsf_lr": 0.0005,
    "visual_clsf_batch_size": 64,
    "visual_clsf_epochs": 3,
    "real_replay": False,
    "balance_ft": False,
    "balance_epochs": 3,
    "epochs": 10,
    "task_num": 10,
    "prefix": "-",
    "model_name": "mind",
    "backbone_type": "clip",
    "model_names": "ViT-B/16",
    "memory_size": 2000,
    "memory_per_class": 20,
    "fixed_memory": True,
    "total_class_num": 100,
}


def run_import(tmp_path, capsys, settings, *extra, name="exp.json"):
    """(exit status, stdout, stderr) of `seca import c3box` on ``settings`` written as ``name``."""
    from seca.cli import main

    path = tmp_path / name
    path.write_text(json.dumps(settings, indent=4))
    code = main(["import", "c3box", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def imported(tmp_path, capsys, settings, name="exp.json"):
    """The YAML text and its data, of a config that maps."""
    code, out, err = run_import(tmp_path, capsys, settings, name=name)
    assert code == 0, err
    assert err == ""
    return out, yaml.safe_load(out)


def every_key_accounted_for(settings, text):
    """No key is dropped silently: each is named by the comment of the line it maps to, or listed as left out."""
    for key in settings:
        assert f"# {key}" in text or f"\n#   {key}: " in text, key


def test_rapf_maps_key_by_key(tmp_path, capsys):
    text, cfg = imported(tmp_path, capsys, RAPF, "rapf.json")
    assert set(cfg) == {"benchmark", "backbone", "data", "scenario", "train", "method"}
    assert cfg["benchmark"] == "aircraft-b50-inc10-lamda"
    # backbone_type: clip is open_clip's ViT-B-16 on laion400m_e32 (utils/inc_net.py get_convnet)
    assert cfg["backbone"] == {"model": "ViT-B-16", "pretrained": "laion400m_e32"}
    # no data.root: the user's folder, said in the header
    assert cfg["data"] == {"dataset": "aircraft", "names": "c3box"}
    assert "--set data.root=DIR" in text.splitlines()[1]
    assert cfg["scenario"] == {"order": "lamda", "order_seed": 1993, "first_task": 50, "increment": 10}
    train = cfg["train"]
    assert train["epochs"] == 10
    assert train["batch_size"] == 128
    assert train["lr"] == {"rapf": 0.001}
    # models/rapf.py's hard-coded optimiser and schedule
    assert train["optimizer"] == "adam"
    assert train["weight_decay"] == 0.0
    assert train["schedule"] == "multistep"
    assert train["milestones"] == [4, 10]
    assert train["gamma"] == 0.1
    assert train["amp"] == "off"
    method = cfg["method"]
    assert method["name"] == "rapf"
    rapf = method["rapf"]
    assert rapf["threshold"] == 0.55
    assert rapf["mix_bias"] == 0.6
    assert rapf["replay_samples_per_class"] == 20  # int(10 * beta)
    assert rapf["hinge_samples_per_pair"] == 40  # int(20 * beta)
    assert rapf["replay_classes_per_batch"] == 2
    assert rapf["shrinkage"] is False  # C3Box's default; seca's rapf defaults to true
    assert rapf["template"] == "a good photo of a {}."
    assert rapf["hinge_margin"] == 0.1
    assert rapf["adapter_init"] == "default"
    # the keys that change nothing, listed with why
    for key in ("prefix", "device", "total_class_num", "memory_size", "memory_per_class", "fixed_memory"):
        assert any(line.startswith(f"#   {key}: ") for line in text.splitlines()), key
    every_key_accounted_for(RAPF, text)


def test_c3box_defaults_fill_what_a_rapf_config_leaves_out(tmp_path, capsys):
    settings = {k: v for k, v in RAPF.items() if k not in ("epochs", "beta", "batch_size", "threshold")}
    _, cfg = imported(tmp_path, capsys, {**settings, "beta": 1.5, "shrinkage": True})
    # models/rapf.py's get_attribute defaults: epochs 15, batch 128, threshold 0.55
    assert cfg["train"]["epochs"] == 15
    assert cfg["train"]["batch_size"] == 128
    assert cfg["method"]["rapf"]["threshold"] == 0.55
    assert cfg["method"]["rapf"]["replay_samples_per_class"] == 15
    assert cfg["method"]["rapf"]["hinge_samples_per_pair"] == 30
    assert cfg["method"]["rapf"]["shrinkage"] is True


def test_a_memory_that_rapf_never_builds_is_listed_not_refused(tmp_path, capsys):
    # models/rapf.py never calls build_rehearsal_memory: memory_size changes none of its results
    text, cfg = imported(tmp_path, capsys, {**RAPF, "memory_size": 2000, "weight_decay": 0.05})
    assert "#   memory_size: 2000: models/rapf.py keeps no exemplars" in text
    assert "#   weight_decay: 0.05: read by models/rapf.py, whose Adam has weight_decay=0.0" in text
    assert cfg["train"]["weight_decay"] == 0.0


def test_simplecil_maps(tmp_path, capsys):
    text, cfg = imported(tmp_path, capsys, {**SIMPLECIL, "batch_size": 48, "init_lr": 0.01})
    assert cfg["benchmark"] == "cifar100-b0-inc10-lamda"
    assert cfg["data"] == {"dataset": "cifar100", "names": "c3box"}
    assert cfg["scenario"] == {"order": "lamda", "order_seed": 1993, "first_task": 10, "increment": 10}
    assert cfg["method"] == {"name": "simplecil"}
    assert cfg["train"] == {"amp": "off"}
    assert "#   batch_size: 48: read by models/simplecil.py, which trains nothing" in text
    assert "resizes every image to 224x224" not in text  # CIFAR's images are square
    every_key_accounted_for(SIMPLECIL, text)


@pytest.mark.parametrize(
    "dataset, seca, template",
    [
        ("food101", "food101", "a photo of {}, a type of food."),
        ("cub200", "cub200", "a photo of a {}, a type of bird."),
    ],
)
def test_zs_clip_maps_where_c3box_has_one_template(tmp_path, capsys, dataset, seca, template):
    text, cfg = imported(tmp_path, capsys, {**ZS_CLIP, "dataset": dataset})
    assert cfg["method"] == {"name": "zero-shot", "template": template}
    assert cfg["data"]["dataset"] == seca
    assert cfg["scenario"]["first_task"] == 50
    assert "resizes every image to 224x224" in text
    every_key_accounted_for(ZS_CLIP, text)


@pytest.mark.parametrize(
    "c3box, seca",
    [
        ("cifar224", "cifar100"),
        ("imagenetr", "imagenet-r"),
        ("imageneta", "imagenet-a"),
        ("cub200", "cub200"),
        ("cars", "cars196"),
        ("aircraft", "aircraft"),
        ("food101", "food101"),
        ("sun", "sun397"),
        ("objectnet", "objectnet"),
        ("ucf101", "ucf101"),
        ("tv100", "tv100"),
    ],
)
def test_data_set_names(tmp_path, capsys, c3box, seca):
    _, cfg = imported(tmp_path, capsys, {**RAPF, "dataset": c3box, "init_cls": 20, "increment": 20})
    assert cfg["data"] == {"dataset": seca, "names": "c3box"}
    assert cfg["benchmark"] == f"{seca}-b0-inc20-lamda"


def test_the_class_order_is_c3box_shuffle(tmp_path, capsys):
    from seca.data.protocols import class_order
    from seca.data.sets import DATASETS

    _, cfg = imported(tmp_path, capsys, {**SIMPLECIL, "seed": [7]})
    s = cfg["scenario"]
    assert (s["order"], s["order_seed"]) == ("lamda", 7)
    assert cfg["benchmark"] == "cifar100-b0-inc10-lamda7"
    order = class_order(s["order"], 100, DATASETS["cifar100"](), order_seed=s["order_seed"])
    np.random.seed(7)  # C3Box's DataManager._setup_data with shuffle: true, seed 7
    assert order == np.random.permutation(100).tolist()


def test_no_shuffle_is_the_identity_order(tmp_path, capsys):
    text, cfg = imported(tmp_path, capsys, {**SIMPLECIL, "shuffle": False, "seed": [1993, 1994]})
    assert cfg["scenario"] == {"order": "identity", "first_task": 10, "increment": 10}
    assert cfg["benchmark"] == "cifar100-b0-inc10"
    assert "#   seed: [1993, 1994]: with shuffle: false it draws nothing" in text


def test_other_clip_weights(tmp_path, capsys):
    _, cfg = imported(tmp_path, capsys, {**RAPF, "backbone_type": "openai_clip"})
    assert cfg["backbone"] == {"model": "ViT-B-16", "pretrained": "openai"}
    _, cfg = imported(tmp_path, capsys, {**RAPF, "backbone_type": "clip_laion2b"})
    assert cfg["backbone"] == {"model": "ViT-B-16", "pretrained": "laion2b_s34b_b88k"}


@pytest.mark.parametrize(
    "settings",
    [
        RAPF,
        SIMPLECIL,
        {**ZS_CLIP, "dataset": "food101"},
        {**RAPF, "dataset": "imagenetr", "init_cls": 20, "increment": 20, "shuffle": False},
    ],
    ids=["rapf", "simplecil", "zs_clip-food101", "rapf-imagenetr-identity"],
)
def test_the_config_loads_as_seca_run_loads_it(tmp_path, capsys, settings):
    from seca.config import load_raw
    from seca.engine.configure import load_config

    text, cfg = imported(tmp_path, capsys, settings)
    path = tmp_path / "imported.yaml"
    path.write_text(text)
    assert load_raw(path) == cfg
    config = load_config(path, [f"data.root={tmp_path}"])
    assert config.data.dataset == cfg["data"]["dataset"]
    assert config.data.names == "c3box"
    assert config.scenario.order == cfg["scenario"]["order"]
    assert config.scenario.first_task == settings["init_cls"]
    assert config.scenario.increment == settings["increment"]
    assert config.backbone.pretrained == "laion400m_e32"
    assert config.train.amp == "off"
    assert config.method.name == cfg["method"]["name"]
    if config.method.name == "rapf":  # the imported values win over the learner's own recipe
        assert config.train.batch_size == settings["batch_size"]
        assert config.train.epochs == settings["epochs"]
        assert config.train.lr["rapf"] == settings["init_lr"]
        assert config.train.weight_decay == 0.0
        assert config.method.rapf.shrinkage is False
        assert config.method.rapf.threshold == settings["threshold"]


def loaded(tmp_path, capsys, settings):
    """The YAML text of an import, its data, and the config `seca run` makes of it (load_config, data.root set)."""
    from seca.config import load_raw
    from seca.engine.configure import load_config

    text, cfg = imported(tmp_path, capsys, settings)
    path = tmp_path / "imported.yaml"
    path.write_text(text)
    assert load_raw(path) == cfg
    return text, cfg, load_config(path, [f"data.root={tmp_path}"])


def test_proof_maps_key_by_key(tmp_path, capsys):
    text, cfg, config = loaded(tmp_path, capsys, PROOF)
    every_key_accounted_for(PROOF, text)
    assert cfg["benchmark"] == "aircraft-b0-inc10-lamda"
    assert config.method.name == "proof"
    assert (config.backbone.model, config.backbone.pretrained) == ("ViT-B-16", "laion400m_e32")
    assert (config.data.dataset, config.data.names) == ("aircraft", "c3box")
    assert (config.scenario.order, config.scenario.order_seed) == ("lamda", 1993)
    assert (config.scenario.first_task, config.scenario.increment) == (10, 10)
    t = config.train
    assert (t.epochs, t.batch_size, t.eval_batch_size) == (10, 64, 64)  # tuned_epoch; C3Box's test loader's batch
    assert (t.optimizer, t.momentum, t.weight_decay) == ("sgd", 0.9, 0.05)
    assert (t.schedule, t.min_lr_ratio) == ("cosine_epoch", 0.0)
    assert t.lr["proof"] == 0.001
    assert (t.memory_per_class, t.memory_size, t.memory_selection) == (20, 0, "herding")  # fixed_memory: true
    assert t.amp == "off"
    p = config.method.proof
    assert list(p.templates) == AIRCRAFT_TEMPLATES
    assert p.prompt_length == 3  # context_prompt_length_per_task: C3Box's default
    assert (p.dropout, p.fusion_mean, p.normalize_test_image) == (0.1, "batch", False)
    assert (p.train_old_text_projections, p.frozen_decay) == (True, False)
    assert "#   memory_size: 2000: with fixed_memory: true C3Box keeps memory_per_class" in text
    assert "#   frozen_layers: " in text


def test_proof_with_adam_a_shared_memory_and_a_floor(tmp_path, capsys):
    settings = {
        **PROOF,
        "dataset": "cifar224",
        "optimizer": "adam",
        "min_lr": 0.0001,
        "fixed_memory": False,
        "context_prompt_length_per_task": 5,
    }
    text, cfg, config = loaded(tmp_path, capsys, settings)
    assert config.train.optimizer == "adamw"  # models/proof.py: torch.optim.AdamW
    assert config.train.min_lr_ratio == pytest.approx(0.1)  # min_lr / init_lr
    assert (config.train.memory_size, config.train.memory_per_class) == (2000, 0)  # 2000 // classes seen
    assert "#   memory_per_class: 20: with fixed_memory: false C3Box shares memory_size" in text
    assert list(config.method.proof.templates) == CIFAR_TEMPLATES
    assert config.method.proof.prompt_length == 5


def test_engine_maps_key_by_key(tmp_path, capsys):
    text, cfg, config = loaded(tmp_path, capsys, ENGINE)
    every_key_accounted_for(ENGINE, text)
    assert config.method.name == "engine"
    t = config.train
    assert (t.epochs, t.batch_size, t.optimizer, t.momentum, t.weight_decay) == (10, 64, "sgd", 0.9, 0.05)
    assert (t.schedule, t.min_lr_ratio, t.lr["engine"], t.memory_size, t.amp) == ("cosine_epoch", 0.0, 0.05, 0, "off")
    e = config.method.engine
    assert list(e.templates) == AIRCRAFT_TEMPLATES
    assert (e.text_des, e.image_aug, e.rerank, e.stat) == (2.0, 2.0, 0.8, 0.99)
    assert (e.sample_num, e.sample_noise, e.rerank_top) == (0, 0.3, 5)
    assert (e.image_noise, e.rerank_draws, e.loss_scale) == (0.25, 3, None)  # hard-coded in C3Box
    assert e.descriptions is None
    assert "# method.engine.descriptions is null" in text and "ICCV25-ENGINE" in text
    assert "#   projection_type: " in text and "#   frozen_layers: " in text


def test_bofa_maps_key_by_key(tmp_path, capsys):
    text, cfg, config = loaded(tmp_path, capsys, BOFA)
    every_key_accounted_for(BOFA, text)
    assert cfg["benchmark"] == "cifar100-b50-inc10-lamda"
    assert config.method.name == "bofa"
    t = config.train
    assert (t.epochs, t.batch_size, t.optimizer, t.momentum, t.weight_decay) == (15, 128, "sgd", 0.9, 0.05)
    assert (t.schedule, t.min_lr_ratio, t.lr["bofa"], t.memory_size, t.amp) == ("cosine_epoch", 0.0, 0.05, 0, "off")
    b = config.method.bofa
    assert (b.rank, b.stat) == (64, 0.1)  # Kt, stat
    assert list(b.templates) == CIFAR_TEMPLATES
    # read by no code path of the official recipe: listed
    for key in ("text_des", "image_aug", "use_up_cov", "projection_type", "frozen_layers"):
        assert f"\n#   {key}: " in text, key
    # the stage-2 epochs (C3Box's default 2) have no seca key: said at the top
    assert "# epoch: 2: C3Box trains BOFA's stage 2" in text


def test_bofa_with_adam_takes_c3box_s_hard_coded_schedule(tmp_path, capsys):
    text, cfg, config = loaded(tmp_path, capsys, {**BOFA, "optimizer": "adam", "epoch": 0})
    t = config.train
    assert (t.optimizer, t.weight_decay, t.schedule, tuple(t.milestones), t.gamma) == (
        "adam",
        0.001,
        "multistep",
        (4, 10),
        0.1,
    )
    assert "#   weight_decay: 0.05: with optimizer: adam models/bofa.py does not use it" in text


def test_clg_cbm_maps_key_by_key(tmp_path, capsys):
    text, cfg, config = loaded(tmp_path, capsys, CLG_CBM)
    every_key_accounted_for(CLG_CBM, text)
    assert config.method.name == "clg-cbm"
    t = config.train
    assert (t.epochs, t.batch_size, t.optimizer, t.weight_decay) == (30, 48, "adam", 0.0)  # the concept search
    assert (t.schedule, tuple(t.milestones), t.lr["clg_cbm"], t.memory_size, t.amp) == (
        "multistep",
        (),
        0.01,
        0,
        "off",
    )
    c = config.method.clg_cbm
    assert (c.bottleneck_epochs, c.bottleneck_epochs_later, c.bottleneck_lr) == (60, 60, 0.001)
    assert (tuple(c.bottleneck_milestones), c.bottleneck_gamma, c.bottleneck_batch_size) == ((30, 40, 50), 0.1, 48)
    assert (c.pool, c.gaussian_samples, c.similarity, c.division_power) == (10, 1, 1.0, 5.0)
    assert (c.search_model, c.regularizer) == ("linear-bn-linear", "mahalanobis")
    assert (c.sparse_lambda, c.sparse_alpha, c.covariance_eps) == (0.001, 0.99, 1e-4)
    assert c.concept_prefix == "A bad photo of an object with "  # utils/data_manager.py get_prefix
    assert c.template == "a photo of a {}."  # utils/templates.json["cifar224"][0]
    assert (c.concepts, c.concept_names) == (None, None)
    assert "utils/clg_cbm/concepts/cifar100/concepts.json" in text
    assert '#   regularizer: "mahalanobis": read by no code' in text


def test_clg_cbm_on_imagenet_r(tmp_path, capsys):
    settings = {
        **CLG_CBM,
        "dataset": "imagenetr",
        "init_cls": 20,
        "increment": 20,
        "linear_model": ["linear", "linear"],
    }
    _, _, config = loaded(tmp_path, capsys, settings)
    c = config.method.clg_cbm
    assert (c.concept_prefix, c.template, c.search_model) == (
        "A photo of the object with ",
        "itap of a {}.",
        "linear-linear",
    )


def test_out_writes_the_printed_text_and_keeps_an_existing_file(tmp_path, capsys):
    _, printed, _ = run_import(tmp_path, capsys, RAPF, name="rapf.json")
    out = tmp_path / "sub" / "rapf.yaml"
    code, said, err = run_import(tmp_path, capsys, RAPF, "--out", str(out), name="rapf.json")
    assert code == 0, err
    assert out.read_text() == printed
    assert "seca run" in said
    out.write_text("mine\n")
    code, said, err = run_import(tmp_path, capsys, RAPF, "--out", str(out), name="rapf.json")
    assert code == 2
    assert "already exists; pass --overwrite" in err
    assert out.read_text() == "mine\n"
    code, _, err = run_import(tmp_path, capsys, RAPF, "--out", str(out), "--overwrite", name="rapf.json")
    assert code == 0, err
    assert out.read_text() == printed
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


REFUSED = {
    "no-learner": ({**RAPF, "model_name": "l2p"}, "model_name 'l2p': seca has no 'l2p' learner yet"),
    "proof-projection": (
        {**PROOF, "projection_type": "mlp"},
        "projection_type 'mlp': C3Box's Proof_Net builds 'pure_mlp' projections only",
    ),
    "proof-optimizer": ({**PROOF, "optimizer": "rmsprop"}, "optimizer 'rmsprop': models/proof.py makes an optimiser"),
    "proof-no-templates": ({**PROOF, "dataset": "imageneta"}, "utils/templates.json has no templates of it"),
    "proof-min-lr": ({**PROOF, "min_lr": 0.01}, "min_lr: seca cannot run it: config key 'train.min_lr_ratio'"),
    "engine-memory": ({**ENGINE, "memory_size": 2000}, "memory_size: 2000: seca's engine trains without stored images"),
    "engine-needs": ({k: v for k, v in ENGINE.items() if k != "stat"}, "has no 'stat' (models/engine.py reads it"),
    "bofa-memory": ({**BOFA, "memory_size": 2000}, "memory_size: 2000: seca's bofa trains without stored images"),
    "bofa-center": ({**BOFA, "center_type": "img"}, "center_type: img: seca's bofa runs C3Box's default \"mix\""),
    "clg_cbm-memory": ({**CLG_CBM, "memory_size": 20}, "memory_size: 20: seca's clg-cbm trains without stored images"),
    "clg_cbm-gate": ({**CLG_CBM, "linear_model": ["bn", "linear"]}, 'linear_model: ["bn", "linear"]: seca\'s'),
    "mind": (MIND, "model_name 'mind': C3Box's mind (MG-CLIP, Mind the Gap) stops its first task"),
    "zs_clip": (ZS_CLIP, "model_name: zs_clip on cifar224 scores the mean of its 18 templates"),
    "zs_clip-no-templates": ({**ZS_CLIP, "dataset": "imageneta"}, "templates it does not have"),
    "not-c3box": ({**RAPF, "model_name": "icarl"}, "model_name 'icarl': 'icarl' is not a C3Box method"),
    "no-method": ({k: v for k, v in RAPF.items() if k != "model_name"}, "has no model_name"),
    "unknown-key": ({**RAPF, "tuned_epoch": 5}, "key 'tuned_epoch' is not one that C3Box's rapf reads"),
    "another-method's-key": ({**RAPF, "milestones": [2, 4]}, "key 'milestones' is not one that C3Box's rapf reads"),
    "seeds": ({**RAPF, "seed": [1993, 1994]}, "seed: [1993, 1994]: C3Box runs once per seed"),
    "seed-type": ({**RAPF, "seed": "1993"}, 'seed: "1993" should be a list of whole numbers'),
    "data-set": ({**RAPF, "dataset": "omnibenchmark"}, "dataset 'omnibenchmark': seca has no counterpart"),
    "backbone": ({**RAPF, "backbone_type": "vit_base_patch16_224"}, "backbone_type 'vit_base_patch16_224'"),
    "last-task": ({**RAPF, "init_cls": 30, "increment": 20}, "with a last task of 10"),
    "missing": ({k: v for k, v in RAPF.items() if k != "init_cls"}, "has no 'init_cls'"),
    "type": ({**RAPF, "epochs": "10"}, 'epochs: "10" should be a whole number'),
    "flag": ({**RAPF, "shuffle": "yes"}, 'shuffle: "yes" should be true or false'),
    "beta": ({**RAPF, "beta": 0.05}, "beta: 0.05 draws int(10 x 0.05) = 0 pseudo-features"),
    "out-of-range": ({**RAPF, "threshold": 0}, "threshold: seca cannot run it: config key 'method.rapf.threshold'"),
    "lr": ({**RAPF, "init_lr": 50}, "init_lr: seca cannot run it: config key 'train.lr.rapf'"),
}


@pytest.mark.parametrize("settings, message", REFUSED.values(), ids=REFUSED.keys())
def test_what_cannot_be_mapped_is_refused_in_one_line(tmp_path, capsys, settings, message):
    out = tmp_path / "never.yaml"
    code, said, err = run_import(tmp_path, capsys, settings, "--out", str(out), name="c3box.json")
    assert code == 2
    assert said == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: c3box.json: ")
    assert message in err
    assert not out.exists()


def test_a_file_that_is_not_a_c3box_config(tmp_path, capsys):
    from seca.cli import main

    for text, message in (("{not json", "is not JSON"), ("[1, 2]", "holds JSON list")):
        path = tmp_path / "bad.json"
        path.write_text(text)
        assert main(["import", "c3box", str(path)]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and message in err
    assert main(["import", "c3box", str(tmp_path / "absent.json")]) == 2
    assert "not found" in capsys.readouterr().err
