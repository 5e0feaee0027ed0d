"""``dgm-fast bench``: the pytest command it builds, and the runs it refuses. The suite itself is
run untimed (``--smoke``) by .ci/test-wheel against the installed wheel."""

import argparse
import json
import os
import subprocess
import sys

import pytest

from dgm_fast.cli import bench


def parse(*argv):
    parser = argparse.ArgumentParser()
    bench.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bench", *argv])


def test_suite_ships_with_the_package_and_uses_its_own_config():
    argv = bench.pytest_arguments(parse())
    config = argv[argv.index("-c") + 1]
    assert os.path.isfile(config) and config.endswith(os.path.join("dgm_fast", "bench", "pytest.ini"))
    files = [a for a in argv if a.endswith(".py")]
    assert [os.path.basename(f) for f in files] == [f"bench_{family}.py" for family in bench.FAMILIES]
    assert all(os.path.isfile(f) for f in files)
    assert "--dgm-device=cpu" in argv and "--benchmark-group-by=group" in argv


def test_quick_only_save_compare_and_smoke_become_pytest_benchmark_options():
    argv = bench.pytest_arguments(parse("--quick", "--only", "rbm", "--save", "base", "--device", "cuda"))
    assert "--dgm-quick" in argv and "--dgm-device=cuda" in argv and "--benchmark-save=base" in argv
    assert [os.path.basename(a) for a in argv if a.endswith(".py")] == ["bench_rbm.py"]
    argv = bench.pytest_arguments(parse("--compare", "base", "--threshold", "5"))
    assert "--benchmark-compare=*_base" in argv and "--benchmark-compare-fail=median:5%" in argv
    assert "--benchmark-compare=0003" in bench.pytest_arguments(parse("--compare", "0003"))
    assert "--benchmark-disable" in bench.pytest_arguments(parse("--smoke"))


def test_unknown_family_is_refused():
    with pytest.raises(SystemExit):
        parse("--only", "no_such_family")


