"""Fuzzed inputs (hypothesis): random and mutated bytes for a checkpoint, a session manifest,
bookmarks, a frame image, a video container and a Cellvizio .mkt file, and structurally
mutated payloads.

Every outcome is the project's own error class with a message naming the file, or a valid
result; no other exception, no hang, and the input is never modified (bytes, mtime, no file
added or removed next to it).

The hypothesis profiles are registered in ``tests/conftest.py``: ``ci`` (the default:
derandomized, few examples, no database) and ``fuzz`` for long campaigns::

    HYPOTHESIS_PROFILE=fuzz QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -x -q \\
        tests/test_fuzz_inputs.py
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from hypothesis import currently_in_test_context, event, example, given
from hypothesis import strategies as st

from app.commands.common import CommandError
from app.commands.explain import read_frame
from app.pipeline.mkt import read_mkt_index
from app.pipeline.sources import (
    ImageFolderSource,
    MktFileSource,
    SourceError,
    SourceState,
    VideoFileSource,
    open_source,
)
from app.recording import RecordingError, SessionReader, SessionRecorder
from app.recording.manifest import MANIFEST_NAME, read_manifest
from app.review import BookmarkError, BookmarkStore, ReviewSession, export_snapshot
from app.review.bookmarks import BOOKMARKS_NAME
from models.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    read_metadata,
)
from models.data.phantom import PhantomConfig, PhantomVideo, write_video
from tests.mkt_files import frames_12bit, write_mkt
from tests.pipeline_support import tiny_checkpoint

pytestmark = pytest.mark.slow

MAX_READS = 500
"""A mutated container that delivers more frames than this is taken for a hang."""

# ------------------------------------------------------------------------------ strategies

WEIRD_STRINGS = ["", "NaN", "nan", "Infinity", "-inf", "1e400", "0x10", "\x00", "é" * 3, "../x"]
WEIRD_NUMBERS = [
    0,
    -1,
    1,
    2**31,
    2**63,
    10**400,
    -(10**400),
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -0.0,
    0.5,
]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(WEIRD_STRINGS)
    | st.sampled_from(WEIRD_NUMBERS)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
"""JSON-like values: wrong types, huge numbers, NaN and infinities, NaN strings, nesting."""

HUGE = "<an int of 5000 digits>"
"""Stands for an int with more digits than Python converts to text
(``sys.get_int_max_str_digits``) in what hypothesis draws and prints; :func:`realise` puts
the int in."""
pickle_keys = st.text(max_size=8) | st.integers() | st.sampled_from([HUGE, None, ("a", 1)])
pickle_values = st.recursive(
    json_scalars | st.just(HUGE) | st.lists(json_scalars, min_size=3, max_size=3),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(pickle_keys, inner, max_size=4)
    ),
    max_leaves=8,
)
"""What a pickle (and so a checkpoint) can hold besides JSON: tuples, non-string keys, ints
too large to print."""


def realise(value: Any) -> Any:
    """``value`` with every :data:`HUGE` (also in keys) replaced by the int it stands for."""
    if isinstance(value, str) and value == HUGE:
        return 10**5000
    if isinstance(value, list):
        return [realise(v) for v in value]
    if isinstance(value, tuple):
        return tuple(realise(v) for v in value)
    if isinstance(value, dict):
        return {realise(k): realise(v) for k, v in value.items()}
    return value


@st.composite
def positions(draw: st.DrawFn, size: int, hot: Sequence[tuple[int, int]] = ()) -> int:
    """An offset in ``[0, size)``, usually inside one of the ``hot`` (start, stop) regions."""
    regions = [(max(0, a), min(size, b)) for a, b in hot if min(size, b) > max(0, a)]
    if regions and draw(st.integers(0, 3)):
        start, stop = draw(st.sampled_from(regions))
        return draw(st.integers(start, stop - 1))
    return draw(st.integers(0, size - 1))


@st.composite
def mutations(draw: st.DrawFn, size: int, hot: Sequence[tuple[int, int]] = ()) -> list[Any]:
    """1-3 byte-level mutations of a ``size``-byte input (flips, truncation, insertion,
    deletion, overwrite), or fully random bytes (sometimes behind the input's first bytes).

    The operations, not the bytes, are what hypothesis prints for a failing example; apply
    them with :func:`apply`.
    """
    if not draw(st.integers(0, 3)):
        return [
            ("random", draw(st.sampled_from([0, 0, 4, 16, 64])), draw(st.binary(max_size=2048)))
        ]
    ops: list[Any] = []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "flip", "truncate", "insert", "delete", "overwrite"]))
        at = draw(positions(max(size, 1), hot))
        if op == "flip":
            ops.append((op, at, draw(st.integers(1, 255))))
        elif op == "truncate":
            ops.append((op, at))
        elif op == "delete":
            ops.append((op, at, draw(st.integers(1, 64))))
        else:
            ops.append((op, at, draw(st.binary(min_size=1, max_size=64))))
    return ops


def apply(original: bytes, ops: list[Any]) -> bytes:
    """``original`` after the :func:`mutations` ``ops`` (offsets past the end are clamped)."""
    data = bytearray(original)
    for op, at, *arg in ops:
        if op == "random":
            return original[:at] + arg[0]
        at = min(at, max(len(data) - 1, 0))
        if op == "flip" and data:
            data[at] ^= arg[0]
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = arg[0]
        elif op == "delete":
            del data[at : at + arg[0]]
        elif op == "overwrite":
            data[at : at + len(arg[0])] = arg[0]
    return bytes(data)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path into a JSON document (dict keys and list indices)."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, inner in items:
        yield (*prefix, key)
        yield from _paths(inner, (*prefix, key))


@st.composite
def edited_json(draw: st.DrawFn, document: Any) -> str:
    """``document`` with 1-3 values replaced by fuzzed JSON or deleted, or a whole random JSON
    value; written with NaN/Infinity literals allowed, as a hand-edited file might hold."""
    if not draw(st.integers(0, 7)):
        value = draw(json_values)
    else:
        value = copy.deepcopy(document)
        for _ in range(draw(st.integers(1, 3))):
            paths = list(_paths(value))
            if not paths:
                break
            path = draw(st.sampled_from(paths))
            parent = value
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.integers(0, 4)):
                parent[path[-1]] = draw(json_values)
            else:
                del parent[path[-1]]
    return json.dumps(value, allow_nan=True)


# ------------------------------------------------------------------------------ checks


def _snapshot(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every entry under ``folder`` (and the folder): bytes for files, and mtimes."""
    entries = {".": (None, folder.stat().st_mtime_ns)}
    for path in sorted(folder.rglob("*")):
        stat = path.stat()
        data = path.read_bytes() if path.is_file() else None
        entries[str(path.relative_to(folder))] = (data, stat.st_mtime_ns)
    return entries


def _assert_unchanged(folder: Path, before: dict[str, tuple[bytes | None, int]]) -> None:
    after = _snapshot(folder)
    assert set(after) == set(before), f"files added or removed: {set(after) ^ set(before)}"
    changed = [name for name in before if after[name] != before[name]]
    assert not changed, f"modified: {changed}"


def _assert_specific(exc: BaseException, *names: str) -> None:
    """The message names one of ``names`` (the file) and passes on no advice to unpickle; the
    kind of error is counted (``--hypothesis-show-statistics`` lists them)."""
    message = str(exc)
    assert any(name in message for name in names), f"message names no file: {message!r}"
    assert "weights_only=False" not in message, message
    assert "Traceback" not in message, message
    kind = re.sub(r"/[^ ]*/", "", message).split(", got ")[0]  # no folders, no fuzzed value
    _count(f"{type(exc).__name__}: {kind[:70]}")


def _count(outcome: str) -> None:
    """Count an outcome for hypothesis's statistics (a no-op outside a hypothesis test)."""
    if currently_in_test_context():
        event(outcome)


def _work_dir(root: Path) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(dir=root)


@contextlib.contextmanager
def _damaged_recording(root: Path, name: str, content: bytes) -> Iterator[Path]:
    """``content`` written as ``name`` in a fresh folder; ``explain``'s reader must read it or
    refuse it by name, and nothing in the folder may change while the test reads it."""
    with _work_dir(root) as work:
        folder = Path(work)
        path = folder / name
        path.write_bytes(content)
        before = _snapshot(folder)
        try:
            _assert_image(read_frame(path))
        except CommandError as exc:
            _assert_specific(exc, path.name)
        yield path
        _assert_unchanged(folder, before)


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def checkpoint(root: Path) -> Path:
    """A real checkpoint of the smallest architecture."""
    return tiny_checkpoint(root / "model" / "tiny.pt", arch="mobilenet_v2")


@pytest.fixture(scope="module")
def checkpoint_bytes(checkpoint: Path) -> tuple[bytes, list[tuple[int, int]]]:
    """The checkpoint's bytes and its structural regions: the pickle (``data.pkl``), the small
    records, the zip's local headers and the central directory at the end."""
    data = checkpoint.read_bytes()
    hot = [(0, 64), (len(data) - 4096, len(data))]
    with zipfile.ZipFile(checkpoint) as zf:
        for info in zf.infolist():
            if info.file_size <= 4096 or info.filename.endswith("data.pkl"):
                hot.append((info.header_offset, info.header_offset + 128 + info.file_size))
            else:
                hot.append((info.header_offset, info.header_offset + 128))
    return data, hot


@pytest.fixture(scope="module")
def checkpoint_members(checkpoint: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(checkpoint) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


@pytest.fixture(scope="module")
def checkpoint_payload(checkpoint: Path) -> dict[str, Any]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def session(root: Path, checkpoint: Path) -> Path:
    """A session recorded by the real pipeline on a phantom video, then its model removed."""
    from app.pipeline.headless import process
    from app.pipeline.settings import PipelineSettings

    video, _ = write_video(
        root / "session-src" / "clip.avi",
        PhantomVideo("meningioma", 2, seed=3, config=PhantomConfig(height=48, width=64)),
    )
    settings = PipelineSettings(checkpoint=checkpoint, method="gradcam++", passes=2, seed=1)
    folder = root / "session"
    with SessionRecorder(folder, settings=settings, source=video) as recorder:
        process(video, settings, root / "session-out", progress=False, on_result=recorder.write)
    assert len(SessionReader(folder)) == 2
    return folder


@pytest.fixture(scope="module")
def bookmarks_text(root: Path) -> str:
    folder = root / "bookmarks"
    folder.mkdir()
    store = BookmarkStore(folder)
    store.add(0, "first")
    store.add(3, "vessel wall, high CV — é ✓")
    store.add(12, "")
    return (folder / BOOKMARKS_NAME).read_text(encoding="utf-8")


def _frame(kind: str) -> np.ndarray:
    yy, xx = np.mgrid[:24, :32]
    disc = ((yy - 12) ** 2 + (xx - 16) ** 2 <= 100).astype(np.float64)
    grey = disc * (0.5 + 0.5 * np.sin(xx / 3.0) * np.cos(yy / 4.0))
    if kind == "grey16":
        return (grey * 65535).astype(np.uint16)
    image = (grey * 255).astype(np.uint8)
    return np.stack([image, image[::-1], image[:, ::-1]], axis=2) if kind == "bgr8" else image


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    """Small frame images as OpenCV writes them: PNG and TIFF, 8/16-bit grey and colour."""
    encoded = {}
    for suffix, kind in [
        (".png", "grey8"),
        (".png", "grey16"),
        (".png", "bgr8"),
        (".tif", "grey16"),
        (".tif", "bgr8"),
    ]:
        ok, data = cv2.imencode(suffix, _frame(kind))
        assert ok
        encoded[f"{kind}{suffix}"] = data.tobytes()
    return encoded


@pytest.fixture(scope="module")
def videos(root: Path) -> dict[str, bytes]:
    """Small phantom videos: FFV1 in .avi, MPEG-4 part 2 in .mp4."""
    made = {}
    config = PhantomConfig(height=48, width=64)
    for name, codec in [("clip.avi", None), ("clip.mp4", "mp4v")]:
        path, _ = write_video(
            root / "videos" / name,
            PhantomVideo("glioblastoma", 6, seed=5, config=config),
            24.0,
            codec,
        )
        made[name] = path.read_bytes()
    return made


# ------------------------------------------------------------------------------ checkpoint


def _check_checkpoint_file(path: Path) -> None:
    """read_metadata and load_checkpoint: a CheckpointError naming the file, or a model."""
    before = _snapshot(path.parent)
    try:
        meta = read_metadata(path)
    except CheckpointError as exc:
        _assert_specific(exc, path.name)
        assert "cannot read" not in str(exc), f"a readable file called unreadable: {exc}"
        with pytest.raises(CheckpointError) as again:
            load_checkpoint(path)  # whatever read_metadata refuses does not load either
        _assert_specific(again.value, path.name)
    else:
        _count("valid checkpoint")
        assert meta.num_classes >= 2
        loaded = load_checkpoint(path)  # read_metadata promises that the file loads
        if max(loaded.metadata.input_size) <= 256:  # a fuzzed size can be huge, and valid
            with torch.no_grad():
                out = loaded.model(torch.zeros(1, 3, *loaded.metadata.input_size))
            assert out.shape == (1, loaded.metadata.num_classes)
    _assert_unchanged(path.parent, before)


@given(data=st.data())
@example(data=None)
def test_mutated_checkpoint_bytes(
    root: Path, checkpoint_bytes: tuple[bytes, list[tuple[int, int]]], data: st.DataObject | None
) -> None:
    original, hot = checkpoint_bytes
    ops = [("truncate", 100)] if data is None else data.draw(mutations(len(original), hot), "ops")
    content = apply(original, ops)
    with _work_dir(root) as work:
        path = Path(work) / "model.pt"
        path.write_bytes(content)
        _check_checkpoint_file(path)


@given(data=st.data())
def test_checkpoint_zip_with_a_mutated_record(
    root: Path, checkpoint_members: list[tuple[str, bytes]], data: st.DataObject
) -> None:
    """The zip itself is well-formed; one record inside (the pickle, a tensor's storage, the
    format files) is mutated, dropped or duplicated."""
    small = [i for i, (name, content) in enumerate(checkpoint_members) if len(content) <= 40_000]
    index = data.draw(st.sampled_from(small), "record")
    name, content = checkpoint_members[index]
    action = data.draw(st.sampled_from(["mutate", "mutate", "mutate", "drop", "rename"]), "action")
    members = list(checkpoint_members)
    if action == "mutate":
        members[index] = (name, apply(content, data.draw(mutations(len(content)), "ops")))
    elif action == "drop":
        del members[index]
    else:
        members[index] = (name + data.draw(st.sampled_from(["x", "/", ".1"])), content)
    with _work_dir(root) as work:
        path = Path(work) / "model.pt"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            for member, payload in members:
                zf.writestr(member, payload)
        _check_checkpoint_file(path)


TENSOR_DTYPES = [
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
    torch.int64,
    torch.uint8,
    torch.bool,
    torch.complex64,
]


@given(data=st.data())
def test_checkpoint_with_fuzzed_structure(
    root: Path, checkpoint_payload: dict[str, Any], data: st.DataObject
) -> None:
    """A file torch.save wrote, whose top level, metadata or weights are wrong: wrong types,
    missing keys, huge numbers, NaN, tensors of another dtype or shape."""
    payload = dict(checkpoint_payload)
    payload["metadata"] = dict(payload["metadata"])
    payload["state_dict"] = dict(payload["state_dict"])
    for _ in range(data.draw(st.integers(1, 3), "edits")):
        where = data.draw(st.sampled_from(["top", "metadata", "metadata", "weights"]), "where")
        if where == "weights":
            weights = payload.get("state_dict")
            if not isinstance(weights, dict) or not weights:
                continue
            key = data.draw(st.sampled_from(list(weights)), "key")
            dtype = data.draw(st.sampled_from(TENSOR_DTYPES), "dtype")
            shape = data.draw(
                st.sampled_from([tuple(getattr(weights[key], "shape", ())), (), (3,), (2, 2)]),
                "shape",
            )
            fill = data.draw(st.sampled_from([0.0, 1.0, math.nan, math.inf]), "fill")
            if dtype.is_floating_point or dtype.is_complex:
                value: Any = torch.full(shape, fill, dtype=dtype)
            else:
                value = torch.zeros(shape, dtype=dtype)
            action = data.draw(st.sampled_from(["replace", "replace", "drop", "add"]), "action")
            if action == "drop":
                del weights[key]
            elif action == "add":
                weights[data.draw(pickle_keys, "new key")] = value
            else:
                weights[key] = value
            continue
        target = payload if where == "top" else payload.get("metadata")
        if not isinstance(target, dict):
            continue
        keys = [*target, "format_version", "unknown"]
        key = data.draw(st.sampled_from(keys) | pickle_keys, "field")
        if data.draw(st.integers(0, 4), "replace"):
            target[key] = data.draw(pickle_values, "value")
        else:
            target.pop(key, None)
    with _work_dir(root) as work:
        path = Path(work) / "model.pt"
        torch.save(realise(payload), path)
        _check_checkpoint_file(path)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("dropout", 10**400, "'dropout' must be a number in [0, 1)"),
        ("mean", [10**400, 0.5, 0.5], "'mean' must be 3 finite numbers"),
        ("std", [0.25, 0.25, -(10**400)], "'std' must be 3 positive finite numbers"),
        ("arch", HUGE, "truncated or corrupt (UnpicklingError: Unsupported operand"),
    ],
    ids=["huge-int-dropout", "huge-int-mean", "huge-negative-std", "unpicklable-int"],
)
def test_checkpoint_values_found_by_fuzzing(
    root: Path, checkpoint_payload: dict[str, Any], field: str, value: Any, expected: str
) -> None:
    """Regressions: an int beyond float range (an OverflowError escaped), and an int too large
    for the weights-only unpickler (called a malicious file, for the tensor rebuilders every
    checkpoint imports)."""
    payload = {**checkpoint_payload, "metadata": {**checkpoint_payload["metadata"]}}
    payload["metadata"][field] = realise(value)
    with _work_dir(root) as work:
        path = Path(work) / "model.pt"
        torch.save(payload, path)
        for reader in (read_metadata, load_checkpoint):
            with pytest.raises(CheckpointError) as error:
                reader(path)
            assert expected in str(error.value) and path.name in str(error.value)
            assert "malicious" not in str(error.value)


