from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zipfile

import numpy as np
import pytest

import rnnschur.training as tr
from rnnschur.files import content_digest, current_umask
from rnnschur.tasks import ContextIntegration, CopyTask
from rnnschur.training import CheckpointError, TrainConfig, load, save, train

CFG = TrainConfig(
    epochs=2, batches_per_epoch=3, batch_size=8, eval_size=16, n_threads=1
)


@pytest.fixture(scope="module")
def dense_model():
    return train(
        CopyTask(symbols=2, dim=3, lags=5),
        "dense_orthogonal",
        10,
        seed=1,
        config=CFG,
        progress=False,
    )


@pytest.fixture(scope="module")
def cayley_model():
    task = ContextIntegration(coherences=(0.1, 0.2), length=12)
    return train(task, "cayley", 9, seed=2, config=CFG, progress=False)


def _assert_same(a, b):
    for k in ("W_xh", "W_hh", "W_hy"):
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype
        assert np.array_equal(x, y)
    assert a.task == b.task
    assert a.construction == b.construction
    assert a.hidden == b.hidden
    assert a.seed == b.seed
    assert a.config == b.config
    assert a.version == b.version
    assert a.history == b.history
    if a.cayley is None:
        assert b.cayley is None
    else:
        assert set(a.cayley) == set(b.cayley)
        for k in a.cayley:
            assert a.cayley[k].dtype == b.cayley[k].dtype
            assert np.array_equal(a.cayley[k], b.cayley[k])


@pytest.mark.parametrize("which", ["dense_model", "cayley_model"])
def test_roundtrip(which, request, tmp_path):
    model = request.getfixturevalue(which)
    path = save(tmp_path / "m.npz", model)
    assert path == tmp_path / "m.npz"
    _assert_same(model, load(path))
    _assert_same(model, load(str(path)))
    # the loaded model evaluates identically
    assert tr.evaluate(load(path)) == tr.evaluate(model)


def test_saves_exactly_at_the_given_path_and_leaves_no_temporaries(
    dense_model, tmp_path
):
    save(tmp_path / "model", dense_model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    _assert_same(dense_model, load(tmp_path / "model"))


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes only")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_file_mode_follows_the_umask_not_the_temporary(dense_model, tmp_path, umask):
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        save(tmp_path / "m.npz", dense_model)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.npz").stat().st_mode) == 0o666 & ~umask


def test_overwrite_replaces_previous(dense_model, cayley_model, tmp_path):
    p = tmp_path / "m.npz"
    save(p, dense_model)
    save(p, cayley_model)
    _assert_same(cayley_model, load(p))


def test_crash_mid_write_keeps_previous_file(
    dense_model, cayley_model, tmp_path, monkeypatch
):
    p = tmp_path / "m.npz"
    save(p, dense_model)
    before = p.read_bytes()
    real_savez = np.savez

    def crashing_savez(fh, **arrays):
        real_savez(fh, **arrays)
        fh.write(b"partial")
        raise KeyboardInterrupt  # e.g. the user hits Ctrl-C mid-write

    monkeypatch.setattr(np, "savez", crashing_savez)
    with pytest.raises(KeyboardInterrupt):
        save(p, cayley_model)
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.npz"]
    _assert_same(dense_model, load(p))


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, 0.9, -1])
def test_truncated_files_raise(dense_model, tmp_path, keep):
    p = tmp_path / "m.npz"
    save(p, dense_model)
    data = p.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    p.write_bytes(data[:n])
    with pytest.raises(CheckpointError, match="not a valid rnnschur checkpoint"):
        load(p)


