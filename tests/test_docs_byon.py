"""The README's "Bring your own network" section runs as written (so it cannot rot).

Its Python blocks and, between them, its ``rnnschur diagnose`` line run in one fresh
interpreter with one torch thread (the command reads the files the first block
writes): the snippet trains a small torch model, and torch's spinning worker threads
make that 10-100x slower on a loaded 2-core machine. Checks appended to the code
report back as JSON."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Bring your own network"

CHECKS = """
import json as _json
_x = x_eval[:64]
with torch.no_grad():
    _want = model(torch.from_numpy(_x)).numpy()
_rec = result.to_records()
print("CHECK " + _json.dumps({
    "err": float(np.abs(net.rollout(_x) - _want).max()),
    "subsets": [list(r["subset"]) for r in _rec],
    "fvu": _rec[0]["metric"],
    "batch_first": net.batch_first,
}))
"""


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : None if end < 0 else end]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.DOTALL)


# Runs the README's command line between the two blocks, so the model trains once.
CLI = """
import json as _json, subprocess as _sp, sys as _sys
_r = _sp.run([_sys.executable, "-m", "rnnschur.cli", *{args!r}], capture_output=True,
             text=True, check=False)
print("CLI " + _json.dumps({{"rc": _r.returncode, "out": _r.stdout, "err": _r.stderr}}))
"""


def test_readme_section_runs(tmp_path):
    pytest.importorskip("torch")
    text = section()
    py, sh = blocks(text, "python"), blocks(text, "bash")
    assert len(py) == 2 and len(sh) == 1
    cmd = shlex.split(sh[0].strip())
    assert cmd[:2] == ["rnnschur", "diagnose"]
    script = tmp_path / "doc.py"
    parts = [py[0], CLI.format(args=cmd[1:]), py[1], CHECKS]
    script.write_text("\n".join(parts), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    cli = json.loads(res.stdout.split("CLI ", 1)[1].split("\n", 1)[0])
    assert cli["rc"] == 0, cli["err"][-3000:]
    # the command prints the table the library call prints
    assert "| RR+CR+CC |" in cli["out"] and "n_R =" in cli["out"]
    assert cli["out"].strip() in res.stdout.split("CLI ", 1)[1].split("\n", 1)[1]
    assert "| RR+CR+CC |" in res.stdout and "n_R =" in res.stdout
    assert (tmp_path / "flipflop_rnn.pt").is_file()
    assert (tmp_path / "flipflop_eval.npz").is_file()
    check = json.loads(res.stdout.split("CHECK ", 1)[1])
    assert len(check["subsets"]) == 8 and check["subsets"][0] == []
    assert check["batch_first"] is True
    # the imported network is the torch model, and the model learned the task
    assert check["err"] < 1e-5
    assert check["fvu"] < 0.3
