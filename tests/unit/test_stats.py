"""Statistics over seeds against hand-worked numbers and published t tables; the aggregate of runs."""

import math

import pytest

from seca.eval.aggregate import aggregate_runs, metric, paired, seed_values, step_curve
from seca.eval.report import format_comparison, format_seed_table
from seca.eval.stats import paired_difference, summarize_values, t_cdf, t_quantile


@pytest.mark.parametrize("dof, quantile", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)])
def test_t_quantiles_match_the_tables(dof, quantile):
    assert t_quantile(0.975, dof) == pytest.approx(quantile, abs=1e-4)
    assert t_quantile(0.025, dof) == pytest.approx(-quantile, abs=1e-4)


def test_t_cdf_is_symmetric_and_reaches_the_cauchy_form():
    assert t_cdf(0.0, 3) == pytest.approx(0.5, abs=1e-12)
    assert t_cdf(1.5, 5) + t_cdf(-1.5, 5) == pytest.approx(1.0, abs=1e-12)
    assert t_cdf(2.0, 1) == pytest.approx(0.5 + math.atan(2.0) / math.pi, abs=1e-9)  # Cauchy's CDF


def test_summary_of_three_values_by_hand():
    s = summarize_values([1.0, 2.0, 3.0])
    half = 4.302653 / math.sqrt(3)  # t(0.975, 2) * std 1 / sqrt(3)
    assert (s.mean, s.std, s.n) == (2.0, 1.0, 3)
    assert s.low == pytest.approx(2 - half, abs=1e-5) and s.high == pytest.approx(2 + half, abs=1e-5)
    assert not s.excludes_zero and s.format() == "2.00 ± 1.00"
    assert s.as_dict()["ci95"] == [s.low, s.high]


def test_one_value_has_no_spread():
    s = summarize_values([47.1])
    assert s.mean == 47.1 and s.std is None and s.low is None and not s.excludes_zero
    assert s.format() == "47.10"


def test_paired_difference_by_hand():
    d = paired_difference([3.0, 5.0, 4.0], [1.0, 2.0, 2.0])  # differences 2, 3, 2
    assert d.mean == pytest.approx(7 / 3)
    assert d.std == pytest.approx(math.sqrt(1 / 3))
    half = 4.302653 * math.sqrt(1 / 3) / math.sqrt(3)
    assert d.low == pytest.approx(7 / 3 - half, abs=1e-5) and d.excludes_zero
    # Unpaired, the same two samples' intervals overlap; pairing removes what the seeds share.
    assert summarize_values([3.0, 5.0, 4.0]).low < summarize_values([1.0, 2.0, 2.0]).high
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 2.0])


def _run(seed, matrix, counts=(10, 10)):
    from seca.eval.metrics import summarize

    return {
        "method": "seca",
        "benchmark": "toy",
        "backbone": {"model": "m", "pretrained": None},
        "seed": seed,
        "tasks": [[0], [1]],
        "test_counts": list(counts),
        "class_order": [0, 1],
        "class_names": ["a", "b"],
        "acc_matrix": matrix,
        **summarize(matrix, list(counts)),
        "seconds": {"train": [1.0, 1.0], "eval": [0.5, 0.5]},
        "device": "cpu",
        "versions": {},
    }


def test_aggregate_of_two_seeds():
    runs = [_run(0, [[80.0], [60.0, 70.0]]), _run(1, [[90.0], [70.0, 90.0]])]
    agg = aggregate_runs(runs, ["seed0", "seed1"], {"seed": 0})
    assert agg["kind"] == "seeds" and agg["seeds"] == [0, 1] and agg["runs"] == ["seed0", "seed1"]
    assert agg["last"]["values"] == [65.0, 80.0] and agg["last"]["mean"] == 72.5
    assert agg["last"]["std"] == pytest.approx(math.sqrt(2 * 7.5**2))
    assert agg["forgetting"]["values"] == [20.0, 20.0] and agg["forgetting"]["std"] == 0.0
    assert agg["acc_matrix_mean"] == [[85.0], [65.0, 80.0]]
    assert [s["mean"] for s in agg["acc_per_step"]] == [85.0, 72.5]
    assert agg["seconds"] == {"train": 4.0, "eval": 2.0}
    assert seed_values(agg, "last") == {0: 65.0, 1: 80.0}
    assert metric(agg, "avg").values == (72.5, 85.0)
    means, stds = step_curve(agg)
    assert means == [85.0, 72.5] and stds[0] == pytest.approx(math.sqrt(50))
    # a single run reads as a sample of one
    assert metric(runs[0], "last").values == (65.0,) and step_curve(runs[0])[1] is None
    assert paired(runs[0], runs[1], "last") is None  # one shared seed: no spread to estimate


def test_paired_differences_use_the_shared_seeds_only():
    a = aggregate_runs([_run(k, [[50.0], [40.0, 40.0 + k]]) for k in range(3)], ["seed0", "seed1", "seed2"], {})
    b = aggregate_runs([_run(k, [[50.0], [40.0, 42.0 + 2 * k]]) for k in (1, 2, 3)], ["seed1", "seed2", "seed3"], {})
    d = paired(b, a, "last")  # seeds 1 and 2: last = 40+k/2... differences (44-41)/2, (46-42)/2
    assert d.values == pytest.approx((1.5, 2.0))
    table = format_comparison([a, b], ["a", "b"])
    assert "ΔLast (95% CI)" in table and "+1.75" in table and "paired difference to 'a'" in table
    assert "40.50 ± 0.50" in table  # a's Last over seeds 0..2: 40, 40.5, 41


def test_seed_table_lists_each_seed_and_the_interval():
    agg = aggregate_runs([_run(0, [[80.0], [60.0, 70.0]]), _run(1, [[90.0], [70.0, 90.0]])], ["seed0", "seed1"], {})
    text = format_seed_table(agg)
    assert "seed 0" in text and "seed 1" in text and "72.50" in text
    half = t_quantile(0.975, 1) * 15 / math.sqrt(2) / math.sqrt(2)  # std of 65 and 80: 15 / sqrt(2)
    assert f"[{72.5 - half:.2f}, {72.5 + half:.2f}]" in text
