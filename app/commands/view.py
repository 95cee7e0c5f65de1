"""``python -m app view``: the live viewer, the default command (``python -m app [options]``).

:func:`open_viewer` is also what ``python -m app run`` (:mod:`app.commands.run`) calls to open
the viewer on the shipped demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands.common import CommandError, add_backend_option
from app.explain import METHODS

__all__ = ["add_parser", "add_view_arguments", "open_viewer"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``view`` subcommand to the CLI's subparsers."""
    view = sub.add_parser(
        "view", help="the live viewer (the default): raw | enhanced map | risk map, latency"
    )
    add_view_arguments(view)
    view.set_defaults(handler=open_viewer)


def add_view_arguments(view: argparse.ArgumentParser) -> None:
    """The viewer's options: what to open, how to explain it, where to write."""
    view.add_argument(
        "--source",
        help="VIDEO | DEVICE_INDEX | /dev/videoN | FOLDER of images; default: the demo video",
    )
    view.add_argument(
        "--checkpoint", help="model checkpoint (.pt); default: the last model used, else the demo"
    )
    view.add_argument(
        "--method", choices=list(METHODS), help="attribution method; default: the last used"
    )
    view.add_argument("--passes", type=int, help="MC Dropout passes T (1-64); default: last used")
    view.add_argument("--mode", choices=["live", "analysis"], help="default: the last used")
    view.add_argument("--device", help="auto, cpu, cuda, cuda:N (default auto)")
    add_backend_option(view, default=None)
    view.add_argument(
        "--class", dest="target_class", help="class to explain (name or index); default: predicted"
    )
    view.add_argument(
        "--loop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replay files in a loop (default: as last time, on at first)",
    )
    view.add_argument("--snapshots", help="folder for snapshots (S key); default ~/pcle-snapshots")
    view.add_argument(
        "--recordings", help="folder for recorded sessions (Ctrl+R); default ~/pcle-sessions"
    )
    view.add_argument(
        "--settings", help="INI file for remembered settings and recent sources (default: per user)"
    )
    view.add_argument(
        "--record", action="store_true", help="record the session from the first frame on"
    )
    view.add_argument("--fullscreen", action="store_true", help="start full screen")


def open_viewer(args: argparse.Namespace) -> int:
    """The ``view`` handler: resolve the options, open the viewer; its exit status."""
    from app.pipeline import SettingsError

    try:
        from app.ui.options import resolve_options
        from app.ui.recent import PreferencesStore
        from app.ui.viewer import run_viewer
    except ImportError as exc:  # e.g. a Qt library missing on the system
        raise CommandError(f"the viewer cannot start: {exc}") from exc

    if args.passes is not None and not 1 <= args.passes <= 64:
        raise CommandError(f"--passes must be from 1 to 64, got {args.passes}")
    if args.checkpoint is not None and not Path(args.checkpoint).expanduser().is_file():
        raise CommandError(f"no such checkpoint file: {args.checkpoint}")
    store = PreferencesStore(args.settings)
    try:
        options = resolve_options(
            store.load(),
            source=args.source,
            checkpoint=args.checkpoint,
            method=args.method,
            passes=args.passes,
            mode=args.mode,
            device=args.device,
            backend=args.backend,
            target_class=args.target_class,
            loop=args.loop,
            snapshot_dir=args.snapshots,
            recordings_dir=args.recordings,
        )
    except SettingsError as exc:
        raise CommandError(str(exc)) from exc
    return run_viewer(options, store, fullscreen=args.fullscreen, record=args.record)