@pytest.mark.parametrize("size", [4097, 20_000, 65_537])
def test_a_checkpoint_cut_short_is_called_truncated(
    root: Path, checkpoint_bytes: tuple[bytes, list[tuple[int, int]]], size: int
) -> None:
    """Regression: torch's zip reader fails on these with OSError EINVAL, which was reported
    as "cannot read checkpoint ...: [Errno 22] Invalid argument", a disk problem."""
    with _work_dir(root) as work:
        path = Path(work) / "model.pt"
        path.write_bytes(checkpoint_bytes[0][:size])
        with pytest.raises(CheckpointError, match="is not a PyTorch checkpoint, or is truncated"):
            read_metadata(path)


def test_fuzzed_structure_reaches_a_valid_checkpoint(
    root: Path, checkpoint_payload: dict[str, Any]
) -> None:
    """The structural fuzzer's starting point is a valid checkpoint (the harness is sound)."""
    assert checkpoint_payload["format"] == FORMAT
    assert checkpoint_payload["format_version"] == FORMAT_VERSION
    with _work_dir(root) as work:
        path = Path(work) / "model.pt"
        torch.save(checkpoint_payload, path)
        assert read_metadata(path).arch == "mobilenet_v2"


# ------------------------------------------------------------------------------ session


def _check_session(session: Path, root: Path, manifest: bytes) -> str | None:
    """Open a copy of the session whose manifest is ``manifest`` as the review does; the
    RecordingError's message, or None when everything opened."""
    error = None
    with _work_dir(root) as work:
        folder = Path(work) / "session"
        shutil.copytree(session, folder)
        (folder / MANIFEST_NAME).write_bytes(manifest)
        before = _snapshot(folder)
        try:
            assert isinstance(read_manifest(folder), dict)
            reader = SessionReader(folder)
            assert isinstance(reader.closed_cleanly, bool)
            assert reader.error is None or isinstance(reader.error, str)
            assert len(reader) == 2
            timeline = reader.timeline()
            assert timeline.time_s.shape == (2,)
            image, record = reader.frame(0)
            assert image.size and record.position == 0
            review = ReviewSession(folder)
            assert isinstance(review.describe(), str)
            assert isinstance(review.fps, float)
            frame = review.frame(1)
            assert all(isinstance(text, str) for text in frame.headers())
            assert frame.panels(height=32).dtype == np.uint8
            json.dumps(frame.numbers(), allow_nan=False)
            export_snapshot(review, 1, Path(work) / "export")
        except RecordingError as exc:
            _assert_specific(exc, folder.name, MANIFEST_NAME)
            error = str(exc)
        else:
            _count("valid session")
        _assert_unchanged(folder, before)
    return error


