"""The experiment's own sections: which CLIP, where the images come from, how classes arrive, how each task trains,
and which learner; every key with its default, the values it allows and one line of help.

Two sections are extended by plug-ins (docs/extending.md): ``method`` holds, besides ``name``, every registered
learner's keys, and ``data`` every registered data set's; the choices of ``method.name``, ``data.dataset`` and
``scenario.order`` are the registries' names. Both are resolved above the plug-ins, in ``seca.engine.configure``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .declare import ABOVE_ZERO, FRACTION, LEARNING_RATE, Rule, at_least, between, one_of, section, setting


@dataclass(frozen=True)
class BackboneConfig:
    """Which CLIP to load (spec §1)."""

    model: str = setting(
        "ViT-B-16",
        "an open_clip model name (`open_clip.list_models()`), or one of this project's "
        "small architectures: `seca-test` (tests), `seca-shapes` (the offline world)",
    )
    pretrained: str | None = setting(
        "openai",
        "an open_clip pretrained tag of that model, the path of a local weights file (`.bin`, `.pt`, "
        "`.safetensors`), `shapes` (with `seca-shapes` only: the offline world's pretrained weights, built into the "
        "cache on first use, [offline.md](offline.md)), or `null` for random weights (drawn from a fixed seed, so "
        "always the same)",
    )
    cache_dir: str | None = setting(None, "where open_clip keeps downloaded weights (default: the Hugging Face cache)")


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from ([data.md](data.md))."""

    dataset: str = setting(
        "imagenet-r", "the data set: a registered name ([data.md](data.md); `seca presets` lists them)"
    )
    root: str | None = setting(None, "the data set's folder (`cifar100` defaults to `data/cifar100`)")
    download: bool = setting(
        False, "download it into `root` if absent, where torchvision can (CIFAR-100, Food-101, FGVC-Aircraft)"
    )
    num_workers: int = setting(4, "data loader worker processes", at_least(0))
    cache_images: bool = setting(
        False,
        "keep each task's preprocessed images in memory after their first pass (training uses no "
        "augmentation, so they never change, and results are identical either way); about 0.6 MB per 224x224 image",
    )
    max_pixels: int = setting(
        89_478_485,
        "an image file of more pixels is refused from its header, before it is decoded (no "
        "decompression bomb reaches the decoder); PIL's own bound",
        at_least(1),
    )
    names: str = setting(
        "official",
        "the class-name set put in the prompts: `official` (the data set's own names, cleaned by its documented "
        "rule; the continual-clip code base's where it ships them) or `c3box` (the names C3Box's labels.json uses, "
        "where they differ); `names_file` overrides both ([data.md](data.md#class-names))",
        one_of("official", "c3box"),
    )
    names_file: str | None = setting(
        None,
        "a JSON file of class names in the data set's class order: a list, or a mapping whose `data.dataset`-named "
        "(or C3Box-named) key holds the list (C3Box's utils/labels.json works as is)",
    )
    skip_bad_images: bool = setting(
        False,
        "every image file is read once before training; by default a file that cannot be used (unreadable, "
        "truncated, too large) stops the run with the list; `true` leaves such files out and names each (`seca run "
        "--skip-bad-images`)",
    )


