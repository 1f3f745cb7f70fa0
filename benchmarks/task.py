"""One full SECA task through the engine's own loop, on generated images: training and inference images/s
and peak memory.

The learner is brought to the last task of the protocol with a full pool (as in speed.py), then learns
that task with ``learn_task`` (begin_task, every epoch of Adam, end_task) and is evaluated with
``evaluate_tasks`` on test images of every seen class, exactly as ``seca run`` does. Default: ViT-B/16
(random weights), ImageNet-R's protocol (200 classes in 10 tasks, 2,400 training images per task, 10
epochs, batch 64) and precision ``train.amp`` (bf16 on a GPU that has it).

    python benchmarks/task.py --device cuda                    # the full task (benchmarks/gpu_check.sh)
    python benchmarks/task.py --model seca-test --images 64 --test-images 64 --epochs 1   # a CPU smoke run
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import Dataset

from seca.clip.backbone import load_backbone
from seca.config import TrainConfig
from seca.data.scenario import ClassIncrementalScenario
from seca.engine.configure import method_config
from seca.engine.data import TaskImages
from seca.engine.device import amp_dtype, resolve_device, set_threads
from seca.engine.evaluate import evaluate_tasks
from seca.engine.train import learn_task
from seca.methods import build_learner
from speed import bring_to_last_task, class_names, peak_memory, synchronize


class GeneratedImages(Dataset):
    """``count`` images drawn from N(0, 1) (what a normalised photo looks like to the encoder), seeded per item."""

    def __init__(self, count: int, size: int, seed: int):
        self.count, self.size, self.seed = count, size, seed

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return torch.randn(3, self.size, self.size, generator=generator), 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--method", default="seca")
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--increment", type=int, default=20)
    parser.add_argument("--images", type=int, default=2400, help="training images of the task")
    parser.add_argument("--test-images", type=int, default=6000, help="test images over every seen class")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--eval-batch", type=int, default=128)
    parser.add_argument("--amp", default="auto", help="train.amp: auto (bf16 on a GPU that has it), bf16, fp16, off")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    device = resolve_device(args.device)
    set_threads(args.threads)
    torch.manual_seed(0)
    backbone = load_backbone(args.model, None, device=device)
    names = class_names(args.classes)
    scenario = ClassIncrementalScenario(list(range(args.classes)), args.increment, args.increment)
    learner = build_learner(backbone, names, method_config(name=args.method), seed=0)
    bring_to_last_task(learner, scenario, backbone.image_size, device)
    last = scenario.tasks[-1]
    train = TaskImages(
        GeneratedImages(args.images, backbone.image_size, 1),
        range(args.images),
        [last.start + i % last.num_classes for i in range(args.images)],
    ).materialize(args.eval_batch)
    test = TaskImages(
        GeneratedImages(args.test_images, backbone.image_size, 2),
        range(args.test_images),
        [i % last.stop for i in range(args.test_images)],
    ).materialize(args.eval_batch)
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch, eval_batch_size=args.eval_batch, amp=args.amp, progress=False
    )
    pool = len(getattr(getattr(learner, "teacher", None), "pool", ()))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    synchronize(device)
    start = time.perf_counter()
    learn_task(learner, last, train, config, device, seed=0)
    synchronize(device)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    evaluate_tasks(learner, [test], args.eval_batch, device, amp_dtype(args.amp, device), progress=False)
    synchronize(device)
    eval_seconds = time.perf_counter() - start

    amp = amp_dtype(args.amp, device)
    print(
        f"{args.method} on {args.model}, task {last.index + 1} of {len(scenario)} ({last.num_classes} new classes, "
        f"{last.stop} seen, pool of {pool}), "
        f"{device}{f' ({torch.cuda.get_device_name(device)})' if device.type == 'cuda' else ''}, "
        f"precision {str(amp).replace('torch.', '') if amp else 'fp32'}, {torch.get_num_threads()} CPU threads"
    )
    print(
        f"train: {args.images} images x {args.epochs} epochs, batch {args.batch}: {train_seconds:.1f} s "
        f"({args.images * args.epochs / train_seconds:.0f} images/s, set-up and end of task included)"
    )
    print(
        f"evaluate: {args.test_images} images, batch {args.eval_batch}: {eval_seconds:.1f} s "
        f"({args.test_images / eval_seconds:.0f} images/s)"
    )
    print(f"peak memory: {peak_memory(device) / 2**30:.2f} GiB ({'allocated' if device.type == 'cuda' else 'RSS'})")


if __name__ == "__main__":
    main()
