"""`dgm-fast demo unified-view` and `dgm-fast repro pm` end to end, briefly (in subprocesses)."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")


def dgm(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "dgm_fast", *map(str, args)], capture_output=True, text=True,
                          timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_unified_view_writes_its_plots_and_checks(tmp_path):
    first = dgm("demo", "unified-view", "--epochs", 1, "--quiet", "--out", tmp_path)
    for name in ("kl_1d.png", "modes.png", "em.png", "summary.md", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["lemma1"]["max_abs_difference_at_theta0"] < 1e-12 < summary["lemma1"]["max_abs_difference_elsewhere"]
    assert summary["kl_1d"]["forward"]["std"] > 1.5  # covers both modes
    assert sorted(round(r["mean"]) for r in summary["kl_1d"]["reverse"].values()) == [-2, 2]  # one mode each
    assert abs(summary["em"]["em_fixed_point"] - summary["em"]["posterior_mode"]) < 1e-4
    assert summary["reversed_equals_non_saturating"] == {"ring": True, "grid": True}
    assert set(summary["modes"]) == {"ring", "grid"} and "GAN, minimax" in first.stdout
    again = dgm("demo", "unified-view", "--epochs", 1, "--quiet", "--out", tmp_path)  # the models are not retrained
    assert "modes, " not in again.stdout.split("Modes captured")[0]
    assert json.loads((tmp_path / "summary.json").read_text())["modes"] == summary["modes"]


def test_repro_pm_runs_resumes_and_tabulates(tmp_path):
    dgm("repro", "pm", "--seeds", 2, "--epochs", 50, "--only", "4-patterns", "--out", tmp_path)
    table = (tmp_path / "table.md").read_text()
    assert "| 4 local patterns, 2 code units, 4 shared hidden | 2 |" in table and "8 of 10 factorial" in table
    result = json.loads((tmp_path / "4-patterns-seed1.json").read_text())
    assert len(result["code"]) == 4 and len(result["code"][0]) == 2 and (tmp_path / "curves.png").exists()
    again = dgm("repro", "pm", "--seeds", 2, "--epochs", 50, "--only", "4-patterns", "--out", tmp_path)
    assert "seed" not in again.stdout.split("Predictability minimization")[0]  # nothing trained again
    proc = dgm("repro", "pm", "--seeds", 2, "--epochs", 60, "--out", tmp_path, check=False)
    assert proc.returncode == 2 and "--epochs 50, not --epochs 60" in proc.stderr