@dataclass(frozen=True)
class ScenarioConfig:
    """How classes arrive: a class order and the task sizes."""

    order: str | tuple[int, ...] = setting(
        "reference",
        "a protocol: `reference` (the data set's reference class order for `trial`: the continual-clip code's for "
        "CIFAR-100 and ImageNet-R, which SECA, RAPF and MoE-Adapters use; a fixed order for `shapes`, the sorted "
        "folder names for `imagefolder`), `lamda` (PyCIL's, PILOT's and C3Box's shuffle: "
        "`numpy.random.seed(1993); numpy.random.permutation(K)`), `seeded` (a permutation drawn from `order_seed`), "
        "`identity`; or an explicit list of class ids ([data.md](data.md#class-orders))",
    )
    trial: int = setting(0, "which reference order (0, 1, 2: the paper's three trials)", at_least(0))
    order_seed: int | None = setting(
        None,
        "seed of a `seeded` or `lamda` order; `null`: the run's `seed` for `seeded`, 1993 for `lamda`",
        at_least(0),
    )
    first_task: int = setting(20, "classes in the first task", at_least(1))
    increment: int = setting(
        20, "classes in every later task; the sizes must add up to the number of classes", at_least(1)
    )
    tasks: tuple[tuple[str | int, ...], ...] | None = setting(
        None,
        "the tasks as lists of class names, e.g. `[[cat, dog], [fox, owl, emu]]`: the order and the task "
        "sizes (any), instead of `order`, `first_task` and `increment`; every class once "
        "([data.md](data.md#your-own-folders))",
    )


# Words of the vocabulary that several places read (configs, the CLI, the API), spelled once.
EVAL_ORDERS = ("task", "dataset")  # train.eval_order
HYBRID_MAX = ("image", "batch")  # method.classifier.hybrid_max


