// The Python module dgm_fast._C. Importing it registers the ops (TORCH_LIBRARY blocks in the
// other translation units); the module itself only carries what is not a tensor op.
#include <ATen/Parallel.h>
#include <pybind11/pybind11.h>

#include "common/cpu_loops.h"
#include "common/cuda_unavailable.h"

#if !defined(DGM_FAST_VERSION) || !defined(DGM_FAST_TORCH_VERSION)
#error "the build defines DGM_FAST_VERSION and DGM_FAST_TORCH_VERSION"
#endif
#ifndef DGM_FAST_CUDA_ARCHITECTURES
#define DGM_FAST_CUDA_ARCHITECTURES ""
#endif

namespace py = pybind11;

namespace {

py::dict build_info() {
  py::dict info;
  info["version"] = DGM_FAST_VERSION;
  info["torch_version"] = DGM_FAST_TORCH_VERSION;
#ifdef DGM_FAST_WITH_CUDA
  info["cuda"] = true;
  info["cuda_architectures"] = DGM_FAST_CUDA_ARCHITECTURES;
  info["cuda_toolkit"] = DGM_FAST_CUDA_TOOLKIT;
#else
  info["cuda"] = false;
  info["cuda_architectures"] = "";
  info["cuda_toolkit"] = "";
#endif
  info["cpu_isa"] = dgm_fast::cpu_isa();
  info["num_threads"] = at::get_num_threads();
  info["parallel_backend"] = at::get_parallel_info();
  return info;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "dgm_fast native kernels (ops are registered under torch.ops.dgm_fast)";
#ifndef DGM_FAST_WITH_CUDA
  dgm_fast::register_cuda_unavailable_kernels();  // after every op's static registration
#endif
  m.def("build_info", &build_info, "What this build of dgm_fast was compiled with.");
}
