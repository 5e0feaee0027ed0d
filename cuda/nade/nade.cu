// CUDA kernels of the NADE ops (schemas, argument checks and CPU kernels: csrc/nade/nade.cpp).
// Launched on the current stream, no host synchronisation, capturable in CUDA graphs.
//
// The forward pass and sampling give the CPU's bits: half a warp runs one row, lane l holding
// the hidden units j = l, l + 16, ... and adding its share of V[d] . h in the lane order of
// dgm_fast/nade.h; the 16 lane sums are then added in order by shuffles. An ordering that is
// not a permutation gives the row NaN (found by sorting, on the device) where the CPU raises.
//
// The backward runs one thread per hidden unit and group of rows, each thread sweeping its
// rows as the CPU's blocks do; the groups' partial sums (double) are then added in group order,
// so the result is the same on every run. It equals the CPU's to rounding, not bit for bit:
// the CPU adds the rows in one sequence.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>

#include "common/grid.cuh"
#include "common/philox_cuda_state.cuh"
#include "dgm_fast/nade.h"
#include "dgm_fast/samplers.h"
#include "nade/nade_checks.h"

namespace dgm_fast {
namespace {

constexpr int kRowThreads = 128;                          // 8 rows per block, 16 lanes each
constexpr int kRowsPerBlock = kRowThreads / kNadeLanes;

// Orderings on the device: a pointer, a row stride (0: one for every row) and, per ordering,
// whether it is not a permutation (sorted, it differs from 0..D-1).
struct DeviceOrderings {
  at::Tensor storage, bad_storage;
  const int64_t* data;
  const bool* bad;
  int64_t stride;
};

// find_bad: the forward and the sampler mark bad rows; the backward only needs the indices.
DeviceOrderings device_orderings(const std::optional<at::Tensor>& order, int64_t D, const at::Tensor& like,
                                 bool find_bad = true) {
  const auto long_options = like.options().dtype(at::kLong);
  if (!order.has_value()) {
    at::Tensor identity = at::arange(D, long_options);
    at::Tensor bad = at::zeros({1}, like.options().dtype(at::kBool));
    return {identity, bad, identity.const_data_ptr<int64_t>(), bad.const_data_ptr<bool>(), 0};
  }
  at::Tensor o = order->contiguous();
  if (!find_bad) return {o, at::Tensor(), o.const_data_ptr<int64_t>(), nullptr, o.dim() == 1 ? 0 : D};
  at::Tensor bad = std::get<0>(o.sort(-1)).ne(at::arange(D, long_options)).any(-1).reshape({-1}).contiguous();
  return {o, bad, o.const_data_ptr<int64_t>(), bad.const_data_ptr<bool>(), o.dim() == 1 ? 0 : D};
}

__device__ __forceinline__ int64_t unit_at(const int64_t* o, int64_t i, int64_t D) {
  const int64_t d = o[i];
  return d < 0 ? 0 : (d >= D ? D - 1 : d);  // never out of bounds; such a row is NaN anyway
}

// The logit of unit d given the pre-activations a (lane `lane` of the row's half-warp).
template <typename T>
__device__ __forceinline__ T unit_logit(const T* __restrict__ a, const T* __restrict__ v, T bias, int64_t H,
                                        int lane, unsigned mask) {
  T part = T(0);
  for (int64_t j = lane; j < H; j += kNadeLanes) part = pm::fma_rn(v[j], pm::sigmoid(a[j]), part);
  T lanes[kNadeLanes];
#pragma unroll
  for (int l = 0; l < kNadeLanes; ++l) lanes[l] = __shfl_sync(mask, part, l, kNadeLanes);
  return pm::add(bias, nade_add_lanes(lanes));
}

template <typename T>
__device__ __forceinline__ void advance(T* __restrict__ a, const T* __restrict__ w, T x, int64_t H, int lane) {
  for (int64_t j = lane; j < H; j += kNadeLanes) a[j] = pm::fma_rn(w[j], x, a[j]);
}

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, const T* __restrict__ b, const T* __restrict__ c,
                               const T* __restrict__ W, const T* __restrict__ V, const int64_t* __restrict__ order,
                               const bool* __restrict__ bad, int64_t order_stride, T* __restrict__ scratch,
                               T* __restrict__ log_prob, T* __restrict__ logits, int64_t B, int64_t D, int64_t H) {
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kNadeLanes;
  const int lane = threadIdx.x % kNadeLanes;
  const unsigned mask = 0xFFFFu << (threadIdx.x % 32 / kNadeLanes * kNadeLanes);
  if (r >= B) return;  // the whole half-warp leaves together
  T* a = scratch + r * H;
  for (int64_t j = lane; j < H; j += kNadeLanes) a[j] = c[j];
  const int64_t* o = order + r * order_stride;
  const bool is_bad = bad[order_stride == 0 ? 0 : r];
  double nll = 0.0;
  for (int64_t i = 0; i < D; ++i) {
    const int64_t d = unit_at(o, i, D);
    const T logit = unit_logit(a, V + d * H, b[d], H, lane, mask);
    const T xv = x[r * D + d];
    if (lane == 0) logits[r * D + d] = is_bad ? std::numeric_limits<T>::quiet_NaN() : logit;
    nll += static_cast<double>(bernoulli_nll_from_logit(xv, logit));
    if (xv != T(0)) advance(a, W + d * H, xv, H, lane);
  }
  if (lane == 0) log_prob[r] = is_bad ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(-nll);
}

template <typename T>
__global__ void sample_kernel(const T* __restrict__ b, const T* __restrict__ c, const T* __restrict__ W,
                              const T* __restrict__ V, const int64_t* __restrict__ order, const bool* __restrict__ bad,
                              int64_t order_stride, T* __restrict__ scratch, T* __restrict__ sample,
                              T* __restrict__ logits, int64_t n, int64_t D, int64_t H, at::PhiloxCudaState philox) {
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kNadeLanes;
  const int lane = threadIdx.x % kNadeLanes;
  const unsigned mask = 0xFFFFu << (threadIdx.x % 32 / kNadeLanes * kNadeLanes);
  if (r >= n) return;
  const auto [seed, offset] = at::cuda::philox::unpack(philox);
  T* a = scratch + r * H;
  for (int64_t j = lane; j < H; j += kNadeLanes) a[j] = c[j];
  const int64_t* o = order + r * order_stride;
  const bool is_bad = bad[order_stride == 0 ? 0 : r];
  for (int64_t i = 0; i < D; ++i) {
    const int64_t d = unit_at(o, i, D);
    const T logit = unit_logit(a, V + d * H, b[d], H, lane, mask);
    T s, unused_nll;
    bernoulli_sample_and_nll(logit, nade_sample_word(seed, offset, r, i, D), &s, &unused_nll);
    if (lane == 0) {
      logits[r * D + d] = is_bad ? std::numeric_limits<T>::quiet_NaN() : logit;
      sample[r * D + d] = is_bad ? std::numeric_limits<T>::quiet_NaN() : s;
    }
    if (s == T(1)) advance(a, W + d * H, T(1), H, lane);
  }
}

// dl = g (x - sigmoid(l)) + g_logit (double), as on the CPU.
template <typename T>
__global__ void logit_grad_kernel(const T* __restrict__ g, const T* __restrict__ gl, const T* __restrict__ x,
                                  const T* __restrict__ l, double* __restrict__ dl, int64_t n, int64_t D) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    T unused_nll, grad_nll;
    bernoulli_nll_and_grad(x[e], l[e], &unused_nll, &grad_nll);
    const double v = -static_cast<double>(g[e / D]) * static_cast<double>(grad_nll);
    dl[e] = gl == nullptr ? v : v + static_cast<double>(gl[e]);
  }
}

