// CUDA implementations of the samplers. One thread per Philox block (4 words), grid-stride;
// launched on the current stream, no synchronisation, capturable in CUDA graphs: the Philox
// offset comes from PyTorch's CUDA generator through PhiloxCudaState, which under capture reads
// it from device memory so that every replay draws fresh numbers.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "dgm_fast/samplers.h"
#include "common/grid.cuh"
#include "common/philox_cuda_state.cuh"
#include "samplers/samplers_checks.h"

namespace dgm_fast {
namespace {

template <typename scalar_t>
__global__ void bernoulli_logits_kernel(const scalar_t* __restrict__ logits,  // [n]
                                        const scalar_t* __restrict__ bias,    // [width] or null
                                        scalar_t* __restrict__ sample,        // [n]
                                        scalar_t* __restrict__ probs,         // [n] or null
                                        int64_t n, int64_t width, at::PhiloxCudaState philox) {
  using acc_t = at::opmath_type<scalar_t>;
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  const int64_t n_blocks = (n + 3) / 4;
  for (int64_t block = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; block < n_blocks;
       block += int64_t(gridDim.x) * blockDim.x) {
    const Words4 r = philox_block(seed, offset, static_cast<uint64_t>(block));
    int64_t col = bias != nullptr ? (block * 4) % width : 0;  // one division per 4 elements
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const int64_t i = block * 4 + lane;
      if (i >= n) break;
      acc_t v = static_cast<acc_t>(logits[i]);
      if (bias != nullptr) {
        v = pm::add(v, static_cast<acc_t>(bias[col]));
        col = (col + 1 == width) ? 0 : col + 1;
      }
      const acc_t p = pm::sigmoid(v);
      sample[i] = static_cast<scalar_t>(bernoulli_sample(p, r.w[lane]));
      if (probs != nullptr) probs[i] = static_cast<scalar_t>(p);
    }
  }
}

template <typename scalar_t>
__global__ void normal_reparam_kernel(const scalar_t* __restrict__ mu,       // [n]
                                      const scalar_t* __restrict__ log_var,  // [n]
                                      scalar_t* __restrict__ z,              // [n]
                                      scalar_t* __restrict__ eps,            // [n]
                                      int64_t n, at::PhiloxCudaState philox) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int kPer = NormalsPerBlock<acc_t>::value;
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  const int64_t n_blocks = (n + kPer - 1) / kPer;
  for (int64_t block = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; block < n_blocks;
       block += int64_t(gridDim.x) * blockDim.x) {
    acc_t normals[kPer];
    normals_from_block(philox_block(seed, offset, static_cast<uint64_t>(block)), normals);
#pragma unroll
    for (int lane = 0; lane < kPer; ++lane) {
      const int64_t i = block * kPer + lane;
      if (i >= n) break;
      const scalar_t e = static_cast<scalar_t>(normals[lane]);
      eps[i] = e;
      z[i] = static_cast<scalar_t>(
          reparam(static_cast<acc_t>(mu[i]), static_cast<acc_t>(log_var[i]), static_cast<acc_t>(e)));
    }
  }
}

__global__ void uniform_bits_kernel(uint32_t* __restrict__ out, int64_t n,  // [n]
                                    at::PhiloxCudaState philox) {
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  const int64_t n_blocks = (n + 3) / 4;
  for (int64_t block = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; block < n_blocks;
       block += int64_t(gridDim.x) * blockDim.x) {
    const Words4 r = philox_block(seed, offset, static_cast<uint64_t>(block));
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      const int64_t i = block * 4 + lane;
      if (i < n) out[i] = r.w[lane];
    }
  }
}

std::tuple<at::Tensor, at::Tensor> bernoulli_logits_cuda(const at::Tensor& logits,
                                                         const std::optional<at::Tensor>& bias,
                                                         std::optional<at::Generator> generator,
                                                         bool return_probs) {
  check_bernoulli_logits_args(logits, bias);
  const c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor x = logits.contiguous();
  const bool has_bias = bias.has_value() && bias->defined();
  const at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();
  at::Tensor sample = at::empty(x.sizes(), x.options());
  at::Tensor probs = at::empty(return_probs ? x.sizes() : at::IntArrayRef{0}, x.options());
  const int64_t n = x.numel();
  if (n == 0) return {sample, probs};
  const at::PhiloxCudaState philox = next_cuda_philox(generator, x.device());
  const int64_t width = has_bias ? b.numel() : 1;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "bernoulli_logits_cuda", [&] {
    bernoulli_logits_kernel<scalar_t><<<blocks_for((n + 3) / 4), kThreads, 0,
                                        c10::cuda::getCurrentCUDAStream()>>>(
        x.const_data_ptr<scalar_t>(), has_bias ? b.const_data_ptr<scalar_t>() : nullptr,
        sample.mutable_data_ptr<scalar_t>(),
        return_probs ? probs.mutable_data_ptr<scalar_t>() : nullptr, n, width, philox);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {sample, probs};
}

std::tuple<at::Tensor, at::Tensor> normal_reparam_cuda(const at::Tensor& mu,
                                                       const at::Tensor& log_var,
                                                       std::optional<at::Generator> generator) {
  check_normal_reparam_args(mu, log_var);
  const c10::cuda::CUDAGuard guard(mu.device());
  const at::Tensor m = mu.contiguous();
  const at::Tensor lv = log_var.contiguous();
  at::Tensor z = at::empty(m.sizes(), m.options());
  at::Tensor eps = at::empty(m.sizes(), m.options());
  const int64_t n = m.numel();
  if (n == 0) return {z, eps};
  const at::PhiloxCudaState philox = next_cuda_philox(generator, m.device());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, m.scalar_type(), "normal_reparam_cuda", [&] {
    constexpr int kPer = NormalsPerBlock<at::opmath_type<scalar_t>>::value;
    normal_reparam_kernel<scalar_t><<<blocks_for((n + kPer - 1) / kPer), kThreads, 0,
                                      c10::cuda::getCurrentCUDAStream()>>>(
        m.const_data_ptr<scalar_t>(), lv.const_data_ptr<scalar_t>(),
        z.mutable_data_ptr<scalar_t>(), eps.mutable_data_ptr<scalar_t>(), n, philox);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {z, eps};
}

at::Tensor uniform_bits_cuda(at::IntArrayRef size, std::optional<at::Generator> generator,
                             std::optional<at::Device> device) {
  const at::Device target = device.value_or(at::Device(at::kCUDA));
  const c10::cuda::CUDAGuard guard(target);
  at::Tensor out = at::empty(size, at::TensorOptions().dtype(at::kUInt32).device(target));
  const int64_t n = out.numel();
  if (n == 0) return out;
  const at::PhiloxCudaState philox = next_cuda_philox(generator, out.device());
  uniform_bits_kernel<<<blocks_for((n + 3) / 4), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      out.mutable_data_ptr<uint32_t>(), n, philox);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(dgm_fast, CUDA, m) {
  m.impl("bernoulli_logits", &bernoulli_logits_cuda);
  m.impl("normal_reparam", &normal_reparam_cuda);
  m.impl("uniform_bits", &uniform_bits_cuda);
}

}  // namespace dgm_fast
