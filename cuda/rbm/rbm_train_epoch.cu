// CUDA kernel of rbm_train_epoch_ (the device-generic composite and the checks are in
// csrc/rbm/rbm_train_epoch.cpp).
//
// An update of a small RBM is a dozen kernels of a few microseconds each, so on a GPU the epoch
// is bound by their launches. With DGM_FAST_EPOCH_CUDA_GRAPH=1 the epoch captures one update in
// a CUDA graph and replays it for every full batch, the batch copied into a static buffer first:
// one launch per update instead of a dozen.
//   * The first updates run eagerly on a side stream (the warm-up torch.cuda.graphs asks for),
//     then one is captured there, and replays follow on the same stream; the caller's stream
//     waits for the side stream at the end, which is synchronised before the graph (and its
//     private memory pool) is destroyed.
//   * The samplers take their Philox offsets through PhiloxCudaState, which under capture reads
//     them from device memory. The generator is registered with the graph, so each replay
//     advances it as the eager calls would: the bits are meant to be the eager loop's
//     (tests/test_cuda.py checks them when a GPU runs the suite).
//   * The short last batch, if any, runs eagerly.
// Off by default until that test has passed on a GPU; without it the epoch runs the per-update
// ops in a C++ loop (no Python between updates).
#include <cstdlib>
#include <cstring>

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "rbm/rbm_checks.h"

namespace dgm_fast {
namespace {

constexpr int64_t kEagerUpdates = 3;  // before the capture

bool graphs_enabled() {
  const char* value = std::getenv("DGM_FAST_EPOCH_CUDA_GRAPH");
  return value != nullptr && std::strcmp(value, "1") == 0;
}

void rbm_train_epoch_cuda(const at::Tensor& weight, const at::Tensor& visible_bias, const at::Tensor& hidden_bias,
                          const at::Tensor& weight_momentum, const at::Tensor& visible_momentum,
                          const at::Tensor& hidden_momentum, const std::optional<at::Tensor>& chains,
                          const at::Tensor& data, int64_t batch_size, int64_t k, c10::string_view chains_hold,
                          double lr, double momentum, double weight_decay, std::optional<at::Generator> generator) {
  const EpochChains kind = check_train_epoch(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum,
                                             hidden_momentum, chains, data, batch_size, k, chains_hold, lr, momentum,
                                             weight_decay);
  const c10::cuda::CUDAGuard device_guard(data.device());
  const int64_t n = data.size(0), full = n / batch_size, n_batches = (n + batch_size - 1) / batch_size;
  const auto batches = [&](const at::Tensor& rows, int64_t first, int64_t last) {  // eagerly, op by op
    rbm_train_batches(kind, rows, batch_size, first, last, weight, visible_bias, hidden_bias, weight_momentum,
                      visible_momentum, hidden_momentum, chains, k, lr, momentum, weight_decay, generator);
  };
  if (!graphs_enabled() || full <= kEagerUpdates + 1) {
    batches(data, 0, n_batches);
    return;
  }
  const c10::cuda::CUDAStream caller = c10::cuda::getCurrentCUDAStream();
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
  c10::cuda::CUDAEvent inputs_ready;
  inputs_ready.record(caller);
  inputs_ready.block(side);
  {
    const c10::cuda::CUDAStreamGuard on_side(side);
    batches(data, 0, kEagerUpdates);
    const at::Tensor v_static = data.narrow(0, kEagerUpdates * batch_size, batch_size).clone();
    at::cuda::CUDAGraph graph;
    if (generator.has_value()) graph.register_generator_state(*generator);  // the default one is registered by capture
    graph.capture_begin();
    batches(v_static, 0, 1);
    graph.capture_end();
    graph.replay();  // the update of batch kEagerUpdates, captured above but not run
    for (int64_t i = kEagerUpdates + 1; i < full; ++i) {
      v_static.copy_(data.narrow(0, i * batch_size, batch_size));
      graph.replay();
    }
    batches(data, full, n_batches);
    side.synchronize();  // before the graph and its memory pool go
  }
  c10::cuda::CUDAEvent done;
  done.record(side);
  done.block(caller);
}

}  // namespace

TORCH_LIBRARY_IMPL(dgm_fast, CUDA, m) {
  m.impl("rbm_train_epoch_", &rbm_train_epoch_cuda);
}

}  // namespace dgm_fast
