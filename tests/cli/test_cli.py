"""`dgm-fast train rbm` end to end (in subprocesses, as a user runs it) and the curve drawing."""

import json
import math
import os
import struct
import subprocess
import sys

import pytest
import torch

pytest.importorskip("sklearn")


def run_cli(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "dgm_fast", "train", "rbm", "--quiet", "--hidden", "8", *map(str, args)],
        capture_output=True, text=True, timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])  # width, height


def history(out):
    return json.loads((out / "history.json").read_text())["history"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three epochs, then the same command with --epochs 5: the second run resumes."""
    out = tmp_path_factory.mktemp("rbm")
    first = run_cli("--out", out, "--epochs", 3)
    first_history = history(out)
    second = run_cli("--out", out, "--epochs", 5)
    return out, first, first_history, second


def test_train_writes_outputs(trained):
    out, first, first_history, _ = trained
    for name in ("checkpoint.pt", "samples.png", "curve.png", "history.json"):
        assert (out / name).is_file(), name
        assert str(out / name) in first.stdout
    assert png_size(out / "samples.png") == (10 * 33 + 1, 10 * 33 + 1)  # 10x10 grid of 8x8 at 4x, 1 px gaps
    width, height = png_size(out / "curve.png")
    assert width > 300 and height > 200
    assert [r["epoch"] for r in first_history] == [1, 2, 3]
    ll = [r["exact_log_likelihood"] for r in first_history]
    assert all(math.isfinite(x) and x < 0 for x in ll)
    assert ll[-1] > ll[0] + 0.5, ll  # the exact likelihood improves
    assert "exact train log-likelihood" in first.stdout and "nats" in first.stdout


def test_rerun_resumes(trained):
    out, _, first_history, second = trained
    resumed = history(out)
    assert [r["epoch"] for r in resumed] == [1, 2, 3, 4, 5]
    assert resumed[:3] == first_history  # continued, not retrained from scratch
    assert "epoch 5:" in second.stdout
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 5


def test_restart_and_changed_options(tmp_path):
    run_cli("--out", tmp_path, "--epochs", 2)
    proc = run_cli("--out", tmp_path, "--epochs", 3, "--lr", 0.01, check=False)
    assert proc.returncode == 2 and "--lr 0.05" in proc.stderr and "--restart" in proc.stderr
    run_cli("--out", tmp_path, "--epochs", 1, "--lr", 0.01, "--restart")
    assert [r["epoch"] for r in history(tmp_path)] == [1]


def test_corrupt_checkpoint_is_reported(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    proc = run_cli("--out", tmp_path, "--epochs", 1, check=False)
    assert proc.returncode == 2
    assert "corrupt" in proc.stderr and "checkpoint.pt" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_line_chart(tmp_path):
    from dgm_fast.viz import line_chart, write_line_chart

    ll = [-27 + 3 * (1 - math.exp(-i / 5)) for i in range(20)]
    image = line_chart({"log-likelihood": ll, "reconstruction error": [0.1 / (i + 1) for i in range(20)]},
                       width=500, height=320, title="test")
    assert image.shape == (320, 500, 3)
    assert image.min() >= 0 and image.max() <= 1
    ink = (image < 0.5).any(2)
    assert ink.float().mean() > 0.01  # axes, labels and lines drawn
    assert (image[..., 2] - image[..., 0] > 0.4).sum() > 200  # the blue series
    assert (image[..., 0] - image[..., 2] > 0.4).sum() > 200  # the orange series
    single = line_chart({"loss": [1.0, float("nan"), 0.5]})  # one series, a missing value
    assert single.shape[2] == 3 and (single < 0.5).any()
    with pytest.raises(ValueError):
        line_chart({})
    write_line_chart(tmp_path / "curve.png", {"loss": [3.0, 2.0, 1.5]}, width=300, height=200)
    assert png_size(tmp_path / "curve.png") == (300, 200)


def test_output_into_a_closed_pipe_exits_quietly():
    # `dgm-fast info | head -1`: the reader closes the pipe before everything is written.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "dgm_fast", "info"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports it
