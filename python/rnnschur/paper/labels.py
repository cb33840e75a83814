"""Display names of blocks, subsets, constructions and tasks, as the report prints
them (plain text and TeX)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "BLOCK_LABELS",
    "BLOCK_TEX",
    "CONSTRUCTION_LABELS",
    "TASK_LABELS",
    "subset_label",
]

#: Plain-text names of the blocks, as tables print them.
BLOCK_LABELS = {"RR": "T_RR", "CR": "T_C→R", "CC": "T_CC"}

#: TeX names of the blocks, for figure labels.
BLOCK_TEX = {"RR": r"$T_{RR}$", "CR": r"$T_{C\to R}$", "CC": r"$T_{CC}$"}

CONSTRUCTION_LABELS = {
    "dense_default": "dense default",
    "dense_orthogonal": "dense orth.",
    "dense_normal": "dense normal",
    "cayley": "Cayley",
    "cayley_free": "Cayley, free D",
}

TASK_LABELS = {"flipflop": "3-bit flip-flop", "sine": "sine generation", "cdi": "CDI"}


def subset_label(subset: Iterable[str]) -> str:
    """Human-readable name of an ablation subset: ``"full"`` or ``"−T_RR −T_CC"``."""
    subset = tuple(subset)
    if not subset:
        return "full"
    return " ".join("−" + BLOCK_LABELS[b] for b in subset)
