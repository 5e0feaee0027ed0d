// The CUDA kernel of dbm_ais (the algorithm and schema in csrc/dbm/dbm.cpp): the AIS loop of
// csrc/dbm/dbm_ais.h with each even layer's part of a temperature in one launch, one block per
// run: the float64 softplus terms with dgm_fast's portable exp and log (the CPU loop's formula,
// dbm_loops.inc), summed in a fixed order, and the next logits in the layer's dtype, rounded as
// ATen's x * beta + a * (1 - beta) rounds them. No host synchronisation.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "common/block_sum.cuh"
#include "common/grid.cuh"
#include "dbm/dbm_ais.h"
#include "dgm_fast/samplers.h"

namespace dgm_fast {
namespace {

using Tensor = at::Tensor;

__device__ __forceinline__ double softplus(double z) {
  const double a = z < 0 ? -z : z;
  return pm::add(z > 0 ? z : 0.0, log1p_unit(pm::exp(-a)));
}

// One block per run r: log_w[r] += sum_j (softplus at beta - softplus at previous) of its row of
// x [rows, n]; logits (unless null) = x * T(beta) + a * T(1 - beta), each product rounded to T.
template <typename T>
__global__ void ais_even_kernel(const T* __restrict__ x, const T* __restrict__ a, int64_t n, double beta,
                                double previous, T* __restrict__ logits, double* __restrict__ log_w) {
  __shared__ double shared[kThreads / 32];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * n;
  const double omb = 1.0 - beta, omp = 1.0 - previous;
  const T beta_t = static_cast<T>(beta), omb_t = static_cast<T>(omb);
  double acc = 0.0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const double xd = static_cast<double>(xr[j]), ad = static_cast<double>(a[j]);
    acc += pm::sub(softplus(pm::add(pm::mul(xd, beta), pm::mul(ad, omb))),
                   softplus(pm::add(pm::mul(xd, previous), pm::mul(ad, omp))));
    if (logits != nullptr) logits[r * n + j] = pm::add(pm::mul(xr[j], beta_t), pm::mul(a[j], omb_t));
  }
  acc = block_sum(acc, shared);
  if (threadIdx.x == 0) log_w[r] += acc;
}

Tensor ais_even_cuda(const Tensor& x, const Tensor& a, double beta, double previous, bool logits, Tensor& log_w) {
  const Tensor xc = x.contiguous(), ac = a.contiguous();
  Tensor out = logits ? at::empty_like(xc) : Tensor();
  const int64_t rows = xc.size(0), n = xc.size(1);
  if (rows == 0) return out;
  const auto stream = at::cuda::getCurrentCUDAStream();
  if (xc.scalar_type() == at::kFloat) {
    ais_even_kernel<float><<<rows, kThreads, 0, stream>>>(xc.const_data_ptr<float>(), ac.const_data_ptr<float>(), n,
                                                          beta, previous, logits ? out.data_ptr<float>() : nullptr,
                                                          log_w.data_ptr<double>());
  } else {
    ais_even_kernel<double><<<rows, kThreads, 0, stream>>>(xc.const_data_ptr<double>(), ac.const_data_ptr<double>(),
                                                           n, beta, previous,
                                                           logits ? out.data_ptr<double>() : nullptr,
                                                           log_w.data_ptr<double>());
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

Tensor dbm_ais_cuda(at::TensorList odd_states, at::TensorList weights, at::TensorList biases, at::TensorList base,
                    at::ArrayRef<double> betas, std::optional<at::Generator> generator) {
  check_ais_args(odd_states, weights, biases, base, betas, "dbm_ais");
  const at::cuda::CUDAGuard guard(weights[0].device());
  const at::ScalarType t = weights[0].scalar_type();
  const bool fused = t == at::kFloat || t == at::kDouble;
  return ais_loop(odd_states, weights, biases, base, betas, generator, fused ? &ais_even_cuda : &ais_even_generic);
}

}  // namespace

TORCH_LIBRARY_IMPL(dgm_fast, CUDA, m) {
  m.impl("dbm_ais", &dbm_ais_cuda);
}

}  // namespace dgm_fast
