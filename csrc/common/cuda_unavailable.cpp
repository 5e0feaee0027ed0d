// A build without CUDA kernels (no toolkit, or a CPU-only torch) still gives every dgm_fast op a
// CUDA kernel: one that says what to do, instead of the dispatcher's generic "no kernel for
// backend" error. One mechanism for every family: at import, each dgm_fast op that has a CPU
// kernel but neither a CUDA kernel nor a device-generic composite gets this boxed kernel, so a
// new op is covered without being listed anywhere.
#include "common/cuda_unavailable.h"

#include <memory>
#include <string>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace dgm_fast {
namespace {

void no_cuda_kernels(const c10::OperatorHandle& op, torch::jit::Stack*) {
  TORCH_CHECK(false, op.schema().name(),
              ": this build of dgm_fast has no CUDA kernels (it was compiled without a CUDA "
              "toolkit or against a CPU-only torch). On a machine with nvcc and a CUDA build of "
              "torch, reinstall with `pip install --no-build-isolation --force-reinstall .` "
              "(set DGM_FAST_CUDA=ON to make a missing toolkit an error), or move the tensors "
              "to the CPU. dgm_fast.build_info() shows what was compiled in.");
}

bool needs_cuda_stub(const c10::OperatorHandle& op) {
  return op.hasKernelForDispatchKey(c10::DispatchKey::CPU) &&
         !op.hasKernelForDispatchKey(c10::DispatchKey::CUDA) &&
         !op.hasKernelForDispatchKey(c10::DispatchKey::CompositeImplicitAutograd) &&
         !op.hasKernelForDispatchKey(c10::DispatchKey::CompositeExplicitAutograd);
}

}  // namespace

void register_cuda_unavailable_kernels() {
  // A function-local static runs once (a magic static, not std::call_once: no pthread_once, a
  // glibc 2.34 symbol). Kept for the life of the process: destroying a Library removes its
  // registrations.
  static const std::unique_ptr<torch::Library> library = [] {
    auto lib = std::make_unique<torch::Library>(torch::Library::IMPL, "dgm_fast",
                                                c10::DispatchKey::CUDA, __FILE__, __LINE__);
    auto& dispatcher = c10::Dispatcher::singleton();
    for (const c10::OperatorName& name : dispatcher.getAllOpNames()) {
      if (name.name.rfind("dgm_fast::", 0) != 0) continue;
      const auto op = dispatcher.findOp(name);
      if (op.has_value() && needs_cuda_stub(*op))
        lib->impl(name.name.c_str(), torch::CppFunction::makeFromBoxedFunction<&no_cuda_kernels>());
    }
    return lib;
  }();
  (void)library;
}

}  // namespace dgm_fast
