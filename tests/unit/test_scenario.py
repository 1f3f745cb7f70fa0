"""Class orders, label remapping and argument validation of the class-incremental scenario."""

import json
import re
from importlib import resources

import pytest

from seca.data.protocols import class_order
from seca.data.scenario import ClassIncrementalScenario
from seca.data.sets import DATASETS
from seca.errors import SecaError


def test_labels_are_positions_in_the_order_and_tasks_are_contiguous_blocks():
    order = [3, 0, 5, 1, 4, 2]
    sc = ClassIncrementalScenario(order, first_task=2, increment=2)
    assert [t.classes for t in sc] == [(3, 0), (5, 1), (4, 2)]
    assert [(t.start, t.stop) for t in sc] == [(0, 2), (2, 4), (4, 6)]
    targets = [0, 1, 2, 3, 4, 5, 3]
    assert sc.labels(targets).tolist() == [1, 3, 5, 0, 4, 2, 0]
    # items of task 2 (classes 5 and 1), in data set order
    assert sc.items_of(targets, [sc[1]]).tolist() == [1, 5]
    assert sc.names_in_label_order(list("abcdef")) == list("dafbec")


def test_first_task_may_differ_from_increment():
    sc = ClassIncrementalScenario(list(range(10)), first_task=4, increment=3)
    assert [t.num_classes for t in sc] == [4, 3, 3]


@pytest.mark.parametrize(
    "order, first, inc, message",
    [
        ([0, 1, 1, 3], 2, 2, "repeats \\[1\\]"),
        ([0, 1, 2], 1, 1, "permutation of the 4 class ids"),
        ([0, 1, 2, 3], 3, 2, "leave 1 over"),
        ([0, 1, 2, 3], 5, 1, "more than the 4 classes"),
        ([0, 1, 2, 3], 0, 2, "must be positive"),
    ],
)
def test_invalid_arguments_are_refused_with_a_clear_message(order, first, inc, message):
    with pytest.raises(SecaError, match=message):
        ClassIncrementalScenario(order, first, inc, num_classes=4)


SHAPES = DATASETS["shapes"]()


def test_reference_orders_are_the_shipped_ones():
    table = json.loads((resources.files("seca") / "resources" / "class_orders.json").read_text())
    assert class_order("reference", 200, DATASETS["imagenet-r"](), trial=2) == table["imagenet_r"][2]
    assert class_order("reference", 100, DATASETS["cifar100"](), trial=0)[:3] == [87, 0, 52]


def test_no_reference_order_for_imagenet_a():
    with pytest.raises(SecaError, match="scenario.order=seeded"):
        class_order("reference", 200, DATASETS["imagenet-a"]())


def test_seeded_orders_are_reproducible_permutations():
    a, b = class_order("seeded", 50, SHAPES, seed=7), class_order("seeded", 50, SHAPES, seed=7)
    assert a == b and sorted(a) == list(range(50))
    assert class_order("seeded", 50, SHAPES, seed=8) != a


def test_bad_trial_and_order_names():
    with pytest.raises(SecaError, match="trial must be 0..2"):
        class_order("reference", 100, DATASETS["cifar100"](), trial=3)
    with pytest.raises(
        SecaError, match="unknown protocol 'random'.* choose one of: identity, lamda, reference, seeded"
    ):
        class_order("random", 10, SHAPES)


# ---- tasks by class name (scenario.tasks) ----------------------------------------------------------------

NAMES = ["eight", "five", "four", "nine", "red star"]


def test_tasks_by_name_give_the_order_and_the_sizes():
    from seca.data.scenario import tasks_by_name

    order, sizes = tasks_by_name([["nine", "Red_Star"], ["four"], ["eight", "five"]], NAMES)
    assert order == [3, 4, 2, 0, 1] and sizes == [2, 1, 2]
    scenario = ClassIncrementalScenario(order, num_classes=5, sizes=sizes)
    assert [t.classes for t in scenario] == [(3, 4), (2,), (0, 1)]
    assert [(t.start, t.stop) for t in scenario] == [(0, 2), (2, 3), (3, 5)]
    assert tasks_by_name([[8, 5]], ["5", "8"]) == ([1, 0], [2])  # YAML reads folder names 5 and 8 as numbers


@pytest.mark.parametrize(
    "tasks, message",
    [
        (
            [["nine", "fiev"], ["four", "eight", "red star"]],
            "names 'fiev', which is not a class of the data set; did you mean 'five'?",
        ),
        ([["nine", "five"], ["nine", "four", "eight", "red star"]], "names 'nine' twice (tasks 0 and 1)"),
        ([["nine", "five"], ["four"]], "leaves out 2 of the 5 classes (e.g. 'eight')"),
        ([["nine", "five"], [], ["four", "eight", "red star"]], "scenario.tasks[1] is empty"),
    ],
)
def test_bad_task_lists_are_refused_with_the_reason(tasks, message):
    from seca.data.scenario import tasks_by_name

    with pytest.raises(SecaError, match=re.escape(message)):
        tasks_by_name(tasks, NAMES)


def test_sizes_must_add_up():
    with pytest.raises(SecaError, match="must be positive and add up to the 3 classes"):
        ClassIncrementalScenario([0, 1, 2], num_classes=3, sizes=[2, 2])


def test_the_lamda_order_is_pycils_and_c3box_shuffle():
    import numpy as np

    # C3Box's DataManager._setup_data (utils/data_manager.py), shuffle: true, seed 1993 (exps/*.json):
    #     order = [i for i in range(len(np.unique(self._train_targets)))]
    #     np.random.seed(seed); order = np.random.permutation(len(order)).tolist()
    np.random.seed(1993)
    theirs = np.random.permutation(100).tolist()
    ours = class_order("lamda", 100, DATASETS["cifar100"]())
    assert ours == theirs
    # the first classes of CIFAR-100's order as PyCIL's and C3Box's logs print it ("[68, 56, 78, 8, 23, ...")
    assert ours[:10] == [68, 56, 78, 8, 23, 84, 90, 65, 74, 76]
    # another seed (scenario.order_seed) as their "seed" key; the run's own seed does not change it
    np.random.seed(0)
    assert class_order("lamda", 200, SHAPES, order_seed=0) == np.random.permutation(200).tolist()
    assert class_order("lamda", 50, SHAPES, seed=7) == class_order("lamda", 50, SHAPES, seed=8)
    # drawing it leaves numpy's global stream where it was
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    class_order("lamda", 100, SHAPES)
    assert np.random.rand() == expected
