"""``python -m app``: the viewer's command line (see ``python -m app --help``)."""

from app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
