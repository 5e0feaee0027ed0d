"""`dgm-fast train dbn` end to end on the digits (in subprocesses, as a user runs it)."""

import json
import subprocess
import sys

import pytest
import torch

pytest.importorskip("matplotlib")


def train_dbn(out, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "dgm_fast", "train", "dbn", "--quiet", "--out", str(out),
                           "--layers", "16,8", *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_writes_the_model_samples_curves_and_bound_then_resumes(tmp_path):
    first = train_dbn(tmp_path, "--epochs", 2, "--fine-tune-epochs", 2)
    for name in ("layer0.pt", "layer1.pt", "updown.pt", "dbn.pt", "samples.png", "curve.png", "bound.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    bound = json.loads((tmp_path / "bound.json").read_text())
    for stage in ("greedy", "fine_tuned"):
        assert bound[stage]["bound_ais"] < 0 and abs(bound[stage]["bound_ais"] - bound[stage]["bound_reverse_ais"]) < 1.0
    assert [len(h) for h in bound["histories"]] == [2, 2] and len(bound["fine_tuning"]) == 2
    assert "greedy: training data log-likelihood >=" in first.stdout and "fine-tuned: training" in first.stdout
    from dgm_fast import DBN

    loaded = DBN.load(tmp_path / "dbn.pt")
    assert loaded.layer_sizes == [64, 16, 8] and loaded.untied
    train_dbn(tmp_path, "--epochs", 2, "--fine-tune-epochs", 2)  # every stage read back: nothing trained again
    again = json.loads((tmp_path / "bound.json").read_text())
    assert again["histories"] == bound["histories"] and again["fine_tuning"] == bound["fine_tuning"]
    assert again["fine_tuned"] == bound["fine_tuned"]


def test_changed_options_and_bad_layers_get_clear_errors(tmp_path):
    train_dbn(tmp_path, "--epochs", 1)
    proc = train_dbn(tmp_path, "--epochs", 1, "--lr", 0.01, check=False)
    assert proc.returncode == 2 and "--lr 0.05, not --lr 0.01" in proc.stderr
    proc = train_dbn(tmp_path / "other", "--layers", "16", check=False)
    assert proc.returncode == 2 and "at least two positive hidden sizes" in proc.stderr
    proc = train_dbn(tmp_path / "other", "--fine-tune-lr", 0, check=False)
    assert proc.returncode == 2 and "--fine-tune-lr must be > 0" in proc.stderr


def test_trains_on_a_memory_mapped_file_of_rows(tmp_path):
    """--data FILE.npy: uint8 grey levels, streamed from disk and binarized once with --seed."""
    import numpy as np

    from dgm_fast.data import load_digits

    images, _ = load_digits()
    np.save(tmp_path / "rows.npy", (images[:300] * 255).round().to(torch.uint8).numpy())
    proc = train_dbn(tmp_path / "out", "--data", tmp_path / "rows.npy", "--epochs", 1, "--fine-tune-epochs", 1)
    assert "on 300" in proc.stdout and "over 300 rows" in proc.stdout
    assert (tmp_path / "out" / "samples.png").stat().st_size > 0
    bad = train_dbn(tmp_path / "bad", "--data", tmp_path / "missing.npy", check=False)
    assert bad.returncode == 2 and "--data" in bad.stderr and "missing.npy" in bad.stderr
