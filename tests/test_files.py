"""The shared file conventions: the digest stays the one existing files carry."""

from __future__ import annotations

import hashlib
import os
import stat

import numpy as np
import pytest

from rnnschur.files import atomic_write, content_digest


def _arrays():
    return {
        "W_hh": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.array([1.5, -2.0]),
        "k": np.array([3], dtype=np.int64),
    }


def test_digest_is_pinned():
    # the value every checkpoint and network file written so far was checked with
    got = content_digest(b'{"format": "x"}', _arrays()).hex()
    assert got == "35ab1155c84cd42e550a4d8f36ced366a5ec75db3d3e96a21ad8d506cd8d86ef"


def test_digest_against_hashlib():
    arrays = _arrays()
    h = hashlib.sha256(b"meta")
    for name in sorted(arrays):
        a = arrays[name]
        h.update(f"{name}{a.dtype.str}{a.shape!r}".encode() + a.tobytes())
    assert content_digest(b"meta", arrays) == h.digest()
    fortran = {k: np.asfortranarray(v) for k, v in arrays.items()}
    assert content_digest(b"meta", fortran) == h.digest()


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes only")
def test_atomic_write_bytes_and_callable(tmp_path):
    p = tmp_path / "f.bin"
    atomic_write(p, b"abc")
    assert p.read_bytes() == b"abc"
    atomic_write(p, lambda fh: fh.write(b"xyz"))
    assert p.read_bytes() == b"xyz"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["f.bin"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask

    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        atomic_write(p, boom)
    assert p.read_bytes() == b"xyz"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["f.bin"]
