"""from_arrays, Network.save / load_network (.npz, .safetensors, training checkpoints)."""

from __future__ import annotations

import io
import json
import sys
import zipfile

import numpy as np
import pytest

import rnnschur.io as rio
from rnnschur import Network, UnsupportedNetworkError, from_arrays, load_network
from rnnschur.training import CheckpointError, TrainConfig, save, train


def _net(rng, dtype=np.float32, **kw):
    return Network(
        W_xh=rng.standard_normal((6, 3)).astype(dtype),
        W_hh=rng.standard_normal((6, 6)).astype(dtype),
        W_hy=rng.standard_normal((2, 6)).astype(dtype),
        b_h=rng.standard_normal(6).astype(dtype),
        b_y=rng.standard_normal(2).astype(dtype),
        **kw,
    )


def _same(a, b):
    assert a.arrays().keys() == b.arrays().keys()
    for k, v in a.arrays().items():
        w = getattr(b, k)
        assert w.dtype == v.dtype and np.array_equal(w, v), k
    assert (a.leak, a.batch_first) == (b.leak, b.batch_first)


# ------------------------------------------------------------------- from_arrays


def test_from_arrays_names(rng):
    net = _net(rng, np.float64, h0=rng.standard_normal(6))
    a = net.arrays()
    ours = from_arrays(**a)
    psych = from_arrays(
        W_in=a["W_xh"],
        W_rec=a["W_hh"],
        W_out=a["W_hy"],
        b_rec=a["b_h"],
        b_out=a["b_y"],
        init_state=a["h0"][None],
        rec_connectivity=np.ones((6, 6)),
        Dale_rec=np.eye(6),
        leak=0.2,
    )
    torch_style = from_arrays(
        **{
            "rnn.weight_ih_l0": a["W_xh"],
            "rnn.weight_hh_l0": a["W_hh"],
            "rnn.bias_ih_l0": a["b_h"],
            "rnn.bias_hh_l0": np.zeros(6),
            "readout.weight": a["W_hy"],
            "readout.bias": a["b_y"],
        }
    )
    _same(net, ours)
    assert psych.leak == 0.2
    for k in a:
        np.testing.assert_array_equal(getattr(psych, k), a[k])
    for k in ("W_xh", "W_hh", "W_hy", "b_h", "b_y"):
        np.testing.assert_array_equal(getattr(torch_style, k), a[k])
    minimal = from_arrays(W_in=a["W_xh"], W_rec=a["W_hh"], W_out=a["W_hy"])
    assert not minimal.b_h.any() and not minimal.b_y.any() and minimal.h0 is None


@pytest.mark.parametrize(
    ("extra", "exc", "match"),
    [
        (
            {"W_foo": np.ones(2)},
            UnsupportedNetworkError,
            r"unknown array names \['W_foo'\]",
        ),
        ({"W_rec": np.eye(6)}, UnsupportedNetworkError, "both 'W_hh' and 'W_rec'"),
        (
            {"rec_connectivity": np.eye(6)},
            UnsupportedNetworkError,
            "rec_connectivity is not all ones",
        ),
        (
            {"Dale_rec": -np.eye(6)},
            UnsupportedNetworkError,
            "Dale_rec is not the identity",
        ),
        ({"b_h": np.ones(6, np.float32)}, TypeError, "must share one dtype"),
        ({"W_hh": np.ones((6, 6), np.int32)}, TypeError, "W_hh must be a float32"),
        ({"b_h": np.full(6, np.nan)}, ValueError, "b_h contains NaN"),
        ({"W_hh": np.eye(5)}, ValueError, r"W_xh must have shape \(5, 3\)"),
    ],
)
def test_from_arrays_refusals(extra, exc, match):
    base = {"W_xh": np.ones((6, 3)), "W_hh": np.eye(6), "W_hy": np.ones((2, 6))}
    with pytest.raises(exc, match=match):
        from_arrays(**{**base, **extra})


def test_from_arrays_missing_weight():
    with pytest.raises(
        UnsupportedNetworkError, match=r"missing W_hy \(one of \['W_hy', 'W_out'\]\)"
    ):
        from_arrays(W_xh=np.ones((2, 1)), W_hh=np.eye(2))