def _increasing(v: tuple) -> bool:
    return all(m >= 1 for m in v) and all(a < b for a, b in zip(v, v[1:]))


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation of each task, evaluation, devices and outputs. A learner brings its own defaults for the keys
    of its training recipe (:data:`RECIPE_KEYS`); a preset's values win over them."""

    epochs: int = setting(10, "epochs per task", at_least(1))
    batch_size: int = setting(
        64,
        "training batch size; under torchrun the global batch, split equally over the "
        "processes ([distributed.md](distributed.md))",
        at_least(1),
    )
    eval_batch_size: int = setting(
        128, "batch size for evaluation and feature precomputation (per process under torchrun)", at_least(1)
    )
    eval_order: str = setting(
        "task",
        "how test images form evaluation batches: `task`, each seen task's images through a loader of their "
        "own; `dataset`, every seen class's test images through one loader in the data set's own order, so batches "
        "mix tasks, as the reference implementation evaluates. The same predictions either way unless "
        "`method.classifier.hybrid_max: batch` ([method.md](method.md#checked-against-the-reference))",
        one_of(*EVAL_ORDERS),
    )
    test_features_gb: float = setting(
        4.0,
        "memory for the frozen inputs of test images (a learner's `frozen_kind`: the frozen CLIP feature, or the "
        "stem before the first adapter) kept from their first evaluation to the last, so that no test image is "
        "encoded twice in a run; a task's test set that would pass the bound is encoded at every evaluation instead; "
        "`0` keeps none. Identical results either way ([performance.md](performance.md#frozen-work-once))",
        Rule(lambda v: v >= 0, "0 or more (0: keep none)"),
    )
    feature_store: bool = setting(
        True,
        "keep the frozen CLIP features of images on disk, in `$SECA_CACHE/features/`, and read them back in every "
        "later run over the same images, backbone, transform and precision (seeds, methods, `seca ablate`, "
        "processes under torchrun); `seca cache info` and `seca cache clear` show and empty it. Identical results "
        "either way ([performance.md](performance.md#frozen-work-once))",
    )
    feature_store_gb: float = setting(
        4.0,
        "the feature store's size bound; past it, the features used least recently are deleted",
        ABOVE_ZERO,
    )
    lr: dict[str, float] = setting(
        {},
        "learning rate of each of the learner's parameter groups, by the group's name (`lr.adapter`, "
        "`lr.prompt`, ...); a group not given takes the learner's default. The groups and their defaults are "
        "listed [below](#learning-rates)",
        LEARNING_RATE,
    )
    optimizer: str = setting(
        "adam",
        "the optimiser, made afresh every task: `adam` (weight decay added to the "
        "gradient, as SECA's reference), `adamw` (decoupled weight decay, as MoE-Adapters) or `sgd` (with "
        "`momentum`, weight decay added to the gradient, as C3Box's PROOF, ENGINE and BOFA)",
        one_of("adam", "adamw", "sgd"),
    )
    momentum: float = setting(
        0.9, "`optimizer: sgd`: the momentum (C3Box: 0.9)", Rule(lambda v: 0 <= v < 1, "at least 0 and below 1")
    )
    weight_decay: float = setting(5e-4, "the optimiser's weight decay (at most 10, as a learning rate)", between(0, 10))
    schedule: str = setting(
        "multistep",
        "the learning rates within a task: `multistep` (multiplied by `gamma` after each of "
        "`milestones`, per epoch), `cosine` (per step: a linear warm-up over `warmup_steps` steps, then a "
        "half cosine to zero at the task's last step, as open_clip's `cosine_lr`) or `cosine_epoch` (per epoch: "
        "torch's CosineAnnealingLR with T_max = `epochs` and eta_min = `min_lr_ratio` × lr, as Mind the Gap)",
        one_of("multistep", "cosine", "cosine_epoch"),
    )
    milestones: tuple[int, ...] = setting(
        (2, 5),
        "epochs after which the learning rates are multiplied by `gamma` (MultiStepLR, restarted every task)",
        Rule(_increasing, "a list of increasing epochs, each at least 1"),
    )
    gamma: float = setting(
        0.1,
        "the MultiStepLR factor (a decay: above 0 and at most 1)",
        Rule(lambda v: 0 < v <= 1, "above 0 and at most 1"),
    )
    warmup_steps: int = setting(
        0,
        "`schedule: cosine`: steps of linear warm-up at the start of every task "
        "(the rate of step s < warmup is lr (s + 1) / warmup)",
        at_least(0),
    )
    min_lr_ratio: float = setting(
        0.0,
        "`schedule: cosine_epoch`: the rate the half cosine ends at, as a fraction of "
        "the group's rate (Mind the Gap: 0.01)",
        FRACTION,
    )
    memory_size: int = setting(
        0,
        "exemplar memory: training images kept in total across the classes seen, shared equally "
        "(`memory_size` // classes each, reduced as classes arrive; PyCIL's and C3Box's `memory_size`). 0: none, the "
        "no-stored-images protocol. Only a learner that trains with exemplars accepts it ([memory.md](memory.md))",
        at_least(0),
    )
    memory_per_class: int = setting(
        0,
        "exemplar memory: a fixed number of training images kept per class (C3Box's `memory_per_class` with "
        "`fixed_memory`); 0: `memory_size` decides. Set one of the two ([memory.md](memory.md))",
        at_least(0),
    )
    memory_selection: str = setting(
        "herding",
        "how exemplars are chosen among a class's training images: `herding` on the frozen CLIP features "
        "(iCaRL's, as PyCIL's `_construct_exemplar`) or `random` (drawn from the run's seed)",
        one_of("herding", "random"),
    )
    amp: str = setting(
        "auto",
        "mixed precision on CUDA: `auto` (bf16 where supported, else fp16), `bf16`, `fp16`, "
        "`off`; never used on CPU or MPS",
        one_of("auto", "bf16", "fp16", "off"),
    )
    device: str = setting("auto", "`auto` (CUDA, then MPS, then CPU), `cpu`, `cuda`, `cuda:N`, `mps`")
    log_every: int = setting(10, "write a `train_step` record to log.jsonl every this many steps", at_least(1))
    progress: bool = setting(True, "show progress bars (they are hidden anyway when the output is not a terminal)")
    checkpoints: str = setting(
        "last",
        "task checkpoints for `--resume`: keep the latest two (`last`: a resume takes the newer that reads whole, "
        "[results.md](results.md#checkpoints)), every one (`all`), or write none (`none`); a finished run keeps none "
        "but with `all`",
        one_of("last", "all", "none"),
    )
    tensorboard: bool = setting(False, "also log to `<out>/tensorboard` (needs `pip install 'seca[tensorboard]'`)")
    threads: int | None = setting(
        None,
        "CPU threads for torch's operators; `null` leaves torch's choice (one per core, or "
        "`OMP_NUM_THREADS`). The run's first line and the `start` record of log.jsonl say how many run "
        "([performance.md](performance.md#threads))",
        at_least(1),
    )
    dist_timeout: float = setting(
        1800.0,
        "runs under torchrun: seconds a collective waits for the other processes before the run fails, so "
        "that a process that died or hangs stops the run instead of hanging it ([distributed.md](distributed.md))",
        ABOVE_ZERO,
    )


