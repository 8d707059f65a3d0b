"""``python -m lens_relearn``: the command line (what ``torchrun -m lens_relearn`` starts on every rank)."""

import sys

from lens_relearn.cli import main

sys.exit(main())
