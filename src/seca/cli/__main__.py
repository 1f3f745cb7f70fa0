"""``python -m seca.cli``: the same command line as ``seca``."""

import sys

from . import main

sys.exit(main())
