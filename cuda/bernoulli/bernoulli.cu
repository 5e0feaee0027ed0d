// CUDA kernels of the Bernoulli layer ops (schemas, argument checks and CPU kernels:
// csrc/bernoulli/bernoulli.cpp). Launched on the current stream, no synchronisation, capturable
// in CUDA graphs. A NaN logit gives a NaN sample and log-probability here, where the CPU raises:
// raising would need a device synchronisation.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cub/block/block_reduce.cuh>

#include <algorithm>
#include <vector>

#include "bernoulli/bernoulli_checks.h"
#include "common/grid.cuh"
#include "common/philox_cuda_state.cuh"
#include "dgm_fast/samplers.h"

namespace dgm_fast {
namespace {

// One block per row; each thread takes whole Philox blocks (element e uses word e of the stream,
// as in bernoulli_logits) and the lanes of each that fall in the row, then the block reduces.
template <typename scalar_t>
__global__ void sample_log_prob_kernel(const scalar_t* __restrict__ logits,  // [rows, D]
                                       scalar_t* __restrict__ sample,        // [rows, D]
                                       scalar_t* __restrict__ log_prob,      // [rows]
                                       int64_t rows, int64_t D, at::PhiloxCudaState philox) {
  using acc_t = at::opmath_type<scalar_t>;
  using Reduce = cub::BlockReduce<acc_t, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t first = r * D, last = first + D;  // elements [first, last)
    acc_t nll = 0;
    for (int64_t block = first / 4 + threadIdx.x; 4 * block < last; block += kThreads) {
      const Words4 w = philox_block(seed, offset, static_cast<uint64_t>(block));
#pragma unroll
      for (int lane = 0; lane < 4; ++lane) {
        const int64_t e = 4 * block + lane;
        if (e < first || e >= last) continue;
        acc_t s, v;
        bernoulli_sample_and_nll(static_cast<acc_t>(logits[e]), w.w[lane], &s, &v);
        sample[e] = static_cast<scalar_t>(s);
        nll += v;
      }
    }
    const acc_t total = Reduce(temp).Sum(nll);
    if (threadIdx.x == 0) log_prob[r] = static_cast<scalar_t>(-total);
    __syncthreads();  // temp is reused by the next row
  }
}

template <typename scalar_t>
__global__ void log_prob_kernel(const scalar_t* __restrict__ x,       // [rows, D]
                                const scalar_t* __restrict__ logits,  // [rows, D]
                                scalar_t* __restrict__ log_prob,      // [rows]
                                int64_t rows, int64_t D) {
  using acc_t = at::opmath_type<scalar_t>;
  using Reduce = cub::BlockReduce<acc_t, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    acc_t nll = 0;
    for (int64_t d = threadIdx.x; d < D; d += kThreads)
      nll += bernoulli_nll_from_logit(static_cast<acc_t>(x[r * D + d]), static_cast<acc_t>(logits[r * D + d]));
    const acc_t total = Reduce(temp).Sum(nll);
    if (threadIdx.x == 0) log_prob[r] = static_cast<scalar_t>(-total);
    __syncthreads();
  }
}

// out = grad[row] * (x - sigmoid(l)), written as -grad * (sigmoid(l) - x) as on the CPU.
template <typename scalar_t>
__global__ void log_prob_backward_kernel(const scalar_t* __restrict__ grad,    // [rows]
                                         const scalar_t* __restrict__ x,       // [rows, D]
                                         const scalar_t* __restrict__ logits,  // [rows, D]
                                         scalar_t* __restrict__ out,           // [rows, D]
                                         int64_t n, int64_t D) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const acc_t g = -static_cast<acc_t>(grad[i / D]);
    out[i] = static_cast<scalar_t>(
        pm::mul(g, pm::sub(pm::sigmoid(static_cast<acc_t>(logits[i])), static_cast<acc_t>(x[i]))));
  }
}

int row_blocks(int64_t rows) {
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(rows, 1), 65535));
}

std::tuple<at::Tensor, at::Tensor> bernoulli_sample_log_prob_cuda(const at::Tensor& logits,
                                                                  std::optional<at::Generator> generator) {
  check_bernoulli_logits_rows(logits, "bernoulli_sample_log_prob");
  const c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor l = logits.contiguous();
  at::Tensor sample = at::empty(l.sizes(), l.options());
  at::Tensor log_prob = at::empty(row_shape(l), l.options());
  const int64_t D = l.size(-1), rows = log_prob.numel();
  if (rows == 0) return {sample, log_prob};
  if (D == 0) return {sample, log_prob.zero_()};
  const at::PhiloxCudaState philox = next_cuda_philox(generator, l.device());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, l.scalar_type(), "bernoulli_sample_log_prob_cuda", [&] {
    sample_log_prob_kernel<scalar_t><<<row_blocks(rows), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        l.const_data_ptr<scalar_t>(), sample.mutable_data_ptr<scalar_t>(), log_prob.mutable_data_ptr<scalar_t>(),
        rows, D, philox);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {sample, log_prob};
}

at::Tensor bernoulli_log_prob_cuda(const at::Tensor& x, const at::Tensor& logits) {
  check_bernoulli_log_prob_args(x, logits, "bernoulli_log_prob");
  const c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor xc = x.contiguous(), l = logits.contiguous();
  at::Tensor log_prob = at::empty(row_shape(l), l.options());
  const int64_t D = l.size(-1), rows = log_prob.numel();
  if (rows == 0) return log_prob;
  if (D == 0) return log_prob.zero_();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, l.scalar_type(), "bernoulli_log_prob_cuda", [&] {
    log_prob_kernel<scalar_t><<<row_blocks(rows), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        xc.const_data_ptr<scalar_t>(), l.const_data_ptr<scalar_t>(), log_prob.mutable_data_ptr<scalar_t>(), rows,
        D);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return log_prob;
}

at::Tensor bernoulli_log_prob_backward_cuda(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& logits) {
  check_bernoulli_log_prob_backward_args(grad, x, logits);
  const c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor gc = grad.contiguous(), xc = x.contiguous(), l = logits.contiguous();
  at::Tensor out = at::empty(l.sizes(), l.options());
  const int64_t n = l.numel(), D = l.size(-1);
  if (n == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, l.scalar_type(), "bernoulli_log_prob_backward_cuda", [&] {
    log_prob_backward_kernel<scalar_t><<<blocks_for(n), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        gc.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(), l.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), n, D);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(dgm_fast, CUDA, m) {
  m.impl("bernoulli_sample_log_prob", &bernoulli_sample_log_prob_cuda);
  m.impl("bernoulli_log_prob", &bernoulli_log_prob_cuda);
  m.impl("bernoulli_log_prob_backward", &bernoulli_log_prob_backward_cuda);
}

}  // namespace dgm_fast
