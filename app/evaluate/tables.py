"""Per-image score records -> the paper's tables (Markdown, CSV, JSON) and the T-study plot.

A record is one line of ``scores.jsonl``: the :class:`~app.evaluate.ExplanationScore` fields of
one (method, mode, recording, frame) plus ``latency_ms``, ``iou`` and ``pointing`` (NaN off
phantom data). A table row aggregates the records of one (method, mode) with
:func:`app.evaluate.aggregate`, so both dataset-level ADCCs appear, each labelled.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.evaluate.scoring import ExplanationScore, aggregate, nanmean

SCORE_FIELDS = ("average_drop", "coherency", "complexity", "adcc", "class_idx", "y", "o")

COLUMNS: tuple[tuple[str, str], ...] = (
    ("method", "Method"),
    ("mode", "Mode"),
    ("passes", "T"),
    ("coherency", "Coh ↑"),
    ("complexity", "Comp ↓"),
    ("average_drop", "AD ↓"),
    ("adcc_mean_of_per_image", "ADCC ↑ (mean of per-image)"),
    ("adcc_of_mean_components", "ADCC ↑ (of mean components)"),
    ("latency_ms", "Latency ms (median/image)"),
    ("images", "Images"),
    ("flags", "Flags"),
)
"""(key, header) of the table's columns; localisation columns follow on phantom data."""

LOCALISATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("iou", "IoU ↑ (map ≥ 0.5 vs mask)"),
    ("pointing_game", "Pointing game ↑"),
    ("localisation_images", "Images with masks"),
)


def to_score(record: Mapping[str, Any]) -> ExplanationScore:
    """The :class:`ExplanationScore` stored in a record."""
    return ExplanationScore(
        **{k: record[k] for k in SCORE_FIELDS},
        map_size=tuple(record["map_size"]),
        input_size=tuple(record["input_size"]),
        flags=tuple(record["flags"]),
    )


