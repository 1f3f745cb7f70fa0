"""Seeds as an axis: `seca run --seeds`, its resumption, `seca ablate --seeds`, `seca compare`, the report."""

import json
import shutil

import pytest

from seca.cli import main

FAST = [
    "--set",
    "train.epochs=1",
    "--set",
    "data.shapes.train_per_class=8",
    "--set",
    "data.shapes.test_per_class=4",
    "--set",
    "train.progress=false",
]


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds") / "h-peft"
    assert main(["run", "cpu-small", "--seeds", "0,1", "--out", str(out), "--set", "method.name=h-peft", *FAST]) == 0
    return out


def test_a_two_seed_run_writes_one_folder_per_seed_and_the_aggregate(two_seeds):
    runs = {k: json.loads((two_seeds / f"seed{k}" / "results.json").read_text()) for k in (0, 1)}
    assert [runs[k]["seed"] for k in (0, 1)] == [0, 1] and runs[0]["config"]["seeds"] is None
    assert runs[0]["acc_matrix"] != runs[1]["acc_matrix"]  # the seed changes the initialisation and shuffles
    assert runs[0]["class_order"] == runs[1]["class_order"]  # the reference order stays fixed
    agg = json.loads((two_seeds / "results.json").read_text())
    assert agg["kind"] == "seeds" and agg["seeds"] == [0, 1] and agg["runs"] == ["seed0", "seed1"]
    for key in ("last", "avg", "forgetting", "bwt"):
        assert agg[key]["values"] == [runs[0][key], runs[1][key]]
        assert agg[key]["mean"] == pytest.approx((runs[0][key] + runs[1][key]) / 2)
        low, high = agg[key]["ci95"]
        assert low <= agg[key]["mean"] <= high
    assert len(agg["acc_per_step"]) == 5
    assert agg["acc_per_step"][2]["values"] == [runs[0]["acc_per_step"][2], runs[1]["acc_per_step"][2]]
    assert agg["config"]["seeds"] == [0, 1]
    summary = (two_seeds / "summary.md").read_text()
    assert "2 seeds" in summary and "mean ± std" in summary and "95% interval" in summary
    for name in ("accuracy_curve.png", "accuracy_matrix.png", "config.yaml"):
        assert (two_seeds / name).is_file(), name


def test_resume_runs_only_the_missing_seeds(two_seeds, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(two_seeds, out)
    shutil.rmtree(out / "seed1")
    (out / "results.json").unlink()
    before = (out / "seed0" / "results.json").read_bytes()
    args = ["run", "cpu-small", "--seeds", "0-2", "--out", str(out), "--set", "method.name=h-peft", *FAST]
    assert main(args) == 2  # runs exist: neither --resume nor --overwrite
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "seed 0 (1/3): finished earlier" in printed
    assert (out / "seed0" / "results.json").read_bytes() == before  # kept, not rerun
    agg = json.loads((out / "results.json").read_text())
    assert agg["seeds"] == [0, 1, 2]
    # seed 1 rerun from scratch equals the original seed 1: same seed, same result
    original = json.loads((two_seeds / "seed1" / "results.json").read_text())
    assert agg["last"]["values"][1] == original["last"]


def test_a_kept_run_of_another_config_is_refused(two_seeds, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(two_seeds, out)
    args = [
        "run",
        "cpu-small",
        "--seeds",
        "0,1",
        "--out",
        str(out),
        "--set",
        "method.name=h-peft",
        *FAST,
        "--set",
        "train.lr.adapter=0.5",
        "--resume",
    ]
    assert main(args) == 2
    assert "holds a finished run of another config (at train.lr.adapter" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad",
    [
        ["--seeds", ""],
        ["--seeds", "0,0"],
        ["--seeds", "-1"],
        ["--seeds", "a,b"],
        ["--seeds", "3-1"],
        ["--set", "seeds=[]"],
        ["--set", "seeds=[2,2]"],
        ["--set", "seeds=[-3]"],
        ["--set", "seeds=two"],
    ],
)
def test_bad_seed_lists_are_one_line_errors(bad, tmp_path, capsys):
    assert main(["run", "cpu-small", *bad, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_ablate_over_seeds_prints_spreads_and_paired_differences(tmp_path, capsys):
    ablation = tmp_path / "set.yaml"
    ablation.write_text("base: cpu-small\nvariants:\n  text: {method.classifier.branches: text}\n  hybrid: {}\n")
    out = tmp_path / "ablation"
    assert main(["ablate", str(ablation), "--seeds", "0,1", "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "ΔLast (95% CI)" in printed and "ΔAvg (95% CI)" in printed and "±" in printed
    assert "paired difference to 'text'" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reference"] == "text" and [r["variant"] for r in summary["rows"]] == ["text", "hybrid"]
    text, hybrid = summary["rows"]
    assert text["delta_last"] is None and len(hybrid["delta_last"]["values"]) == 2
    runs = {
        v: [json.loads((out / v / f"seed{k}" / "results.json").read_text())["last"] for k in (0, 1)]
        for v in ("text", "hybrid")
    }
    assert hybrid["delta_last"]["values"] == pytest.approx([h - t for h, t in zip(runs["hybrid"], runs["text"])])
    assert (out / "ablation.png").stat().st_size > 1000
    # again, against the other variant: every run is reused, nothing trains
    assert main(["ablate", str(ablation), "--seeds", "0,1", "--out", str(out), "--against", "hybrid", *FAST]) == 0
    printed = capsys.readouterr().out
    assert printed.count("finished earlier") == 4 and "paired difference to 'hybrid'" in printed

    # a kept run of another config is refused before anything trains, naming the key
    assert main(["ablate", str(ablation), "--seeds", "0,1", "--out", str(out), *FAST, "--set", "train.epochs=2"]) == 2
    assert "holds a finished run of another config (at train.epochs" in capsys.readouterr().err

    # compare reads multi-seed folders the same way
    assert main(["compare", str(out / "text"), str(out / "hybrid")]) == 0
    assert "ΔLast (95% CI)" in capsys.readouterr().out
    assert main(["compare", str(out / "text"), str(out / "hybrid"), "--against", "nowhere"]) == 2