def test_smoke_run_cannot_be_saved():
    result = subprocess.run([sys.executable, "-m", "dgm_fast", "bench", "--smoke", "--save", "x"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "--smoke times nothing: it cannot --save or --compare" in result.stderr


def _run_json(tmp_path):
    """A saved run as pytest-benchmark writes it, with medians chosen by hand."""
    def bench(group, impl, median):
        return {"group": group, "extra_info": {"impl": impl}, "stats": {"median": median}}

    run = {
        "datetime": "2026-12-02T15:16:41+00:00",
        "machine_info": {"cpu_model": "Test CPU", "threads": 2, "gpu": None, "torch": "2.13.0+cpu",
                         "dgm_fast": {"version": "0.1.0", "variant": "pt213cpu", "cpu_isa": "avx2"},
                         "dgm_fast_bench_command": "dgm-fast bench --quick --save t"},
        "benchmarks": [
            bench("rbm cd_step 20x64x20 cpu", "dgm_fast", 50e-6),
            bench("rbm cd_step 20x64x20 cpu", "eager", 100e-6),
            bench("rbm cd_step 20x64x20 cpu", "bare products", 10e-6),
            bench("samplers bernoulli_logits 100x500 cpu", "torch.compile", 3e-3),
            bench("samplers bernoulli_logits 100x500 cpu", "dgm_fast", 1.5e-3),
        ],
    }
    path = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit" / "0002_t.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(run))
    return path


def test_report_tables_carry_times_ratios_machine_and_command(tmp_path):
    from dgm_fast.bench import report

    path = _run_json(tmp_path)
    assert report.find_run("t", tmp_path / ".benchmarks") == path
    assert report.find_run("0002", tmp_path / ".benchmarks") == path
    text = report.markdown(report.load(path))
    assert "Test CPU, 2 threads, CPU; torch 2.13.0+cpu" in text and "2026-12-02" in text
    assert "`dgm-fast bench --quick --save t`" in text
    assert "| rbm | dgm_fast | eager | bare products | eager / dgm_fast | dgm_fast / bare products |" in text
    assert "| cd_step 20x64x20 | 50.0 µs | 100.0 µs | 10.0 µs | 2.00× | 5.00× |" in text
    assert "| bernoulli_logits 100x500 | 1.50 ms | 3.00 ms | 2.00× |" in text
    with pytest.raises(FileNotFoundError, match="no saved benchmark run 'other'"):
        report.find_run("other", tmp_path / ".benchmarks")


def test_report_fills_its_block_in_a_results_file(tmp_path):
    from dgm_fast.bench import report

    results = tmp_path / "RESULTS.md"
    results.write_text("intro, see `<!-- bench:t -->`\n<!-- bench:t -->\nold table\n<!-- /bench:t -->\nprose kept\n")
    report.write_into(results, "t", "| new | table |\n")
    assert results.read_text() == ("intro, see `<!-- bench:t -->`\n<!-- bench:t -->\n| new | table |\n"
                                   "<!-- /bench:t -->\nprose kept\n")
    with pytest.raises(ValueError, match="no block <!-- bench:u -->"):
        report.write_into(results, "u", "x")


def test_report_from_the_command_line(tmp_path):
    _run_json(tmp_path)
    out = subprocess.run([sys.executable, "-m", "dgm_fast", "bench", "--report", "t"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "| cd_step 20x64x20 | 50.0 µs |" in out.stdout
    out = subprocess.run([sys.executable, "-m", "dgm_fast", "bench", "--into", "x.md"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--into needs --report RUN" in out.stderr


def test_two_runs_on_different_machines_compare_by_ratio(tmp_path):
    """A faster machine halves every time: no regression. A lead that shrank is flagged, whatever
    the absolute times did."""
    from dgm_fast.bench import report

    base = report.load(_run_json(tmp_path))
    faster = json.loads(json.dumps(base))
    faster["machine_info"]["cpu_model"] = "Other CPU"
    for b in faster["benchmarks"]:
        b["stats"]["median"] /= 2
    text, shrunk = report.compare(faster, base, threshold=10)
    assert shrunk == 0
    assert "base: Test CPU, 2 threads, 2026-12-02; run: Other CPU, 2 threads" in text
    assert "| rbm cd_step 20x64x20 cpu | eager | 2.00× | 2.00× | +0% |" in text
    assert "bare products" not in text  # a floor, not a baseline
    faster["benchmarks"][1]["stats"]["median"] = 80e-6 / 2  # eager now 1.6x dgm_fast's time, was 2x
    text, shrunk = report.compare(faster, base, threshold=10)
    assert shrunk == 1 and "| eager | 2.00× | 1.60× | -20% **lead shrank** |" in text
    _, shrunk = report.compare(faster, base, threshold=25)
    assert shrunk == 0


def test_report_vs_from_the_command_line(tmp_path):
    path = _run_json(tmp_path)
    other = json.loads(path.read_text())
    other["benchmarks"][1]["stats"]["median"] = 60e-6
    (path.parent / "0003_u.json").write_text(json.dumps(other))
    cmd = [sys.executable, "-m", "dgm_fast", "bench", "--report", "u", "--vs", "t"]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 1 and "| eager | 2.00× | 1.20× | -40% **lead shrank** |" in out.stdout
    out = subprocess.run(cmd + ["--threshold", "50"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run([sys.executable, "-m", "dgm_fast", "bench", "--vs", "t"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "--vs needs --report RUN" in out.stderr


def test_compare_with_a_run_from_another_machine_warns_that_times_do_not_travel(tmp_path, monkeypatch, capsys):
    _run_json(tmp_path)  # taken on "Test CPU"
    monkeypatch.chdir(tmp_path)
    bench.warn_if_another_machine("t")
    err = capsys.readouterr().err
    assert "'t' was taken on Test CPU, 2 threads, this is" in err and "--report NEW --vs t" in err


def test_the_recorded_command_reproduces_the_run():
    args = parse("--quick", "--only", "rbm", "--save", "x", "--", "-k", "train_epoch")
    assert bench.command_line(args) == "dgm-fast bench --quick --only rbm --save x -- -k train_epoch"
