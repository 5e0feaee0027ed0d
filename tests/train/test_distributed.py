"""Data-parallel training on torch.distributed: two gloo ranks on this machine, started by
torchrun (tests/train/distributed_worker.py runs inside them and saves what each rank saw)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dgm_fast
from dgm_fast.data import load_digits
from dgm_fast.models.rbm import RBM, cd_gradients, fit_rbm
from dgm_fast.train import distributed

WORKER = Path(__file__).with_name("distributed_worker.py")
UPDATES_PER_EPOCH = 90  # 1797 digits: 898 rows per rank (one left out), batches of 10


def torchrun(*args, restarts: int = 0, timeout: float = 300) -> subprocess.CompletedProcess:
    # faulthandler: a rank that dies of a signal prints where it was (Python stacks of all threads)
    env = {**os.environ, distributed.RESTART_SAFE_ENV: "1", "PYTHONFAULTHANDLER": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
               f"--max-restarts={restarts}", str(WORKER), *map(str, args)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    out = tmp_path_factory.mktemp("checks")
    torchrun("checks", out)
    return out, [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same PCD run twice: uninterrupted, and with rank 1 killed after 100 updates."""
    whole, crashed = tmp_path_factory.mktemp("whole"), tmp_path_factory.mktemp("crashed")
    torchrun("train", whole)
    torchrun("train", crashed, "--crash-after", 100, restarts=1)
    return whole, crashed


def binary_digits():
    images, _ = load_digits()
    return (images > 0.5).float()


def test_ranks_hold_identical_parameters_after_every_update(checks):
    _, (rank0, rank1) = checks
    # The ranks started from different random parameters: the broadcast made them one.
    assert len(rank0["digests"]) == len(rank1["digests"]) == 2 * UPDATES_PER_EPOCH
    assert rank0["digests"] == rank1["digests"]
    assert len(set(rank0["digests"])) == len(rank0["digests"])  # every update changed them


def test_two_rank_update_is_the_single_process_update_on_the_union(checks):
    _, (rank0, rank1) = checks
    rbm = RBM(64, 16)
    rbm.load_state_dict(rank0["start"])
    optimizer = torch.optim.SGD(rbm.parameters(), lr=0.1, momentum=0.5)
    v, v_model = rank0["union"], rank0["negatives"]
    cd_gradients(rbm, v, rbm.hidden_probs(v).detach(), v_model, rbm.hidden_probs(v_model).detach(), weight_decay=1e-3)
    optimizer.step()
    assert rank0["union_history"][0]["updates"] == 1  # 20 rows, 10 per rank: one update
    for name, expected in rbm.state_dict().items():
        moved = (expected - rank0["start"][name]).abs().max()
        assert moved > 1e-3
        # float32 means over 10 rows averaged over 2 ranks against one mean over 20 rows
        torch.testing.assert_close(rank0["after_one_update"][name], expected, rtol=0, atol=1e-6)
        assert torch.equal(rank0["after_one_update"][name], rank1["after_one_update"][name])


def test_metrics_are_reduced_over_the_ranks(checks):
    _, (rank0, rank1) = checks
    assert rank0["history"] == rank1["history"]
    # each rank stepped on 10 rows; the epoch's metric is over both ranks' steps
    assert rank0["union_history"][0]["rows"] == 10.0


def test_the_checkpoint_holds_every_ranks_chains_and_refuses_another_world_size(checks):
    out, _ = checks
    saved = dgm_fast.train.load_checkpoint(out / "pcd.pt")
    assert saved["world_size"] == 2 and len(saved["ranks"]) == 2
    chains = [part["state"]["method"]["chains"] for part in saved["ranks"]]
    assert chains[0].shape == chains[1].shape == (20, 64)
    assert not torch.equal(chains[0], chains[1])  # each rank its own stream
    before = (out / "pcd.pt").read_bytes()
    with pytest.raises(ValueError, match="written by a run of 2 process.*this run has 1"):
        fit_rbm(RBM(64, 16), binary_digits(), method="pcd", epochs=3, checkpoint=out / "pcd.pt", progress=False)
    assert (out / "pcd.pt").read_bytes() == before  # nothing lost


def test_a_memory_mapped_file_is_sharded_disjointly_and_reshuffled_each_epoch(checks):
    _, (rank0, rank1) = checks
    # 101 rows, 2 ranks: 50 each per epoch, in batches of 7 (the last of 1), one row left out
    epochs = []
    for epoch in range(2):
        mine = [rank0["memmap_rows"][8 * epoch + i] for i in range(8)]
        theirs = [rank1["memmap_rows"][8 * epoch + i] for i in range(8)]
        assert [len(b) for b in mine] == [len(b) for b in theirs] == [7] * 7 + [1]
        a, b = sum(mine, []), sum(theirs, [])
        assert len(set(a)) == len(set(b)) == 50 and not set(a) & set(b)
        epochs.append(a + b)
    assert epochs[0] != epochs[1]  # set_epoch: another shuffle


