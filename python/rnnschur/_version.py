"""The installed version of rnnschur, read from the package metadata.

Submodules that record the version (checkpoints, reports) call
:func:`library_version` instead of importing ``rnnschur.__version__``, so that no
module depends on the package root having finished importing.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["library_version"]


def library_version() -> str:
    """Version string of the installed distribution (``"0+unknown"`` from a bare
    source tree)."""
    try:
        return version("rnnschur")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"
