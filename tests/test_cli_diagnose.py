"""``rnnschur diagnose``: every kind of model file, both outputs, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnschur
import rnnschur.training as tr
from rnnschur.cli import main
from rnnschur.tasks import FlipFlop


def _net(rng, nh=8, nx=3, ny=2, dtype=np.float64):
    return rnnschur.Network(
        W_xh=rng.normal(size=(nh, nx)).astype(dtype),
        W_hh=(rng.normal(size=(nh, nh)) / np.sqrt(nh)).astype(dtype),
        W_hy=rng.normal(size=(ny, nh)).astype(dtype),
        b_h=rng.normal(size=nh).astype(dtype) * 0.1,
        b_y=rng.normal(size=ny).astype(dtype) * 0.1,
    )


def _data(tmp_path, rng, T=12, B=5, nx=3, ny=2, **extra):
    path = tmp_path / "data.npz"
    x = rng.normal(size=(T, B, nx))
    y = rng.normal(size=(T, B, ny))
    np.savez(path, x=x, y=y, **extra)
    return path, x, y


def test_own_npz_markdown_equals_library_call(tmp_path, capsys):
    rng = np.random.default_rng(0)
    net = _net(rng)
    net.save(tmp_path / "net.npz")
    data, x, y = _data(tmp_path, rng)
    assert main(["diagnose", str(tmp_path / "net.npz"), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == rnnschur.diagnose(net, x, y).to_markdown()
    assert "| RR+CR+CC |" in out


def test_json_output_matches_records(tmp_path, capsys):
    rng = np.random.default_rng(1)
    net = _net(rng)
    net.save(tmp_path / "net.npz")
    data, x, y = _data(tmp_path, rng)
    args = ["diagnose", str(tmp_path / "net.npz"), "--data", str(data)]
    assert main([*args, "--json", "--metric", "mse", "--alpha", "0.5"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = rnnschur.diagnose(net, x, y, metric="mse", alpha=0.5)
    assert got["metric"] == "mse" and got["n_R"] == want.n_R and got["n"] == 8
    assert len(got["rows"]) == 8 and got["rows"][0]["delta_per_mass"] is None
    for g, w in zip(got["rows"], want.to_records(), strict=True):
        assert tuple(g["subset"]) == w["subset"]
        assert g["metric"] == w["metric"] and g["removed_mass"] == w["removed_mass"]


def test_subspaces_table_equals_library_call(tmp_path, capsys):
    rng = np.random.default_rng(3)
    net = _net(rng, nh=10)
    net.save(tmp_path / "net.npz")
    data, x, _ = _data(tmp_path, rng, T=20, B=6)
    args = ["diagnose", str(tmp_path / "net.npz"), "--data", str(data)]
    assert main([*args, "--alpha", "0.6"]) == 0
    plain = capsys.readouterr().out
    assert "alignment" not in plain
    assert main([*args, "--alpha", "0.6", "--subspaces"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(plain.rstrip("\n"))
    _, H = net.rollout(x, return_hidden=True)
    sa = rnnschur.subspace_alignment(
        net.W_hh, H, W_hy=net.W_hy, W_xh=net.W_xh, alpha=0.6, n_null=1000, rng=0
    )
    assert text.rstrip("\n").endswith(sa.to_markdown().rstrip("\n"))
    assert "| block | shape | rank | removed Schur mass" in text
    assert "participation ratio" in text
    # JSON: the same per-block records, NaN as null
    assert main([*args, "--alpha", "0.6", "--subspaces", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [r["block"] for r in got["subspaces"]] == ["RR", "CR", "CC"]
    for g, w in zip(got["subspaces"], sa.to_records(), strict=True):
        assert g["removed_mass"] == pytest.approx(w["removed_mass"], rel=1e-12)
    assert len(got["subspace_angles"]) == len(sa.angle_records())


def test_subspaces_of_a_leaky_network_use_the_effective_recurrence(tmp_path, capsys):
    rng = np.random.default_rng(4)
    base = _net(rng)
    net = rnnschur.Network(**{**base.arrays(), "leak": 0.3})
    net.save(tmp_path / "leaky.npz")
    data, x, _ = _data(tmp_path, rng)
    args = ["diagnose", str(tmp_path / "leaky.npz"), "--data", str(data)]
    assert main([*args, "--subspaces", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    _, H = net.rollout(x, return_hidden=True)
    sa = rnnschur.subspace_alignment(
        net.effective_recurrence(), H, W_hy=net.W_hy, W_xh=net.W_xh, rng=0
    )
    for key in ("removed_mass", "activity_weighted_size"):
        want = [r[key] for r in sa.to_records()]
        have = [np.nan if r[key] is None else r[key] for r in got["subspaces"]]
        assert have == pytest.approx(want, rel=1e-12, nan_ok=True)


def test_batch_first_mask_and_sign_accuracy(tmp_path, capsys):
    rng = np.random.default_rng(2)
    net = _net(rng)
    net.save(tmp_path / "net.npz")
    x = rng.normal(size=(5, 12, 3))
    y = np.sign(rng.normal(size=(5, 12, 2)))
    m = rng.random((5, 12, 1)) < 0.5
    np.savez(tmp_path / "d.npz", inp=x, tgt=y, m=m)
    args = ["diagnose", str(tmp_path / "net.npz"), "--data", str(tmp_path / "d.npz")]
    args += ["--x-key", "inp", "--y-key", "tgt", "--mask-key", "m", "--batch-first"]
    assert main([*args, "--metric", "sign_accuracy", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = rnnschur.diagnose(
        net, x, y, m, metric="sign_accuracy", batch_first=True
    ).to_records()
    assert [r["metric"] for r in got["rows"]] == [r["metric"] for r in want]


def test_torch_state_dict_file(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    rnn = torch.nn.RNN(3, 8, dtype=torch.float64)
    lin = torch.nn.Linear(8, 2, dtype=torch.float64)
    sd = {f"rnn.{k}": v for k, v in rnn.state_dict().items()}
    sd |= {f"readout.{k}": v for k, v in lin.state_dict().items()}
    torch.save(sd, tmp_path / "model.pt")
    rng = np.random.default_rng(3)
    data, x, y = _data(tmp_path, rng)
    assert main(["diagnose", str(tmp_path / "model.pt"), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    net = rnnschur.from_torch(rnn, lin)
    assert out.strip() == rnnschur.diagnose(net, x, y).to_markdown()


def test_training_checkpoint(tmp_path, capsys):
    task = FlipFlop()
    cfg = tr.TrainConfig(epochs=1, batches_per_epoch=2, batch_size=4, n_threads=1)
    model = tr.train(task, "dense_orthogonal", 8, seed=0, config=cfg, progress=False)
    tr.save(tmp_path / "m.npz", model)
    x, y, mask = task.sample(6, np.random.default_rng(4))
    np.savez(tmp_path / "d.npz", x=x, y=y, mask=mask)
    args = ["diagnose", str(tmp_path / "m.npz"), "--data", str(tmp_path / "d.npz")]
    assert main([*args, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = rnnschur.diagnose(model.network, x, y, mask).to_records()
    assert [r["metric"] for r in got["rows"]] == [r["metric"] for r in want]


def test_missing_key_lists_the_file(tmp_path, capsys):
    rng = np.random.default_rng(5)
    _net(rng).save(tmp_path / "net.npz")
    np.savez(tmp_path / "d.npz", inputs=np.zeros((2, 3, 3)), y=np.zeros((2, 3, 2)))
    args = ["diagnose", str(tmp_path / "net.npz"), "--data", str(tmp_path / "d.npz")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--x-key 'x'" in err and "inputs float64(2, 3, 3)" in err
    assert main([*args, "--x-key", "inputs", "--mask-key", "nope"]) == 2
    assert "--mask-key 'nope'" in capsys.readouterr().err


def test_shape_mismatch_and_bad_files(tmp_path, capsys):
    rng = np.random.default_rng(6)
    _net(rng).save(tmp_path / "net.npz")
    data, _, _ = _data(tmp_path, rng, nx=4)
    assert main(["diagnose", str(tmp_path / "net.npz"), "--data", str(data)]) == 2
    assert "Nx = 3" in capsys.readouterr().err
    data, _, _ = _data(tmp_path, rng, ny=3)
    assert main(["diagnose", str(tmp_path / "net.npz"), "--data", str(data)]) == 2
    assert "y must have shape" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert main(["diagnose", str(tmp_path / "junk.npz"), "--data", str(data)]) == 1
    assert "cannot load" in capsys.readouterr().err
    missing = str(tmp_path / "absent.npz")
    assert main(["diagnose", str(tmp_path / "net.npz"), "--data", missing]) == 2
    assert "cannot read --data" in capsys.readouterr().err


def test_bad_metric_and_alpha_are_usage_errors(tmp_path, capsys):
    for bad in (["--metric", "accuracy"], ["--alpha", "1.5"], ["--leak", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(["diagnose", "m.npz", "--data", "d.npz", *bad])
        assert exc.value.code == 2
        assert bad[0] in capsys.readouterr().err
