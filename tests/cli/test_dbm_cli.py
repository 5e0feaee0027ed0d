"""`dgm-fast train dbm` end to end on the digits (in subprocesses, as a user runs it)."""

import json
import subprocess
import sys

import pytest
import torch

pytest.importorskip("matplotlib")


def train_dbm(out, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "dgm_fast", "train", "dbm", "--quiet", "--out", str(out),
                           "--layers", "16,8", *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_writes_the_model_samples_curves_and_bound_then_resumes(tmp_path):
    first = train_dbm(tmp_path, "--pretrain-epochs", 3, "--epochs", 2)
    for name in ("pretrain0.pt", "pretrain1.pt", "joint.pt", "dbm.pt", "samples.png", "curve.png", "bound.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    bound = json.loads((tmp_path / "bound.json").read_text())
    for stage in ("pretrained", "joint"):
        assert bound[stage]["bound_ais"] < 0 and abs(bound[stage]["bound_ais"] - bound[stage]["bound_reverse_ais"]) < 1.0
        assert bound[stage]["bound_ais"] > bound["independent_pixels"] - 5
    assert [len(h) for h in bound["pretraining"]] == [3, 3] and len(bound["joint_training"]) == 2
    assert "pretrained: training data log-likelihood >=" in first.stdout and "joint: training" in first.stdout
    from dgm_fast import DBM

    loaded = DBM.load(tmp_path / "dbm.pt")
    assert loaded.layer_sizes == [64, 16, 8]
    train_dbm(tmp_path, "--pretrain-epochs", 3, "--epochs", 2)  # every stage read back: nothing trained again
    again = json.loads((tmp_path / "bound.json").read_text())
    assert again["pretraining"] == bound["pretraining"] and again["joint_training"] == bound["joint_training"]
    assert all(torch.equal(a, b) for a, b in zip(DBM.load(tmp_path / "dbm.pt").state_dict().values(),
                                                  loaded.state_dict().values()))


def test_changed_options_and_bad_layers_get_clear_errors(tmp_path):
    train_dbm(tmp_path, "--pretrain-epochs", 1, "--epochs", 0)
    proc = train_dbm(tmp_path, "--pretrain-epochs", 1, "--epochs", 0, "--lr", 0.01, check=False)
    assert proc.returncode == 2 and "--lr 0.005, not --lr 0.01" in proc.stderr
    proc = train_dbm(tmp_path / "other", "--layers", "16", check=False)
    assert proc.returncode == 2 and "at least two positive hidden sizes" in proc.stderr
    proc = train_dbm(tmp_path / "other", "--chains", 0, check=False)
    assert proc.returncode == 2 and "--chains, --k and --mean-field >= 1" in proc.stderr
