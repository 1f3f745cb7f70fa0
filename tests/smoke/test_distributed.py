"""Two processes (a gloo group on the CPU, spawned here) compute what one process computes (docs/distributed.md).

One spawned pair of processes does everything the issue lists, on the test CLIP, with SECA++ and a pool of one
snapshot (so that SG-AKT's utility is updated): the reductions over a task (frozen-CLIP class means, the
Gaussians' means and covariances, the adapted centroids, the refined prototypes, the utility, the evaluation
counts and confusion), each process's teacher cache against the single process's rows of its shard, and whole
tasks of one training step each, whose parameters must match one process training on the whole batch.
Then ``torchrun --nproc_per_node 2 -m seca run`` end to end: same seed, same results; resumed, same results.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seca import distributed
from seca.config import TrainConfig, dump_yaml
from seca.data.scenario import ClassIncrementalScenario
from seca.distributed import ShardBatches, shard_positions
from seca.engine.configure import load_config, method_config
from seca.engine.data import TaskImages, device_batches, loader
from seca.engine.evaluate import evaluate_tasks
from seca.engine.train import TaskTraining, learn_task, task_seed
from seca.methods import TaskData, build_learner
from seca.methods.h_peft import AdapterConfig
from seca.methods.seca import ReplayConfig
from seca.methods.seca_parts.sg_akt import AdapterPool
from seca.methods.seca_parts.teachers import SGAKTConfig

from ..conftest import FAST_RUN, free_port, in_two_processes

CLASSES = ["red star", "blue star", "red circle", "blue circle"]
PER_CLASS = [13, 12, 11, 14]  # odd sizes: the shards of a task differ by one image
TEST_PER_CLASS = 5
SEED = 3


def _images():
    """Training and test items of the four classes (labels = class ids), as a list a TaskImages can index."""
    g = torch.Generator().manual_seed(0)
    train = [(torch.randn(3, 32, 32, generator=g), c) for c, n in enumerate(PER_CLASS) for _ in range(n)]
    test = [(torch.randn(3, 32, 32, generator=g), c) for c in range(len(CLASSES)) for _ in range(TEST_PER_CLASS)]
    return train, test


def _task_images(items, task):
    positions = [i for i, (_, c) in enumerate(items) if task.start <= c < task.stop]
    return TaskImages(items, positions, [items[i][1] for i in positions])


def _mine(images: TaskImages, task) -> TaskImages:
    """This process's shard of a task's training images, as `seca run` deals them."""
    return images.shard(task_seed(SEED, task))


def _learner(dropout: float = 0.1):
    from seca.clip.backbone import load_backbone

    torch.manual_seed(0)
    backbone = load_backbone("seca-test", None)
    method = method_config(
        name="seca++",
        sg_akt=SGAKTConfig(pool_size=1),
        replay=ReplayConfig(samples_per_class=3),
        adapter=AdapterConfig(dropout=dropout),
    )
    torch.manual_seed(SEED)
    return build_learner(backbone, CLASSES, method, seed=SEED)


def compute() -> dict:
    """Everything compared, as this process sees it (one process: the whole data; two: its shards)."""
    torch.set_num_threads(1)
    train_items, test_items = _images()
    scenario = list(ClassIncrementalScenario(list(range(len(CLASSES))), 2, 2))
    w = distributed.world()
    out: dict = {}

    # A. Reductions alone: begin and end two tasks without training, the same model in every process.
    learner = _learner()
    for task in scenario:
        mine = _mine(_task_images(train_items, task), task)
        data = TaskData(task, len(mine), device_batches(lambda mine=mine: loader(mine, 7), learner.device))
        learner.begin_task(task, data)
        if task.index == 1:
            out["teacher_cache"] = learner._teacher_cache.clone()
        learner.end_task(task, data)
    for name in ("raw_prototypes", "adapted_means", "stored_prototypes"):
        out[name] = getattr(learner, name).clone()
    out["means"], out["cholesky"] = learner.gaussians.means.clone(), learner.gaussians.cholesky.clone()
    test_sets = []
    for task in scenario:
        test_sets.append(_task_images(test_items, task).shard())
    confusion = torch.zeros(4, 4, dtype=torch.long)
    out["correct"], out["total"] = evaluate_tasks(
        learner, test_sets, 3, learner.device, progress=False, confusion=confusion
    )
    out["confusion"] = confusion

    # SG-AKT's utility over a full pool of two: the relevance weights of the 25 images of a step, each process
    # passing those of its shard (13 and 12: a mean of the two means would differ from the mean).
    pool = AdapterPool(size=2, momentum=0.5)
    for source in range(2):
        pool.add(torch.nn.Linear(1, 1), source)
    weights = torch.rand(25, 2, generator=torch.Generator().manual_seed(1)).softmax(dim=1)
    pool.update_utility(weights[shard_positions(25, 0, w.rank, w.size)] if w.size > 1 else weights)
    out["utility"] = pool.utility.clone()

    # Every process's rows, in rank order (Mind the Gap's visual agent trains on them): 13 and 12 rows.
    mine = torch.as_tensor(shard_positions(25, 0, w.rank, w.size)) if w.size > 1 else torch.arange(25)
    out["gathered"] = distributed.gather_rows(mine.float()[:, None] / 4, mine)

    # A step of the first task, where the relevance network of SG-AKT takes no part.
    learner = _learner(dropout=0.0)
    task = scenario[0]
    initial = {k: v.clone() for k, v in learner.teacher.aggregator.state_dict().items()}
    train = TrainConfig(epochs=1, batch_size=26, milestones=(5,), progress=False, lr=learner.learning_rates())
    learn_task(learner, task, TaskTraining(_mine(_task_images(train_items, task), task), train, learner.device, SEED))
    out["without_gradient"] = sorted(k for k, p in learner.named_parameters() if p.requires_grad and p.grad is None)
    out["aggregator_kept"] = all(torch.equal(v, initial[k]) for k, v in learner.teacher.aggregator.state_dict().items())

    # B. One training step, in task 2: the global batch (26) holds the task's 25 images. Task 1 is begun and
    # ended without training, so every process starts the step from the same model. No adapter dropout: each
    # process draws the masks of its own images.
    learner = _learner(dropout=0.0)
    train = TrainConfig(epochs=1, batch_size=26, milestones=(5,), progress=False, lr=learner.learning_rates())
    for task in scenario:
        mine = _mine(_task_images(train_items, task), task)
        if task.index == 0:
            data = TaskData(task, len(mine), device_batches(lambda mine=mine: loader(mine, 7), learner.device))
            learner.begin_task(task, data)
            learner.end_task(task, data)
            continue
        learn_task(learner, task, TaskTraining(mine, train, learner.device, SEED))
    out["trained"] = {k: v.detach().clone() for k, v in learner.state_dict().items()}
    out["gradients"] = {k: p.grad.clone() for k, p in learner.named_parameters() if p.grad is not None}
    return out


def shard_sizes(n: int, size: int) -> list[int]:
    """The sizes of the ``size`` shards of ``n`` images: as equal as can be, the first ones larger."""
    return [n // size + (r < n % size) for r in range(size)]


@pytest.fixture(scope="module")
def two_and_one(tmp_path_factory):
    return in_two_processes(compute, tmp_path_factory.mktemp("ranks")), compute()


REDUCED = ["raw_prototypes", "adapted_means", "stored_prototypes", "means", "cholesky", "utility"]


@pytest.mark.parametrize("name", REDUCED)
def test_every_reduction_over_two_shards_equals_one_process(two_and_one, name):
    ranks, one = two_and_one
    assert one[name].numel() > 0
    for rank in ranks:
        torch.testing.assert_close(rank[name], one[name], rtol=1e-5, atol=1e-5)


def test_gathered_rows_are_every_process_rows_in_rank_order_on_every_process(two_and_one):
    ranks, one = two_and_one
    order = torch.as_tensor(np.concatenate([shard_positions(25, 0, rank, 2) for rank in range(2)]))
    assert sorted(order.tolist()) == list(range(25)) and not torch.equal(order, torch.arange(25))
    for rank in ranks:
        features, labels = rank["gathered"]
        assert torch.equal(labels, order) and features.dtype == torch.float32
        torch.testing.assert_close(features, order.float()[:, None] / 4, rtol=0, atol=0)
    assert torch.equal(one["gathered"][1], torch.arange(25))  # one process: its rows as they are


def test_the_utility_moves_by_the_mean_over_the_whole_step(two_and_one):
    ranks, one = two_and_one
    weights = torch.rand(25, 2, generator=torch.Generator().manual_seed(1)).softmax(dim=1)
    torch.testing.assert_close(one["utility"], 0.5 * torch.tensor([0.5, 0.5]) + 0.5 * weights.mean(dim=0))
    halves = [weights[shard_positions(25, 0, rank, 2)].mean(dim=0) for rank in range(2)]
    assert float((0.5 * 0.5 + 0.25 * (halves[0] + halves[1]) - one["utility"]).abs().max()) > 1e-4


def test_each_process_caches_the_teachers_of_its_own_shard(two_and_one):
    ranks, one = two_and_one
    task = list(ClassIncrementalScenario(list(range(4)), 2, 2))[1]
    n = PER_CLASS[2] + PER_CLASS[3]
    assert one["teacher_cache"].shape[0] == n
    assert [r["teacher_cache"].shape[0] for r in ranks] == shard_sizes(n, 2)
    for rank, result in enumerate(ranks):
        rows = one["teacher_cache"][shard_positions(n, task_seed(SEED, task), rank, 2)]
        torch.testing.assert_close(result["teacher_cache"], rows, rtol=1e-5, atol=1e-5)


def test_sharded_evaluation_counts_every_test_image_once(two_and_one):
    ranks, one = two_and_one
    assert one["total"] == [2 * TEST_PER_CLASS, 2 * TEST_PER_CLASS]
    assert int(one["confusion"].sum()) == 4 * TEST_PER_CLASS
    for rank in ranks:
        assert (rank["correct"], rank["total"]) == (one["correct"], one["total"])
        assert torch.equal(rank["confusion"], one["confusion"])


def test_a_step_over_two_processes_equals_one_process_step_on_the_global_batch(two_and_one):
    """The trainable parameters after one step of task 2 (SECA++: every loss term, shares of 13 and 12 of
    25 images), as one vector, to 1e-5 relative; and the all-reduced gradient of every tensor to 1e-4.

    Per tensor, float32 noise shows: one process with the same images in another order differs by up to
    5e-5 on the gradients of SE-VPR's LayerNorms (measured), and a gradient that is zero in exact arithmetic
    (LN_T's bias, which cancels in the distances) is all noise, so it is left out."""
    ranks, one = two_and_one
    gradients = one["gradients"]
    largest = max(float(g.norm()) for g in gradients.values())
    assert {
        "prompts.prompts.1",
        "adapters.adapters.0.up.weight",
        "teacher.aggregator.ln_out.weight",
        "visual.refiner.project.weight",
    } <= gradients.keys()
    for rank in ranks:
        assert rank["gradients"].keys() == gradients.keys()
        for name, g in gradients.items():
            if float(g.norm()) > 1e-6 * largest:
                error = float((rank["gradients"][name] - g).norm() / g.norm())
                assert error <= 1e-4, f"gradient of {name}: relative error {error:.2e}"

        trained = [name for name in gradients]
        mine = torch.cat([rank["trained"][name].flatten().double() for name in trained])
        single = torch.cat([one["trained"][name].flatten().double() for name in trained])
        assert float((mine - single).norm() / single.norm()) <= 1e-5
        for name, value in one["trained"].items():  # the rest of the state: statistics, snapshots, utility
            if name not in gradients:
                torch.testing.assert_close(rank["trained"][name], value, rtol=1e-5, atol=1e-5)

    learner = _learner()
    initial = learner.prompts.add_task(learner.task_rng(list(ClassIncrementalScenario([0, 1, 2, 3], 2, 2))[1]))
    assert 1e-4 < float((one["trained"]["prompts.prompts.1"] - initial.detach()).abs().max()), "nothing trained"


def test_a_part_a_task_does_not_use_keeps_no_gradient_as_in_one_process(two_and_one):
    ranks, one = two_and_one
    assert one["without_gradient"] == sorted(
        f"teacher.aggregator.{k}" for k, _ in _learner().teacher.aggregator.named_parameters()
    )
    assert one["aggregator_kept"]  # no gradient, so no weight decay either
    for rank in ranks:
        assert (rank["without_gradient"], rank["aggregator_kept"]) == (one["without_gradient"], True)


def test_shard_batches_split_the_global_batch_and_weigh_an_uneven_last_step():
    sizes = shard_sizes(25, 2)  # 13 and 12 images
    plans = [ShardBatches(sizes, rank, 8, seed=0, epoch=0) for rank in range(2)]
    batches = [list(plan) for plan in plans]
    assert [len(b) for b in batches] == [3, 3]  # ceil(12 / 4) steps each
    assert [len(x) for x in batches[0]] == [4, 4, 5] and [len(x) for x in batches[1]] == [4, 4, 4]
    assert sorted(i for x in batches[0] for i in x) == list(range(13))  # every image of the shard once
    assert plans[0].shares == [0.5, 0.5, 5 / 9] and plans[1].shares == [0.5, 0.5, 4 / 9]
    assert list(ShardBatches(sizes, 0, 8, seed=0, epoch=1)) != batches[0]  # a new order every epoch
    assert list(ShardBatches(sizes, 0, 8, seed=0, epoch=0)) == batches[0]  # the same for the same seed


def test_shards_are_disjoint_cover_the_task_and_mix_its_classes():
    shards = [shard_positions(10, 7, rank, 3) for rank in range(3)]
    assert sorted(np.concatenate(shards).tolist()) == list(range(10))
    assert [len(s) for s in shards] == shard_sizes(10, 3) == [4, 3, 3]
    assert shards[0].tolist() != [0, 1, 2, 3]


# ---- torchrun end to end --------------------------------------------------------------------------


def _torchrun(out: Path, *extra: str, method: str = "seca++", env: dict | None = None) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        "-m",
        "seca",
        "run",
        "cpu-small",
        "--set",
        f"method.name={method}",
        *FAST_RUN,
        "--out",
        str(out),
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def _results(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    return {k: results[k] for k in ("acc_matrix", "test_counts", "confusion", "last", "avg")}


def test_torchrun_runs_seca_plus_plus_reproducibly_and_resumes_to_the_same_results(tmp_path):
    first = _torchrun(tmp_path / "a", "--set", "train.checkpoints=all")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("Last ") == 1  # rank 0 alone prints the table
    assert sorted(p.name for p in (tmp_path / "a").glob("*.json")) == ["results.json"]
    assert json.loads((tmp_path / "a" / "results.json").read_text())["test_counts"] == [16] * 5

    second = _torchrun(tmp_path / "b")
    assert second.returncode == 0, second.stderr[-3000:]
    assert _results(tmp_path / "b") == _results(tmp_path / "a")

    # What a run killed after task 2 leaves: its config, log and the checkpoint of task 2.
    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "log.jsonl"):
        shutil.copy(tmp_path / "a" / name, killed / name)
    shutil.copy(tmp_path / "a" / "checkpoints" / "task-02.safetensors", killed / "checkpoints")
    resumed = _torchrun(killed, "--resume", "--set", "train.checkpoints=all")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after task 2 of 5" in resumed.stdout
    assert _results(killed) == _results(tmp_path / "a")

    from safetensors.torch import load_file

    assert all(
        torch.equal(a, b)
        for a, b in zip(
            load_file(tmp_path / "a" / "model.safetensors").values(), load_file(killed / "model.safetensors").values()
        )
    )


def test_processes_under_torchrun_share_the_feature_store_with_every_later_run(tmp_path, monkeypatch):
    from seca.cli import main
    from seca.io.feature_store import shards

    cache = tmp_path / "cache"
    monkeypatch.setenv("SECA_CACHE", str(cache))
    first = _torchrun(tmp_path / "two", method="simplecil", env={"SECA_CACHE": str(cache)})
    assert first.returncode == 0, first.stderr[-3000:]
    written = shards(cache / "features")
    # each process stores its own shard of each task's training and test images: 2 x 5 x 2 files
    assert len(written) == 20
    again = _torchrun(tmp_path / "again", method="simplecil", env={"SECA_CACHE": str(cache)})
    assert again.returncode == 0, again.stderr[-3000:]
    assert shards(cache / "features") == written  # everything was found: nothing new written
    assert _results(tmp_path / "again") == _results(tmp_path / "two")
    one = tmp_path / "one"
    assert main(["run", "cpu-small", "--set", "method.name=simplecil", *FAST_RUN, "--out", str(one)]) == 0
    assert shards(cache / "features") == written  # one process reads what two wrote
    assert _results(one) == _results(tmp_path / "two")


def test_torchrun_refuses_a_global_batch_that_does_not_split(tmp_path):
    odd = _torchrun(tmp_path / "odd", "--set", "train.batch_size=15")
    assert odd.returncode != 0
    assert "train.batch_size 15 does not split over 2 processes: use a multiple of 2" in odd.stderr
    assert not (tmp_path / "odd").exists()


def test_an_error_of_rank_0_alone_stops_every_process_with_one_message(tmp_path):
    out = tmp_path / "started"  # the start of a run of another config, stopped before its first checkpoint
    out.mkdir()
    started = load_config("cpu-small", ["method.name=seca++", *FAST_RUN[1::2], "train.epochs=7"])
    (out / "config.yaml").write_text(dump_yaml(started))
    failed = _torchrun(out, "--resume")  # rank 0 reads the output folder; the others wait for it
    assert failed.returncode != 0
    errors = [line for line in failed.stderr.splitlines() if "error:" in line]
    assert errors == [
        f"[rank 0] error: '{out}' holds the start of a run of another config (at train.epochs "
        "(1 now, 7 in the run)); resume with the same config and --set options, or pass "
        "--overwrite to replace it"
    ]


def test_only_run_goes_over_several_processes(monkeypatch, capsys):
    from seca.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["predict", "model.safetensors", "x.png"]) == 2
    assert capsys.readouterr().err.strip() == (
        "[rank 1] error: only 'seca run' runs over several processes; start 'seca predict' without torchrun"
    )
    assert main(["run", "cpu-small", "--seeds", "0,1"]) == 2
    assert "torchrun runs one seed at a time" in capsys.readouterr().err
