"""`torchrun -m dgm_fast train rbm|dbn`: the training commands data-parallel over two gloo
processes, as a user starts them."""

import json
import os
import subprocess
import sys

import pytest
import torch

from dgm_fast.train import distributed

pytest.importorskip("matplotlib")


def launch(*args, processes=2):
    """The command under torchrun (processes > 1) or plainly (1)."""
    if processes > 1:
        prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                  "-m", "dgm_fast"]
    else:
        prefix = [sys.executable, "-m", "dgm_fast"]
    # faulthandler: a rank that dies of a signal prints where it was (Python stacks of all threads)
    env = {**os.environ, distributed.RESTART_SAFE_ENV: "1", "PYTHONFAULTHANDLER": "1"}
    return subprocess.run([*prefix, *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


def test_train_rbm_under_torchrun_writes_once_and_resumes_only_with_as_many_processes(tmp_path):
    run = launch("train", "rbm", "--hidden", 12, "--epochs", 2, "--eval-every", 1, "--out", tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("training an RBM") == 1  # rank 0 speaks
    assert "in each of 2 processes (updates on 40 rows)" in run.stdout
    for name in ("checkpoint.pt", "config.json", "samples.png", "curve.png", "history.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["world_size"] == 2 and saved["updates"] == 2 * 45  # 898 rows per process, batches of 20
    history = json.loads((tmp_path / "history.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [1, 2] and history[1]["exact_log_likelihood"] > -40

    alone = launch("train", "rbm", "--hidden", 12, "--epochs", 3, "--eval-every", 1, "--out", tmp_path, processes=1)
    assert alone.returncode == 2
    assert "written by 2 process(es), this run has 1: resume it with as many (torchrun --nproc-per-node 2)" in alone.stderr
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["updates"] == 90  # nothing lost

    more = launch("train", "rbm", "--hidden", 12, "--epochs", 3, "--eval-every", 1, "--out", tmp_path)
    assert more.returncode == 0, more.stdout + more.stderr
    assert "resuming" in more.stdout and torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 3


def test_train_dbn_under_torchrun(tmp_path):
    run = launch("train", "dbn", "--layers", "16,8", "--epochs", 2, "--fine-tune-epochs", 1, "--quiet", "--out",
                 tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("pretraining a DBN") == 1
    bound = json.loads((tmp_path / "bound.json").read_text())
    assert [len(h) for h in bound["histories"]] == [2, 2] and len(bound["fine_tuning"]) == 1
    assert bound["fine_tuned"]["bound_ais"] > bound["independent_pixels"] - 10
    for name in ("layer0.pt", "layer1.pt", "updown.pt"):
        assert torch.load(tmp_path / name, weights_only=True)["world_size"] == 2, name


def test_train_dbm_under_torchrun(tmp_path):
    run = launch("train", "dbm", "--layers", "16,8", "--pretrain-epochs", 2, "--epochs", 2, "--chains", 10, "--quiet",
                 "--out", tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("DBM 64-16-8 on 1797 digits images") == 1
    assert "in each of 2 processes (updates on 40 rows)" in run.stdout
    bound = json.loads((tmp_path / "bound.json").read_text())
    assert [len(h) for h in bound["pretraining"]] == [2, 2] and len(bound["joint_training"]) == 2
    assert bound["joint"]["bound_ais"] > bound["independent_pixels"] - 10
    for name in ("pretrain0.pt", "pretrain1.pt", "joint.pt"):
        assert torch.load(tmp_path / name, weights_only=True)["world_size"] == 2, name
    # each rank's persistent chains, in the joint checkpoint
    ranks = torch.load(tmp_path / "joint.pt", weights_only=True)["ranks"]
    chains = [r["state"]["chains"]["states"] for r in ranks]
    assert len(chains) == 2 and [list(s.shape) for s in chains[0]] == [[10, 64], [10, 16], [10, 8]]
    assert not torch.equal(chains[0][1], chains[1][1])  # each rank's own stream
