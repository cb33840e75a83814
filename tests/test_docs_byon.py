"""The code of docs/bring_your_own_network.md runs as written (so it cannot rot).

The blocks run in a fresh interpreter with one torch thread: the snippet trains a
small torch model, and torch's spinning worker threads make that 10-100x slower on
a loaded 2-core machine. Checks appended to the doc's code report back as JSON.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "bring_your_own_network.md"

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


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_doc_snippets_run(tmp_path):
    pytest.importorskip("torch")
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 2
    script = tmp_path / "doc.py"
    script.write_text("\n".join([*blocks, CHECKS]), encoding="utf-8")
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
    assert "| RR+CR+CC |" in res.stdout and "n_R =" in res.stdout
    assert (tmp_path / "flipflop_rnn.pt").is_file()
    assert (tmp_path / "flipflop_eval.npz").is_file()
    check = json.loads(res.stdout.split("CHECK ", 1)[1])
    assert len(check["subsets"]) == 8 and check["subsets"][0] == []
    assert check["batch_first"] is True
    # the imported network is the torch model, and the model learned the task
    assert check["err"] < 1e-5
    assert check["fvu"] < 0.3