// Thread (j, group): hidden unit j over the group's rows; partial sums into [group] slices.
template <typename T>
__global__ void backward_sweep_kernel(const T* __restrict__ x, const double* __restrict__ dl,
                                      const T* __restrict__ c, const T* __restrict__ W, const T* __restrict__ V,
                                      const int64_t* __restrict__ order, int64_t order_stride,
                                      double* __restrict__ gc, double* __restrict__ gv, double* __restrict__ gw,
                                      int64_t B, int64_t D, int64_t H, int64_t rows_per_group) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t group = blockIdx.y;
  if (j >= H) return;
  double* gv_g = gv + group * D * H;
  double* gw_g = gw + group * D * H;
  const int64_t r_end = std::min(B, (group + 1) * rows_per_group);
  double c_sum = 0.0;
  for (int64_t r = group * rows_per_group; r < r_end; ++r) {
    const int64_t* o = order + r * order_stride;
    T a = c[j];
    double p = 0.0;
    for (int64_t i = 0; i < D; ++i) {
      const int64_t d = unit_at(o, i, D), e = d * H + j;
      const T h = pm::sigmoid(a);
      const double g = dl[r * D + d];
      gv_g[e] = pm::fma_rn(g, static_cast<double>(h), gv_g[e]);
      p = pm::fma_rn(g, static_cast<double>(pm::mul(V[e], pm::mul(h, pm::sub(T(1), h)))), p);
      const T xv = x[r * D + d];
      if (xv != T(0)) {
        gw_g[e] = pm::fma_rn(-static_cast<double>(xv), p, gw_g[e]);
        a = pm::fma_rn(W[e], xv, a);
      }
    }
    c_sum += p;
    for (int64_t d = 0; d < D; ++d) {
      const T xv = x[r * D + d];
      if (xv != T(0)) gw_g[d * H + j] = pm::fma_rn(static_cast<double>(xv), p, gw_g[d * H + j]);
    }
  }
  gc[group * H + j] = c_sum;
}

