"""Argument types shared by the command-line modules (application layer)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = [
    "int_at_least",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "unit_interval",
]


def int_at_least(least: int, what: str) -> Callable[[str], int]:
    """An ``argparse`` type: a whole number ``>= least``, described as ``what``
    (e.g. "positive") in the usage error, which quotes the text."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            msg = f"expected a {what} integer, got {text!r}"
            raise argparse.ArgumentTypeError(msg) from None
        if value < least:
            msg = f"expected a {what} integer, got {text!r}"
            raise argparse.ArgumentTypeError(msg)
        return value

    parse.__name__ = f"{what.replace('-', '_')}_int"
    return parse


#: A whole number >= 1.
positive_int = int_at_least(1, "positive")
#: A whole number >= 0.
non_negative_int = int_at_least(0, "non-negative")


def _real(text: str, ok: Callable[[float], bool], expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan  # fails every range check below
    if not ok(value):
        msg = f"expected {expected}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def positive_float(text: str) -> float:
    """An ``argparse`` type: a finite number > 0."""
    return _real(text, lambda v: 0.0 < v < math.inf, "a finite positive number")


def unit_interval(what: str) -> Callable[[str], float]:
    """An ``argparse`` type: a number in (0, 1] for option ``what`` (NaN is not)."""

    def parse(text: str) -> float:
        return _real(text, lambda v: 0.0 < v <= 1.0, f"a number in (0, 1] for {what}")

    parse.__name__ = "unit_interval"
    return parse
