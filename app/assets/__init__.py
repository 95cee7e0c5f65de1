"""The files the project ships inside the package: the phantom demo video and demo model.

They lie in this package's folder, so an installed wheel has them as a checkout does. Their
file names come from :mod:`models.demo`, which builds them
(``python -m app demo-model --out app/assets``); this module only says where they are, so the
viewer's defaults, the ``run`` and ``soak`` commands and the tests find them in one place.
"""

from __future__ import annotations

from pathlib import Path

from models.demo import DEMO_MODEL, DEMO_VIDEO

__all__ = ["ASSETS", "DEMO_CHECKPOINT", "DEMO_SOURCE", "demo_assets"]

ASSETS = Path(__file__).resolve().parent
"""The folder of the shipped files (``app/assets/``)."""
DEMO_SOURCE = ASSETS / DEMO_VIDEO
"""The phantom demo video: the viewer's source unless told otherwise."""
DEMO_CHECKPOINT = ASSETS / DEMO_MODEL
"""The phantom-trained demo model: the viewer's model unless told otherwise."""


def demo_assets() -> tuple[Path, Path]:
    """The demo video and model.

    Raises:
        FileNotFoundError: either is missing, with how to rebuild it.
    """
    for path in (DEMO_SOURCE, DEMO_CHECKPOINT):
        if not path.exists():
            raise FileNotFoundError(
                f"the demo asset {path} is missing; rebuild it with "
                "`python -m app demo-model --out app/assets`"
            )
    return DEMO_SOURCE, DEMO_CHECKPOINT
