"""``python -m app evaluate`` under ``torchrun``: two CPU processes score as one does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist

from app.cli import main
from app.evaluate.runner import _Batch, _Job, _share
from tests.test_evaluate_cli import setup  # noqa: F401  (the phantom data set and checkpoint)

ROOT = Path(__file__).resolve().parents[1]

gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available",
)


def _args(data: Path, checkpoint: Path, out: Path) -> list[str]:
    return [
        "evaluate",
        "--data", str(data),
        "--checkpoint", str(checkpoint),
        "--methods", "gradcam",
        "--passes", "2",
        "--every-k", "3",
        "--t-study", "1,2",
        "--t-study-frames", "2",
        "--batch-size", "2",
        "--figures", "1",
        "--device", "cpu",
        "--quiet",
        "--out", str(out),
    ]  # fmt: skip


def _scores(out: Path) -> dict[tuple[str, str, str, int], dict[str, Any]]:
    records = []
    for line in (out / "scores.jsonl").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # the torn line of an interrupted run
            continue
    for record in records:
        record.pop("latency_ms")
    keyed = {(r["method"], r["mode"], r["recording"], r["frame"]): r for r in records}
    assert len(keyed) == len(records), "a frame scored twice"
    return keyed


def _rows(path: Path) -> list[dict[str, Any]]:
    rows = json.loads(path.read_text())["rows"]
    return [{k: v for k, v in row.items() if k != "latency_ms"} for row in rows]


def test_share_is_a_balanced_partition() -> None:
    jobs = [_Job("m", "a", False, 1, ()), _Job("m", "b", True, 9, ())]
    batches = [_Batch(jobs[i % 2], i, ()) for i in range(7)]
    shares = [_share(batches, r, 3) for r in range(3)]
    assert sorted(b.index for s in shares for b in s) == list(range(7))
    for share in shares:  # kept in run order
        assert [b.index for b in share] == sorted(b.index for b in share)
    assert _share(batches, 0, 1) == batches


@gloo
def test_torchrun_two_processes_match_one(
    setup: tuple[Path, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    data, checkpoint = setup
    single, multi = tmp_path / "single", tmp_path / "multi"
    assert main(_args(data, checkpoint, single)) == 0

    # The threads of this process: CPU kernels may sum in another order with another count.
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", "-m", "app", *_args(data, checkpoint, multi)]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    assert not list(multi.glob("scores.rank*.jsonl"))
    info = json.loads((multi / "table.json").read_text())["info"]
    assert info["processes"] == 2 and info["scored_this_run"] == 2 * 4 + 2 * 2
    assert _rows(multi / "table.json") == _rows(single / "table.json")
    study = [json.loads((d / "t_study.json").read_text()) for d in (single, multi)]
    for payload in study:
        for row in [*payload["rows"], *payload["original"].values()]:
            row.pop("latency_ms")
    assert study[0] == study[1]
    assert _scores(multi) == _scores(single)
    figures = [sorted(p.name for p in (d / "figures").glob("*.png")) for d in (single, multi)]
    assert figures[0] == figures[1] and len(figures[0]) == 1

    # An interrupted two-process run leaves a rank log and maybe a torn last line: a single
    # rerun folds the rank log into scores.jsonl and scores only what is in neither file.
    records = [json.loads(line) for line in (multi / "scores.jsonl").read_text().splitlines()]
    torn = next(r for r in records if r["mode"] == "proposed")
    lost = next(  # its batch partner: frame i of the other recording (frames interleave)
        r
        for r in records
        if (r["mode"], r["frame"]) == (torn["mode"], torn["frame"]) and r is not torn
    )  # the whole batch is rescored, with its seed: the scores stay those of the single run
    kept = [json.dumps(r) for r in records if r is not torn and r is not lost]
    (multi / "scores.jsonl").write_text("\n".join(kept[:5]) + "\n" + json.dumps(torn)[:30])
    (multi / "scores.rank1.jsonl").write_text("\n".join(kept[5:]) + "\n")
    assert main(_args(data, checkpoint, multi)) == 0
    assert not (multi / "scores.rank1.jsonl").exists()
    info = json.loads((multi / "table.json").read_text())["info"]
    assert info["scored_this_run"] == 2 and info["reused_from_scores_jsonl"] == len(kept)
    assert "processes" not in info
    assert _scores(multi) == _scores(single)
    assert _rows(multi / "table.json") == _rows(single / "table.json")
