"""Which scaled-dot-product attention kernel is fastest for the image encoder on this device.

Times, interleaved, the image encoder's forward (inference, no gradient) and forward and backward (a
training step's image side, adapters in every block) with torch's own kernel choice and with each kernel
forced, and prints the medians and the largest difference of the outputs:

    python benchmarks/attention.py                       # the offline seca-shapes CLIP, batch 32
    python benchmarks/attention.py --model ViT-B-16 --batch 8
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from seca.clip.backbone import load_backbone
from seca.engine.device import resolve_device, set_threads

KERNELS = {
    "torch's choice": contextlib.nullcontext,
    "math": lambda: sdpa_kernel([SDPBackend.MATH]),
    "flash": lambda: sdpa_kernel([SDPBackend.FLASH_ATTENTION]),
    "efficient": lambda: sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="seca-shapes")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    set_threads(args.threads)
    backbone = load_backbone(args.model, None, device=device)
    adapters = backbone.new_adapters(range(backbone.num_blocks), 16, 0.1, 0.1)
    adapters.train()
    images = torch.randn(
        args.batch, 3, backbone.image_size, backbone.image_size, generator=torch.Generator().manual_seed(0)
    ).to(device)

    def forward():
        with torch.no_grad():
            return backbone.encode_image(images)

    def forward_backward():
        backbone.encode_image(images, adapters).sum().backward()

    usable, outputs = {}, {}
    for name, kernel in KERNELS.items():
        try:
            with kernel():
                outputs[name] = forward()
                forward_backward()
            usable[name] = kernel
        except RuntimeError:  # a kernel this device or dtype does not have
            pass
    times = {name: {"forward": [], "forward+backward": []} for name in usable}
    for _ in range(args.repeats):
        for name, kernel in usable.items():
            for part, run in (("forward", forward), ("forward+backward", forward_backward)):
                with kernel():
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                    run()
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    times[name][part].append(time.perf_counter() - start)
    reference = outputs["torch's choice"]
    print(
        f"{args.model} on {device} ({torch.get_num_threads()} threads), batch {args.batch}, "
        f"medians of {args.repeats} interleaved runs"
    )
    print(f"{'kernel':<16} {'forward ms':>11} {'fwd+bwd ms':>11} {'max |diff| of features':>24}")
    for name in usable:
        fwd, both = (1000 * statistics.median(times[name][p]) for p in ("forward", "forward+backward"))
        diff = float((outputs[name] - reference).abs().max())
        print(f"{name:<16} {fwd:>11.1f} {both:>11.1f} {diff:>24.2e}")


if __name__ == "__main__":
    main()