# The keys of a learner's training recipe: the learner declares its own defaults for them (``Learner.training``),
# under a preset's values; a preset's values of these keys are for the preset's own method (``seca new --method``).
RECIPE_KEYS = (
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "weight_decay",
    "schedule",
    "milestones",
    "gamma",
    "warmup_steps",
    "min_lr_ratio",
    "momentum",
    "memory_size",
    "memory_per_class",
    "amp",
)

# Keys that may differ between an interrupted run and its resumption: they do not change results.
RESULT_FREE_KEYS = {
    "train.progress",
    "train.log_every",
    "train.tensorboard",
    "train.checkpoints",
    "data.num_workers",
    "train.threads",
    "method.stem_cache_gb",
    "train.test_features_gb",
    "train.feature_store",
    "train.feature_store_gb",
    "train.dist_timeout",
}


def describe_training(train: TrainConfig, groups: Sequence[str]) -> str:
    """The training of a task in one line, with the rates of ``groups`` (those the learner trains): ``15 epochs of
    batch 64, adam (lr rapf 0.001, weight decay 0), ×0.1 after epochs 4, 10``."""
    rates = ", ".join(f"{group} {train.lr[group]:g}" for group in groups if group in train.lr)
    line = (
        f"{train.epochs} epoch{'s' if train.epochs != 1 else ''} of batch {train.batch_size}, {train.optimizer} "
        f"(lr {rates or 'none'}, weight decay {train.weight_decay:g})"
    )
    if train.schedule == "cosine":
        warmup = f" after {train.warmup_steps} warm-up steps" if train.warmup_steps else ""
        return f"{line}, a cosine to 0 over the task's steps{warmup}"
    if train.schedule == "cosine_epoch":
        return f"{line}, a cosine per epoch to {train.min_lr_ratio:g} × lr"
    steps = [m for m in train.milestones if m < train.epochs]
    return (
        f"{line}, ×{train.gamma:g} after epoch{'s' if len(steps) > 1 else ''} {', '.join(map(str, steps))}"
        if steps
        else f"{line}, constant"
    )


@dataclass(frozen=True)
class MethodConfig:
    """The learner and its settings: `name`, then the keys the learners declare ([method.md](method.md))."""

    name: str = setting("seca", "the learner: a registered name ([method.md](method.md); `seca presets` lists them)")


@dataclass(frozen=True)
class ExperimentConfig:
    benchmark: str = setting("custom", "the name recorded in results.json and used in the default output folder")
    seed: int = setting(
        0,
        "seeds Python, NumPy and torch, the training order, prompt initialisation and (unless "
        "`scenario.order_seed` is set) a seeded class order",
        at_least(0),
    )
    seeds: tuple[int, ...] | None = setting(
        None,
        "a list (`[0, 1, 2]`): run the experiment once per seed into `OUT/seed<k>/` and write the aggregate "
        "(mean, std, 95% interval) to `OUT/results.json`; `seed` is then ignored. The same as `seca run --seeds` "
        "([statistics.md](statistics.md))",
    )
    plugins: tuple[str, ...] = setting(
        (),
        "modules that register learners, data sets or protocols from outside the package, imported before the "
        "config is read: importable names (`my_lab.methods`) or `.py` files ([extending.md](extending.md))",
    )
    backbone: BackboneConfig = section(BackboneConfig)
    data: DataConfig = section(DataConfig)
    scenario: ScenarioConfig = section(ScenarioConfig)
    train: TrainConfig = section(TrainConfig)
    method: MethodConfig = section(MethodConfig)
