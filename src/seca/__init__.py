"""seca: continual learning with CLIP -- SECA (AAAI 2026) and its baselines, as a library and a CLI.

import seca
model = seca.load("runs/imagenet-r/seca/seed0/model.safetensors")
model.predict(["image.jpg"])

model = seca.new("seca-shapes")         # or a model that knows no class yet, grown with model.learn(folder)
"""

import os

# OpenMP threads that wait for work sleep instead of spinning: on a shared or loaded CPU, spinning threads
# steal the cores the working ones need (measured: a training step 2.4x slower with one core busy elsewhere).
# It must be set before torch loads its OpenMP runtime; an explicit OMP_WAIT_POLICY wins (docs/performance.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# The offline world's pretrained CLIP, reachable as `backbone.pretrained: shapes` (built on first use).
from .clip.archs import register_pretrained
from .version import __version__

register_pretrained("shapes", "seca-shapes", "seca.offline.pretrain:ensure_shapes_clip")
__all__ = ["load", "new", "SecaModel", "Prediction", "__version__"]


def __getattr__(name: str):
    # The API pulls in torch and open_clip; import it on first use so `seca --help` stays quick.
    if name in ("load", "new", "SecaModel", "Prediction"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'seca' has no attribute '{name}'")