@given(data=st.data())
@example(data=None)
def test_mutated_session_manifest_bytes(session: Path, root: Path, data: Any) -> None:
    original = (session / MANIFEST_NAME).read_bytes()
    ops = [("insert", 0, b"\xff\xfe")] if data is None else data.draw(mutations(len(original)))
    content = apply(original, ops)
    _check_session(session, root, content)


@given(data=st.data())
@example(data=None)
def test_session_manifest_with_fuzzed_structure(session: Path, root: Path, data: Any) -> None:
    document = json.loads((session / MANIFEST_NAME).read_text(encoding="utf-8"))
    if data is None:
        text = "[" * 100_000 + "]" * 100_000  # nesting deeper than the JSON parser recurses
    else:
        text = data.draw(edited_json(document), "manifest")
    _check_session(session, root, text.encode("utf-8"))


def _edited(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    edited = copy.deepcopy(document)
    parent = edited
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return edited


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("checkpoint",), True, "field 'checkpoint' must be an object, got True (bool)"),
        (("monotonic_start",), "", "field 'monotonic_start' must be a finite number"),
        (("monotonic_start",), None, None),
        (("monotonic_start",), 10**400, "field 'monotonic_start' must be a finite number"),
        (("software",), {"version": math.inf}, "field 'software' must be an object of strings"),
        (("checkpoint", "metadata", "class_names"), None, None),
        (("checkpoint", "metadata", "input_size"), None, "the manifest does not describe"),
        (("checkpoint", "metadata", "input_size"), ["64", 64], "2 positive integers"),
        (("format_version",), "1", "'format_version' must be a positive integer, got '1'"),
    ],
)
def test_session_manifest_values_found_by_fuzzing(
    session: Path, root: Path, path: tuple[str, ...], value: Any, expected: str | None
) -> None:
    """Regressions: these escaped as AttributeError, ValueError, TypeError (from the reader,
    the review session or the snapshot export), or got a misleading message."""
    document = json.loads((session / MANIFEST_NAME).read_text(encoding="utf-8"))
    text = json.dumps(_edited(document, path, value), allow_nan=True)
    error = _check_session(session, root, text.encode("utf-8"))
    if expected is None:
        assert error is None
    else:
        assert error is not None and expected in error


