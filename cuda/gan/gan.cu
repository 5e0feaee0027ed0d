// CUDA kernels of gan_losses and gan_losses_backward (formulas and schemas in
// csrc/gan/gan.cpp). Forward: each block reduces a grid-stride share of the logits in double
// and writes its partial sums; a second one-block kernel adds the partials in a fixed order and
// writes both losses, so the result is deterministic and nothing synchronises with the host.
// Backward: one elementwise pass per logit tensor; the loss gradients are read on the device.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "common/block_sum.cuh"
#include "common/grid.cuh"
#include "dgm_fast/samplers.h"
#include "gan/gan_checks.h"

namespace dgm_fast {
namespace {

// partial[blockIdx.x] = sum softplus(-x), partial[gridDim.x + blockIdx.x] = sum softplus(x),
// over this block's grid-stride share of x [n].
template <typename scalar_t>
__global__ void softplus_partials_kernel(const scalar_t* __restrict__ x, int64_t n,
                                         double* __restrict__ partial) {
  __shared__ double shared[kThreads / 32];
  double neg = 0.0, pos = 0.0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const double v = static_cast<double>(x[i]);
    const double l = log1p(exp(-fabs(v)));
    neg += fmax(-v, 0.0) + l;
    pos += fmax(v, 0.0) + l;
  }
  neg = block_sum(neg, shared);
  pos = block_sum(pos, shared);
  if (threadIdx.x == 0) {
    partial[blockIdx.x] = neg;
    partial[gridDim.x + blockIdx.x] = pos;
  }
}

// One block: adds the partials (real: [2, blocks_r], fake: [2, blocks_f]) and writes the losses.
template <typename scalar_t>
__global__ void gan_losses_finish_kernel(const double* __restrict__ real_partial, int blocks_r,
                                         const double* __restrict__ fake_partial, int blocks_f,
                                         double n_r, double n_f, int kind,
                                         scalar_t* __restrict__ d_loss,
                                         scalar_t* __restrict__ g_loss) {
  __shared__ double shared[kThreads / 32];
  double sums[4];  // real sp(-r), real sp(r), fake sp(-f), fake sp(f)
  for (int q = 0; q < 4; ++q) {
    const double* p = q < 2 ? real_partial + q * blocks_r : fake_partial + (q - 2) * blocks_f;
    const int count = q < 2 ? blocks_r : blocks_f;
    double v = 0.0;
    for (int b = threadIdx.x; b < count; b += blockDim.x) v += p[b];
    sums[q] = block_sum(v, shared);
  }
  if (threadIdx.x != 0) return;
  const double d = sums[0] / n_r + sums[3] / n_f;
  double g = 0.0;
  if (kind == kMinimax) g = -sums[3] / n_f;
  if (kind == kNonSaturating) g = sums[2] / n_f;
  if (kind == kReversed) g = sums[2] / n_f + sums[1] / n_r;
  *d_loss = static_cast<scalar_t>(d);
  *g_loss = static_cast<scalar_t>(g);
}

// out[i] = (a_d * gd + a_g * gg) * sigmoid(x[i]) + (b_d * gd + b_g * gg) * sigmoid(-x[i]),
// gd and gg the loss gradients read from the device.
template <typename scalar_t>
__global__ void sigmoid_combination_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ out,
                                           int64_t n, const scalar_t* __restrict__ grad_d,
                                           const scalar_t* __restrict__ grad_g, double a_d,
                                           double a_g, double b_d, double b_g) {
  using acc_t = at::opmath_type<scalar_t>;
  const double gd = static_cast<double>(*grad_d), gg = static_cast<double>(*grad_g);
  const acc_t a = static_cast<acc_t>(a_d * gd + a_g * gg), b = static_cast<acc_t>(b_d * gd + b_g * gg);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const acc_t v = static_cast<acc_t>(x[i]);
    out[i] = static_cast<scalar_t>(a * pm::sigmoid(v) + b * pm::sigmoid(-v));
  }
}

