"""Argument checks shared by the whole package.

Every public function validates its scalar arguments through these helpers, so that
the same input is accepted or rejected the same way everywhere: NumPy integer scalars
(``np.int64``) count as integers, ``bool`` (and ``np.bool_``) never counts as a number,
and the error names the argument.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "as_generator",
    "check_bool",
    "check_choice",
    "check_int",
    "check_path",
    "check_real",
    "is_integer",
    "is_real",
]


def is_integer(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(
        value, (bool, np.bool_)
    )


def is_real(value: Any) -> bool:
    """A real number (Python or NumPy integer or float), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """``value`` as a Python int, checked to be an integer ``>= minimum`` (and
    ``<= maximum`` when given).

    Raises
    ------
    TypeError
        ``value`` is not an integer (bools are not).
    ValueError
        ``value`` outside the range.
    """
    if not is_integer(value):
        msg = f"{name} must be an integer; got {type(value).__name__}"
        raise TypeError(msg)
    if value < minimum:
        msg = f"{name} must be >= {minimum}; got {value}"
        raise ValueError(msg)
    if maximum is not None and value > maximum:
        msg = f"{name} must be <= {maximum}; got {value}"
        raise ValueError(msg)
    return int(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` (a ``bool`` or ``np.bool_``) as a Python bool; a ``TypeError``
    naming the argument for anything else (0 and 1 included)."""
    if not isinstance(value, (bool, np.bool_)):
        msg = f"{name} must be a bool; got {value!r}"
        raise TypeError(msg)
    return bool(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of the strings ``choices``; a ``TypeError`` (not a
    string) or ``ValueError`` (another string) naming the argument otherwise."""
    if not isinstance(value, str):
        msg = f"{name} must be a string; got {type(value).__name__}"
        raise TypeError(msg)
    if value not in choices:
        msg = f"{name} must be one of {choices}; got {value!r}"
        raise ValueError(msg)
    return value


def as_generator(name: str, value: Any) -> np.random.Generator:
    """A ``numpy.random.Generator`` from ``value``: a Generator itself, or a seed
    for ``numpy.random.default_rng`` (None, a non-negative integer, a
    ``SeedSequence`` or a ``BitGenerator``).

    Raises
    ------
    TypeError
        Any other type (bools are not seeds).
    ValueError
        A negative integer seed.
    """
    if isinstance(value, np.random.Generator):
        return value
    seed_types = (np.random.SeedSequence, np.random.BitGenerator)
    if not (value is None or is_integer(value) or isinstance(value, seed_types)):
        msg = (
            f"{name} must be None, an int seed, a SeedSequence or a "
            f"numpy.random.Generator; got {type(value).__name__}"
        )
        raise TypeError(msg)
    if is_integer(value) and value < 0:
        msg = f"{name} must be a non-negative seed; got {value}"
        raise ValueError(msg)
    return np.random.default_rng(value)


def check_real(
    name: str,
    value: Any,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite Python float in ``[low, high]`` (open at ``low`` with
    ``low_open``, at ``high`` with ``high_open``).

    Raises
    ------
    TypeError
        ``value`` is not a real number (bools are not).
    ValueError
        ``value`` is not finite or outside the interval.
    """
    if not is_real(value):
        msg = f"{name} must be a real number; got {type(value).__name__}"
        raise TypeError(msg)
    v = float(value)
    ok = math.isfinite(v) and (v > low if low_open else v >= low)
    if not ok or (v >= high if high_open else v > high):
        # Only finite values pass, so an infinite bound is an open end.
        left = "(" if low_open or math.isinf(low) else "["
        right = ")" if high_open or math.isinf(high) else "]"
        msg = f"{name} must lie in {left}{low}, {high}{right}; got {v}"
        raise ValueError(msg)
    return v


def check_path(name: str, value: Any) -> Path:
    """``value`` (a ``str`` or ``os.PathLike``) as a :class:`pathlib.Path`.

    Raises
    ------
    TypeError
        Any other type.
    """
    if not isinstance(value, (str, os.PathLike)):
        msg = f"{name} must be a str or os.PathLike; got {type(value).__name__}"
        raise TypeError(msg)
    return Path(value)
