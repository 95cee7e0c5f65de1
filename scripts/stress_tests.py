"""Run the whole test suite N times back to back under CPU load; report every test's record.

``python scripts/stress_tests.py --runs 10`` (or ``make stress RUNS=10``) starts ``--load``
busy processes (default: two, one per core of a CI machine), runs ``pytest`` on the suite
``--runs`` times in a row, and prints, for every test that did not pass every time, how often
it passed, failed, errored or was skipped, then one line per run. A run that crashes or
hangs (past ``--run-timeout``) counts as a failure of the test that was running, named from
the run's log. Each run's JUnit XML and log stay in ``--out``. Exit status: 0 when every run
was green, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSY = "while True: pass"


@dataclass
class Run:
    """One run of the suite."""

    index: int
    exit_code: int
    seconds: float
    outcomes: dict[str, str] = field(default_factory=dict)
    note: str = ""

    @property
    def green(self) -> bool:
        ok = ("passed", "skipped")
        return self.exit_code == 0 and all(o in ok for o in self.outcomes.values())


def _outcomes(junit: Path) -> dict[str, str]:
    """test id -> passed / failed / error / skipped, from a JUnit XML report."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                break
        if outcome == "passed" or outcomes.get(name) in (None, "passed"):
            outcomes[name] = outcome  # a teardown error reported as a second case wins
    return outcomes


def _running_test(log: str) -> str:
    """The test a crashed or hung run was in, from pytest's verbose log."""
    started = re.findall(r"^(tests/\S+::\S+)", log, flags=re.MULTILINE)
    return started[-1] if started else "?"


def run_suite(index: int, out: Path, pytest_args: list[str], timeout_s: float) -> Run:
    """Run the suite once; its outcomes per test."""
    junit, log_path = out / f"run-{index:02d}.xml", out / f"run-{index:02d}.log"
    junit.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider"]
    command += [f"--junitxml={junit}", *pytest_args]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    start = time.monotonic()
    with log_path.open("w") as log:
        child = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = child.wait(timeout_s)
            note = ""
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            code, note = child.wait(), f"hung: killed after {timeout_s:.0f} s"
    seconds = time.monotonic() - start
    run = Run(index, code, seconds, _outcomes(junit) if junit.exists() else {}, note)
    if not junit.exists() or note:
        test = _running_test(log_path.read_text(errors="replace"))
        run.outcomes[test] = "failed"
        run.note = run.note or f"crashed (exit {code}) in {test}"
    return run


def start_load(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes that keep one core each busy."""
    return [
        subprocess.Popen([sys.executable, "-c", BUSY], start_new_session=True) for _ in range(count)
    ]


def report(runs: list[Run]) -> str:
    """Per-test record of the tests that did not pass every run, then one line per run."""
    records: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for run in runs:
        for test, outcome in run.outcomes.items():
            records[test][outcome] += 1
    lines = []
    unstable = {t: c for t, c in records.items() if c["failed"] or c["error"]}
    if unstable:
        lines.append("tests that did not pass every run (passed / failed / error / skipped):")
        for test, c in sorted(unstable.items()):
            lines.append(f"  {c['passed']}/{c['failed']}/{c['error']}/{c['skipped']}  {test}")
    else:
        lines.append(f"every one of {len(records)} tests passed or was skipped in every run")
    for run in runs:
        passed = sum(o == "passed" for o in run.outcomes.values())
        bad = sum(o in ("failed", "error") for o in run.outcomes.values())
        state = "green" if run.green else "RED"
        extra = f"  {run.note}" if run.note else ""
        lines.append(
            f"run {run.index:2d}: {state}  {passed} passed, {bad} failed, "
            f"{run.seconds:.0f} s{extra}"
        )
    green = sum(r.green for r in runs)
    lines.append(f"{green} of {len(runs)} runs green")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="times to run the suite")
    parser.add_argument("--load", type=int, default=2, help="busy background processes")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "stress", help="reports")
    parser.add_argument("--run-timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--stop-on-red", action="store_true", help="stop after a red run")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    load = start_load(args.load)
    runs: list[Run] = []
    try:
        for index in range(1, args.runs + 1):
            run = run_suite(index, args.out, args.pytest_args, args.run_timeout)
            runs.append(run)
            print(report([run]).splitlines()[-2], flush=True)
            if args.stop_on_red and not run.green:
                break
    finally:
        for busy in load:
            os.killpg(busy.pid, signal.SIGKILL)
            busy.wait()
    text = report(runs)
    (args.out / "report.txt").write_text(text + "\n")
    print(text)
    return 0 if runs and all(r.green for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
