"""The file conventions shared by the package's formats (training checkpoints,
saved networks): a SHA-256 over metadata and arrays, the array listing in the
metadata, and atomic writes.

Both formats store the digest of :func:`content_digest` next to a JSON metadata
entry and write through :func:`atomic_write`, so a reader can tell a complete,
unmodified file from anything else and a crash never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["atomic_write", "check_listed_arrays", "content_digest", "current_umask"]


def content_digest(meta_bytes: bytes, arrays: dict[str, np.ndarray]) -> bytes:
    """SHA-256 of the metadata and of every array, in sorted name order.

    Parameters
    ----------
    meta_bytes : bytes
        The metadata exactly as stored (UTF-8 JSON).
    arrays : dict of str to ndarray
        Every stored array; each contributes its name, ``dtype.str``, ``repr(shape)``
        and its C-order bytes.

    Returns
    -------
    bytes
        The 32-byte digest.
    """
    h = hashlib.sha256(meta_bytes)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        for part in (name, a.dtype.str, repr(a.shape)):
            h.update(part.encode())
        h.update(a.tobytes())
    return h.digest()


def check_listed_arrays(listed: dict[str, Any], entries: dict[str, np.ndarray]) -> None:
    """Check that the stored arrays are exactly those the metadata lists.

    Parameters
    ----------
    listed : dict of str to [dtype str, shape list]
        The metadata's ``"arrays"`` entry.
    entries : dict of str to ndarray
        The arrays read from the file.

    Raises
    ------
    ValueError
        Another set of names, or an array whose dtype or shape differs from its
        listing.
    """
    if set(listed) != set(entries):
        msg = f"arrays {sorted(entries)} do not match the metadata {sorted(listed)}"
        raise ValueError(msg)
    for k, (dt, shape) in listed.items():
        if entries[k].dtype.str != dt or list(entries[k].shape) != shape:
            msg = f"array {k!r} is {entries[k].dtype}{entries[k].shape}, expected {dt}{shape}"
            raise ValueError(msg)


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    try:
        with Path("/proc/self/status").open(encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no read-only query elsewhere: set and restore at once
    os.umask(mask)
    return mask


def atomic_write(path: Path, content: bytes | Callable[[IO[bytes]], None]) -> Path:
    """Write ``path`` via a temporary file in its directory, fsync, rename.

    A crash leaves the previous file (or none) intact. The file gets the mode any
    new file would (0666 masked by the umask), not the temporary's 0600.

    Parameters
    ----------
    path : pathlib.Path
        Target; its directory must exist.
    content : bytes or callable
        The bytes, or a function that writes them to the open binary file.

    Returns
    -------
    pathlib.Path
    """
    directory = path.parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), 0o666 & ~current_umask())
            if isinstance(content, bytes):
                fh.write(content)
            else:
                content(fh)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - platforms without directory fsync
        pass
    return path
