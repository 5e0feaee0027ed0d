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
plt_image = pytest.importorskip("matplotlib.image")

from dgm_fast import RBM  # noqa: E402
from dgm_fast.viz import image_grid, save_curves, save_image_grid  # noqa: E402


def run_cli(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "dgm_fast", "train", "rbm", "--quiet", "--hidden", "8", "--k", "1", "--momentum", "0.9",
         "--lr-decay", "0", "--eval-every", "1", *map(str, args)],
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
    width, height = png_size(out / "samples.png")
    assert width >= 10 * 9 * 4 and height >= 10 * 9 * 4  # a 10x10 grid of 8x8 digits, 4 px or more a pixel
    grid = plt_image.imread(out / "samples.png")[..., :3].mean(-1)
    assert 0.1 < grid.mean() < 0.6 and grid.std() > 0.2  # dark background, light strokes, not blank
    width, height = png_size(out / "curve.png")
    assert width > 500 and height > 500  # three panels
    loaded = RBM.load(out / "checkpoint.pt")  # the model alone, as the README says
    assert loaded.n_visible == 64 and loaded.n_hidden == 8
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


def test_larger_models_are_measured_by_ais_and_reverse_ais(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dgm_fast", "train", "rbm", "--quiet", "--hidden", "24", "--epochs", "2",
         "--eval-every", "2", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    first, last = history(tmp_path)
    assert "ais_log_likelihood" not in first  # measured every --eval-every epochs and at the end
    assert last["ais_log_likelihood_low"] <= last["ais_log_likelihood"] <= last["ais_log_likelihood_high"]
    # the two estimators bracket the truth from either side; on a model this small they nearly agree
    assert abs(last["ais_log_likelihood"] - last["reverse_ais_log_likelihood"]) < 0.5
    assert "(AIS)" in proc.stdout and "(reverse AIS)" in proc.stdout


def test_restart_and_changed_options(tmp_path):
    run_cli("--out", tmp_path, "--epochs", 2)
    proc = run_cli("--out", tmp_path, "--epochs", 3, "--lr", 0.01, check=False)
    assert proc.returncode == 2 and "--lr 0.02, not --lr 0.01" in proc.stderr and "--restart" in proc.stderr
    run_cli("--out", tmp_path, "--epochs", 1, "--lr", 0.01, "--restart")
    assert [r["epoch"] for r in history(tmp_path)] == [1]


def test_changed_options_lets_listed_options_grow_and_reads_older_configs(tmp_path):
    from dgm_fast.cli._common import changed_options

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"epochs": 10, "lr": 0.1}))  # written before --lr-schedule existed
    names = ("epochs", "lr", "lr_schedule")
    same = {"epochs": 10, "lr": 0.1, "lr_schedule": "constant"}
    assert changed_options(path, same, names) == ("--lr-schedule None", "--lr-schedule constant")
    assert changed_options(path, same, names, older_default={"lr_schedule": "constant"}) is None
    assert changed_options(path, {**same, "lr_schedule": "cosine"}, names, older_default={"lr_schedule": "constant"}) \
        == ("--lr-schedule constant", "--lr-schedule cosine")
    old = {"older_default": {"lr_schedule": "constant"}}
    assert changed_options(path, {**same, "epochs": 20}, names, **old) == ("--epochs 10", "--epochs 20")
    assert changed_options(path, {**same, "epochs": 20}, names, may_raise=("epochs",), **old) is None
    assert changed_options(path, {**same, "epochs": 5}, names, may_raise=("epochs",), **old) == ("--epochs 10",
                                                                                                "--epochs 5")
    assert changed_options(path, {**same, "epochs": 20, "lr": 0.2}, names, may_raise=("epochs",), **old) \
        == ("--lr 0.1", "--lr 0.2")
    assert changed_options(tmp_path / "absent.json", same, names) is None


def test_corrupt_checkpoint_is_reported(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    proc = run_cli("--out", tmp_path, "--epochs", 1, check=False)
    assert proc.returncode == 2
    assert "corrupt" in proc.stderr and "checkpoint.pt" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_curves_and_grids_are_drawn_with_matplotlib(tmp_path):
    history = [{"epoch": i + 1, "ll": -27 + 3 * (1 - math.exp(-i / 5)), "err": 0.1 / (i + 1)} for i in range(20)]
    history[4]["ll"] = float("nan")  # a gap, not a crash
    save_curves(tmp_path / "curve.png", history, [
        {"ylabel": "log-likelihood", "series": {"train": "ll", "absent": "not recorded"}},
        {"ylabel": "error", "series": {"recon": "err"}, "yscale": "log"},
    ], title="test")
    image = plt_image.imread(tmp_path / "curve.png")[..., :3]
    blue = (image[..., 2] - image[..., 0] > 0.3).sum()  # matplotlib's first colour, the lines
    assert blue > 200 and (image < 0.3).all(-1).sum() > 500  # lines; black axes, ticks and labels
    with pytest.raises(ValueError, match="none of the panels"):
        save_curves(tmp_path / "none.png", history, [{"ylabel": "x", "series": {"x": "missing"}}])
    images = torch.rand(7, 8, 8)
    save_image_grid(tmp_path / "grid.png", images, nrow=4, title="seven")
    assert png_size(tmp_path / "grid.png")[0] > png_size(tmp_path / "grid.png")[1] * 0.8
    with pytest.raises(ValueError, match="NaN"):
        save_image_grid(tmp_path / "bad.png", torch.full((2, 8, 8), float("nan")))
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["curve.png", "grid.png"]  # nothing half-written
    grid = image_grid(torch.ones(3, 2, 2), nrow=2, pad=1, pad_value=0.0)
    assert grid.shape == (2 * 3 + 1, 2 * 3 + 1) and grid.sum() == 3 * 4


def test_without_matplotlib_the_command_says_how_to_get_it(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; from dgm_fast.cli import main; "
            f"sys.exit(main(['train', 'rbm', '--quiet', '--epochs', '1', '--out', {str(tmp_path)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'pip install "dgm_fast[plots]"' in proc.stderr and "--no-plots" in proc.stderr
    assert "Traceback" not in proc.stderr


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
