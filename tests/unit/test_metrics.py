"""Metrics against an accuracy matrix worked out by hand."""

import pytest

from seca.eval import metrics

# After task 1: 90 on T1. After task 2: 80 on T1, 70 on T2. After task 3: 60 on T1, 65 on T2, 50 on T3.
MATRIX = [[90.0], [80.0, 70.0], [60.0, 65.0, 50.0]]
COUNTS = [100, 300, 100]


def test_accuracy_per_step_is_sample_weighted():
    # step 2: (80*100 + 70*300) / 400 = 72.5 ; step 3: (6000 + 19500 + 5000) / 500 = 61
    assert metrics.accuracy_per_step(MATRIX, COUNTS) == pytest.approx([90.0, 72.5, 61.0])


def test_last_and_avg():
    summary = metrics.summarize(MATRIX, COUNTS)
    assert summary["last"] == pytest.approx(61.0)
    assert summary["avg"] == pytest.approx((90 + 72.5 + 61) / 3)


def test_forgetting_uses_best_earlier_accuracy():
    # T1: best before the end max(90, 80) = 90, final 60 -> 30 ; T2: best 70, final 65 -> 5 ; mean 17.5
    assert metrics.forgetting(MATRIX) == pytest.approx(17.5)


def test_backward_transfer():
    # T1: 60 - 90 = -30 ; T2: 65 - 70 = -5 ; mean -17.5
    assert metrics.backward_transfer(MATRIX) == pytest.approx(-17.5)


def test_forgetting_differs_from_bwt_when_accuracy_rises_then_falls():
    matrix = [[50.0], [70.0, 80.0], [60.0, 80.0, 40.0]]
    assert metrics.forgetting(matrix) == pytest.approx(((70 - 60) + (80 - 80)) / 2)
    assert metrics.backward_transfer(matrix) == pytest.approx(((60 - 50) + (80 - 80)) / 2)


def test_single_task_has_no_forgetting():
    assert metrics.forgetting([[80.0]]) is None
    assert metrics.backward_transfer([[80.0]]) is None
    assert metrics.summarize([[80.0]], [10]) == {
        "acc_per_step": [80.0],
        "last": 80.0,
        "avg": 80.0,
        "forgetting": None,
        "bwt": None,
    }


def test_rejects_a_matrix_that_is_not_lower_triangular():
    with pytest.raises(ValueError, match="row 1"):
        metrics.accuracy_per_step([[1.0], [1.0]], [1, 1])