def _rewrite(path, edit):
    """Re-zip a checkpoint with ``edit(entries)`` applied (a well-formed zip)."""
    with np.load(path, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    edit(entries)
    buf = io.BytesIO()
    np.savez(buf, **entries)
    path.write_bytes(buf.getvalue())


def _meta(entries):
    return json.loads(entries["__meta__"].tobytes().decode())


def _set_meta(entries, meta, *, rehash):
    raw = json.dumps(meta, sort_keys=True).encode()
    entries["__meta__"] = np.frombuffer(raw, dtype=np.uint8)
    if rehash:
        arrays = {
            k: v for k, v in entries.items() if k not in ("__meta__", "__sha256__")
        }
        entries["__sha256__"] = np.frombuffer(
            content_digest(raw, arrays), dtype=np.uint8
        )


def test_flipped_weight_raises(dense_model, tmp_path):
    p = tmp_path / "m.npz"
    save(p, dense_model)

    def edit(e):
        e["W_hh"] = e["W_hh"].copy()
        e["W_hh"][0, 0] += 1.0

    _rewrite(p, edit)
    with pytest.raises(CheckpointError, match="checksum"):
        load(p)


def test_flipped_byte_in_the_zip_raises(dense_model, tmp_path):
    p = tmp_path / "m.npz"
    save(p, dense_model)
    data = bytearray(p.read_bytes())
    # flip a byte inside W_hh's stored data (the zip is uncompressed)
    start = data.find(b"W_hh.npy")
    data[start + 200] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load(p)


def test_tampered_metadata_raises(dense_model, tmp_path):
    p = tmp_path / "m.npz"
    save(p, dense_model)

    def edit(e):
        meta = _meta(e)
        meta["seed"] = 99
        _set_meta(e, meta, rehash=False)

    _rewrite(p, edit)
    with pytest.raises(CheckpointError, match="checksum"):
        load(p)


def test_wrong_version_raises(dense_model, tmp_path):
    p = tmp_path / "m.npz"
    save(p, dense_model)

    def edit(e):
        meta = _meta(e)
        meta["format_version"] = 2
        _set_meta(e, meta, rehash=True)

    _rewrite(p, edit)
    with pytest.raises(CheckpointError, match="format version 2 is not supported"):
        load(p)


@pytest.mark.parametrize(
    ("change", "word"),
    [
        (lambda m: m.update(format="other"), "format"),
        (lambda m: m["task"].update(name="nope"), "inconsistent"),
        (lambda m: m["config"].update(lr=-1.0), "inconsistent"),
        (lambda m: m.update(construction="dense"), "inconsistent"),
        (lambda m: m.update(hidden=11), "inconsistent"),
        (lambda m: m["arrays"].pop("W_hh"), "inconsistent"),
        (lambda m: m.update(history_keys=["missing"]), "inconsistent"),
    ],
)
def test_consistent_checksum_but_bad_content_raises(
    dense_model, tmp_path, change, word
):
    p = tmp_path / "m.npz"
    save(p, dense_model)

    def edit(e):
        meta = _meta(e)
        change(meta)
        _set_meta(e, meta, rehash=True)

    _rewrite(p, edit)
    with pytest.raises(CheckpointError, match=word):
        load(p)


def test_array_shape_mismatch_raises(dense_model, tmp_path):
    p = tmp_path / "m.npz"
    save(p, dense_model)

    def edit(e):
        e["W_hh"] = e["W_hh"][:, :5].copy()
        meta = _meta(e)
        meta["arrays"]["W_hh"][1] = [10, 5]
        _set_meta(e, meta, rehash=True)

    _rewrite(p, edit)
    with pytest.raises(CheckpointError, match="W_hh"):
        load(p)


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "x.npz"
    p.write_bytes(b"hello")
    with pytest.raises(CheckpointError):
        load(p)
    np.savez(p, a=np.zeros(3))
    with pytest.raises(CheckpointError, match="missing entry"):
        load(p)
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("__meta__.npy", b"garbage")
    with pytest.raises(CheckpointError):
        load(p)


def test_a_saved_network_points_to_load_network(dense_model, tmp_path):
    import rnnschur

    p = dense_model.network.save(tmp_path / "net.npz")
    with pytest.raises(CheckpointError, match=r"rnnschur\.load_network") as info:
        rnnschur.load(p)
    assert "saved network" in str(info.value) and "not a trained model" in str(
        info.value
    )
    back = rnnschur.load_network(p)
    np.testing.assert_array_equal(back.W_hh, dense_model.network.W_hh)


def test_pickled_content_is_refused(dense_model, tmp_path):
    p = tmp_path / "m.npz"
    save(p, dense_model)

    def edit(e):
        e["W_hh"] = np.array([{"evil": 1}], dtype=object)

    _rewrite(p, edit)
    with pytest.raises(CheckpointError):
        load(p)


def test_missing_file_and_bad_arguments(dense_model, tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.npz")
    with pytest.raises(TypeError, match="path"):
        load(3)
    with pytest.raises(TypeError, match="model"):
        save(tmp_path / "m.npz", {"W_hh": 1})
    with pytest.raises(TypeError, match="path"):
        save(None, dense_model)


def test_checksum_is_sha256_over_meta_and_arrays(dense_model, tmp_path):
    p = tmp_path / "m.npz"
    save(p, dense_model)
    with np.load(p, allow_pickle=False) as f:
        entries = {k: f[k] for k in f.files}
    meta = entries.pop("__meta__").tobytes()
    sha = entries.pop("__sha256__").tobytes()
    h = hashlib.sha256(meta)
    for k in sorted(entries):
        a = entries[k]
        h.update(
            k.encode() + a.dtype.str.encode() + repr(a.shape).encode() + a.tobytes()
        )
    assert h.digest() == sha
    m = json.loads(meta)
    assert m["format"] == "rnnschur.model"
    assert m["format_version"] == 1
    assert m["task"] == dense_model.task.to_dict()


def _rewrite_consistent(path, edit):
    """Apply ``edit(entries)`` and re-record array list and checksum, as a tool that
    writes the format (or a buggy save) would: only the content checks can object."""

    def full_edit(e):
        edit(e)
        meta = _meta(e)
        meta["arrays"] = {
            k: [v.dtype.str, list(v.shape)] for k, v in e.items() if k[:2] != "__"
        }
        _set_meta(e, meta, rehash=True)

    _rewrite(path, full_edit)


def _set(key, fn):
    def edit(e):
        e[key] = fn(e[key])

    return edit


def _add_cayley_arrays(e):
    e["cayley_A"] = np.zeros((10, 10), np.float32)


@pytest.mark.parametrize(
    ("which", "edit", "word"),
    [
        ("cayley_model", _set("cayley_A", lambda a: a + np.float32(0.5)), "skew"),
        ("cayley_model", _set("cayley_A", lambda a: a[:3, :3].copy()), "cayley_A"),
        ("cayley_model", _set("cayley_A", lambda a: a.astype(np.float64)), "cayley_A"),
        ("cayley_model", _set("cayley_D", lambda d: d + np.float32(1)), "block"),
        ("cayley_model", _set("cayley_D_blocks", lambda b: b[:-1].copy()), "block"),
        ("cayley_model", _set("cayley_D_blocks", lambda b: b * 1.0), "D_blocks"),
        ("cayley_model", _set("W_hh", np.zeros_like), "W_from_cayley"),
        ("dense_model", _set("W_hh", lambda w: np.full_like(w, np.nan)), "non-finite"),
        ("dense_model", _set("W_xh", lambda w: np.full_like(w, np.inf)), "non-finite"),
        ("dense_model", _add_cayley_arrays, "Cayley arrays"),
        ("dense_model", _set("history_eval_fvu", lambda h: h[:-1].copy()), "history"),
        ("dense_model", _set("history_lr", lambda h: np.stack([h, h])), "history"),
    ],
)
def test_consistent_checksum_but_bad_arrays_raise(which, edit, word, request, tmp_path):
    p = tmp_path / "m.npz"
    save(p, request.getfixturevalue(which))
    _rewrite_consistent(p, edit)
    with pytest.raises(CheckpointError, match=word):
        load(p)


def test_untouched_cayley_checkpoint_passes_the_form_checks(cayley_model, tmp_path):
    # the same re-recording as above with no edit loads: the checks above are what
    # rejects those files, not the rewrite itself
    p = tmp_path / "m.npz"
    save(p, cayley_model)
    _rewrite_consistent(p, lambda _e: None)
    _assert_same(cayley_model, load(p))


def test_non_zip_files_say_so(tmp_path):
    for content in (b"", b"hello world", b"\x93NUMPY"):
        p = tmp_path / "x.npz"
        p.write_bytes(content)
        with pytest.raises(CheckpointError, match=r"not an \.npz \(zip\) file"):
            load(p)


def test_save_to_a_missing_directory_or_a_directory_fails_clearly(
    dense_model, tmp_path
):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save(tmp_path / "absent" / "m.npz", dense_model)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        save(tmp_path, dense_model)
    assert list(tmp_path.iterdir()) == []
