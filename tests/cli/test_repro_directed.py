"""`dgm-fast repro sbn-mnist` and `repro iwae-mnist` end to end on a cut-down protocol (in
subprocesses, as a user runs them): one row per model and algorithm, resuming, --only, and their
errors. The full tables take hours; bench/RESULTS.md holds their figures."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

SMALL = ["--epochs", "2", "--train-size", "300", "--eval-rows", "30", "--eval-samples", "40"]


def repro(paper, out, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "dgm_fast", "repro", paper, "--quiet", "--out", str(out), *SMALL,
                           *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def rows_of(out):
    return [line.split(" | ") for line in (out / "table.md").read_text().splitlines() if line.startswith("| ")][1:]


def test_sbn_table_has_one_row_per_algorithm_and_resumes(mnist_root, tmp_path):
    repro("sbn-mnist", tmp_path, "--layers", "16,8", "--k", "3")
    rows = rows_of(tmp_path)
    assert [r[1] for r in rows] == ["wake-sleep", "reweighted wake-sleep", "NVIL"]
    assert [r[2] for r in rows] == ["1", "3", "1"] and rows[0][-1].startswith("≈ −106.9")
    for row, stem in zip(rows, ("wake-sleep", "rws-k3", "nvil")):
        result = json.loads((tmp_path / f"{stem}.json").read_text())
        assert -400 < result["test_log_prob"] < -100 and result["eval_rows"] == 30 and result["epochs"] == 2
        # two different errors, both stated: the sampling error and the spread over the test images
        assert result["images_std_error"] > 0 and result["std_error"] > 0
        assert row[7:9] == [f"{result['std_error']:.2f}", f"{result['images_std_error']:.2f}"]
    for name in ("samples.png", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    before = (tmp_path / "nvil.json").read_text()
    again = repro("sbn-mnist", tmp_path, "--layers", "16,8", "--k", "3")
    assert "read back" in again.stdout and (tmp_path / "nvil.json").read_text() == before
    proc = repro("sbn-mnist", tmp_path, "--layers", "16,8", "--k", "4", check=False)
    assert proc.returncode == 2 and "--k 3, not --k 4" in proc.stderr


def test_iwae_table_rows_and_only(mnist_root, tmp_path):
    repro("iwae-mnist", tmp_path, "--layers", "6", "--ks", "1,2", "--only", "vae-k1", "--only", "iwae-k2")
    rows = rows_of(tmp_path)
    assert [(r[1], r[2]) for r in rows] == [("VAE (ELBO)", "1"), ("IWAE", "2")]
    assert not (tmp_path / "vae-k2.pt").exists()
    proc = repro("iwae-mnist", tmp_path / "x", "--only", "iwae-k7", check=False)
    assert proc.returncode == 2 and "the rows are vae-k1" in proc.stderr
    proc = repro("iwae-mnist", tmp_path / "y", "--ks", "0", check=False)
    assert proc.returncode == 2 and "must be positive" in proc.stderr