int row_blocks(int64_t rows) { return static_cast<int>((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

std::tuple<at::Tensor, at::Tensor> nade_log_prob_cuda(const at::Tensor& x, const at::Tensor& bias_visible,
                                                      const at::Tensor& bias_hidden, const at::Tensor& weight_in,
                                                      const at::Tensor& weight_out,
                                                      const std::optional<at::Tensor>& order) {
  constexpr const char* op = "nade_log_prob";
  check_nade_params(&bias_visible, bias_hidden, weight_in, weight_out, op);
  const int64_t D = weight_in.size(0), H = weight_in.size(1);
  check_nade_rows(x, "x", -1, D, weight_in, op);
  const int64_t B = x.size(0);
  check_nade_order(order, B, D, weight_in, op);
  const c10::cuda::CUDAGuard guard(weight_in.device());
  const at::Tensor xc = x.contiguous(), b = bias_visible.contiguous(), c = bias_hidden.contiguous();
  const at::Tensor W = weight_in.contiguous(), V = weight_out.contiguous();
  at::Tensor log_prob = at::empty({B}, W.options());
  at::Tensor logits = at::empty({B, D}, W.options());
  if (B == 0) return {log_prob, logits};
  const DeviceOrderings ord = device_orderings(order, D, W);
  at::Tensor scratch = at::empty({B, H}, W.options());
  AT_DISPATCH_FLOATING_TYPES(W.scalar_type(), "nade_log_prob_cuda", [&] {
    forward_kernel<scalar_t><<<row_blocks(B), kRowThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        xc.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(), c.const_data_ptr<scalar_t>(),
        W.const_data_ptr<scalar_t>(), V.const_data_ptr<scalar_t>(), ord.data, ord.bad, ord.stride,
        scratch.mutable_data_ptr<scalar_t>(), log_prob.mutable_data_ptr<scalar_t>(),
        logits.mutable_data_ptr<scalar_t>(), B, D, H);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {log_prob, logits};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> nade_log_prob_backward_cuda(
    const at::Tensor& grad_log_prob, const std::optional<at::Tensor>& grad_logits, const at::Tensor& x,
    const at::Tensor& logits, const at::Tensor& bias_hidden, const at::Tensor& weight_in,
    const at::Tensor& weight_out, const std::optional<at::Tensor>& order) {
  check_nade_backward_args(grad_log_prob, grad_logits, x, logits, bias_hidden, weight_in, weight_out, order);
  const int64_t D = weight_in.size(0), H = weight_in.size(1), B = x.size(0);
  const c10::cuda::CUDAGuard guard(weight_in.device());
  const at::Tensor g = grad_log_prob.contiguous(), xc = x.contiguous(), l = logits.contiguous();
  const at::Tensor gl = grad_logits.has_value() ? grad_logits->contiguous() : at::Tensor();
  const at::Tensor c = bias_hidden.contiguous(), W = weight_in.contiguous(), V = weight_out.contiguous();
  const auto f64 = W.options().dtype(at::kDouble);
  const auto dtype = W.scalar_type();
  if (B == 0)
    return {at::zeros({D}, W.options()), at::zeros({H}, W.options()), at::zeros({D, H}, W.options()),
            at::zeros({D, H}, W.options())};
  const DeviceOrderings ord = device_orderings(order, D, W, /*find_bad=*/false);
  // Groups of rows: enough threads to fill the device, partial sums within 64 MiB.
  const int64_t by_threads = std::max<int64_t>(1, 16384 / H);
  const int64_t by_memory = std::max<int64_t>(1, (int64_t{1} << 26) / (16 * D * H));
  const int64_t groups = std::min({B, by_threads, by_memory});
  const int64_t rows_per_group = (B + groups - 1) / groups;
  at::Tensor dl = at::empty({B, D}, f64);
  at::Tensor gc = at::empty({groups, H}, f64);
  at::Tensor gv = at::zeros({groups, D, H}, f64), gw = at::zeros({groups, D, H}, f64);
  AT_DISPATCH_FLOATING_TYPES(dtype, "nade_log_prob_backward_cuda", [&] {
    logit_grad_kernel<scalar_t><<<blocks_for(B * D), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        g.const_data_ptr<scalar_t>(), gl.defined() ? gl.const_data_ptr<scalar_t>() : nullptr,
        xc.const_data_ptr<scalar_t>(), l.const_data_ptr<scalar_t>(), dl.mutable_data_ptr<double>(), B * D, D);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const dim3 grid(static_cast<unsigned>((H + kThreads - 1) / kThreads), static_cast<unsigned>(groups));
    backward_sweep_kernel<scalar_t><<<grid, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        xc.const_data_ptr<scalar_t>(), dl.const_data_ptr<double>(), c.const_data_ptr<scalar_t>(),
        W.const_data_ptr<scalar_t>(), V.const_data_ptr<scalar_t>(), ord.data, ord.stride,
        gc.mutable_data_ptr<double>(), gv.mutable_data_ptr<double>(), gw.mutable_data_ptr<double>(), B, D, H,
        rows_per_group);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  // The groups' partial sums, added in group order (ATen's reductions are deterministic).
  return {dl.sum(0).to(dtype), gc.sum(0).to(dtype), gw.sum(0).to(dtype), gv.sum(0).to(dtype)};
}

std::tuple<at::Tensor, at::Tensor> nade_sample_cuda(const at::Tensor& bias_visible, const at::Tensor& bias_hidden,
                                                    const at::Tensor& weight_in, const at::Tensor& weight_out,
                                                    int64_t n, const std::optional<at::Tensor>& order,
                                                    std::optional<at::Generator> generator) {
  constexpr const char* op = "nade_sample";
  check_nade_params(&bias_visible, bias_hidden, weight_in, weight_out, op);
  TORCH_CHECK_VALUE(n >= 0, op, ": n must be >= 0, got ", n);
  const int64_t D = weight_in.size(0), H = weight_in.size(1);
  check_nade_order(order, n, D, weight_in, op);
  const c10::cuda::CUDAGuard guard(weight_in.device());
  const at::Tensor b = bias_visible.contiguous(), c = bias_hidden.contiguous();
  const at::Tensor W = weight_in.contiguous(), V = weight_out.contiguous();
  at::Tensor sample = at::empty({n, D}, W.options());
  at::Tensor logits = at::empty({n, D}, W.options());
  if (n == 0) return {sample, logits};
  const DeviceOrderings ord = device_orderings(order, D, W);
  at::Tensor scratch = at::empty({n, H}, W.options());
  const at::PhiloxCudaState philox = next_cuda_philox(generator, W.device());
  AT_DISPATCH_FLOATING_TYPES(W.scalar_type(), "nade_sample_cuda", [&] {
    sample_kernel<scalar_t><<<row_blocks(n), kRowThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        b.const_data_ptr<scalar_t>(), c.const_data_ptr<scalar_t>(), W.const_data_ptr<scalar_t>(),
        V.const_data_ptr<scalar_t>(), ord.data, ord.bad, ord.stride, scratch.mutable_data_ptr<scalar_t>(),
        sample.mutable_data_ptr<scalar_t>(), logits.mutable_data_ptr<scalar_t>(), n, D, H, philox);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {sample, logits};
}

}  // namespace

TORCH_LIBRARY_IMPL(dgm_fast, CUDA, m) {
  m.impl("nade_log_prob", &nade_log_prob_cuda);
  m.impl("nade_log_prob_backward", &nade_log_prob_backward_cuda);
  m.impl("nade_sample", &nade_sample_cuda);
}

}  // namespace dgm_fast