# ------------------------------------------------------------------------------ bookmarks


@given(data=st.data())
@example(data=None)
def test_mutated_bookmarks(bookmarks_text: str, root: Path, data: Any) -> None:
    """A damaged ``bookmarks.json``: a BookmarkError naming it, or bookmarks that make sense."""
    if data is None:
        content = b"\xff" + bookmarks_text.encode("utf-8")  # not UTF-8
    elif data.draw(st.booleans(), "as bytes"):
        original = bookmarks_text.encode("utf-8")
        content = apply(original, data.draw(mutations(len(original)), "ops"))
    else:
        content = data.draw(edited_json(json.loads(bookmarks_text)), "document").encode("utf-8")
    with _work_dir(root) as work:
        folder = Path(work)
        (folder / BOOKMARKS_NAME).write_bytes(content)
        before = _snapshot(folder)
        try:
            store = BookmarkStore(folder)
        except BookmarkError as exc:
            _assert_specific(exc, BOOKMARKS_NAME)
        else:
            marks = store.all()
            assert len(store) == len(marks)
            for mark in marks:
                assert isinstance(mark.position, int) and not isinstance(mark.position, bool)
                assert mark.position >= 0 and mark.position in store
                assert all(
                    isinstance(text, str)
                    for text in (mark.note, mark.created_utc, mark.modified_utc)
                )
        _assert_unchanged(folder, before)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x80[]", "not UTF-8 text"),
        (b'{"format": "pcle-viewer-bookmarks", "bookmarks": [{"position": 1e400}]}', "position"),
        (b'{"format": "pcle-viewer-bookmarks", "bookmarks": [{"position": -2}]}', "position"),
        (b'{"format": "pcle-viewer-bookmarks", "bookmarks": [{"position": "3"}]}', "position"),
        (b'{"format": "pcle-viewer-bookmarks", "bookmarks": {"position": 3}}', "not a list"),
        (b'{"format": "pcle-viewer-bookmarks", "bookmarks": [{"position": 3, "note": 1}]}', "note"),
        (b"[" * 100_000, "not JSON"),
    ],
    ids=["not-utf8", "infinite", "negative", "text", "not-a-list", "number-note", "deep"],
)
def test_bookmarks_found_by_fuzzing(root: Path, content: bytes, expected: str) -> None:
    """Regressions: UnicodeDecodeError, OverflowError and RecursionError escaped, and
    positions that are not frame numbers were taken (or turned into one)."""
    with _work_dir(root) as work:
        (Path(work) / BOOKMARKS_NAME).write_bytes(content)
        with pytest.raises(BookmarkError, match="not a readable bookmarks file") as error:
            BookmarkStore(work)
        assert expected in str(error.value)
        assert (Path(work) / BOOKMARKS_NAME).read_bytes() == content