def test_ais_spreads_its_runs_over_the_ranks_and_estimates_once(checks):
    _, (rank0, rank1) = checks
    log_z, log_w, reverse_log_z, reverse_log_w = rank0["ais"]
    assert rank1["ais"][0] == log_z and rank1["ais"][2] == reverse_log_z
    assert log_w.shape == reverse_log_w.shape == (101,)
    assert torch.equal(log_w, rank1["ais"][1])
    assert not torch.equal(log_w[:50], log_w[51:])  # rank 0's 51 runs and rank 1's 50: other streams
    small = RBM(12, 10)
    small.load_state_dict(rank0["small"])
    exact = float(dgm_fast.evaluate.exact_log_partition(small))
    # 101 runs over 2,001 temperatures on a 12x10 RBM: both within 0.05 nats (measured 5e-4, 5e-4)
    assert abs(log_z - exact) < 0.05 and abs(reverse_log_z - exact) < 0.05


def test_bad_input_in_a_process_group(checks):
    _, (rank0, rank1) = checks
    assert rank0["uneven"] == ["fit: 5 rows do not divide among 2 ranks; every epoch leaves out 1 row(s) of its "
                               "shuffle (others each epoch), so that every rank takes as many steps"]
    assert rank1["uneven"] == []  # rank 0 says it
    for seen in (rank0, rank1):
        assert "1 rows cannot be shared by 2 ranks" in seen["one_row"]
        assert "must shard the data with a torch.utils.data.DistributedSampler" in seen["plain_loader"]


def test_a_killed_rank_resumes_from_the_last_checkpoint_and_loses_nothing_else(runs):
    whole, crashed = runs
    for r in (0, 1):
        a = torch.load(whole / f"final-rank{r}.pt", weights_only=True)
        b = torch.load(crashed / f"final-rank{r}.pt", weights_only=True)
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
        assert a["history"] == b["history"]
    uninterrupted = (whole / "rank0-attempt0.digests").read_text().split()
    first = (crashed / "rank0-attempt0.digests").read_text().split()
    second = (crashed / "rank0-attempt1.digests").read_text().split()
    assert len(uninterrupted) == 3 * UPDATES_PER_EPOCH
    # killed after update 100; the last checkpoint was at update 90 (epoch 1's end, after 40 and 80)
    assert first == uninterrupted[:len(first)] and 99 <= len(first) <= 100
    assert second == uninterrupted[90:]


def test_a_two_rank_pcd_run_learns_as_the_single_process_run_does(runs):
    whole, _ = runs
    data = binary_digits()
    two_ranks = RBM(64, 16)
    two_ranks.load_state_dict(torch.load(whole / "final-rank0.pt", weights_only=True)["model"])
    start = RBM(64, 16, generator=torch.Generator().manual_seed(1))
    one = RBM(64, 16, generator=torch.Generator().manual_seed(1))
    # the worker's run: PCD-1, 20 chains per rank, lr 0.05, momentum 0.5, 3 epochs of batches of
    # 10 per rank, i.e. updates on 20 rows; here one process, batches of 20
    fit_rbm(one, data, method="pcd", n_chains=20, epochs=3, batch_size=20, lr=0.05, momentum=0.5, weight_decay=1e-4,
            generator=torch.Generator().manual_seed(2), progress=False)

    def log_likelihood(rbm):
        return float(dgm_fast.evaluate.exact_log_likelihood(rbm.double(), data.double()).mean())

    initial, single, parallel = log_likelihood(start), log_likelihood(one), log_likelihood(two_ranks)
    assert single > initial + 5 and parallel > initial + 5
    assert abs(parallel - single) < 1.0


def test_restarts_need_torchruns_store_not_shared(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "3")
    monkeypatch.delenv(distributed.RESTART_SAFE_ENV, raising=False)
    with pytest.raises(RuntimeError, match=f"{distributed.RESTART_SAFE_ENV}=1"):
        distributed.init_from_env("cpu")
    assert not distributed.is_distributed()


def test_a_rank_that_cannot_reach_the_rendezvous_fails_within_the_timeout():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port)}
    code = "from dgm_fast.train import distributed; distributed.init_from_env('cpu', timeout_s=3)"
    # a hang would end in subprocess.TimeoutExpired: the error must come instead, naming its timeout
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"rank 1 of 2 could not join the process group at 127.0.0.1:{port} within 3 s" in result.stderr
