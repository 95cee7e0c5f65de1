"""Command-line value types that refuse what no command can use, with a message that says why.

``argparse`` calls them on the text of an option; a value out of range, not finite, or not a
number becomes argparse's usual ``error: argument --x: ...`` and exit status 2, instead of a
traceback (or an out-of-memory kill) much later. Every command line of the project
(``python -m app ...``, ``models.train``) takes its numeric options from here.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["float_in", "int_in"]


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer ``low <= value`` (and ``<= high`` when given).

    Args:
        low: the smallest value accepted.
        high: the largest value accepted; None for no upper bound.

    Returns:
        The argparse ``type`` function.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            wanted = f">= {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {value}")
        return value

    return parse


def float_in(
    low: float, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """A finite number in ``[low, high]``; ``low_open`` / ``high_open`` exclude an end.

    Args:
        low: the lower end.
        high: the upper end; None for none.
        low_open: exclude ``low`` itself (e.g. a speed or learning rate must be > 0).
        high_open: exclude ``high`` itself (e.g. a Dropout probability < 1).

    Returns:
        The argparse ``type`` function; NaN and infinities are always refused.
    """

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        below = value <= low if low_open else value < low
        above = high is not None and (value >= high if high_open else value > high)
        if not math.isfinite(value) or below or above:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            interval = f"> {low:g}" if high is None and low_open else f">= {low:g}"
            if high is not None:
                interval = f"in {left}{low:g}, {high:g}{right}"
            raise argparse.ArgumentTypeError(f"must be a finite number {interval}, got {text}")
        return value

    return parse
