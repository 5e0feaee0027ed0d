"""`dgm-fast train nade | made` end to end on the digits (in subprocesses, as a user runs them)."""

import json
import subprocess
import sys

import pytest
import torch

pytest.importorskip("matplotlib")


def train(model, out, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "dgm_fast", "train", model, "--quiet", "--out", str(out),
                           *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.parametrize("model,args,scores", [
    ("nade", ["--hidden", "40", "--order-agnostic", "--orderings", "3"], ["ensemble of 3 orderings", "own ordering"]),
    ("made", ["--hidden", "60,60", "--masks", "3"], ["ensemble of 3 mask sets", "mask set 0"]),
    ("made", ["--hidden", "60", "--no-direct", "--order-agnostic"], ["one mask set"]),
])
def test_writes_the_model_result_and_plots_then_resumes(tmp_path, model, args, scores):
    first = train(model, tmp_path, "--epochs", 3, *args)
    for name in ("checkpoint.pt", "result.json", "samples.png", "curve.png", f"{model}.pt"):
        assert (tmp_path / name).stat().st_size > 0, name
    result = json.loads((tmp_path / "result.json").read_text())
    # each score of the best-on-validation model (best_<model>.pt), then of the last epoch's
    names = list(result["test_log_likelihood"])
    best_epoch = max(result["history"], key=lambda h: h["valid_log_prob"])["epoch"]
    assert names == [f"{s}; best validation, epoch {best_epoch}" for s in scores] + [f"{s}; last epoch, 3"
                                                                                      for s in scores]
    assert result["test_rows"] == 150 and (tmp_path / f"best_{model}.pt").stat().st_size > 0
    # 64 binary pixels: above 64 log(1/2) = -44.4 nats after 3 epochs, below 0
    assert all(-44.4 < s["mean"] < 0 and s["std_error"] > 0 for s in result["test_log_likelihood"].values())
    assert len(result["history"]) == 3 and all("valid_log_prob" in h for h in result["history"])
    assert f"test log-likelihood ({names[0]}) of the 150 test images" in first.stdout
    from dgm_fast import MADE, NADE

    cls = NADE if model == "nade" else MADE
    loaded = cls.load(tmp_path / f"{model}.pt")
    train(model, tmp_path, "--epochs", 3, *args)  # resumed at its end: nothing trained again
    again = json.loads((tmp_path / "result.json").read_text())
    assert again["history"] == result["history"] and again["test_log_likelihood"] == result["test_log_likelihood"]
    assert all(torch.equal(a, b) for a, b in zip(cls.load(tmp_path / f"{model}.pt").state_dict().values(),
                                                  loaded.state_dict().values()))


def test_changed_options_and_bad_values_get_clear_errors(tmp_path):
    train("nade", tmp_path, "--epochs", 0, "--hidden", "8")
    proc = train("nade", tmp_path, "--epochs", 0, "--hidden", "8", "--order-agnostic", check=False)
    assert proc.returncode == 2 and "--order-agnostic False, not --order-agnostic True" in proc.stderr
    proc = train("nade", tmp_path / "a", "--hidden", "8,8", check=False)
    assert proc.returncode == 2 and "--hidden must be one positive width" in proc.stderr
    proc = train("nade", tmp_path / "b", "--orderings", "0", check=False)
    assert proc.returncode == 2 and "--orderings must be >= 1" in proc.stderr
    proc = train("made", tmp_path / "c", "--masks", "0", check=False)
    assert proc.returncode == 2 and "--masks must be >= 1" in proc.stderr
    proc = train("made", tmp_path / "d", "--hidden", "8,x", check=False)
    assert proc.returncode == 2 and "--hidden must be comma-separated integers" in proc.stderr
    proc = train("made", tmp_path / "e", "--lr", "0", check=False)
    assert proc.returncode == 2 and "--lr must be > 0" in proc.stderr


def test_a_run_at_a_constant_rate_goes_on_when_epochs_are_raised(tmp_path):
    common = ["--hidden", "30,30", "--masks", "2", "--no-plots"]
    train("made", tmp_path / "on", "--epochs", 2, *common)
    two = json.loads((tmp_path / "on" / "result.json").read_text())
    proc = train("made", tmp_path / "on", "--epochs", 3, *common)
    three = json.loads((tmp_path / "on" / "result.json").read_text())
    assert [h["epoch"] for h in three["history"]] == [1, 2, 3] and three["history"][:2] == two["history"]
    assert "last epoch, 3" in proc.stdout
    # the resumed run is the run of three epochs from the start, bit for bit
    train("made", tmp_path / "straight", "--epochs", 3, *common)
    straight = json.loads((tmp_path / "straight" / "result.json").read_text())
    drop = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    assert drop(three["history"]) == drop(straight["history"])
    from dgm_fast import MADE

    resumed, direct = (MADE.load(tmp_path / d / "made.pt").state_dict() for d in ("on", "straight"))
    assert all(torch.equal(resumed[k], direct[k]) for k in direct)
    proc = train("made", tmp_path / "on", "--epochs", 2, *common, check=False)  # fewer: refused
    assert proc.returncode == 2 and "--epochs 3, not --epochs 2" in proc.stderr
    assert "--epochs may be raised to go on training" in proc.stderr


def test_a_scheduled_rate_spans_its_epochs_so_they_cannot_be_raised(tmp_path):
    common = ["--hidden", "12", "--no-plots", "--lr-schedule", "cosine"]
    proc = train("nade", tmp_path, "--epochs", 2, *common)
    assert "(cosine decay)" in proc.stdout
    result = json.loads((tmp_path / "result.json").read_text())
    # the rate set at each epoch's end for the next: the half cosine from 1e-3 reaches 0 at --epochs
    assert [h["lr"] for h in result["history"]] == pytest.approx([5e-4, 0.0], abs=1e-12)
    proc = train("nade", tmp_path, "--epochs", 3, *common, check=False)
    assert proc.returncode == 2 and "--epochs 2, not --epochs 3" in proc.stderr
    assert "may be raised" not in proc.stderr
    proc = train("nade", tmp_path, "--epochs", 2, "--hidden", "12", "--no-plots", check=False)
    assert proc.returncode == 2 and "--lr-schedule cosine, not --lr-schedule constant" in proc.stderr
