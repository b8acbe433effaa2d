"""``python -m transferlab`` — the command line; this is what ``torchrun -m transferlab`` runs."""

import sys

from transferlab.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
