"""``python -m models.train``: the training command line under its original name, for scripts
and ``torchrun -m models.train``. It is :mod:`models.training.cli`."""

from __future__ import annotations

import sys

from models.training.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
