"""The figures: the confusion matrix laid out for 2 to 200 classes with nothing cut off or overlapping, and the
accuracy curves (a run, a multi-seed aggregate, a model's history) drawn from the right numbers, with every
percentage at 2 decimals.

Each figure is caught as it is saved (``Figure.savefig`` wrapped), then drawn again on its Agg canvas and
measured with the canvas's renderer (window extents in display pixels), or read as matplotlib objects.
"""

from __future__ import annotations

import re
import statistics

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from seca.eval.confusion import plot_confusion  # noqa: E402
from seca.eval.plots import plot_accuracy_curves, plot_accuracy_matrix  # noqa: E402

TOLERANCE = 1.0  # display pixels


@pytest.fixture
def saved(monkeypatch):
    """The figures saved while the test runs, in order (they stay drawable after pyplot closes them)."""
    figures = []
    original = Figure.savefig

    def savefig(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return figures


def _drawn(fig):
    """Draw ``fig`` (closed by pyplot once saved) on a fresh Agg canvas: its renderer, and the texts drawn
    with something written in them (tick labels outside the axes' limits are not drawn, so not among them)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn, draw = [], Text.draw

    def recording(self, renderer):
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)
        return draw(self, renderer)

    canvas = FigureCanvasAgg(fig)
    Text.draw = recording
    try:
        canvas.draw()
    finally:
        Text.draw = draw
    return canvas.get_renderer(), drawn


def _inside(inner, outer) -> bool:
    return (
        inner.x0 >= outer.x0 - TOLERANCE
        and inner.y0 >= outer.y0 - TOLERANCE
        and inner.x1 <= outer.x1 + TOLERANCE
        and inner.y1 <= outer.y1 + TOLERANCE
    )


def _overlap(a, b) -> bool:
    """Whether two extents share more than the tolerance in both directions."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > TOLERANCE and min(a.y1, b.y1) - max(a.y0, b.y0) > TOLERANCE


def _confusion_case(n: int, seed: int = 0):
    """``n`` classes in tasks of about a tenth of them (at least one class a task), a noisy diagonal."""
    rng = np.random.default_rng(seed)
    names = [f"class {k}" if k % 7 else f"a rather long class name {k}" for k in range(n)]
    size = max(1, n // 10)
    bounds = [*range(0, n, size), n] if n % size else [*range(0, n + 1, size)]
    counts = rng.integers(0, 12, size=(n, n)) + 40 * np.eye(n, dtype=np.int64)
    tasks = len(bounds) - 1
    title = f"seca: {n} classes evaluated, {n} known, {tasks} tasks"
    return counts.tolist(), names, bounds, title


def _check_confusion_layout(fig) -> None:
    renderer, texts = _drawn(fig)
    frame = fig.bbox
    ax, bar = fig.axes[0], fig.axes[1]
    named = {
        "title": ax.title,
        "x label": ax.xaxis.label,
        "y label": ax.yaxis.label,
        "colour bar label": bar.yaxis.label,
    }
    for what, text in named.items():
        assert text.get_text().strip(), f"the {what} is missing"
    assert set(named.values()) <= set(texts)
    for text in texts:
        extent = text.get_window_extent(renderer)
        assert _inside(extent, frame), f"{text.get_text()[:40]!r} is cut off: {extent} outside {frame}"
    title = ax.title.get_window_extent(renderer)
    assert title.y0 >= ax.bbox.y1 - TOLERANCE, "the title sits on the matrix"
    ticks = [t for t in [*ax.get_xticklabels(), *ax.get_yticklabels()] if t.get_visible() and t.get_text().strip()]
    for tick in [*ticks, *ax.texts]:
        assert not _overlap(title, tick.get_window_extent(renderer)), f"the title overlaps {tick.get_text()!r}"
    for labels in (ax.get_xticklabels(), ax.get_yticklabels()):  # named classes: readable, not on each other
        extents = [t.get_window_extent(renderer) for t in labels if t in texts]
        assert extents
        for a, b in zip(extents, extents[1:]):
            assert not _overlap(a, b)
    assert not _overlap(bar.yaxis.label.get_window_extent(renderer), ax.get_window_extent(renderer))


@pytest.mark.parametrize("n", [2, 3, 10, 50, 200])
def test_the_confusion_figure_fits_every_text_for_2_to_200_classes(n, tmp_path, saved):
    counts, names, bounds, title = _confusion_case(n)
    path = tmp_path / "confusion.png"
    plot_confusion(counts, names, names, bounds, path, title)
    _check_confusion_layout(saved[-1])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(str(path)).shape[:2]
    assert 300 <= width <= 2400 and 300 <= height <= 2400
    ax = saved[-1].axes[0]
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    if n <= 40:
        assert len(shown) == n  # every class named
    else:
        assert 0 < len(shown) < n and "named" in ax.get_xlabel()  # thinned, and the axis says so


def test_a_long_title_is_wrapped_and_a_subset_of_rows_keeps_its_lines(tmp_path, saved):
    counts, names, bounds, _ = _confusion_case(12)
    rows = names[:3] + names[6:9]  # some classes evaluated, every class known
    title = "seca++ on a model grown with seca learn from a folder with a rather long name: " * 3
    plot_confusion([counts[names.index(r)] for r in rows], rows, names, bounds, tmp_path / "c.png", title.strip())
    fig = saved[-1]
    _check_confusion_layout(fig)
    assert "\n" in fig.axes[0].get_title()


def test_the_confusion_cells_carry_their_share_with_2_decimals(tmp_path, saved):
    counts = [[37, 0, 0], [12, 24, 1], [0, 0, 0]]  # 37 images: 100.00; 12 of 37: 32.43; no images: "-"
    names = ["cat", "dog", "eel"]
    plot_confusion(counts, names, names, [0, 2, 3], tmp_path / "c.png", "three classes")
    cells = [t.get_text() for t in saved[-1].axes[0].texts]
    assert cells[:6] == ["100.00", "0.00", "0.00", "32.43", "64.86", "2.70"]
    assert cells[6:] == ["-", "-", "-"]


# ---- accuracy curves ---------------------------------------------------------------------------------------


def _run(method: str, matrix, steps, tasks=(2, 2, 2), seed=0) -> dict:
    return {
        "method": method,
        "benchmark": "shapes",
        "seed": seed,
        "tasks": [list(range(sum(tasks[:k]), sum(tasks[: k + 1]))) for k in range(len(tasks))],
        "class_order": list(range(sum(tasks))),
        "class_names": [f"c{k}" for k in range(sum(tasks))],
        "acc_matrix": matrix,
        "acc_per_step": steps,
        "last": steps[-1],
        "avg": None if None in steps else sum(steps) / len(steps),
        "forgetting": 10.0,
        "bwt": -10.0,
        "seconds": {"train": [1.0] * len(steps), "eval": [1.0] * len(steps)},
    }


def _lines(fig) -> dict:
    return {line.get_gid() or line.get_label(): line for line in fig.axes[0].get_lines()}


def _legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def _runs_of_points(line) -> int:
    """The pieces a line is drawn in: matplotlib starts a new one after every NaN."""
    path = line.get_path().cleaned(remove_nans=True)
    return int(np.sum(path.codes == MplPath.MOVETO)) if path.codes is not None else 1


def test_a_runs_curve_and_its_zero_shot_show_2_decimals(tmp_path, saved):
    seca = _run("seca", [[90.0], [70.0, 80.0], [50.0, 60.0, 70.0]], [90.0, 75.0, 60.0])
    zero = _run("zero-shot", [[40.0], [30.0, 35.0], [20.0, 25.0, 30.0]], [40.0, 32.15, 21.44])
    plot_accuracy_curves([seca, zero], tmp_path / "curve.png")
    fig = saved[-1]
    lines = _lines(fig)
    assert set(lines) == {"seca", "zero-shot"}
    assert list(lines["seca"].get_xdata()) == [2, 4, 6] and list(lines["seca"].get_ydata()) == [90.0, 75.0, 60.0]
    assert lines["zero-shot"].get_linestyle() == "--"
    legend = _legend(fig)
    assert legend[0] == "seca (Last 60.00, Avg 75.00)"
    assert legend[1] == f"zero-shot (Last 21.44, Avg {(40.0 + 32.15 + 21.44) / 3:.2f})"  # "Avg 31.2" before


def test_a_multi_seed_curve_keeps_its_band_and_shows_mean_and_std_with_2_decimals(tmp_path, saved):
    from seca.eval.aggregate import aggregate_runs

    runs = [
        _run("seca", [[90.0], [70.0, 80.0], [50.0, 60.0, 70.0]], [90.0, 75.0, 60.0], seed=0),
        _run("seca", [[92.0], [72.0, 82.0], [52.0, 62.0, 72.0]], [92.0, 77.0, 62.5], seed=1),
    ]
    aggregate = aggregate_runs(runs, ["seed0", "seed1"], {})
    plot_accuracy_curves([aggregate], tmp_path / "curve.png")
    fig = saved[-1]
    line = _lines(fig)["seca"]
    assert list(line.get_ydata()) == [91.0, 76.0, 61.25]
    assert len(fig.axes[0].collections) == 1  # the band of ± one standard deviation
    avgs = [(90.0 + 75.0 + 60.0) / 3, (92.0 + 77.0 + 62.5) / 3]
    avg = f"{statistics.mean(avgs):.2f} ± {statistics.stdev(avgs):.2f}"
    assert _legend(fig) == [f"seca (Last 61.25 ± {statistics.stdev([60.0, 62.5]):.2f}, Avg {avg})"]


def _history(chance=True) -> dict:
    """Four tasks (2, 3, 2, 3 classes); step 2 learned without --eval; at step 3 the evaluated folder held no
    image of task 1; step 4 measured everything."""
    results = _run(
        "seca",
        [[91.0], [None, None], [None, 70.25, 88.0], [60.0, 55.5, 66.75, 80.0]],
        [91.0, None, 79.5, 64.12],
        tasks=(2, 3, 2, 3),
    )
    results["acc_per_step"] = [91.0, None, None, 64.12]  # step 3 did not measure every seen task
    results.update(kind="history", avg=None, forgetting=None, bwt=None, last=64.12)
    if chance:
        results["chance"] = [50.0, 20.0, 14.29, 10.0]
    return results


def test_a_models_history_draws_a_line_per_task_all_seen_classes_and_chance(tmp_path, saved):
    plot_accuracy_curves([_history()], tmp_path / "curve.png")
    fig = saved[-1]
    lines = _lines(fig)
    assert list(lines) == ["task 1", "task 2", "task 3", "task 4", "all seen classes", "chance"]
    nan = float("nan")
    expected = {  # column j of the matrix over the steps s >= j, against the classes seen after s
        "task 1": ([2, 5, 7, 10], [91.0, nan, nan, 60.0]),
        "task 2": ([5, 7, 10], [nan, 70.25, 55.5]),
        "task 3": ([7, 10], [88.0, 66.75]),
        "task 4": ([10], [80.0]),
        "all seen classes": ([2, 5, 7, 10], [91.0, nan, nan, 64.12]),
        "chance": ([2, 5, 7, 10], [50.0, 20.0, 14.29, 10.0]),
    }
    for gid, (xs, ys) in expected.items():
        line = lines[gid]
        assert list(line.get_xdata()) == xs, gid
        np.testing.assert_array_equal(np.asarray(line.get_ydata(), dtype=float), ys, err_msg=gid)
    # A gap stays a gap: no segment joins the values around a None (task 1: 91 after step 1, 60 after step 4).
    assert _runs_of_points(lines["task 1"]) == 2 and _runs_of_points(lines["all seen classes"]) == 2
    assert _runs_of_points(lines["task 2"]) == 1
    assert all(m == "o" for m in (lines[g].get_marker() for g in expected if g != "chance"))  # lone points show
    assert lines["all seen classes"].get_linewidth() > max(lines[f"task {j}"].get_linewidth() for j in (1, 2, 3, 4))
    assert lines["chance"].get_linestyle() == "--"
    assert "all seen classes (Last 64.12, Avg -)" in _legend(fig)
    renderer, texts = _drawn(fig)
    assert "chance" in [t.get_text() for t in texts]
    for text in texts:  # the legend beside the axes is inside the figure
        assert _inside(text.get_window_extent(renderer), fig.bbox), text.get_text()


def test_a_history_written_before_chance_was_recorded_has_no_chance_line(tmp_path, saved):
    plot_accuracy_curves([_history(chance=False)], tmp_path / "curve.png")
    assert "chance" not in _lines(saved[-1]) and "all seen classes" in _lines(saved[-1])
    plot_accuracy_curves([{**_history(), "chance": [None] * 4}], tmp_path / "curve.png")  # no step recorded it
    assert "chance" not in _lines(saved[-1])


def test_the_accuracy_matrix_writes_2_decimals_that_fit_their_cells(tmp_path, saved):
    n = 10
    matrix = [[100.0 if j == s else 12.34 + j for j in range(s + 1)] for s in range(n)]
    results = _run("seca", matrix, [50.0] * n, tasks=(10,) * n)
    plot_accuracy_matrix(results, tmp_path / "matrix.png")
    fig = saved[-1]
    ax = fig.axes[0]
    cells = [t.get_text() for t in ax.texts]
    assert cells[:3] == ["100.00", "12.34", "100.00"] and len(cells) == n * (n + 1) // 2
    renderer, _ = _drawn(fig)
    width = ax.bbox.width / n
    assert max(t.get_window_extent(renderer).width for t in ax.texts) < width


# ---- the figures the offline demo prints -------------------------------------------------------------------


def test_the_build_line_makes_each_percentage_once_from_the_counts():
    from seca.offline.pretrain import format_zero_shot

    summary = {  # the cached build: 1255 and 427 right of 2000; ".1%" of 0.6275 printed 62.7, the docs said 62.8
        "zero_shot_top1": {"clean": 0.6275, "renditions": 0.2135},
        "zero_shot_correct": {"clean": 1255, "renditions": 427},
        "zero_shot_images": 2000,
    }
    assert format_zero_shot(summary) == "clean 62.75%, renditions 21.35%"
    assert (
        format_zero_shot({"zero_shot_top1": {"clean": 0.5, "renditions": 0.125}}) == "clean 50.00%, renditions 12.50%"
    )


def test_the_demo_ends_with_what_seed_0_should_print_and_says_so_when_it_differs():
    from seca.offline import demo

    zero_shot = {"method": "zero-shot", "seed": 0, **demo.SEED_0["zero-shot"]}
    seca = {"method": "seca", "seed": 0, **demo.SEED_0["seca"]}
    assert all(v is not None for figures in demo.SEED_0.values() for v in figures.values())
    text = demo._expected(seca, zero_shot, changed=False)
    assert f"seca           Last {seca['last']:.2f}  Avg {seca['avg']:.2f}" in text
    assert "printed the same figures" in text and demo.FIVE_SEEDS in text and "2-core CPU" in text
    other = demo._expected({**seca, "last": seca["last"] + 0.25}, zero_shot, changed=False)
    (line,) = [t for t in other.splitlines() if "other figures" in t]  # one line, and no failure
    assert f"Last {seca['last'] + 0.25:.2f}" in line
    assert "changed the preset" in demo._expected(seca, zero_shot, changed=True)
    h_peft = demo._expected({**seca, "method": "h-peft"}, zero_shot, changed=False)
    assert re.search(r"h-peft +\(no seed-0 figures", h_peft) and "same figures for zero-shot" in h_peft


def test_the_readme_and_docs_say_what_the_demo_prints():
    from pathlib import Path

    from seca.offline import demo

    root = Path(__file__).resolve().parents[2]
    readme, offline = (root / "README.md").read_text(), (root / "docs" / "offline.md").read_text()
    assert "### Competitors over 5 seeds" in offline  # where FIVE_SEEDS sends the reader
    for figures in demo.SEED_0.values():
        shown = rf"Last {figures['last']:.2f}\s+Avg {figures['avg']:.2f}"
        assert re.search(shown, offline) and re.search(shown, readme), shown
