"""`dgm-fast repro autoregressive-mnist` end to end on cut-down models (in a subprocess, as a user
runs it): the table RESULTS.md quotes, each row's folder, resuming, --only."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

SMALL = ["--epochs", "1", "--nade-hidden", "8", "--made-hidden", "12", "--masks", "2", "--no-plots"]


def repro(out, *args):
    proc = subprocess.run([sys.executable, "-m", "dgm_fast", "repro", "autoregressive-mnist", "--quiet", "--out",
                           str(out), *SMALL, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_table_rows_resume_and_only(mnist_root, tmp_path):
    repro(tmp_path, "--only", "nade")
    rows = [line for line in (tmp_path / "table.md").read_text().splitlines() if line.startswith("| NADE")]
    assert len(rows) == 2 and all("−88.86" in r for r in rows)  # the best-on-validation model and the last
    assert not (tmp_path / "made").exists()
    result = json.loads((tmp_path / "nade" / "result.json").read_text())
    nade_ll = result["test_log_likelihood"]["own ordering; last epoch, 1"]["mean"]
    assert -544 < nade_ll < -60 and result["test_rows"] == 10_000  # above 784 log(1/2)
    repro(tmp_path)  # NADE resumed at its end (not trained again), MADE trained
    text = (tmp_path / "table.md").read_text()
    assert ("| MADE, hidden 12, 2 mask sets (ensemble of 2 mask sets; best validation, epoch 1) "
            "| Adam, lr 0.001, constant | 1 |") in text
    assert "| MADE, hidden 12, 2 mask sets (mask set 0; last epoch, 1) | Adam, lr 0.001, constant | 1 |" in text
    again = json.loads((tmp_path / "nade" / "result.json").read_text())
    assert again["history"] == result["history"]
    assert again["test_log_likelihood"]["own ordering; last epoch, 1"]["mean"] == nade_ll
