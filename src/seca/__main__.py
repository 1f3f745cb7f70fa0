"""``python -m seca``: the command line, as torchrun starts it (``torchrun --nproc_per_node N -m seca run ...``)."""

import sys

from .cli import main

sys.exit(main())