# ------------------------------------------------------------------------------ frame image


def _assert_image(image: object) -> None:
    assert isinstance(image, np.ndarray) and image.size > 0
    assert image.ndim in (2, 3) and image.dtype in (np.uint8, np.uint16, np.float32)


@given(data=st.data())
def test_mutated_frame_image(images: dict[str, bytes], root: Path, data: st.DataObject) -> None:
    """An image file for ``python -m app explain`` and in an image folder source."""
    name = data.draw(st.sampled_from(sorted(images)), "image")
    original = images[name]
    hot = [(0, 256), (len(original) - 64, len(original))]
    content = apply(original, data.draw(mutations(len(original), hot), "ops"))
    with _work_dir(root) as work:
        folder = Path(work) / "frames"
        folder.mkdir()
        path = folder / f"frame_000{Path(name).suffix}"
        path.write_bytes(content)
        before = _snapshot(folder)
        try:
            _assert_image(read_frame(path))
        except CommandError as exc:
            _assert_specific(exc, path.name)
            assert "frame 0" not in str(exc), f"an image called a video: {exc}"
        for source in (ImageFolderSource(folder), open_source(path)):
            with source:
                try:
                    frame = source.read()
                except SourceError as exc:  # this frame is unusable; the source goes on
                    _assert_specific(exc, path.name)
                else:
                    assert frame is not None
                    _assert_image(frame.image)
                assert source.read() is None and source.state is SourceState.END
        _assert_unchanged(folder, before)


