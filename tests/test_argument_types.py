"""Numeric options out of range end in argparse's message and exit status 2, never a
traceback or an out-of-memory kill (issue 11, items 10 and 12)."""

from __future__ import annotations

import argparse
import re

import pytest

from app.argument_types import float_in, int_in
from app.cli import main


def test_int_in_and_float_in_accept_their_range_and_name_what_is_wrong() -> None:
    assert int_in(1)("3") == 3 and int_in(16, 2160)("2160") == 2160
    assert float_in(0.0, low_open=True)("1e-3") == 1e-3
    assert float_in(0.0, 1.0, high_open=True)("0") == 0.0
    cases = [
        (int_in(1), "0", "must be >= 1, got 0"),
        (int_in(16, 2160), "50000", "from 16 to 2160"),
        (int_in(1), "2.5", "must be an integer"),
        (float_in(0.0, low_open=True), "0", "> 0"),
        (float_in(0.0, low_open=True), "nan", "finite"),
        (float_in(0.0), "inf", "finite"),
        (float_in(0.0, 1.0, high_open=True), "1", "in [0, 1)"),
        (float_in(0.0, 1.0, low_open=True), "x", "must be a number"),
    ]
    for parse, text, message in cases:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
            parse(text)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--data", "d", "--out", "m.pt", "--input-size", "7"], "--input-size"),
        (["train", "--data", "d", "--out", "m.pt", "--lr", "nan"], "--lr"),
        (["train", "--data", "d", "--out", "m.pt", "--momentum", "1.5"], "--momentum"),
        (["bench-pipeline", "--source", "v.mp4", "--speed", "0"], "--speed"),
        (["bench-pipeline", "--source", "v.mp4", "--frames", "0"], "--frames"),
        (["bench-pipeline", "--source", "v.mp4", "--threads", "0"], "--threads"),
        (["process", "v.mp4", "--panel-height", "50000"], "--panel-height"),
        (["process", "v.mp4", "--panel-height", "0"], "--panel-height"),
        (["process", "v.mp4", "--max-frames", "0"], "--max-frames"),
        (["review", "session", "--panel-height", "100000"], "--panel-height"),
    ],
)
def test_an_option_out_of_range_is_refused_before_anything_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {message}" in err and "Traceback" not in err


def test_bench_pipeline_names_an_unknown_architecture(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-pipeline", "--source", "v.mp4", "--arch", "vgg16"]) == 2
    err = capsys.readouterr().err
    assert "--arch" in err and "vgg16" in err and "resnet18" in err and "Traceback" not in err
