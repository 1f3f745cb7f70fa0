"""One experiment, once per seed: ``OUT/seed<k>/`` run folders and the aggregate ``OUT/results.json``.

Each seed's folder is an ordinary run folder (config.yaml with ``seed: k``, checkpoints, results, report),
resumable on its own. ``resume=True`` keeps the seeds that finished (after checking that their config is
this one), resumes the interrupted ones from their checkpoint, and runs the rest; so adding seeds to a
finished experiment runs only the new ones.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from .. import distributed
from ..config import ExperimentConfig, check_seeds, dump_yaml, to_dict
from ..errors import SecaError
from ..eval.aggregate import aggregate_runs
from ..eval.report import format_seed_table, write_report
from ..io.files import atomic_write_json, atomic_write_text
from ..io.run_folder import RunFolder
from .configure import config_differences
from .loop import run_experiment


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` or ``"0-4"`` -> (0, 1, 2, ...); distinct non-negative integers."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                low, high = (int(x) for x in part.split("-", 1))
                if high < low:
                    raise ValueError
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise SecaError(f"--seeds '{text}' must list seeds as integers, e.g. --seeds 0,1,2 or --seeds 0-4") from None
    return check_seeds(seeds, "--seeds")


def seed_config(config: ExperimentConfig, seed: int) -> ExperimentConfig:
    """The config of one seed's run: ``seed: k`` and no ``seeds`` list."""
    return dataclasses.replace(config, seed=seed, seeds=None)


def finished_run(folder: Path, config: ExperimentConfig) -> dict | None:
    """The results in ``folder`` if that run finished with ``config`` (keys that do not change results aside);
    None if it has not finished; an error if it is a run of another config."""
    path = RunFolder(folder).results
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    differences = config_differences(config, results.get("config", {}))
    if differences:
        raise SecaError(
            f"'{folder}' holds a finished run of another config (at {differences[0]}); "
            "pass --overwrite to replace it, or choose another --out"
        )
    return results


def kept_runs(config: ExperimentConfig, out: Path, seeds: Sequence[int] | None = None) -> dict:
    """The finished runs of ``config`` in ``out`` (``out/seed<k>/`` per seed when ``seeds`` is given), keyed
    by seed (None without seeds); an error names the first one of another config, before any work."""
    if seeds is None:
        found = {None: finished_run(out, config)}
    else:
        found = {k: finished_run(RunFolder(out).seed(k).path, seed_config(config, k)) for k in seeds}
    return {k: results for k, results in found.items() if results is not None}


def run_seeds(
    config: ExperimentConfig,
    out: Path,
    seeds: Sequence[int],
    overwrite: bool = False,
    resume: bool = False,
    echo: Callable[[str], None] = tqdm.write,
    kept: dict | None = None,
) -> dict:
    """Run ``config`` once per seed into ``out/seed<k>/``; write and return the aggregate results.

    With ``resume``, the finished runs (``kept``, as :func:`kept_runs` returns them, found here if not given)
    are reused.
    """
    seeds = check_seeds(seeds)
    if distributed.launched():
        raise SecaError(
            "torchrun runs one seed at a time: start one torchrun per seed with --set seed=K and "
            "--out OUT/seed<K>, then `seca compare` them (or run --seeds without torchrun)"
        )
    folder = RunFolder(out)
    with folder.lock() as lock:
        lock.take_if_there()  # seeds of this experiment being run by another process: refused before any work
        configs = {k: seed_config(config, k) for k in seeds}
        if not (resume or overwrite):
            started = [k for k in seeds if folder.seed(k).finished or folder.seed(k).interrupted]
            if folder.finished or started:
                raise SecaError(
                    f"'{out}' already holds runs of this experiment; pass --resume to finish the missing "
                    "seeds, --overwrite to start again, or choose another --out"
                )
        if resume and kept is None:  # every kept run is checked before any work
            kept = kept_runs(config, out, seeds)
        kept = kept if resume else {}
        folder.path.mkdir(parents=True, exist_ok=True)
        lock.take()
        if overwrite:
            folder.results.unlink(missing_ok=True)  # never beside runs it does not summarise
        atomic_write_text(folder.config, dump_yaml(dataclasses.replace(config, seeds=seeds)))

        runs = []
        for number, k in enumerate(seeds, 1):
            run = folder.seed(k)
            if k in kept:
                echo(f"== seed {k} ({number}/{len(seeds)}): finished earlier, {run.results}")
                runs.append(kept[k])
                continue
            again = resume and run.interrupted
            echo(f"== seed {k} ({number}/{len(seeds)}){': resuming' if again else ''}")
            runs.append(run_experiment(configs[k], run.path, overwrite=True, resume=again, echo=echo))

        results = aggregate_runs(
            runs, [folder.seed(k).path.name for k in seeds], to_dict(dataclasses.replace(config, seeds=seeds))
        )
        atomic_write_json(folder.results, results)
        write_report(folder.path)
        echo(format_seed_table(results))
        return results