# ------------------------------------------------------------------- own format


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip(tmp_path, rng, suffix, dtype):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    nets = [
        _net(rng, dtype),
        _net(
            rng,
            dtype,
            h0=rng.standard_normal(6).astype(dtype),
            leak=0.3,
            batch_first=True,
        ),
    ]
    for i, net in enumerate(nets):
        p = net.save(tmp_path / f"n{i}{suffix}")
        assert p == tmp_path / f"n{i}{suffix}"
        back = load_network(p)
        _same(net, back)
        assert not back.W_hh.flags.writeable
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left
    assert load_network(p, batch_first=False).batch_first is False
    with pytest.raises(ValueError, match=r"leak=1.0 contradicts the leak 0.3"):
        load_network(p, leak=1.0)


def _rewrite_npz(src, dst, edit):
    with np.load(src) as f:
        entries = {k: f[k] for k in f.files}
    edit(entries)
    np.savez(dst, **entries)


def test_npz_damage_is_detected(tmp_path, rng):
    p = _net(rng).save(tmp_path / "n.npz")

    def tamper(e):
        e["W_hh"] = e["W_hh"] + 1

    def version(e):
        meta = json.loads(e["__meta__"].tobytes())
        meta["format_version"] = 99
        e["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)

    def fmt(e):
        e["__meta__"] = np.frombuffer(b'{"format": "other"}', np.uint8)

    def no_sha(e):
        del e["__sha256__"]

    for edit, match in (
        (tamper, "checksum mismatch"),
        (version, "format version 99 is not supported"),
        (fmt, "format is 'other'"),
        (no_sha, "checksum mismatch"),
    ):
        q = tmp_path / f"{edit.__name__}.npz"
        _rewrite_npz(p, q, edit)
        with pytest.raises(CheckpointError, match=match):
            load_network(q)
    raw = p.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="unreadable or truncated"):
        load_network(tmp_path / "trunc.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_network(tmp_path / "empty.npz")
    (tmp_path / "text.bin").write_text("hello")
    with pytest.raises(CheckpointError, match=r"not an .npz"):
        load_network(tmp_path / "text.bin")


def test_safetensors_damage_and_foreign(tmp_path, rng):
    st = pytest.importorskip("safetensors.numpy")
    net = _net(rng)
    p = net.save(tmp_path / "n.safetensors")
    arrays = st.load_file(str(p))
    arrays["W_hh"] = arrays["W_hh"] + 1
    from safetensors import safe_open

    with safe_open(str(p), framework="numpy") as f:
        meta = f.metadata()
    st.save_file(arrays, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_network(tmp_path / "bad.safetensors")
    # a safetensors file written by someone else: torch-style names, no metadata
    foreign = {
        "rnn.weight_ih_l0": net.W_xh,
        "rnn.weight_hh_l0": net.W_hh,
        "rnn.bias_ih_l0": net.b_h,
        "rnn.bias_hh_l0": np.zeros(6, np.float32),
        "head.weight": net.W_hy,
        "head.bias": net.b_y,
    }
    st.save_file(foreign, str(tmp_path / "f.safetensors"))
    back = load_network(tmp_path / "f.safetensors", leak=0.5)
    assert back.leak == 0.5
    for k in ("W_xh", "W_hh", "W_hy", "b_h", "b_y"):
        np.testing.assert_array_equal(getattr(back, k), getattr(net, k))
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="unreadable safetensors"):
        load_network(tmp_path / "junk.safetensors")


def test_foreign_npz(tmp_path, rng):
    net = _net(rng, np.float64)
    np.savez(
        tmp_path / "p.npz",
        W_in=net.W_xh,
        W_rec=net.W_hh,
        W_out=net.W_hy,
        b_rec=net.b_h,
        b_out=net.b_y,
    )
    back = load_network(tmp_path / "p.npz", leak=0.1)
    assert back.leak == 0.1
    np.testing.assert_array_equal(back.W_hh, net.W_hh)
    np.savez(tmp_path / "q.npz", W_in=net.W_xh, other=net.W_hh)
    with pytest.raises(
        UnsupportedNetworkError, match=r"unknown array names \['other'\]"
    ):
        load_network(tmp_path / "q.npz")
    np.savez(
        tmp_path / "sd.npz",
        **{
            "m.rnn.weight_ih_l0": net.W_xh,
            "m.rnn.weight_hh_l0": net.W_hh,
            "m.fc.weight": net.W_hy,
            "m.other.weight": np.ones((2, 6)),
        },
    )
    with pytest.raises(UnsupportedNetworkError, match="several possible readouts"):
        load_network(tmp_path / "sd.npz")
    sel = load_network(tmp_path / "sd.npz", prefix="m.rnn.", readout="m.fc")
    np.testing.assert_array_equal(sel.W_hy, net.W_hy)


def test_training_checkpoint_loads_as_network(tmp_path):
    from rnnschur.tasks import FlipFlop

    cfg = TrainConfig(
        epochs=1, batches_per_epoch=2, batch_size=4, eval_size=8, n_threads=1
    )
    model = train(FlipFlop(), "dense_default", 8, seed=0, config=cfg, progress=False)
    p = save(tmp_path / "m.npz", model)
    net = load_network(p)
    for k in ("W_xh", "W_hh", "W_hy"):
        np.testing.assert_array_equal(getattr(net, k), getattr(model, k))
    assert net.leak == 1.0 and not net.b_h.any() and net.h0 is None
    x = np.random.default_rng(0).standard_normal((5, 2, model.W_xh.shape[1]))
    np.testing.assert_array_equal(
        net.rollout(x.astype(np.float32)), model.rollout(x.astype(np.float32))
    )


def test_save_errors(tmp_path, rng):
    net = _net(rng)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        net.save(tmp_path / "missing" / "n.npz")
    with pytest.raises(IsADirectoryError):
        net.save(tmp_path)
    with pytest.raises(TypeError, match="path must be"):
        net.save(3)
    with pytest.raises(TypeError, match="net must be a Network"):
        rio.save_network("x", tmp_path / "a.npz")
    with pytest.raises(TypeError, match="path must be"):
        load_network(None)


def test_npz_layout_follows_checkpoint_conventions(tmp_path, rng):
    p = _net(rng).save(tmp_path / "n.npz")
    with zipfile.ZipFile(p) as z:
        names = set(z.namelist())
    assert {"__meta__.npy", "__sha256__.npy", "W_hh.npy"} <= names
    with np.load(p) as f:
        meta = json.loads(f["__meta__"].tobytes())
        entries = {k: f[k] for k in f.files if not k.startswith("__")}
        sha = f["__sha256__"].tobytes()
    assert meta["format"] == "rnnschur.network" and meta["format_version"] == 1
    assert sha == rio.content_digest(json.dumps(meta, sort_keys=True).encode(), entries)
    assert io.BytesIO  # (module used for the npz in memory)


def test_missing_optional_dependencies_name_the_extra(tmp_path, rng, monkeypatch):
    from rnnschur import from_torch

    net = _net(rng)
    for mod in ("torch", "safetensors", "safetensors.numpy"):
        monkeypatch.setitem(sys.modules, mod, None)  # makes `import mod` fail
    with pytest.raises(ImportError, match=r'"rnnschur\[safetensors\]"'):
        net.save(tmp_path / "n.safetensors")
    (tmp_path / "m.safetensors").write_bytes(b"")
    with pytest.raises(ImportError, match=r'"rnnschur\[safetensors\]"'):
        load_network(tmp_path / "m.safetensors")
    with pytest.raises(ImportError, match=r'"rnnschur\[torch\]"'):
        net.to_torch()
    with pytest.raises(ImportError, match=r'"rnnschur\[torch\]"'):
        from_torch(tmp_path / "m.pt")
    with pytest.raises(ImportError, match=r'"rnnschur\[torch\]"'):
        load_network(tmp_path / "m.pth")
    # a state dict of NumPy arrays needs no torch
    sd = {"weight_ih_l0": net.W_xh, "weight_hh_l0": net.W_hh, "fc.weight": net.W_hy}
    assert from_torch(sd).n_hidden == 6
