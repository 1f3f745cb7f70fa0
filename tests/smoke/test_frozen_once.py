"""Frozen work done once (docs/performance.md#frozen-work-once): each test image's frozen input is computed at its
first evaluation and scored again from it, frozen CLIP features are kept in the feature store across runs, and the
accuracy matrices are the same, entry for entry, with all of it off, cold and warm."""

import pytest

from seca.clip.backbone import ClipBackbone, load_backbone
from seca.engine.configure import load_config
from seca.engine.loop import run_experiment
from seca.io.feature_store import shards

SMALL = ["train.epochs=1", "data.shapes.train_per_class=6", "data.shapes.test_per_class=5", "train.eval_batch_size=7"]
OFF = ["train.test_features_gb=0", "train.feature_store=false"]


class Encodings:
    """How many images went into the image encoder (its stem, or the whole of it, which starts with the stem)."""

    def __init__(self, monkeypatch):
        self.images, self._inside = 0, False
        for name in ("stem", "encode_image"):
            original = getattr(ClipBackbone, name)

            def counted(backbone, images=None, *args, _original=original, **kwargs):
                if images is None or self._inside:
                    return _original(backbone, images, *args, **kwargs)
                self.images += len(images)
                self._inside = True
                try:
                    return _original(backbone, images, *args, **kwargs)
                finally:
                    self._inside = False

            monkeypatch.setattr(ClipBackbone, name, counted)


def _run(method, *settings, lines=None):
    config = load_config("cpu-small", [*SMALL, f"method.name={method}", *settings])
    return run_experiment(config, echo=(lines if lines is not None else []).append)


def _encoded_by_every_evaluation(results):
    """Test images encoded when each evaluation encodes every seen task's images: task k's after tasks k, k+1, ..."""
    return sum(sum(results["test_counts"][: len(row)]) for row in results["acc_matrix"])


def _same_results(a, b):
    assert a["acc_matrix"] == b["acc_matrix"]
    assert a["confusion"] == b["confusion"]


@pytest.mark.parametrize("method", ["zero-shot", "simplecil", "rapf", "h-peft", "seca"])
def test_the_same_matrices_with_frozen_work_off_cold_and_warm(method, tmp_path, monkeypatch):
    monkeypatch.setenv("SECA_CACHE", str(tmp_path))
    off = _run(method, *OFF)
    cold = _run(method)
    warm = _run(method)
    _same_results(off, cold)
    _same_results(off, warm)
    assert bool(shards(tmp_path / "features")) == (method in ("zero-shot", "simplecil", "rapf"))


@pytest.mark.parametrize("method", ["simplecil", "seca"])
def test_batches_that_mix_tasks_score_the_same_from_frozen_inputs(method, tmp_path, monkeypatch):
    monkeypatch.setenv("SECA_CACHE", str(tmp_path))
    mixed = ["train.eval_order=dataset", "method.classifier.hybrid_max=batch"]  # a prediction depends on its batch
    _same_results(_run(method, *mixed, *OFF), _run(method, *mixed))


def test_every_test_image_is_encoded_once_and_a_warm_store_encodes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SECA_CACHE", str(tmp_path))
    encodings = Encodings(monkeypatch)
    results = _run("simplecil", "train.feature_store=false")
    tests, trains = sum(results["test_counts"]), 20 * 6  # 20 classes, 6 training images each
    assert encodings.images == tests + trains  # not once per evaluation that sees them (5 of the first task's)
    encodings.images = 0
    _run("simplecil")  # cold store: the same work, now kept
    assert encodings.images == tests + trains
    encodings.images = 0
    _run("simplecil", "seed=1")  # another seed (another class order, other tasks): the same images
    _run("zero-shot")  # another method over the same backbone
    assert encodings.images == 0


def test_the_stems_of_test_images_are_computed_once_for_adapters(tmp_path, monkeypatch):
    monkeypatch.setenv("SECA_CACHE", str(tmp_path))
    encodings = Encodings(monkeypatch)
    trains = 20 * 6  # the training images' stems: once per task, kept for its steps (method.stem_cache_gb)
    kept = _run("h-peft")
    assert encodings.images == trains + sum(kept["test_counts"])
    encodings.images = 0
    off = _run("h-peft", "train.test_features_gb=0")
    assert encodings.images == trains + _encoded_by_every_evaluation(off)
    _same_results(kept, off)


def test_test_sets_past_the_memory_bound_are_encoded_at_every_evaluation(tmp_path, monkeypatch):
    monkeypatch.setenv("SECA_CACHE", str(tmp_path))
    encodings = Encodings(monkeypatch)
    width = load_backbone("seca-test", None).embed_dim
    bound = 1.5 * 20 * width * 4 / 2**30  # the frozen features of one and a half test sets of 20 images
    kept = _run("zero-shot", f"train.test_features_gb={bound:.12f}", "train.feature_store=false")
    assert encodings.images == 20 + _encoded_by_every_evaluation(kept) - 5 * 20  # task 1's set only is kept
    _same_results(kept, _run("zero-shot", *OFF))


def test_a_damaged_store_is_named_in_one_line_and_the_results_stay(tmp_path, monkeypatch):
    monkeypatch.setenv("SECA_CACHE", str(tmp_path))
    first = _run("zero-shot")
    damaged = shards(tmp_path / "features")
    for shard in damaged:
        shard.write_bytes(shard.read_bytes()[:-3])
    lines = []
    again = _run("zero-shot", lines=lines)
    said = [line for line in lines if "is damaged" in line]
    assert len(said) == len(damaged) and all(any(s.name in line for line in said) for s in damaged)
    _same_results(first, again)
    assert len(shards(tmp_path / "features")) == len(damaged)  # written again, whole


def test_a_saved_model_evaluates_images_it_met_before_from_the_store(tmp_path, monkeypatch):
    import seca
    from seca.data.shapes import class_names

    from ..conftest import write_shapes_folder

    monkeypatch.setenv("SECA_CACHE", str(tmp_path / "cache"))
    config = load_config("cpu-small", [*SMALL, "method.name=simplecil"])
    run_experiment(config, out=tmp_path / "run", echo=lambda line: None)
    model = seca.load(tmp_path / "run" / "model.safetensors", device="cpu")
    folder = write_shapes_folder(tmp_path / "holdout", class_names(4, 5)[:6], per_class=2)
    encodings = Encodings(monkeypatch)
    first = model.evaluate(folder)
    assert encodings.images == 12
    again = model.evaluate(folder)
    assert encodings.images == 12  # the second evaluation found every image's features
    assert again["accuracy"] == first["accuracy"] and again["per_class"] == first["per_class"]
