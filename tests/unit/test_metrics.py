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


def test_percentages_are_made_once_from_counts_with_two_decimals():
    assert metrics.percent(1, 3) == 33.33 and metrics.percent(2, 3) == 66.67 and metrics.percent(0, 0) is None
    assert metrics.percent(19, 50) == 38.0  # not 37.99999952, as a float32 mean gave
    assert metrics.chance(7) == 14.29 and metrics.majority([1, 3, 4]) == 50.0 and metrics.majority([]) is None
    # by hand: after task 1, 8 of 10; after task 2, 6 of 10 and 1 of 3
    s = metrics.summarize_counts([[8], [6, 1]], [10, 3])
    assert s["acc_matrix"] == [[80.0], [60.0, 33.33]]
    assert s["acc_per_step"] == [80.0, round(700 / 13, 2)] and s["last"] == 53.85
    assert s["avg"] == round((80 + 700 / 13) / 2, 2) == 66.92  # from the unrounded steps: rounded once
    assert s["forgetting"] == 20.0 and s["bwt"] == -20.0


def test_an_evaluation_carries_its_yardsticks_and_says_when_it_is_no_better():
    from seca.eval.history import eval_record, history_matrix

    # 4 known classes; task 1: 3 of 4 right, task 2: 0 of 4 right; the images per class 1, 3, 2, 2
    record = eval_record("t", [3, 0], [4, 4], 4, known=4, class_counts=[1, 3, 2, 2])
    assert (record["accuracy"], record["chance"], record["majority"]) == (37.5, 25.0, 37.5)
    assert record["per_task"] == [75.0, 0.0] and record["task_correct"] == [3, 0]
    assert record["warning"].startswith("the last task's classes (task 2) scored 0.00%, below chance (25.00%")
    # above chance on the new task but not above always answering the majority class
    record = eval_record("t", [1, 2], [4, 4], 4, known=4, class_counts=[1, 3, 2, 2])
    assert record["warning"].startswith("accuracy 37.50% is no better than always answering the most frequent")
    assert eval_record("t", [4, 3], [4, 4], 4, known=4, class_counts=[1, 3, 2, 2])["warning"] is None

    history = [
        {"task": 0, "eval": eval_record("t", [8], [10], 2, class_counts=[5, 5])},
        {"task": 1, "eval": eval_record("t", [0, 3], [0, 5], 3, class_counts=[5])},  # task 1 not measured
        {"task": 2, "eval": eval_record("t", [5, 4, 1], [10, 5, 5], 4, class_counts=[5, 5, 5, 5])},
    ]
    m = history_matrix(history, 3)
    assert m["acc_matrix"] == [[80.0], [None, 60.0], [50.0, 80.0, 20.0]]
    # the accuracy on all seen classes only where every seen task was measured: no line between test sets
    assert m["acc_per_step"] == [80.0, None, 50.0] and m["avg"] is None and m["forgetting"] is None
    assert m["chance"] == [50.0, 33.33, 25.0] and m["majority"] == [50.0, None, 25.0] and m["last"] == 50.0
