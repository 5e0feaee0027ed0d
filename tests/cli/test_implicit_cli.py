"""`dgm-fast train gan | gmmn` end to end on the digits (in subprocesses, as a user runs them)."""

import json
import subprocess
import sys

import pytest
import torch

pytest.importorskip("matplotlib")


def train(model, out, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "dgm_fast", "train", model, "--quiet", "--out", str(out),
                           "--parzen-samples", "500", *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.parametrize("model,args,files", [
    ("gan", ["--kind", "minimax", "--k", "2", "--hidden", "32,32", "--latent", "8"], ["gan.pt"]),
    ("gmmn", ["--hidden", "16,32", "--batch-size", "300"], ["gmmn.pt"]),
    ("gmmn", ["--space", "code", "--code", "6", "--ae-hidden", "32", "--ae-epochs", "2", "--hidden", "16",
              "--batch-size", "300"], ["gmmn.pt", "autoencoder.pt"]),
])
def test_writes_the_model_result_and_plots_then_resumes(tmp_path, model, args, files):
    first = train(model, tmp_path, "--epochs", 3, *args)
    for name in ("checkpoint.pt", "result.json", "samples.png", "curve.png", *files):
        assert (tmp_path / name).stat().st_size > 0, name
    result = json.loads((tmp_path / "result.json").read_text())
    # 150 test images, sigma from Goodfellow et al.'s grid; an untrained model scores far below
    # the training images themselves (about +33 nats on digits)
    assert -200 < result["parzen_log_likelihood"] < 33 and len(result["history"]) == 3
    assert result["sigma"] in [float(s) for s in result["validation"]] and result["test_rows"] == 150
    assert "Parzen-window log-likelihood of the 150 test images" in first.stdout
    from dgm_fast import GAN, GMMN

    cls = GAN if model == "gan" else GMMN
    loaded = cls.load(tmp_path / files[0])
    train(model, tmp_path, "--epochs", 3, *args)  # resumed at its end: nothing trained again
    again = json.loads((tmp_path / "result.json").read_text())
    assert again["history"] == result["history"] and again["parzen_log_likelihood"] == result["parzen_log_likelihood"]
    assert all(torch.equal(a, b) for a, b in zip(cls.load(tmp_path / files[0]).state_dict().values(),
                                                  loaded.state_dict().values()))


def test_changed_options_and_bad_values_get_clear_errors(tmp_path):
    train("gan", tmp_path, "--epochs", 0, "--hidden", "8")
    proc = train("gan", tmp_path, "--epochs", 0, "--hidden", "8", "--kind", "reversed", check=False)
    assert proc.returncode == 2 and "--kind non_saturating, not --kind reversed" in proc.stderr
    proc = train("gan", tmp_path / "a", "--k", "0", check=False)
    assert proc.returncode == 2 and "--k and --latent must be >= 1" in proc.stderr
    proc = train("gan", tmp_path / "b", "--hidden", "8,x", check=False)
    assert proc.returncode == 2 and "--hidden must be comma-separated integers" in proc.stderr
    proc = train("gmmn", tmp_path / "c", "--bandwidths", "1,-2", check=False)
    assert proc.returncode == 2 and "--bandwidths must be positive" in proc.stderr
    proc = train("gmmn", tmp_path / "d", "--batch-size", "1", check=False)
    assert proc.returncode == 2 and "--batch-size >= 2" in proc.stderr


def test_run_training_reports_interruptions_and_refusals(capsys):
    from dgm_fast.cli._common import run_training

    def interrupted():
        raise KeyboardInterrupt

    def refused():
        raise ValueError("data must be [rows, 64]")

    assert run_training(interrupted, "out/checkpoint.pt holds the last completed epoch") == 130
    assert "out/checkpoint.pt holds the last completed epoch: run the same command to resume" in capsys.readouterr().err
    assert run_training(refused, "x") == 2
    assert "dgm-fast: error: data must be [rows, 64]" in capsys.readouterr().err
    result, _ = run_training(lambda: [1, 2], "x")
    assert result == [1, 2]
