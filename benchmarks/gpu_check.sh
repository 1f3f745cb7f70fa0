#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU and the project installed (pip install -e .), the speed
# benchmark at full size (ViT-B/16, 200 classes in 10 tasks, batch 64, timed in fp32, exactness checked in
# float64) and one full SECA task of ViT-B/16 on generated images in bf16 (2,400 images x 10 epochs,
# then 6,000 test images). Prints images/s and peak memory; about 5 minutes in all.
#
#     bash benchmarks/gpu_check.sh            # JSON of the speed benchmark goes to $OUT (default: .)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.}"

python - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu_check.sh: torch sees no CUDA GPU (torch " + torch.__version__ + ")")
print(f"GPU: {torch.cuda.get_device_name()}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB; "
      f"torch {torch.__version__}, CUDA {torch.version.cuda}")
PY

echo; echo "== speed benchmark: naive vs fast path, ViT-B/16, the last of 10 tasks, batch 64, fp32 (exactness in float64)"
python benchmarks/speed.py --device cuda --steps 5 --eval-batches 5 --json "$out/speed-gpu.json"

echo; echo "== one full SECA task: ViT-B/16, bf16, 2400 images x 10 epochs, batch 64; 6000 test images"
python benchmarks/task.py --device cuda --amp bf16
