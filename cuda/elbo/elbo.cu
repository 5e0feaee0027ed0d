// CUDA kernels of the VAE losses (schemas, argument checks and CPU kernels: csrc/elbo/elbo.cpp).
// Launched on the current stream, no synchronisation, capturable in CUDA graphs. Values are
// computed in float32 (float64 for float64 inputs) as on the CPU.
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
#include <string_view>

#include "dgm_fast/samplers.h"
#include "common/grid.cuh"
#include "elbo/elbo_checks.h"

namespace dgm_fast {

namespace {

// The element formulas are the ones the CPU uses (csrc/include/dgm_fast/samplers.h), so both
// devices compute the same function.
template <typename T>
__device__ __forceinline__ T bernoulli_nll(T x, T l) {
  return bernoulli_nll_from_logit(x, l);
}

template <typename T>
__device__ __forceinline__ T stable_sigmoid(T l) {
  return pm::sigmoid(l);
}

// One block per example: the threads stride over its D features and Z latents, then reduce.
template <typename scalar_t>
__global__ void gaussian_elbo_kernel(const scalar_t* __restrict__ x,        // [B, D]
                                     const scalar_t* __restrict__ recon,    // [B, D]
                                     const scalar_t* __restrict__ mu,       // [B, Z]
                                     const scalar_t* __restrict__ log_var,  // [B, Z]
                                     scalar_t* __restrict__ out,            // [B]
                                     int64_t B, int64_t D, int64_t Z, bool bernoulli) {
  using acc_t = at::opmath_type<scalar_t>;
  using Reduce = cub::BlockReduce<acc_t, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  for (int64_t b = blockIdx.x; b < B; b += gridDim.x) {
    acc_t sum = 0;
    for (int64_t d = threadIdx.x; d < D; d += kThreads) {
      const acc_t xv = static_cast<acc_t>(x[b * D + d]);
      const acc_t rv = static_cast<acc_t>(recon[b * D + d]);
      if (bernoulli) {
        sum += bernoulli_nll(xv, rv);
      } else {
        const acc_t diff = xv - rv;
        sum += acc_t(0.5) * diff * diff + acc_t(0.91893853320467274178);
      }
    }
    for (int64_t z = threadIdx.x; z < Z; z += kThreads) {
      const acc_t m = static_cast<acc_t>(mu[b * Z + z]);
      const acc_t lv = static_cast<acc_t>(log_var[b * Z + z]);
      sum += acc_t(0.5) * (m * m + exp(lv) - acc_t(1) - lv);
    }
    const acc_t total = Reduce(temp).Sum(sum);
    if (threadIdx.x == 0) out[b] = static_cast<scalar_t>(total);
    __syncthreads();  // temp is reused by the next example
  }
}

template <typename scalar_t>
__global__ void gaussian_elbo_backward_kernel(
    const scalar_t* __restrict__ grad,                                          // [B]
    const scalar_t* __restrict__ x, const scalar_t* __restrict__ recon,         // [B, D]
    const scalar_t* __restrict__ mu, const scalar_t* __restrict__ log_var,      // [B, Z]
    scalar_t* __restrict__ grad_recon,                                          // [B, D]
    scalar_t* __restrict__ grad_mu, scalar_t* __restrict__ grad_log_var,        // [B, Z]
    int64_t B, int64_t D, int64_t Z, bool bernoulli) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t n_recon = B * D, n_latent = B * Z;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_recon + n_latent;
       i += int64_t(gridDim.x) * blockDim.x) {
    if (i < n_recon) {
      const acc_t g = static_cast<acc_t>(grad[i / D]);
      const acc_t xv = static_cast<acc_t>(x[i]);
      const acc_t rv = static_cast<acc_t>(recon[i]);
      grad_recon[i] = static_cast<scalar_t>(g * ((bernoulli ? stable_sigmoid(rv) : rv) - xv));
    } else {
      const int64_t j = i - n_recon;
      const acc_t g = static_cast<acc_t>(grad[j / Z]);
      grad_mu[j] = static_cast<scalar_t>(g * static_cast<acc_t>(mu[j]));
      grad_log_var[j] = static_cast<scalar_t>(
          g * acc_t(0.5) * (exp(static_cast<acc_t>(log_var[j])) - acc_t(1)));
    }
  }
}

// One thread per example (column of [K, B]; neighbouring threads read neighbouring addresses):
// an online log-sum-exp over the K samples.
template <typename scalar_t>
__global__ void iwae_bound_kernel(const scalar_t* __restrict__ lw,  // [K, B]
                                  scalar_t* __restrict__ out,       // [B]
                                  int64_t K, int64_t B) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t inf = acc_t(INFINITY);
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < B;
       j += int64_t(gridDim.x) * blockDim.x) {
    acc_t m = -inf, s = 0;
    for (int64_t k = 0; k < K; ++k) {
      const acc_t w = static_cast<acc_t>(lw[k * B + j]);
      if (isnan(w) || w > m) {  // rescale the running sum to the new maximum
        s = (isinf(m) ? acc_t(0) : s * exp(m - w)) + acc_t(1);
        m = w;
      } else {
        s += isinf(m) ? acc_t(w == m) : exp(w - m);
      }
    }
    out[j] = static_cast<scalar_t>(m + log(s) - log(static_cast<acc_t>(K)));
  }
}

