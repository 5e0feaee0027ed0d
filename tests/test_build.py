"""build_info, the command line, and the errors a broken installation gives."""

import json
import subprocess
import sys

import pytest
import torch

import dgm_fast
from dgm_fast import _extension


def test_build_info():
    info = dgm_fast.build_info()
    assert info["version"] == dgm_fast.__version__
    # Built against this torch release (a CPU-only build also runs with its CUDA variant).
    assert info["torch_version"].split("+")[0] == torch.__version__.split("+")[0]
    assert info["torch_runtime_version"] == torch.__version__
    assert isinstance(info["cuda"], bool)
    assert info["num_threads"] == torch.get_num_threads()
    if info["cuda"]:
        assert info["cuda_architectures"]


def test_build_config_read_before_loading_agrees_with_the_binary():
    from dgm_fast import _build_config

    info = dgm_fast.build_info()
    assert _build_config.VARIANT == info["variant"]
    assert _build_config.TORCH_VERSION == info["torch_version"]
    assert _build_config.TORCH_CUDA == info["torch_cuda"]
    assert _build_config.WITH_CUDA == info["cuda"]


def test_extension_is_one_file_for_every_python():
    # Built against the limited API (csrc/module.cpp): CPython loads _C.abi3.so on 3.10 and later.
    assert _extension._C.__file__.endswith("_C.abi3.so")


def test_cli_info_json():
    out = subprocess.run(
        [sys.executable, "-m", "dgm_fast", "info", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out)
    assert info["version"] == dgm_fast.__version__ and "cuda" in info


def test_build_variant_names_torch_release_and_kernels():
    info = dgm_fast.build_info()
    major, minor = torch.__version__.split(".")[:2]
    kernels = "cu" + info["torch_cuda"].replace(".", "") if info["cuda"] else "cpu"
    assert info["variant"] == f"pt{major}{minor}{kernels}"
    if info["cuda"]:  # a CPU-only build may run with a CUDA torch, a CUDA build only with its own
        assert info["torch_cuda"] == torch.version.cuda


def test_version_mismatch_is_explained():
    with pytest.raises(ImportError, match=r"built against torch 2\.0\.0 but torch 2\.13\.0\+cpu .*\(\+pt213cpu; .*--no-build-isolation"):
        _extension.check_torch_version("2.0.0", "", "2.13.0+cpu", None)
    with pytest.raises(ImportError, match=r"built against torch 2\.12\.1\+cu130 but torch 2\.13\.0\+cu130 .*\(\+pt213cu130 or \+pt213cpu;"):
        _extension.check_torch_version("2.12.1+cu130", "13.0", "2.13.0+cu130", "13.0")
    _extension.check_torch_version(torch.__version__, "", torch.__version__, torch.version.cuda)


def test_cpu_build_runs_with_any_variant_of_its_torch():
    # One torch release's CPU and CUDA builds share libtorch_cpu: a CPU-only dgm_fast loads into
    # either (checked for real by .ci/test-wheel-variants), and its ops on CUDA tensors say so.
    _extension.check_torch_version("2.13.0+cpu", "", "2.13.0+cu130", "13.0")
    _extension.check_torch_version("2.13.0", "", "2.13.0+cpu", None)


def test_cuda_build_needs_its_cuda_torch():
    with pytest.raises(ImportError, match=r"built with CUDA kernels .*CUDA 13\.0.* is CPU-only.*\+pt213cpu"):
        _extension.check_torch_version("2.13.0+cu130", "13.0", "2.13.0+cpu", None)
    with pytest.raises(ImportError, match=r"built with CUDA kernels .*CUDA 13\.0.* is CUDA 12\.8"):
        _extension.check_torch_version("2.13.0+cu130", "13.0", "2.13.0+cu128", "12.8")
    _extension.check_torch_version("2.13.0+cu130", "13.0", "2.13.0", "13.0")


def _dgm_fast_ops():
    return sorted(name for name in torch._C._dispatch_get_all_op_names() if name.startswith("dgm_fast::"))


@pytest.mark.skipif(dgm_fast.build_info()["cuda"], reason="this build has CUDA kernels")
def test_every_op_has_a_cuda_kernel_or_runs_on_any_device():
    # An op without either would meet CUDA tensors with the dispatcher's generic error.
    ops = _dgm_fast_ops()
    assert len(ops) >= 17
    for name in ops:
        has = lambda key: torch._C._dispatch_has_kernel_for_dispatch_key(name, key)  # noqa: E731
        assert has("CUDA") or has("CompositeImplicitAutograd") or has("CompositeExplicitAutograd"), name


@pytest.mark.skipif(dgm_fast.build_info()["cuda"], reason="this build has CUDA kernels")
@pytest.mark.parametrize(
    "op,args",
    [
        ("bernoulli_logits", (torch.zeros(3), None)),
        ("normal_reparam", (torch.zeros(3), torch.zeros(3))),
        ("uniform_bits", ([3],)),
        ("gaussian_elbo", (torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 1), torch.zeros(2, 1))),
        ("iwae_bound", (torch.zeros(4, 2),)),
        ("gan_losses", (torch.zeros(3), torch.zeros(3))),
    ],
)
def test_cuda_op_in_a_cpu_only_build_says_what_to_do(op, args):
    # No GPU here, so ask the dispatcher for the CUDA kernel directly, as a CUDA tensor would.
    overload = getattr(torch.ops.dgm_fast, op).default
    with pytest.raises(RuntimeError, match=f"dgm_fast::{op}: this build of dgm_fast has no CUDA kernels.*reinstall"):
        overload.redispatch(torch._C.DispatchKeySet("CUDA"), *args)
