"""`dgm-fast repro dbn-mnist` end to end on a cut-down protocol (in subprocesses, as a user runs
it): the table RESULTS.md quotes, one row per depth, resuming, and its errors. The full protocol
takes most of an hour; bench/RESULTS.md holds its figures."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

SMALL = ["--layers", "16,8", "--epochs", "2,1", "--train-size", "500", "--runs", "8", "--temperatures", "300",
         "--samples", "2"]


def repro(out, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "dgm_fast", "repro", "dbn-mnist", "--quiet", "--out", str(out),
                           *SMALL, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def first_run(mnist_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("repro-dbn")
    return out, repro(out)


def test_writes_one_row_per_depth_and_the_models_files(first_run):
    out, proc = first_run
    lines = (out / "table.md").read_text().splitlines()
    assert "`dgm-fast repro dbn-mnist --layers 16,8 --method pcd --epochs 2,1" in lines[0]
    rows = [line.split(" | ") for line in lines if line.startswith("| 784")]
    assert [r[0] for r in rows] == ["| 784-16 (log-prob)", "| 784-16-8 (bound)"]
    assert [r[1] for r in rows] == ["2", "2,1"]
    for depth in (1, 2):
        row = json.loads((out / f"eval{depth}.json").read_text())
        # on 16 and 8 units 300 temperatures suffice: the two estimators agree closely
        assert abs(row["ais"]["log_z"] - row["reverse_ais"]["log_z"]) < 0.5
        assert -784 * 0.7 < row["test_log_prob"] < 0
    for name in ("layer0.pt", "layer1.pt", "dbn.pt", "samples.png", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    assert "wrote" in proc.stdout


def test_a_second_run_reads_everything_back_and_a_lost_evaluation_is_redone(first_run):
    out, _ = first_run
    before = json.loads((out / "eval2.json").read_text())
    (out / "eval2.json").unlink()  # as if the run died during the evaluation
    proc = repro(out)
    assert "depth 1: read back" in proc.stdout and "depth 2: AIS" in proc.stdout
    after = json.loads((out / "eval2.json").read_text())
    for key in ("ais", "reverse_ais", "train_log_prob", "test_log_prob", "train_seconds"):
        assert after[key] == before[key], key  # nothing retrained: the same model, the same seeds


def test_changed_options_and_bad_epochs_get_clear_errors(first_run, tmp_path):
    out, _ = first_run
    proc = repro(out, "--lr", "0.01", check=False)
    assert proc.returncode == 2 and "--lr 0.08, not --lr 0.01" in proc.stderr
    proc = repro(tmp_path, "--epochs", "1,2,3", check=False)
    assert proc.returncode == 2 and "one per layer (2)" in proc.stderr


def test_fine_tuning_adds_a_row_to_a_finished_greedy_run(first_run):
    out, _ = first_run
    greedy = (out / "eval2.json").read_text()
    proc = repro(out, "--fine-tune-epochs", "1")
    assert "depth 2: read back" in proc.stdout and "up-down fine-tuning: 1 epochs" in proc.stdout
    rows = [line.split(" | ") for line in (out / "table.md").read_text().splitlines() if line.startswith("| 784")]
    assert [r[0] for r in rows][-1] == "| 784-16-8 + up-down (bound)" and rows[-1][1] == "2,1 + 1"
    assert (out / "eval2.json").read_text() == greedy  # the greedy model's row is not touched
    from dgm_fast import DBN

    assert DBN.load(out / "dbn-up-down.pt").untied and not DBN.load(out / "dbn.pt").untied
    proc = repro(out, "--fine-tune-epochs", "2", check=False)
    assert proc.returncode == 2 and "--fine-tune-epochs 1, not --fine-tune-epochs 2" in proc.stderr
