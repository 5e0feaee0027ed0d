// Built only when the extension is compiled without CUDA kernels: CUDA tensors reach these
// registrations instead of the dispatcher's generic "no kernel for backend" error.
#include <torch/library.h>

namespace dgm_fast {
namespace {

[[noreturn]] void no_cuda_kernels(const char* op) {
  TORCH_CHECK(false, "dgm_fast::", op,
              ": this build of dgm_fast has no CUDA kernels (it was compiled without a CUDA "
              "toolkit or against a CPU-only torch). On a machine with nvcc and a CUDA build of "
              "torch, reinstall with `pip install --no-build-isolation --force-reinstall .` "
              "(set DGM_FAST_CUDA=ON to make a missing toolkit an error), or move the tensors "
              "to the CPU. dgm_fast.build_info() shows what was compiled in.");
}

std::tuple<at::Tensor, at::Tensor> bernoulli_logits_no_cuda(const at::Tensor&,
                                                            const std::optional<at::Tensor>&,
                                                            std::optional<at::Generator>, bool) {
  no_cuda_kernels("bernoulli_logits");
}
std::tuple<at::Tensor, at::Tensor> normal_reparam_no_cuda(const at::Tensor&, const at::Tensor&,
                                                          std::optional<at::Generator>) {
  no_cuda_kernels("normal_reparam");
}
at::Tensor uniform_bits_no_cuda(at::IntArrayRef, std::optional<at::Generator>,
                                std::optional<at::Device>) {
  no_cuda_kernels("uniform_bits");
}

}  // namespace

TORCH_LIBRARY_IMPL(dgm_fast, CUDA, m) {
  m.impl("bernoulli_logits", &bernoulli_logits_no_cuda);
  m.impl("normal_reparam", &normal_reparam_no_cuda);
  m.impl("uniform_bits", &uniform_bits_no_cuda);
}

}  // namespace dgm_fast