std::tuple<at::Tensor, at::Tensor> gan_losses_cuda(const at::Tensor& real_logits,  // [*]
                                                   const at::Tensor& fake_logits,  // [*]
                                                   c10::string_view kind) {
  check_gan_losses_args(real_logits, fake_logits);
  const int k = parse_gan_kind(kind);
  const c10::cuda::CUDAGuard guard(real_logits.device());
  const at::Tensor r = real_logits.contiguous();
  const at::Tensor f = fake_logits.contiguous();
  at::Tensor d_loss = at::empty({}, r.options());
  at::Tensor g_loss = at::empty({}, r.options());
  const int blocks_r = blocks_for(r.numel()), blocks_f = blocks_for(f.numel());
  at::Tensor partial = at::empty({2 * (blocks_r + blocks_f)}, r.options().dtype(at::kDouble));
  double* pr = partial.mutable_data_ptr<double>();
  double* pf = pr + 2 * blocks_r;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, r.scalar_type(), "gan_losses_cuda", [&] {
    softplus_partials_kernel<scalar_t><<<blocks_r, kThreads, 0, stream>>>(
        r.const_data_ptr<scalar_t>(), r.numel(), pr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    softplus_partials_kernel<scalar_t><<<blocks_f, kThreads, 0, stream>>>(
        f.const_data_ptr<scalar_t>(), f.numel(), pf);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    gan_losses_finish_kernel<scalar_t><<<1, kThreads, 0, stream>>>(
        pr, blocks_r, pf, blocks_f, static_cast<double>(r.numel()), static_cast<double>(f.numel()),
        k, d_loss.mutable_data_ptr<scalar_t>(), g_loss.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {d_loss, g_loss};
}

std::tuple<at::Tensor, at::Tensor> gan_losses_backward_cuda(const at::Tensor& grad_d,  // []
                                                            const at::Tensor& grad_g,  // []
                                                            const at::Tensor& real_logits,  // [*]
                                                            const at::Tensor& fake_logits,  // [*]
                                                            c10::string_view kind) {
  check_gan_losses_backward_args(grad_d, grad_g, real_logits, fake_logits);
  const int k = parse_gan_kind(kind);
  const c10::cuda::CUDAGuard guard(real_logits.device());
  const at::Tensor r = real_logits.contiguous();
  const at::Tensor f = fake_logits.contiguous();
  at::Tensor grad_r = at::empty(r.sizes(), r.options());
  at::Tensor grad_f = at::empty(f.sizes(), f.options());
  const double n_r = static_cast<double>(r.numel()), n_f = static_cast<double>(f.numel());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, r.scalar_type(), "gan_losses_backward_cuda", [&] {
    const scalar_t* gd = grad_d.const_data_ptr<scalar_t>();
    const scalar_t* gg = grad_g.const_data_ptr<scalar_t>();
    // d/dr: -gd sigmoid(-r) / n_r, plus gg sigmoid(r) / n_r for the reversed generator loss.
    sigmoid_combination_kernel<scalar_t><<<blocks_for(r.numel()), kThreads, 0, stream>>>(
        r.const_data_ptr<scalar_t>(), grad_r.mutable_data_ptr<scalar_t>(), r.numel(), gd, gg,
        0.0, k == kReversed ? 1.0 / n_r : 0.0, -1.0 / n_r, 0.0);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    // d/df: gd sigmoid(f) / n_f, minus gg sigmoid(f) / n_f (minimax) or gg sigmoid(-f) / n_f.
    sigmoid_combination_kernel<scalar_t><<<blocks_for(f.numel()), kThreads, 0, stream>>>(
        f.const_data_ptr<scalar_t>(), grad_f.mutable_data_ptr<scalar_t>(), f.numel(), gd, gg,
        1.0 / n_f, k == kMinimax ? -1.0 / n_f : 0.0, 0.0, k == kMinimax ? 0.0 : -1.0 / n_f);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_r, grad_f};
}

}  // namespace

TORCH_LIBRARY_IMPL(dgm_fast, CUDA, m) {
  m.impl("gan_losses", &gan_losses_cuda);
  m.impl("gan_losses_backward", &gan_losses_backward_cuda);
}

}  // namespace dgm_fast