def summarise(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One table row from the records of one (method, mode)."""
    summary = aggregate(to_score(r) for r in records)
    latencies = [r["latency_ms"] for r in records if not math.isnan(r["latency_ms"])]
    located = [r for r in records if not math.isnan(r.get("iou", math.nan))]
    pointed = [r["pointing"] for r in records if not math.isnan(r.get("pointing", math.nan))]
    first = records[0]
    return {
        "method": first["method"],
        "mode": first["mode"],
        "passes": first["passes"],
        "coherency": summary["mean_coherency"],
        "complexity": summary["mean_complexity"],
        "average_drop": summary["mean_average_drop"],
        "adcc_mean_of_per_image": summary["mean_of_per_image_adcc"],
        "adcc_of_mean_components": summary["adcc_of_mean_components"],
        "adcc_images": summary["adcc_images"],
        "latency_ms": float(np.median(latencies)) if latencies else math.nan,
        "images": summary["images"],
        "flags": {k: v for k, v in summary["flag_counts"].items() if v},
        "flag_counts": summary["flag_counts"],
        "iou": nanmean(r["iou"] for r in located),
        "pointing_game": nanmean(pointed),
        "localisation_images": len(located),
    }


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def jsonable(value: Any) -> Any:
    """``value`` with NaN / inf floats as None (strict JSON), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _comparison_lines(comparisons: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [
        "",
        "## Proposed - original, paired by image (ADCC)",
        "",
        "| Method | Pairs | Mean difference | 95 % CI (bootstrap) | Proposed >= original "
        "| Higher / tied / lower | Per recording | Verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, c in comparisons.items():
        per = ", ".join(f"{k}: {v:+.4f}" for k, v in c["per_recording"].items()) or "-"
        lines.append(
            f"| {method} | {c['pairs']} | {c['mean_difference']:+.4f} | "
            f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {c['at_least_as_good']:.1%} | "
            f"{c['higher']} / {c['tied']} / {c['lower']} | {per} | {c['verdict']} |"
        )
    return lines


def write_table(
    rows: Sequence[Mapping[str, Any]],
    out: Path,
    info: Mapping[str, Any],
    localisation: bool,
    comparisons: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Path]:
    """Write ``table.md``, ``table.csv`` and ``table.json``; returns their paths.

    ``comparisons`` ({method: :func:`app.evaluate.comparison.paired_comparison`}) adds the
    paired proposed-vs-original section to the Markdown and the JSON.
    """
    columns = COLUMNS + (LOCALISATION_COLUMNS if localisation else ())
    lines = ["# Explanation quality: original vs proposed (MC Dropout)", ""]
    lines += [f"- {k}: {_cell(v) if not isinstance(v, str) else v}" for k, v in info.items()]
    lines += [
        "",
        "| " + " | ".join(h for _, h in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(_cell(row[k]) for k, _ in columns) + " |" for row in rows]
    lines += [
        "",
        "Coh, Comp, AD: NaN-means over the images where each is defined. ADCC (mean of "
        "per-image): mean of the per-image harmonic means (Poppi et al.). ADCC (of mean "
        "components): harmonic mean of the three column means. Flags: images per undefined "
        "or limit case (see app.evaluate.scoring.FLAGS).",
    ]
    if comparisons:
        lines += _comparison_lines(comparisons)
    paths = [out / "table.md", out / "table.csv", out / "table.json"]
    paths[0].write_text("\n".join(lines) + "\n")
    with paths[1].open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([k for k, _ in columns])
        for row in rows:
            writer.writerow(
                [_cell(row[k]) if isinstance(row[k], dict) else row[k] for k, _ in columns]
            )
    table = {"info": dict(info), "columns": dict(columns), "rows": list(rows)}
    if comparisons:
        table["paired_comparison"] = dict(comparisons)
    paths[2].write_text(json.dumps(jsonable(table), indent=2) + "\n")
    return paths


def write_t_study(
    rows: Sequence[Mapping[str, Any]],
    references: Mapping[str, Mapping[str, Any]],
    out: Path,
) -> list[Path]:
    """Write ``t_study.csv``, ``t_study.json`` and ``t_study.png`` (ADCC vs T per method).

    Args:
        rows: one summary per (method, T) from :func:`summarise`.
        references: per method, the original (deterministic) summary on the same frames,
            drawn as a dashed line.
        out: the output folder.
    """
    keys = ("method", "passes", "adcc_mean_of_per_image", "adcc_of_mean_components")
    keys += ("coherency", "complexity", "average_drop", "latency_ms", "images")
    paths = [out / "t_study.csv", out / "t_study.json", out / "t_study.png"]
    with paths[0].open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(keys)
        writer.writerows([[row[k] for k in keys] for row in rows])
    payload = {
        "rows": [{k: row[k] for k in keys} for row in rows],
        "original": {m: {k: r[k] for k in keys} for m, r in references.items()},
    }
    paths[1].write_text(json.dumps(jsonable(payload), indent=2) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for i, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
        mine = [r for r in rows if r["method"] == method]
        colour = f"C{i}"
        ts = [r["passes"] for r in mine]
        ax.plot(
            ts,
            [r["adcc_mean_of_per_image"] for r in mine],
            "o-",
            color=colour,
            label=f"{method} (mean of per-image)",
        )
        ax.plot(
            ts,
            [r["adcc_of_mean_components"] for r in mine],
            "s:",
            color=colour,
            label=f"{method} (of mean components)",
        )
        if method in references:
            ax.axhline(
                references[method]["adcc_mean_of_per_image"],
                color=colour,
                ls="--",
                lw=1,
                label=f"{method} original",
            )
    ax.set_xscale("log")
    ax.set_xlabel("MC Dropout passes T")
    ax.set_ylabel("ADCC")
    ax.set_title("ADCC vs T")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(paths[2])
    plt.close(fig)
    return paths
