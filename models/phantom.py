"""``python -m models.phantom``: the phantom command line under its original name. It is
:func:`models.data.phantom.main`."""

from __future__ import annotations

import sys

from models.data.phantom import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
