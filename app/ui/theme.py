"""The viewer's look: a dark Fusion palette, one style sheet, pyqtgraph's colours.

Dark surroundings keep the eye adapted to the grey probe image in a dimmed theatre; colour is
kept for the maps and for what needs attention (amber: intended use and stalls, red: errors).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["COLOURS", "apply_theme"]

COLOURS = {
    "window": "#15181c",
    "panel": "#0c0e11",
    "surface": "#1d2127",
    "raised": "#262b32",
    "border": "#30363e",
    "text": "#dfe3e8",
    "muted": "#8b949e",
    "accent": "#4aa3ff",
    "fov": "#5ad1c4",
    "info": "#2b6cb0",
    "warning": "#d99a1e",
    "error": "#d64545",
    "latency": "#4aa3ff",
    "latency_p95": "#d99a1e",
}
"""Named colours used by the widgets."""

_STYLE = """
QMainWindow, QWidget#Central {{ background: {window}; }}
QToolTip {{ color: {text}; background: {raised}; border: 1px solid {border}; }}
QGroupBox {{
    border: 1px solid {border}; border-radius: 6px; margin-top: 12px; padding: 6px 6px 4px 6px;
    background: {surface};
}}
QGroupBox::title {{
    subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {muted};
    font-weight: bold; letter-spacing: 1px;
}}
QLabel#Muted {{ color: {muted}; }}
QLabel#Value {{ color: {text}; font-family: "DejaVu Sans Mono", monospace; }}
QLabel#ClassName {{ font-size: 18pt; font-weight: bold; color: {text}; }}
QLabel#ClassName[state="uncertain"] {{
    background: {warning}; color: #111; border-radius: 4px; padding: 2px 8px;
}}
QLabel#ClassName[state="no_tissue"] {{ color: {muted}; }}
QLabel#Verdict {{ font-size: 11pt; font-weight: bold; color: {text}; }}
QLabel#Verdict[state="uncertain"] {{ color: {warning}; }}
QLabel#Headline {{ font-size: 12pt; font-weight: bold; color: {text}; }}
QLabel#SourceLine {{ color: {muted}; }}
QLabel#IntendedUse {{
    background: {warning}; color: #111; font-weight: bold; border-radius: 4px;
    padding: 4px 10px;
}}
QFrame#Header {{ background: {surface}; border-bottom: 1px solid {border}; }}
QFrame#Banner {{ border-radius: 6px; }}
QFrame#Banner[level="info"] {{ background: rgba(43, 108, 176, 230); }}
QFrame#Banner[level="warning"] {{ background: rgba(217, 154, 30, 235); }}
QFrame#Banner[level="error"] {{ background: rgba(214, 69, 69, 235); }}
QFrame#Banner QLabel {{ color: white; font-weight: bold; font-size: 11pt; }}
QFrame#Banner[level="warning"] QLabel {{ color: #111; }}
QFrame#Banner QToolButton {{
    color: white; border: none; font-size: 14pt; font-weight: bold; padding: 0 6px;
}}
QFrame#Banner[level="warning"] QToolButton {{ color: #111; }}
QProgressBar {{
    border: 1px solid {border}; border-radius: 3px; background: {panel}; color: {text};
    text-align: center; height: 16px;
}}
QProgressBar::chunk {{ background: {accent}; border-radius: 2px; }}
QProgressBar[predicted="true"]::chunk {{ background: #2f9e6e; }}
QStatusBar {{ color: {muted}; background: {surface}; border-top: 1px solid {border}; }}
QStatusBar QLabel {{ color: {muted}; }}
QSlider::groove:horizontal {{ height: 4px; background: {border}; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: {accent}; border-radius: 2px; }}
QSlider::handle:horizontal {{
    background: {text}; width: 12px; height: 12px; margin: -5px 0; border-radius: 6px;
}}
QSlider::handle:horizontal:disabled {{ background: {muted}; }}
QSlider::sub-page:horizontal:disabled {{ background: {border}; }}
QToolButton#Transport {{
    border: 1px solid {border}; border-radius: 4px; background: {raised}; padding: 3px 8px;
    min-width: 22px; color: {text};
}}
QToolButton#Transport:hover {{ border-color: {accent}; }}
QToolButton#Transport:disabled {{ color: {muted}; background: {surface}; }}
QFrame#PlaybackBar {{ background: {surface}; border-top: 1px solid {border}; }}
QToolButton#PanelToggle {{
    border: 1px solid {border}; border-radius: 3px; background: {raised}; padding: 1px 6px;
    color: {muted}; font-size: 9pt;
}}
QToolButton#PanelToggle:hover {{ border-color: {accent}; }}
QToolButton#PanelToggle:checked {{ color: {text}; border-color: {accent}; }}
"""


def _palette() -> QPalette:
    c = {name: QColor(value) for name, value in COLOURS.items()}
    palette = QPalette()
    roles = QPalette.ColorRole
    palette.setColor(roles.Window, c["window"])
    palette.setColor(roles.WindowText, c["text"])
    palette.setColor(roles.Base, c["panel"])
    palette.setColor(roles.AlternateBase, c["surface"])
    palette.setColor(roles.ToolTipBase, c["raised"])
    palette.setColor(roles.ToolTipText, c["text"])
    palette.setColor(roles.PlaceholderText, c["muted"])
    palette.setColor(roles.Text, c["text"])
    palette.setColor(roles.Button, c["raised"])
    palette.setColor(roles.ButtonText, c["text"])
    palette.setColor(roles.BrightText, QColor("#ffffff"))
    palette.setColor(roles.Link, c["accent"])
    palette.setColor(roles.Highlight, c["accent"])
    palette.setColor(roles.HighlightedText, QColor("#0b0d10"))
    disabled = QPalette.ColorGroup.Disabled
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        palette.setColor(disabled, role, c["muted"])
    return palette


def apply_theme(app: QApplication) -> None:
    """Dark Fusion style, the viewer's style sheet and font, and pyqtgraph's defaults."""
    app.setStyle("Fusion")
    app.setPalette(_palette())
    font = QFont("DejaVu Sans", 10)
    font.setStyleHint(QFont.StyleHint.SansSerif)
    app.setFont(font)
    app.setStyleSheet(_STYLE.format(**COLOURS))
    pg.setConfigOptions(background=COLOURS["panel"], foreground=COLOURS["text"], antialias=True)
