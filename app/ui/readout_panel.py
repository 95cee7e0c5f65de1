"""The readout column: prediction with its spread, uncertainty, latency and rates, and the
rolling latency plot. It shows text made by :mod:`app.ui.readouts`; no logic of its own."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from app.ui.latency_plot import LatencyHistory, LatencyPlot
from app.ui.readouts import Prediction, StatsText, format_probability

__all__ = ["ReadoutPanel"]


def _label(text: str = "", name: str | None = None) -> QLabel:
    label = QLabel(text)
    if name:
        label.setObjectName(name)
    return label


class _Grid(QGroupBox):
    """A titled two-column table of name and value labels, each value wide enough for
    ``widest`` (so that the column, sized when built, does not clip real values later)."""

    def __init__(self, title: str, rows: list[tuple[str, str]], widest: str) -> None:
        super().__init__(title)
        grid = QGridLayout(self)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(4)
        grid.setColumnStretch(1, 1)
        self.values: dict[str, QLabel] = {}
        for row, (key, name) in enumerate(rows):
            grid.addWidget(_label(name, "Muted"), row, 0)
            value = _label("-", "Value")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.ensurePolished()  # the style sheet's monospace font, to measure with
            value.setMinimumWidth(value.fontMetrics().horizontalAdvance(widest))
            grid.addWidget(value, row, 1)
            self.values[key] = value

    def set(self, key: str, text: str) -> None:
        self.values[key].setText(text)


class ReadoutPanel(QWidget):
    """Prediction, uncertainty, latency (see the module documentation).

    Args:
        history: the latency points the plot draws.
    """

    def __init__(self, history: LatencyHistory, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)

        prediction = QGroupBox("PREDICTION")
        column = QVBoxLayout(prediction)
        column.setSpacing(4)
        self.class_name = _label("-", "ClassName")
        self.class_name.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.probability = _label("", "Value")
        self.probability.setWordWrap(True)
        self.probability.setToolTip(
            "MC-mean softmax probability ± its standard deviation over the T passes"
        )
        self.explained = _label("", "Muted")
        self.explained.setWordWrap(True)
        self.explained.hide()
        self.verdict = _label("", "Verdict")
        self.verdict.setWordWrap(True)
        self.verdict.setToolTip(
            "Video-level verdict: the class with the highest mean (calibrated) probability over "
            "the last seconds at this site; it restarts when the probe moves to a new site"
        )
        column.addWidget(self.class_name)
        column.addWidget(self.probability)
        column.addWidget(self.explained)
        column.addWidget(self.verdict)
        self._bars_box = QWidget()
        self._bars = QGridLayout(self._bars_box)
        self._bars.setContentsMargins(0, 6, 0, 0)
        self._bars.setHorizontalSpacing(8)
        self._bars.setVerticalSpacing(3)
        self._bars.setColumnStretch(1, 1)
        self._bar_widgets: dict[str, QProgressBar] = {}
        column.addWidget(self._bars_box)
        layout.addWidget(prediction)

        self.uncertainty = _Grid(
            "UNCERTAINTY",
            [
                ("entropy", "Predictive entropy"),
                ("mi", "Mutual information"),
                ("cv", "Mean risk (CV) in FOV"),
            ],
            widest="0.000 / 0.00 nats",
        )
        self.uncertainty.setToolTip(
            "Predictive entropy of the MC-mean softmax and its maximum ln K; mutual information "
            "is the part due to disagreement between passes; mean CV over the defined pixels of "
            "the field of view"
        )
        layout.addWidget(self.uncertainty)

        self.latency = _Grid(
            "LATENCY  avg / p95 / max",
            [
                ("display", "Capture → display"),
                ("result", "Capture → result"),
                ("input", "Input"),
                ("output", "Analysed"),
                ("shown", "Displayed"),
                ("dropped", "Dropped frames"),
            ],
            widest="9999 / 9999 / 9999 ms",
        )
        self.latency.setToolTip(
            "Latency over the last results: from the moment the frame was captured to the "
            "moment its maps were on the screen (display) or ready (result)"
        )
        self.plot = LatencyPlot(history)
        self.plot.setToolTip(
            "Capture-to-display latency of each shown result over the last "
            f"{history.span_s:.0f} s; dashed: p95"
        )
        grid = self.latency.layout()
        assert isinstance(grid, QGridLayout)
        grid.addWidget(self.plot, grid.rowCount(), 0, 1, 2)
        layout.addWidget(self.latency)
        layout.addStretch(1)

    def _ensure_bars(self, names: list[str]) -> None:
        if list(self._bar_widgets) == names:
            return
        while self._bars.count():
            item = self._bars.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self._bar_widgets = {}
        for row, name in enumerate(names):
            self._bars.addWidget(_label(name, "Muted"), row, 0)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setFormat("")
            self._bars.addWidget(bar, row, 1)
            self._bar_widgets[name] = bar

    def show_prediction(self, prediction: Prediction | None) -> None:
        """The prediction of the result on screen (None: nothing yet)."""
        if prediction is None:
            self.class_name.setText("-")
            self.probability.setText("")
            self.explained.hide()
            self._show_verdict("", False)
            self._ensure_bars([])
            for key in ("entropy", "mi", "cv"):
                self.uncertainty.set(key, "-")
            return
        e = prediction.explained
        if prediction.no_tissue is not None:  # a black frame: no class name to rely on
            state, name = "no_tissue", "No tissue"
            probability = f"model output {prediction.predicted.name}: not a reading"
            note = prediction.no_tissue[:1].upper() + prediction.no_tissue[1:]
        elif prediction.uncertain:  # the calibration abstains: say so across the room
            state, name = "uncertain", "UNCERTAIN"
            probability = prediction.probability_text()
            note = (
                f"Could be {prediction.set_text() or prediction.predicted.name}: do not rely on "
                "this frame"
            )
        else:
            state, name = "", prediction.predicted.name
            probability = prediction.probability_text()
            notes = [f"One of {prediction.set_text()}"] if prediction.set_text() else []
            if prediction.explains_other_class:
                notes.append(f"Maps explain {e.name} (p {format_probability(e.mean, e.std)})")
            note = "; ".join(notes)
        self.class_name.setText(name)
        if self.class_name.property("state") != state:
            self.class_name.setProperty("state", state)
            self.class_name.style().unpolish(self.class_name)
            self.class_name.style().polish(self.class_name)
        self.probability.setText(probability)
        self.explained.setText(note)
        self.explained.setVisible(bool(note))
        self._show_verdict(prediction.verdict, prediction.verdict_uncertain)
        self._ensure_bars([c.name for c in prediction.classes])
        for c in prediction.classes:
            bar = self._bar_widgets[c.name]
            bar.setValue(round(1000 * c.mean))
            bar.setFormat(format_probability(c.mean, c.std))
            bar.setToolTip(f"{c.name}: {format_probability(c.mean, c.std)}")
            predicted = c.name == prediction.predicted.name
            if bar.property("predicted") != predicted:
                bar.setProperty("predicted", predicted)
                bar.style().unpolish(bar)
                bar.style().polish(bar)
        self.uncertainty.set("entropy", prediction.entropy_text())
        self.uncertainty.set("mi", prediction.mutual_information_text())
        self.uncertainty.set("cv", prediction.mean_cv_text())

    def _show_verdict(self, text: str, uncertain: bool) -> None:
        self.verdict.setText(f"Verdict: {text}" if text else "")
        self.verdict.setVisible(bool(text))
        state = "uncertain" if uncertain else ""
        if self.verdict.property("state") != state:
            self.verdict.setProperty("state", state)
            self.verdict.style().unpolish(self.verdict)
            self.verdict.style().polish(self.verdict)

    def show_stats(self, text: StatsText) -> None:
        self.latency.set("display", text.display_latency)
        self.latency.set("result", text.result_latency)
        self.latency.set("input", text.input_fps)
        self.latency.set("output", text.output_fps)
        self.latency.set("shown", text.display_fps)
        self.latency.set("dropped", text.dropped)
