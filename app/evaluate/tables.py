"""Per-image score records -> the paper's tables (Markdown, CSV, JSON) and the T-study plot;
and the trust report (:mod:`app.evaluate.trust`) -> ``trust.json``, ``trust.md`` and its figures.

A record is one line of ``scores.jsonl``: the :class:`~app.evaluate.ExplanationScore` fields of
one (method, mode, recording, frame) plus ``latency_ms``, ``iou`` and ``pointing`` (NaN off
phantom data), and for MC Dropout jobs ``mean_cv`` (the risk map's mean in the field of view,
NaN where undefined; the trust report's mean-CV signal). A table row aggregates the records
of one (method, mode) with :func:`app.evaluate.aggregate`, so both dataset-level ADCCs appear,
each labelled.
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


TRUST_FILES = ("trust.json", "trust.md", "reliability.png", "risk_coverage.png")
"""What :func:`write_trust` writes."""

_PREDICTIONS = {"deterministic": "deterministic", "mc_mean": "MC mean"}
_SCALINGS = {"none": "raw", "cross-fitted": "scaled, cross-fitted", "stored": "scaled, stored"}
_SIGNALS = {
    "max_probability": "1 − max probability",
    "entropy": "entropy",
    "mutual_information": "mutual information",
    "spread": "spread (std of p over passes)",
    "mean_cv": "mean CV in the field of view",
}


def _estimate(e: Mapping[str, Any], resamples: int, digits: int = 4) -> str:
    """``value [low, high]``, with the resamples used when some were skipped; ``-`` if none."""
    if e["value"] is None:
        return "-"
    text = f"{e['value']:.{digits}f}"
    if e["low"] is not None:
        text += f" [{e['low']:.{digits}f}, {e['high']:.{digits}f}]"
    if e["resamples"] < resamples:
        text += f" ({e['resamples']} resamples)"
    return text


def _temperature(row: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    if row["temperature"] is not None:
        return f"{row['temperature']:.3f}"
    per = list(report["cross_fitting"]["temperatures"][row["predictions"]].values())
    return f"per recording, {min(per):.3f}–{max(per):.3f}"


def _trust_markdown(report: Mapping[str, Any]) -> list[str]:
    b = report["bootstrap"]
    resamples = b["resamples"]
    stored = report["stored_calibration"]
    if stored is None:
        stored_line = "none in the checkpoint"
    else:
        stored_line = f"fitted on {len(stored['recordings'])} recordings"
        if stored["optimistic"]:
            stored_line += (
                f"; **{len(stored['overlap'])} of them are evaluated here "
                f"({', '.join(stored['overlap'])}): its figures are optimistic**"
            )
        else:
            stored_line += ", none of them evaluated here"
    cross = report["cross_fitting"]
    lines = [
        "# Trust report: calibration, abstention and uncertainty signals",
        "",
        f"- frames: {report['frames']} of {len(report['recordings'])} recordings; "
        f"{report['classes']} classes; MC Dropout passes T = {report['passes']}",
        f"- intervals: {b['level']:.0%} percentile bootstrap over recordings ({resamples} "
        f"resamples of the recordings with replacement, seed {b['seed']}); frames of one "
        "recording are correlated, so they are never resampled alone",
        f"- stored calibration: {stored_line}",
        "- cross-fitting: "
        + (
            "leave-one-recording-out (each recording scaled and judged by rules fitted on "
            "the others)"
            if cross["available"]
            else f"not possible: {cross['reason']}"
        ),
        f"- sliding window: a signal's mean over {report['window']} evaluated frames of a "
        "recording, the current one and those before it (frame-index order)",
    ]
    lines += [f"- note: {n}" for n in report["notes"]]
    lines += [
        "",
        "## Probabilities",
        "",
        "| Predictions | Scaling | Temperature | Accuracy ↑ | ECE ↓ (15 bins) | NLL ↓ | Brier ↓ |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["probabilities"]:
        cells = [_estimate(row[k], resamples) for k in ("accuracy", "ece", "nll", "brier")]
        lines.append(
            f"| {_PREDICTIONS[row['predictions']]} | {_SCALINGS[row['scaling']]} | "
            f"{_temperature(row, report)} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "## Abstention (UNCERTAIN) and conformal sets",
        "",
        "| Rule | Predictions | Target error (δ) | Accepted ↑ | Error among accepted ↓ "
        "| Set coverage (target) | Mean set size ↓ |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["selective"]:
        lines.append(
            f"| {row['rule']} | {_PREDICTIONS[row['predictions']]} | "
            f"{row['target_error']:.2%} ({row['delta']:g}) | "
            f"{_estimate(row['accepted_fraction'], resamples)} | "
            f"{_estimate(row['accepted_error'], resamples)} | "
            f"{_estimate(row['set_coverage'], resamples)} ({row['coverage_target']:.0%}) | "
            f"{_estimate(row['mean_set_size'], resamples, 3)} |"
        )
    if not report["selective"]:
        lines.append("| - | - | - | - | - | - | - |")
    lines += [
        "",
        "## Flagging errors",
        "",
        "| Predictions | Signal (higher = less confident) | Window | Frames | Errors | AUROC ↑ "
        "| AURC ↓ | Ideal AURC | Error rate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["signals"]:
        lines.append(
            f"| {_PREDICTIONS[row['predictions']]} | {_SIGNALS[row['signal']]} | "
            f"{row['window']} | {row['frames']} | {row['errors']} | "
            f"{_estimate(row['auroc'], resamples)} | {_estimate(row['aurc'], resamples)} | "
            f"{row['curve']['ideal_aurc']:.4f} | {row['curve']['error_rate']:.4f} |"
        )
    lines += [
        "",
        "Accuracy, ECE (torchmetrics, top label, 15 equal-width bins), NLL and Brier of the "
        "deterministic model's and the MC-mean probabilities, raw and temperature-scaled. "
        "Abstention: a frame is accepted when its signal clears the threshold fitted for the "
        "target error with confidence 1 − δ (python -m app calibrate's rule); error among "
        "accepted compares the calibrated top class with the label. AUROC: how well the signal "
        "ranks misclassified frames above right ones (0.5: chance). AURC: the mean, over "
        "coverages k/N, of the error rate among the k least uncertain frames; the ideal AURC "
        "puts every right frame first; the error rate is the AURC of a signal that knows "
        "nothing. A figure undefined in some resamples (no error, nothing accepted) gives "
        "the number of resamples used. Figures: reliability.png, risk_coverage.png.",
    ]
    return lines


def write_trust(report: Mapping[str, Any], out: Path) -> list[Path]:
    """Write the trust report: ``trust.json``, ``trust.md``, ``reliability.png`` (reliability
    diagrams, deterministic and MC mean, raw and scaled) and ``risk_coverage.png`` (the
    risk-coverage curve of every signal).

    Args:
        report: :meth:`app.evaluate.trust.TrustReport.to_dict`.
        out: the output folder.

    Returns:
        The paths written, in the order of :data:`TRUST_FILES`.
    """
    paths = [out / name for name in TRUST_FILES]
    paths[0].write_text(json.dumps(jsonable(dict(report)), indent=2) + "\n")
    paths[1].write_text("\n".join(_trust_markdown(report)) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for plot, path in ((_plot_reliability, paths[2]), (_plot_risk_coverage, paths[3])):
        fig = plot(report, plt)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
    return paths


def _finite(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def _plot_reliability(report: Mapping[str, Any], plt: Any) -> Any:
    """Reliability diagrams: a row per prediction, a column per scaling."""
    entries = report["probabilities"]
    rows = list(dict.fromkeys(e["predictions"] for e in entries))
    columns = list(dict.fromkeys(e["scaling"] for e in entries))
    size = (3.2 * len(columns), 3.2 * len(rows))
    fig, axes = plt.subplots(len(rows), len(columns), figsize=size, dpi=120, squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for entry in entries:
        ax = axes[rows.index(entry["predictions"]), columns.index(entry["scaling"])]
        ax.set_visible(True)
        d = entry["reliability"]
        edges, filled = np.asarray(d["edges"]), np.asarray(d["count"]) > 0
        accuracy, confidence = _finite(d["accuracy"]), _finite(d["confidence"])
        ax.bar(
            edges[:-1][filled],
            accuracy[filled],
            width=np.diff(edges)[filled],
            align="edge",
            color="C0",
            edgecolor="white",
            label="accuracy",
        )
        ax.plot(confidence[filled], accuracy[filled], "o", color="C3", ms=3, label="mean conf.")
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
        ece = entry["ece"]["value"]
        ax.set_title(
            f"{_PREDICTIONS[entry['predictions']]}, {_SCALINGS[entry['scaling']]}\n"
            + ("ECE -" if ece is None else f"ECE {ece:.3f}"),
            fontsize=8,
        )
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=6, loc="upper left")
    return fig


def _plot_risk_coverage(report: Mapping[str, Any], plt: Any) -> Any:
    """Risk-coverage curves: a panel per prediction, a colour per signal, dashed for its
    sliding window; the ideal curve dotted, the error rate (no signal) grey."""
    modes = list(dict.fromkeys(s["predictions"] for s in report["signals"]))
    fig, axes = plt.subplots(
        1, max(len(modes), 1), figsize=(5.2 * max(len(modes), 1), 4.0), dpi=120, squeeze=False
    )
    for ax, mode in zip(axes[0], modes, strict=False):
        signals = [s for s in report["signals"] if s["predictions"] == mode]
        names = list(dict.fromkeys(s["signal"] for s in signals))
        for s in signals:
            window = "" if s["window"] == 1 else f", window {s['window']}"
            aurc = s["aurc"]["value"]
            ax.plot(
                s["curve"]["coverage"],
                s["curve"]["risk"],
                color=f"C{names.index(s['signal'])}",
                ls="-" if s["window"] == 1 else "--",
                lw=1,
                label=f"{_SIGNALS[s['signal']]}{window} (AURC {aurc:.3f})",
            )
        error_rate = signals[0]["curve"]["error_rate"]
        coverage = np.linspace(1e-3, 1.0, 400)
        ideal = np.maximum(coverage - (1.0 - error_rate), 0.0) / coverage
        ax.plot(coverage, ideal, "k:", lw=1, label="ideal")
        ax.axhline(error_rate, color="grey", lw=0.8, label="no signal (error rate)")
        ax.set(
            xlim=(0, 1),
            xlabel="coverage (fraction of frames kept, least uncertain first)",
            ylabel="error among kept frames",
            title=f"{_PREDICTIONS[mode]}: risk vs coverage",
        )
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    return fig
