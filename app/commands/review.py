"""``python -m app review SESSION``: open a recorded session, or export from it headless.

Without export options it opens the review window (a display is needed). With
``--export-clip`` and/or ``--snapshot`` it writes the exports and exits, which works anywhere
(scripts, servers, CI); ``--info`` prints what the session holds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.argument_types import int_in
from app.commands.common import CommandError
from app.recording import RecordingError
from app.review.bookmarks import BookmarkError, BookmarkStore
from app.review.export import export_clip, export_snapshot
from app.review.session import ReviewSession

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``review`` subcommand to the CLI's subparsers."""
    review = sub.add_parser(
        "review",
        help="review a recorded session (no model needed): window, or headless exports",
    )
    review.add_argument("session", help="a session folder written by a recording")
    review.add_argument("--info", action="store_true", help="print what the session holds")
    review.add_argument("--export-clip", metavar="FILE", help="write a three-panel video (.mp4)")
    review.add_argument("--start", type=int, default=0, help="first frame of the clip")
    review.add_argument("--stop", type=int, help="one past the last frame of the clip")
    review.add_argument("--fps", type=float, help="clip frame rate (default: as recorded)")
    review.add_argument(
        "--snapshot",
        type=int,
        action="append",
        metavar="FRAME",
        help="write this frame's panels (PNG) and numbers (JSON); repeatable",
    )
    review.add_argument("--out", default="out/review", help="folder for snapshots")
    review.add_argument("--panel-height", type=int_in(16, 2160), help="panel height in exports")
    review.add_argument(
        "--include-paths",
        action="store_true",
        help="write the session folder's path into exports (default: no paths)",
    )
    review.set_defaults(handler=_cmd_review)


def _cmd_review(args: argparse.Namespace) -> int:
    try:
        return _review(args)
    except (RecordingError, BookmarkError, ValueError) as exc:
        raise CommandError(str(exc)) from exc


def _review(args: argparse.Namespace) -> int:
    folder = Path(args.session)
    if not folder.is_dir():
        raise CommandError(f"no such session folder: {folder}")
    session = ReviewSession(folder)
    for warning in session.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    exporting = bool(args.export_clip or args.snapshot)
    if args.info or exporting:
        bookmarks = BookmarkStore(folder)
        if args.info:
            print(session.describe())
            if not session.reader.closed_cleanly:
                print(f"  not closed cleanly: {session.reader.error or 'the recording was killed'}")
            for mark in bookmarks.all():
                print(f"  bookmark #{mark.position}: {mark.note}")
        if args.export_clip:
            report = export_clip(
                session,
                args.export_clip,
                start=args.start,
                stop=args.stop,
                fps=args.fps,
                height=args.panel_height,
            )
            print(f"wrote {report.path}: {report.frames} frames, {report.width}x{report.height}")
        for position in args.snapshot or ():
            if not -len(session) <= position < len(session):
                raise CommandError(
                    f"frame {position} is outside the session ({len(session)} frames)"
                )
            mark = bookmarks.get(position % len(session))
            files = export_snapshot(
                session,
                position,
                args.out,
                height=args.panel_height,
                note=None if mark is None else mark.note,
                include_paths=args.include_paths,
            )
            print(f"wrote {files.png} and {files.json}")
        return 0
    from app.ui.display import display_available

    if not display_available():
        raise CommandError(
            "the review window needs a display; without one use --info, --export-clip FILE "
            "or --snapshot FRAME"
        )
    from app.ui.viewer import run_review

    return run_review(folder)
