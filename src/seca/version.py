"""The package's version, on the ground floor: written into checkpoints and results, shown by ``seca --version``."""

__version__ = "0.2.0"
