"""seca: continual learning with CLIP -- SECA (AAAI 2026) and its baselines, as a library and a CLI."""

__version__ = "0.1.0"
