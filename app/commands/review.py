"""``python -m app review SESSION``: open a recorded session, or export from it headless.

Without export options it opens the review window (a display is needed). With
``--export-clip`` and/or ``--snapshot`` it writes the exports and exits, which works anywhere
(scripts, servers, CI); ``--info`` prints what the session holds, damaged chunks included.

Every argument and every output location is checked before any frame is read: a bad span or
frame is exit status 2, an output that cannot be written (a file where a folder is needed, a
read-only place, ``/proc``) exit status 3, each with one line and nothing written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.argument_types import float_in, int_in
from app.commands.common import CommandError, OutputError
from app.private_files import check_writable_folder
from app.recording import RecordingError
from app.review.bookmarks import BookmarkError, BookmarkStore
from app.review.export import clip_path, export_clip, export_snapshot, format_positions
from app.review.session import ReviewSession

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``review`` subcommand to the CLI's subparsers."""
    review = sub.add_parser(
        "review",
        help="review a recorded session (no model needed): window, or headless exports",
    )
    review.add_argument("session", help="a session folder written by a recording")
    review.add_argument(
        "--info",
        action="store_true",
        help="print what the session holds: frames, which are unreadable and why, bookmarks",
    )
    review.add_argument(
        "--export-clip",
        metavar="FILE",
        help="write a three-panel video (.mp4, or .avi); an existing folder (or a path ending "
        "in /) gets <session folder name>-clip.mp4 inside it; an existing file is replaced "
        "once the new clip is whole; unreadable frames are left out, with a warning",
    )
    review.add_argument("--start", type=int_in(0), help="first frame of the clip (default 0)")
    review.add_argument(
        "--stop", type=int_in(1), help="one past the last frame of the clip (default: the end)"
    )
    review.add_argument(
        "--fps",
        type=float_in(0.0, 1000.0, low_open=True),
        help="clip frame rate, > 0 and <= 1000 (default: as recorded)",
    )
    review.add_argument(
        "--snapshot",
        type=int,
        action="append",
        metavar="FRAME",
        help="write this frame's panels (PNG) and numbers (JSON); repeatable; negative counts "
        "from the end",
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
    clip_options = [f"--{name}" for name in ("start", "stop", "fps") if getattr(args, name)]
    if clip_options and not args.export_clip:
        raise CommandError(f"{', '.join(clip_options)}: only for a clip; add --export-clip FILE")
    session = ReviewSession(folder)
    for warning in session.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    exporting = bool(args.export_clip or args.snapshot)
    if not (args.info or exporting):
        return _window(folder)
    bookmarks = BookmarkStore(folder)
    clip = _check_clip(args, session) if args.export_clip else None
    snapshots = _check_snapshots(args, session)
    if args.info:
        print(session.describe())
        if not session.reader.closed_cleanly:
            print(f"  not closed cleanly: {session.reader.error or 'the recording was killed'}")
        for span in session.damaged:
            print(f"  {span.describe()}")
        for mark in bookmarks.all():
            print(f"  bookmark #{mark.position}: {mark.note}")
    if clip is not None:
        try:
            report = export_clip(
                session,
                clip,
                start=args.start or 0,
                stop=args.stop,
                fps=args.fps,
                height=args.panel_height,
            )
        except (OSError, RuntimeError) as exc:  # RuntimeError: no video format writes here
            raise OutputError.cannot_write("the clip", clip, exc) from exc
        if report.skipped:
            print(
                f"warning: {len(report.skipped)} unreadable frames left out of the clip "
                f"({format_positions(report.skipped)}): {'; '.join(report.skipped_because)}",
                file=sys.stderr,
            )
        print(f"wrote {report.path}: {report.frames} frames, {report.width}x{report.height}")
    for position in snapshots:
        mark = bookmarks.get(position)
        try:
            files = export_snapshot(
                session,
                position,
                args.out,
                height=args.panel_height,
                note=None if mark is None else mark.note,
                include_paths=args.include_paths,
            )
        except (OSError, RuntimeError) as exc:  # RuntimeError: the PNG does not encode
            raise OutputError.cannot_write("snapshots", Path(args.out), exc) from exc
        print(f"wrote {files.png} and {files.json}")
    return 0


def _check_clip(args: argparse.Namespace, session: ReviewSession) -> Path:
    """The clip's file, once its span and its folder are known to be usable."""
    count = len(session)
    start = args.start or 0
    stop = count if args.stop is None else args.stop
    if start >= stop:
        limit = f"--stop ({stop})" if args.stop is not None else f"the frame count ({count})"
        raise CommandError(f"--start ({start}) must be below {limit}")
    if stop > count:
        raise CommandError(f"--stop {stop} is past the session's end ({count} frames)")
    try:
        return clip_path(session, args.export_clip)
    except OSError as exc:
        raise OutputError.cannot_write("the clip", Path(args.export_clip), exc) from exc


def _check_snapshots(args: argparse.Namespace, session: ReviewSession) -> list[int]:
    """The snapshot frames as positions, once each is known to be readable and ``--out`` to
    be writable."""
    count = len(session)
    positions = []
    for given in args.snapshot or ():
        if not -count <= given < count:
            raise CommandError(f"frame {given} is outside the session ({count} frames)")
        position = given % count
        damage = session.reader.damage(position)
        if damage is not None:
            raise CommandError(f"frame {position} cannot be exported: {damage.describe()}")
        positions.append(position)
    if positions:
        try:
            check_writable_folder(args.out)
        except OSError as exc:
            raise OutputError.cannot_write("snapshots", Path(args.out), exc) from exc
    return positions


def _window(folder: Path) -> int:
    """Open the review window (a display is needed)."""
    from app.ui.display import display_available

    if not display_available():
        raise CommandError(
            "the review window needs a display; without one use --info, --export-clip FILE "
            "or --snapshot FRAME"
        )
    from app.ui.viewer import run_review

    return run_review(folder)