# ------------------------------------------------------------------------------ video


def _read_all(source: VideoFileSource | MktFileSource) -> int:
    for index in range(MAX_READS):
        frame = source.read()
        if frame is None:
            assert source.state is SourceState.END
            return index
        _assert_image(frame.image)
        assert frame.source_index == index
    pytest.fail(f"{source.name} delivered more than {MAX_READS} frames")


@given(data=st.data())
def test_mutated_video_container(videos: dict[str, bytes], root: Path, data: st.DataObject) -> None:
    """A damaged video: opening it and reading every frame, seeking, and ``explain``'s reader."""
    name = data.draw(st.sampled_from(sorted(videos)), "video")
    original = videos[name]
    hot = [(0, 1024), (len(original) - 1024, len(original))]
    content = apply(original, data.draw(mutations(len(original), hot), "ops"))
    with _damaged_recording(root, name, content) as path:
        for opener in (VideoFileSource, open_source):
            try:
                source = opener(path)
            except SourceError as exc:
                _assert_specific(exc, path.name)
                continue
            with source:
                assert isinstance(source, VideoFileSource)
                _read_all(source)
                last = (source.frame_count or 1) - 1
                for index in (0, last):
                    try:
                        source.seek(index)
                        frame = source.read()
                    except SourceError as exc:
                        _assert_specific(exc, path.name)
                    else:
                        assert frame is None or frame.image.size > 0


