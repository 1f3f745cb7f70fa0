"""seca: continual learning with CLIP -- SECA (AAAI 2026) and its baselines, as a library and a CLI.

    import seca
    model = seca.load("runs/imagenet-r/seca/seed0/model.safetensors")
    model.predict(["image.jpg"])
"""

__version__ = "0.1.0"
__all__ = ["load", "SecaModel", "Prediction", "__version__"]


def __getattr__(name: str):
    # The API pulls in torch and open_clip; import it on first use so `seca --help` stays quick.
    if name in ("load", "SecaModel", "Prediction"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'seca' has no attribute '{name}'")
