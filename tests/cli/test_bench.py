"""``dgm-fast bench``: the pytest command it builds, and the runs it refuses. The suite itself is
run untimed (``--smoke``) by .ci/test-wheel against the installed wheel."""

import argparse
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
        parse("--only", "nade")


def test_smoke_run_cannot_be_saved():
    result = subprocess.run([sys.executable, "-m", "dgm_fast", "bench", "--smoke", "--save", "x"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "--smoke times nothing: it cannot --save or --compare" in result.stderr
