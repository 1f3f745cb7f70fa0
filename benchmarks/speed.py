"""Speed of what SECA computes once instead of over and over (spec §7b), against the naive recomputation.

Prints a table of milliseconds per training step and per evaluation batch, with and without
``sg_akt.cache_teachers`` and ``classifier.cache_text``, and the text-encoding time with and without
cutting sequences after the end-of-text token. Runs on whatever device is available:

    python benchmarks/speed.py                                 # tiny test CLIP, CPU-friendly
    python benchmarks/speed.py --model ViT-B-16 --pretrained none --classes 200 --batch 64   # paper size
"""

from __future__ import annotations

import argparse
import time

import torch

from seca.clip.backbone import PromptedClassTexts, load_backbone
from seca.config import MethodConfig, SGAKTConfig
from seca.data.scenario import ClassIncrementalScenario
from seca.engine.device import resolve_device
from seca.methods import Batch, TaskData, build_learner


def timed(fn, repeats: int, device: torch.device) -> float:
    """Median milliseconds of ``fn()`` over ``repeats`` runs, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="seca-test")
    parser.add_argument("--pretrained", default="none")
    parser.add_argument("--classes", type=int, default=100, help="total classes, in tasks of --increment")
    parser.add_argument("--increment", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32, help="at least --increment")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = resolve_device(args.device)
    torch.manual_seed(0)
    backbone = load_backbone(args.model, args.pretrained, device=device)
    names = [f"class {i}" for i in range(args.classes)]
    scenario = ClassIncrementalScenario(list(range(args.classes)), args.increment, args.increment)
    last = scenario[-1]
    size = backbone.image_size
    images = torch.randn(args.batch, 3, size, size, device=device)
    labels = torch.randint(last.start, last.stop, (args.batch,), device=device)
    batch = Batch(images, labels, torch.arange(args.batch, device=device))
    data = TaskData(last, args.batch, lambda: iter([batch]))

    rows = []
    for cache in (True, False):
        method = MethodConfig(name="seca", sg_akt=SGAKTConfig(cache_teachers=cache))
        learner = build_learner(backbone, names, method)
        # bring the learner to the last task with a full pool, without training the earlier ones
        for task in scenario.tasks[:-1]:
            one_each = Batch(images[: task.num_classes], torch.arange(task.start, task.stop, device=device),
                             torch.arange(task.num_classes, device=device))
            warmup = TaskData(task, task.num_classes, lambda b=one_each: iter([b]))
            learner.begin_task(task, warmup)
            learner.end_task(task, warmup)
        learner.begin_task(last, data)
        learner.train()

        def step():
            learner.zero_grad(set_to_none=True)
            learner.training_step(batch)["loss"].backward()

        rows.append((f"training step, teachers {'cached once per task' if cache else 'recomputed every step'}",
                     timed(step, args.repeats, device)))
        if cache:
            learner.end_task(last, data)
            learner.eval()
            rows.append(("evaluation batch, text features cached once per task",
                         timed(lambda: learner.predict(images), args.repeats, device)))

            def naive_predict():
                learner._inference_text = None
                learner.predict(images)

            rows.append(("evaluation batch, all prompts re-encoded per batch",
                         timed(naive_predict, args.repeats, device)))

    texts = PromptedClassTexts(backbone, names)
    prompt = texts.placeholder_prompt()
    full = backbone.tokenize(["X X X X X X X X " + n for n in names])
    full_embeddings = backbone.text.embed(full)
    with torch.no_grad():
        rows.append((f"encode {args.classes} class prompts, cut after end-of-text ({texts.tokens.shape[1]} tokens)",
                     timed(lambda: texts.encode(prompt), args.repeats, device)))
        rows.append((f"encode {args.classes} class prompts, full context ({full.shape[1]} tokens)",
                     timed(lambda: backbone.text.encode_embeddings(full_embeddings, full), args.repeats, device)))

    width = max(len(r[0]) for r in rows)
    print(f"{args.model} on {device}, batch {args.batch}, {args.classes} classes, pool {len(learner.pool)}")
    print(f"{'what':<{width}}  {'ms':>9}")
    print("-" * (width + 11))
    for what, ms in rows:
        print(f"{what:<{width}}  {ms:>9.1f}")


if __name__ == "__main__":
    main()
