"""`dgm-fast repro dbm-mnist` end to end on a cut-down protocol (in subprocesses, as a user runs
it): the table RESULTS.md quotes, one row per evaluated stage, resuming, and its errors. The full
protocol takes about two hours; bench/RESULTS.md holds its figures."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

SMALL = ["--layers", "16,8", "--pretrain-epochs", "2", "--epochs", "2", "--eval-at", "1", "--train-size", "500",
         "--runs", "8", "--temperatures", "300", "--chains", "8"]


def repro(out, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "dgm_fast", "repro", "dbm-mnist", "--quiet", "--out", str(out),
                           *SMALL, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def first_run(mnist_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("repro-dbm")
    return out, repro(out)


def test_writes_one_row_per_stage_and_the_models_files(first_run):
    out, proc = first_run
    lines = (out / "table.md").read_text().splitlines()
    assert "`dgm-fast repro dbm-mnist --layers 16,8 --pretrain-epochs 2 --epochs 2" in lines[0]
    rows = [line.split(" | ") for line in lines if line.startswith("| 784")]
    assert [r[1] for r in rows] == ["pretrained", "joint, 1 epoch", "joint, 2 epochs"]
    for stage in ("pretrained", "joint1", "joint2"):
        row = json.loads((out / f"eval-{stage}.json").read_text())
        # on 16 and 8 units 300 temperatures suffice: the two estimators agree closely
        assert abs(row["ais"]["log_z"] - row["reverse_ais"]["log_z"]) < 0.5
        assert -784 * 0.7 < row["test_log_prob"] < 0
    # reverse AIS from the persistent chains where a checkpoint holds them (after epoch 1 none does yet)
    assert [json.loads((out / f"eval-joint{e}.json").read_text())["reverse_start"] for e in (1, 2)] == ["base", "chains"]
    train_seconds = [json.loads((out / f"eval-{s}.json").read_text())["train_seconds"] for s in ("joint1", "joint2")]
    assert 0 < train_seconds[0] < train_seconds[1]
    for name in ("pretrain0.pt", "pretrain1.pt", "joint.pt", "dbm.pt", "samples.png", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    assert "wrote" in proc.stdout


def test_a_second_run_reads_everything_back(first_run):
    out, _ = first_run
    before = json.loads((out / "eval-joint2.json").read_text())
    proc = repro(out)
    assert "pretrained: read back" in proc.stdout and "AIS and reverse AIS" not in proc.stdout
    assert json.loads((out / "eval-joint2.json").read_text()) == before


def test_changed_options_and_bad_epochs_get_clear_errors(first_run, tmp_path):
    out, _ = first_run
    proc = repro(out, "--lr", "0.01", check=False)
    assert proc.returncode != 0 and "trained with --lr 0.0002, not --lr 0.01" in proc.stderr
    proc = repro(tmp_path, "--eval-at", "5", check=False)
    assert proc.returncode != 0 and "--eval-at epochs between 1 and --epochs" in proc.stderr


def test_the_last_evaluation_can_be_redone_with_more_temperatures(first_run):
    """The final model's evaluation follows training, so a finished run evaluates again when its
    file is gone, e.g. with a longer AIS schedule; the table then states each row's schedule."""
    out, _ = first_run
    before = json.loads((out / "eval-joint2.json").read_text())
    (out / "eval-joint2.json").unlink()
    proc = repro(out, "--temperatures", "600")
    assert "epoch 2: AIS and reverse AIS" in proc.stdout and "epoch 1: AIS" not in proc.stdout
    after = json.loads((out / "eval-joint2.json").read_text())
    assert after["temperatures"] == 600 and before["temperatures"] == 300
    assert after["train_seconds"] == before["train_seconds"]
    sizes = (out / "table.md").read_text().split("Effective sample sizes")[1].split("\n")[0]
    assert sizes.count("; 300") == 2 and sizes.endswith("; 600.")  # pretrained and epoch 1, then epoch 2