# ------------------------------------------------------------------------------ Cellvizio .mkt


@pytest.fixture(scope="module")
def mkt_files(root: Path) -> dict[str, tuple[bytes, list[tuple[int, int]]]]:
    """Small .mkt files, with and without the metadata chunk, and their chunk headers."""
    folder = root / "mkt"
    folder.mkdir()
    made = {}
    for name, metadata in (("meta.mkt", {"framerate": 12}), ("bare.mkt", None)):
        path = write_mkt(folder / name, frames_12bit(4, 16, 512), metadata)
        headers = [(offset - 16, offset) for offset in read_mkt_index(path).frames]
        made[name] = (path.read_bytes(), headers)
    return made


@given(data=st.data())
def test_mutated_mkt_file(
    mkt_files: dict[str, tuple[bytes, list[tuple[int, int]]]], root: Path, data: st.DataObject
) -> None:
    """A damaged .mkt file: opening it, reading every frame, seeking, ``explain``'s reader."""
    name = data.draw(st.sampled_from(sorted(mkt_files)), "file")
    original, headers = mkt_files[name]
    hot = [*headers, (len(original) - 256, len(original))]
    content = apply(original, data.draw(mutations(len(original), hot), "ops"))
    with _damaged_recording(root, name, content) as path:
        try:
            source = open_source(path)
        except SourceError as exc:
            _assert_specific(exc, path.name)
        else:
            with source:
                assert isinstance(source, MktFileSource)
                _read_all(source)
                for index in (0, (source.frame_count or 1) - 1):
                    source.seek(index)
                    frame = source.read()
                    assert frame is not None and frame.source_index == index