template <typename scalar_t>
__global__ void iwae_bound_backward_kernel(const scalar_t* __restrict__ grad,   // [B]
                                           const scalar_t* __restrict__ lw,     // [K, B]
                                           const scalar_t* __restrict__ bound,  // [B]
                                           scalar_t* __restrict__ grad_lw,      // [K, B]
                                           int64_t K, int64_t B) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t log_k = log(static_cast<acc_t>(K));
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < K * B;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = i % B;
    const acc_t lse = static_cast<acc_t>(bound[j]) + log_k;
    const acc_t p = (isinf(lse) && lse < 0) ? acc_t(0) : exp(static_cast<acc_t>(lw[i]) - lse);
    grad_lw[i] = static_cast<scalar_t>(static_cast<acc_t>(grad[j]) * p);
  }
}

at::Tensor gaussian_elbo_cuda(const at::Tensor& x, const at::Tensor& recon, const at::Tensor& mu,
                              const at::Tensor& log_var, c10::string_view likelihood) {
  constexpr const char* op = "gaussian_elbo";
  check_gaussian_elbo_args(x, recon, mu, log_var, op);
  const bool bernoulli = elbo_is_bernoulli(likelihood, op);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous(), rc = recon.contiguous();
  const at::Tensor mc = mu.contiguous(), lc = log_var.contiguous();
  const int64_t B = x.size(0), D = x.size(1), Z = mu.size(1);
  at::Tensor out = at::empty({B}, x.options());
  if (B == 0) return out;
  const int grid = static_cast<int>(std::min<int64_t>(B, 65535));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "gaussian_elbo_cuda", [&] {
    gaussian_elbo_kernel<scalar_t><<<grid, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        xc.const_data_ptr<scalar_t>(), rc.const_data_ptr<scalar_t>(),
        mc.const_data_ptr<scalar_t>(), lc.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), B, D, Z, bernoulli);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gaussian_elbo_backward_cuda(
    const at::Tensor& grad, const at::Tensor& x, const at::Tensor& recon, const at::Tensor& mu,
    const at::Tensor& log_var, c10::string_view likelihood) {
  check_gaussian_elbo_backward_args(grad, x, recon, mu, log_var);
  const bool bernoulli = elbo_is_bernoulli(likelihood, "gaussian_elbo_backward");
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor gc = grad.contiguous(), xc = x.contiguous(), rc = recon.contiguous();
  const at::Tensor mc = mu.contiguous(), lc = log_var.contiguous();
  const int64_t B = x.size(0), D = x.size(1), Z = mu.size(1);
  at::Tensor grad_recon = at::empty(rc.sizes(), rc.options());
  at::Tensor grad_mu = at::empty(mc.sizes(), mc.options());
  at::Tensor grad_log_var = at::empty(lc.sizes(), lc.options());
  const int64_t n = B * (D + Z);
  if (n == 0) return {grad_recon, grad_mu, grad_log_var};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "gaussian_elbo_backward_cuda", [&] {
    gaussian_elbo_backward_kernel<scalar_t><<<blocks_for(n), kThreads, 0,
                                              c10::cuda::getCurrentCUDAStream()>>>(
        gc.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(), rc.const_data_ptr<scalar_t>(),
        mc.const_data_ptr<scalar_t>(), lc.const_data_ptr<scalar_t>(),
        grad_recon.mutable_data_ptr<scalar_t>(), grad_mu.mutable_data_ptr<scalar_t>(),
        grad_log_var.mutable_data_ptr<scalar_t>(), B, D, Z, bernoulli);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_recon, grad_mu, grad_log_var};
}

at::Tensor iwae_bound_cuda(const at::Tensor& log_weights) {
  check_iwae_bound_args(log_weights, "iwae_bound");
  const c10::cuda::CUDAGuard guard(log_weights.device());
  const at::Tensor lw = log_weights.contiguous();
  const int64_t K = lw.size(0), B = lw.size(1);
  at::Tensor out = at::empty({B}, lw.options());
  if (B == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, lw.scalar_type(), "iwae_bound_cuda", [&] {
    iwae_bound_kernel<scalar_t><<<blocks_for(B), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        lw.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), K, B);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor iwae_bound_backward_cuda(const at::Tensor& grad, const at::Tensor& log_weights,
                                    const at::Tensor& bound) {
  check_iwae_bound_backward_args(grad, log_weights, bound);
  const c10::cuda::CUDAGuard guard(log_weights.device());
  const at::Tensor gc = grad.contiguous(), lw = log_weights.contiguous(), bc = bound.contiguous();
  const int64_t K = lw.size(0), B = lw.size(1);
  at::Tensor grad_lw = at::empty(lw.sizes(), lw.options());
  if (lw.numel() == 0) return grad_lw;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, lw.scalar_type(), "iwae_bound_backward_cuda", [&] {
    iwae_bound_backward_kernel<scalar_t><<<blocks_for(K * B), kThreads, 0,
                                           c10::cuda::getCurrentCUDAStream()>>>(
        gc.const_data_ptr<scalar_t>(), lw.const_data_ptr<scalar_t>(), bc.const_data_ptr<scalar_t>(),
        grad_lw.mutable_data_ptr<scalar_t>(), K, B);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_lw;
}

}  // namespace

TORCH_LIBRARY_IMPL(dgm_fast, CUDA, m) {
  m.impl("gaussian_elbo", &gaussian_elbo_cuda);
  m.impl("gaussian_elbo_backward", &gaussian_elbo_backward_cuda);
  m.impl("iwae_bound", &iwae_bound_cuda);
  m.impl("iwae_bound_backward", &iwae_bound_backward_cuda);
}

}  // namespace dgm_fast
