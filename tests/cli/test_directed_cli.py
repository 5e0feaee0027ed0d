"""`dgm-fast train sbn | helmholtz | vae` end to end on the digits (in subprocesses, as a user
runs them)."""

import json
import subprocess
import sys

import pytest
import torch

pytest.importorskip("matplotlib")


def train(model, out, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "dgm_fast", "train", model, "--quiet", "--out", str(out),
                           "--eval-samples", "200", *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.parametrize("model,args,files", [
    ("sbn", ["--algorithm", "nvil", "--layers", "16,8"], ["sbn.pt", "helmholtz.pt"]),
    ("helmholtz", ["--algorithm", "rws", "--k", "3", "--layers", "12"], ["helmholtz.pt"]),
    ("vae", ["--algorithm", "iwae", "--k", "3", "--layers", "6,4", "--hidden", "32;16"], ["vae.pt"]),
])
def test_writes_the_model_result_and_plots_then_resumes(tmp_path, model, args, files):
    first = train(model, tmp_path, "--epochs", 3, *args)
    for name in ("checkpoint.pt", "result.json", "samples.png", "curve.png", *files):
        assert (tmp_path / name).stat().st_size > 0, name
    result = json.loads((tmp_path / "result.json").read_text())
    assert -60 < result["log_likelihood"] < -15 and result["std_error"] < 0.5 and len(result["history"]) == 3
    assert "log-likelihood of the first 1000 training images" in first.stdout
    from dgm_fast import SBN, VAE, HelmholtzMachine

    cls = {"sbn.pt": SBN, "helmholtz.pt": HelmholtzMachine, "vae.pt": VAE}[files[0]]
    loaded = cls.load(tmp_path / files[0])
    train(model, tmp_path, "--epochs", 3, *args)  # resumed at its end: nothing trained again
    again = json.loads((tmp_path / "result.json").read_text())
    assert again["history"] == result["history"] and again["log_likelihood"] == result["log_likelihood"]
    assert all(torch.equal(a, b) for a, b in zip(cls.load(tmp_path / files[0]).state_dict().values(),
                                                  loaded.state_dict().values()))


def test_changed_options_and_bad_values_get_clear_errors(tmp_path):
    train("helmholtz", tmp_path, "--epochs", 0, "--layers", "8")
    proc = train("helmholtz", tmp_path, "--epochs", 0, "--layers", "8", "--algorithm", "nvil", check=False)
    assert proc.returncode == 2 and "--algorithm rws, not --algorithm nvil" in proc.stderr
    proc = train("helmholtz", tmp_path / "a", "--k", "0", check=False)
    assert proc.returncode == 2 and "--k and --eval-samples >= 1" in proc.stderr
    proc = train("vae", tmp_path / "b", "--layers", "8,x", check=False)
    assert proc.returncode == 2 and "comma-separated integers" in proc.stderr
    proc = train("vae", tmp_path / "c", "--layers", "8,4", "--hidden", "32", check=False)
    assert proc.returncode == 2 and "each of the 2 latent layers" in proc.stderr
