"""The class-incremental scenario: which classes arrive in which task, and the label each gets.

Labels are remapped so that task s holds one contiguous block of label ids: the class order's k-th class
gets label k. Arguments are checked up front (the order is a permutation, task sizes add up).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import SecaError


def tasks_by_name(tasks: Sequence[Sequence[str | int]], class_names: Sequence[str]) -> tuple[list[int], list[int]]:
    """The class order and task sizes of ``scenario.tasks``, given as lists of class names.

    A name matches a class whatever its underscores and case (``red_star`` is "red star"); every class of
    the data set must appear exactly once.
    """

    def key(name: str | int) -> str:
        return " ".join(str(name).replace("_", " ").split()).lower()

    ids = {key(name): c for c, name in enumerate(class_names)}
    order, seen = [], {}
    for t, task in enumerate(tasks):
        if not task:
            raise SecaError(f"scenario.tasks[{t}] is empty; every task needs at least one class")
        for name in task:
            if key(name) not in ids:
                close = difflib.get_close_matches(key(name), list(ids), n=1)
                hint = f"; did you mean '{class_names[ids[close[0]]]}'?" if close else ""
                raise SecaError(f"scenario.tasks[{t}] names '{name}', which is not a class of the data set{hint}")
            if key(name) in seen:
                raise SecaError(
                    f"scenario.tasks names '{name}' twice (tasks {seen[key(name)]} and {t}); each class arrives once"
                )
            seen[key(name)] = t
            order.append(ids[key(name)])
    missing = [name for name in class_names if key(name) not in seen]
    if missing:
        raise SecaError(
            f"scenario.tasks leaves out {len(missing)} of the {len(class_names)} classes (e.g. "
            f"'{missing[0]}'); list every class once"
        )
    return order, [len(task) for task in tasks]


@dataclass(frozen=True)
class Task:
    """Task ``index`` (0-based) brings the classes ``classes`` (original ids), labelled ``start..stop-1``."""

    index: int
    classes: tuple[int, ...]
    start: int
    stop: int

    @property
    def num_classes(self) -> int:
        return self.stop - self.start

    @property
    def labels(self) -> range:
        return range(self.start, self.stop)


class ClassIncrementalScenario:
    """Split ``order`` into a first task of ``first_task`` classes and further tasks of ``increment``."""

    def __init__(
        self,
        order: Sequence[int],
        first_task: int | None = None,
        increment: int | None = None,
        num_classes: int | None = None,
        sizes: Sequence[int] | None = None,
    ):
        """``sizes``, when given, are the classes of every task (``scenario.tasks``), instead of
        ``first_task`` and ``increment``."""
        order = [int(c) for c in order]
        num_classes = len(order) if num_classes is None else num_classes
        if sorted(order) != list(range(num_classes)):
            dupes = sorted({c for c in order if order.count(c) > 1})
            missing = sorted(set(range(num_classes)) - set(order))
            detail = f"repeats {dupes[:5]}" if dupes else f"lacks {missing[:5]}" if missing else "has ids out of range"
            raise SecaError(
                f"the class order must be a permutation of the {num_classes} class ids 0..{num_classes - 1}; "
                f"it has {len(order)} entries and {detail}"
            )
        if sizes is None:
            if first_task is None or increment is None:
                raise TypeError("give first_task and increment, or sizes")
            sizes = self._uniform_sizes(num_classes, first_task, increment)
        elif not sizes or min(sizes) < 1 or sum(sizes) != num_classes:
            raise SecaError(f"task sizes {list(sizes)} must be positive and add up to the {num_classes} classes")
        self.order = order
        self.num_classes = num_classes
        bounds = np.cumsum([0, *sizes])
        self.tasks = [
            Task(i, tuple(order[a:b]), int(a), int(b)) for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
        ]
        # label_of[class id] = the class's position in the order
        self.label_of = np.empty(num_classes, dtype=np.int64)
        self.label_of[np.asarray(order)] = np.arange(num_classes)

    @staticmethod
    def _uniform_sizes(num_classes: int, first_task: int, increment: int) -> list[int]:
        if first_task < 1 or increment < 1:
            raise SecaError(
                f"scenario.first_task and scenario.increment must be positive, got {first_task} and {increment}"
            )
        if first_task > num_classes:
            raise SecaError(f"scenario.first_task={first_task} is more than the {num_classes} classes of the data set")
        if (num_classes - first_task) % increment:
            raise SecaError(
                f"task sizes must add up to the {num_classes} classes: a first task of {first_task} and tasks of "
                f"{increment} leave {(num_classes - first_task) % increment} over; change scenario.first_task "
                "or scenario.increment"
            )
        return [first_task] + [increment] * ((num_classes - first_task) // increment)

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks)

    def __getitem__(self, index: int) -> Task:
        return self.tasks[index]

    def labels(self, targets: Sequence[int]) -> np.ndarray:
        """Remapped labels of items with original class ids ``targets``."""
        return self.label_of[np.asarray(targets, dtype=np.int64)]

    def items_of(self, targets: Sequence[int], tasks: Sequence[Task]) -> np.ndarray:
        """Positions of the items whose class arrives in one of ``tasks``, in data set order."""
        labels = self.labels(targets)
        keep = np.zeros(len(labels), dtype=bool)
        for task in tasks:
            keep |= (labels >= task.start) & (labels < task.stop)
        return np.flatnonzero(keep)

    def names_in_label_order(self, class_names: Sequence[str]) -> list[str]:
        return [class_names[c] for c in self.order]
