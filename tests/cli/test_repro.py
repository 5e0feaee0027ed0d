"""`dgm-fast repro rbm-mnist` end to end on a cut-down protocol (in subprocesses, as a user runs
it): the table RESULTS.md quotes, the per-model files, resuming, and its errors. The full protocol
is hours; bench/RESULTS.md holds its figures."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

SMALL = ["--hidden", "16", "--epochs", "2", "--train-size", "500", "--runs", "8", "--temperatures", "300"]


def repro(out, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "dgm_fast", "repro", "rbm-mnist", "--quiet", "--out", str(out),
                           *SMALL, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def table_rows(out):
    lines = (out / "table.md").read_text().splitlines()
    return {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines if line.startswith("| ") and
            not line.startswith("| model")}


@pytest.fixture(scope="module")
def first_run(mnist_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    return out, repro(out, "--methods", "CD-1,PCD", "--average", "0.9")


def test_writes_the_results_table_and_each_models_files(first_run):
    out, proc = first_run
    rows = table_rows(out)
    assert list(rows) == ["CD-1", "CD-1 (averaged)", "PCD", "PCD (averaged)"]
    header = (out / "table.md").read_text().splitlines()[0]
    assert "threads" in header and "torch" in header
    assert "`dgm-fast repro rbm-mnist --methods CD-1,PCD --epochs 2" in header  # the command that made it
    for name in ("cd-1", "pcd"):
        result = json.loads((out / name / "result.json").read_text())
        assert [r["epoch"] for r in result["history"]] == [1, 2]
        for row in result["rows"]:
            ais, rev = row["ais"], row["reverse_ais"]
            assert ais["lower"] <= ais["log_z"] <= ais["upper"]
            # on 16 hidden units 300 temperatures suffice: the two estimators agree closely
            assert abs(ais["log_z"] - rev["log_z"]) < 0.5
            assert row["test_log_prob"] < 0 and row["paper"] is None  # the paper's figures are for 500 hidden
        assert (out / name / "samples.png").stat().st_size > 1000
        assert (out / name / "checkpoint.pt").is_file()
    assert (out / "curves.png").stat().st_size > 1000
    assert "wrote" in proc.stdout and "table.md" in proc.stdout


def test_a_second_run_reads_finished_models_back_and_trains_only_new_ones(first_run):
    out, _ = first_run
    before = table_rows(out)
    proc = repro(out, "--methods", "PCD,CD-3", "--average", "0.9")
    assert "PCD: read back from" in proc.stdout and "CD-3: read back" not in proc.stdout
    after = table_rows(out)
    assert list(after) == ["PCD", "PCD (averaged)", "CD-3", "CD-3 (averaged)"]
    assert after["PCD"] == before["PCD"]


def test_a_trained_checkpoint_without_its_result_is_resumed_not_retrained(first_run):
    out, _ = first_run
    result = out / "cd-1" / "result.json"
    before = json.loads(result.read_text())
    result.unlink()  # as if the run died during the evaluation
    proc = repro(out, "--methods", "CD-1", "--average", "0.9")
    assert "CD-1: resuming" in proc.stdout and "after epoch 2 of 2" in proc.stdout
    after = json.loads(result.read_text())
    assert after["history"] == before["history"]  # from the checkpoint, times included: nothing retrained
    for a, b in zip(after["rows"], before["rows"]):  # the same model and AIS seeds: the same estimates
        for key in ("ais", "reverse_ais", "train_log_prob", "test_log_prob", "test_log_prob_reverse"):
            assert a[key] == b[key], key


def test_changed_options_corrupt_checkpoints_and_bad_methods_get_clear_errors(first_run, tmp_path):
    out, _ = first_run
    proc = repro(out, "--methods", "CD-1", "--average", "0.9", "--lr", "0.01", check=False)
    assert proc.returncode == 2 and "--lr 0.05, not --lr 0.01" in proc.stderr and "--restart" in proc.stderr
    proc = repro(tmp_path, "--methods", "CD-2", check=False)
    assert proc.returncode == 2 and "unknown CD-2" in proc.stderr
    (tmp_path / "cd-1").mkdir()
    (tmp_path / "cd-1" / "checkpoint.pt").write_bytes(b"truncated")
    proc = repro(tmp_path, "--methods", "CD-1", check=False)
    assert proc.returncode == 2 and "corrupt" in proc.stderr and "Traceback" not in proc.stderr


def test_training_interrupted_mid_run_resumes_to_the_same_bits(tmp_path, monkeypatch):
    """An interrupted model resumes from its last epoch and ends where an uninterrupted run ends:
    the weights, the moving average and the persistent chains all come back from the checkpoint
    (on random binary data: this checks the bookkeeping, not the learning)."""
    import argparse

    import torch

    from dgm_fast.cli import repro_rbm_mnist
    from dgm_fast.models.rbm import train as rbm_train

    data = torch.bernoulli(torch.full((300, 784), 0.2), generator=torch.Generator().manual_seed(0))
    args = argparse.Namespace(hidden=12, lr=0.05, momentum=0.9, weight_decay=2e-4, average=0.9, seed=3, epochs=7,
                              pt_betas="1,0.9", device="cpu", quiet=True)
    straight, straight_avg, history, _ = repro_rbm_mnist.train_model("PCD", data, args, tmp_path / "a")

    calls = [0]
    cd_step = rbm_train.cd_step

    def dying_cd_step(*a, **k):
        calls[0] += 1
        if calls[0] == 17:  # the 17th update: the third batch of epoch 6 (3 batches per epoch)
            raise KeyboardInterrupt
        return cd_step(*a, **k)

    monkeypatch.setattr(rbm_train, "cd_step", dying_cd_step)
    with pytest.raises(KeyboardInterrupt):
        repro_rbm_mnist.train_model("PCD", data, args, tmp_path / "b")
    monkeypatch.setattr(rbm_train, "cd_step", cd_step)
    resumed, resumed_avg, resumed_history, _ = repro_rbm_mnist.train_model("PCD", data, args, tmp_path / "b")
    assert [r["epoch"] for r in resumed_history] == list(range(1, 8))
    assert resumed_history[-1]["reconstruction_error"] == history[-1]["reconstruction_error"]
    for a, b in ((straight, resumed), (straight_avg, resumed_avg)):
        for x, y in zip(a.parameters(), b.parameters()):
            assert torch.equal(x, y)
