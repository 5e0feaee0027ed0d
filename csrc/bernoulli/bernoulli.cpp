// Bernoulli layers, the building block of sigmoid belief nets, Helmholtz machines and NVIL:
//   bernoulli_sample_log_prob: draw a layer's units from their logits and return, with the
//     sample, log q(sample) per row, in one pass (the draw is bernoulli_logits', bit for bit);
//   bernoulli_log_prob: log Bernoulli(x | sigmoid(logits)) summed over the last dimension;
//   bernoulli_log_prob_backward: its gradient in the logits, grad * (x - sigmoid(logits)).
// The schemas and CPU kernels are here; CUDA kernels in cuda/bernoulli/bernoulli.cu; fake
// kernels and autograd in python/dgm_fast/ops/bernoulli.py; the plain-PyTorch definitions in
// python/dgm_fast/reference/bernoulli.py.
//
// Values are computed in float32 for float32, bfloat16 and float16 (float64 for float64); a row's
// sum is accumulated in that type too and rounded to the input dtype once.
#include <algorithm>
#include <atomic>
#include <type_traits>

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "bernoulli/bernoulli_checks.h"
#include "bernoulli/bernoulli_loops.h"
#include "common/philox_cpu_state.h"
#include "common/sum8.h"
#include "dgm_fast/samplers.h"
#include "elbo/elbo_loops.h"
#include "samplers/samplers_cpu.h"
#include "samplers/samplers_loops.h"

namespace dgm_fast {
namespace {

constexpr int64_t kBlock = 512;  // elements of a row handled together (stack buffers)

// Rows per parallel task: about 16k elements each.
int64_t row_grain(int64_t width) { return std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(width, 1)); }

int64_t sample_nll(const float* l, const uint32_t* w, float* s, float* nll, int64_t n) {
  return bernoulli_loops().sample_nll_f32(l, w, s, nll, n);
}
int64_t sample_nll(const double* l, const uint32_t* w, double* s, double* nll, int64_t n) {
  return bernoulli_loops().sample_nll_f64(l, w, s, nll, n);
}
void nll_loop(const float* x, const float* l, float* out, int64_t n) { elbo_loops().bernoulli_nll_f32(x, l, out, n); }
void nll_loop(const double* x, const double* l, double* out, int64_t n) { elbo_loops().bernoulli_nll_f64(x, l, out, n); }
void nll_grad_loop(const float* x, const float* l, float g, float* out, int64_t n) {
  elbo_loops().bernoulli_nll_grad_f32(x, l, g, out, n);
}
void nll_grad_loop(const double* x, const double* l, double g, double* out, int64_t n) {
  elbo_loops().bernoulli_nll_grad_f64(x, l, g, out, n);
}

// Rows [begin, end) of bernoulli_sample_log_prob: element e = row * D + d takes word e of the
// call's stream, as in bernoulli_logits. Returns the number of NaN logits.
template <typename scalar_t>
int64_t sample_log_prob_rows(const PhiloxSeedOffset& so, const scalar_t* logits, scalar_t* sample,
                             scalar_t* log_prob, int64_t D, int64_t begin, int64_t end) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr bool kNative = std::is_same_v<scalar_t, acc_t>;
  const SamplerLoops& philox = samplers_loops();
  alignas(64) uint32_t words[kBlock + 4];
  alignas(64) acc_t nll[kBlock];
  int64_t nans = 0;
  for (int64_t r = begin; r < end; ++r) {
    acc_t total = 0;
    for (int64_t d0 = 0; d0 < D; d0 += kBlock) {
      const int64_t n = std::min(kBlock, D - d0);
      const int64_t e0 = r * D + d0;
      const int64_t skip = e0 % 4;  // the words of a whole number of Philox blocks, from e0's
      philox.philox_fill(so.seed, so.offset, static_cast<uint64_t>(e0 / 4), n + skip, words);
      if constexpr (kNative) {
        nans += sample_nll(logits + e0, words + skip, sample + e0, nll, n);
      } else {
        alignas(64) acc_t l[kBlock], s[kBlock];
        for (int64_t j = 0; j < n; ++j) l[j] = static_cast<acc_t>(logits[e0 + j]);
        nans += sample_nll(l, words + skip, s, nll, n);
        for (int64_t j = 0; j < n; ++j) sample[e0 + j] = static_cast<scalar_t>(s[j]);
      }
      total += sum8(nll, n);
    }
    log_prob[r] = static_cast<scalar_t>(-total);
  }
  return nans;
}

template <typename scalar_t>
void log_prob_rows(const scalar_t* x, const scalar_t* logits, scalar_t* log_prob, int64_t D, int64_t begin,
                   int64_t end) {
  using acc_t = at::opmath_type<scalar_t>;
  alignas(64) acc_t nll[kBlock];
  for (int64_t r = begin; r < end; ++r) {
    acc_t total = 0;
    for (int64_t d0 = 0; d0 < D; d0 += kBlock) {
      const int64_t n = std::min(kBlock, D - d0);
      const int64_t e0 = r * D + d0;
      if constexpr (std::is_same_v<scalar_t, acc_t>) {
        nll_loop(x + e0, logits + e0, nll, n);
      } else {
        for (int64_t j = 0; j < n; ++j)
          nll[j] = bernoulli_nll_from_logit(static_cast<acc_t>(x[e0 + j]), static_cast<acc_t>(logits[e0 + j]));
      }
      total += sum8(nll, n);
    }
    log_prob[r] = static_cast<scalar_t>(-total);
  }
}

// d log_prob[r] / d logits[r, d] = x - sigmoid(l) = -(sigmoid(l) - x): the NLL's gradient loop
// with the incoming gradient negated (an exact operation, so the same bits).
template <typename scalar_t>
void log_prob_backward_rows(const scalar_t* grad, const scalar_t* x, const scalar_t* logits, scalar_t* out,
                            int64_t D, int64_t begin, int64_t end) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t r = begin; r < end; ++r) {
    const acc_t g = -static_cast<acc_t>(grad[r]);
    const int64_t o = r * D;
    if constexpr (std::is_same_v<scalar_t, acc_t>) {
      nll_grad_loop(x + o, logits + o, g, out + o, D);
    } else {
      for (int64_t d = 0; d < D; ++d)
        out[o + d] = static_cast<scalar_t>(
            g * (pm::sigmoid(static_cast<acc_t>(logits[o + d])) - static_cast<acc_t>(x[o + d])));
    }
  }
}

std::tuple<at::Tensor, at::Tensor> bernoulli_sample_log_prob_cpu(
    const at::Tensor& logits,  // [..., D] logits of the layer's units
    std::optional<at::Generator> generator) {
  check_bernoulli_logits_rows(logits, "bernoulli_sample_log_prob");
  const at::Tensor l = logits.contiguous();
  at::Tensor sample = at::empty(l.sizes(), l.options());     // [..., D] 0/1
  at::Tensor log_prob = at::empty(row_shape(l), l.options());  // [...] log q(sample) per row
  const int64_t D = l.size(-1);
  const int64_t rows = log_prob.numel();
  if (rows == 0) return {sample, log_prob};
  if (D == 0) return {sample, log_prob.zero_()};
  const PhiloxSeedOffset so = next_cpu_philox(generator);
  std::atomic<int64_t> nan_count{0};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, l.scalar_type(), "bernoulli_sample_log_prob_cpu", [&] {
    const scalar_t* lp = l.const_data_ptr<scalar_t>();
    scalar_t* sp = sample.mutable_data_ptr<scalar_t>();
    scalar_t* qp = log_prob.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, row_grain(D), [&](int64_t begin, int64_t end) {
      const int64_t nans = sample_log_prob_rows(so, lp, sp, qp, D, begin, end);
      if (nans != 0) nan_count += nans;
    });
  });
  TORCH_CHECK_VALUE(nan_count.load() == 0, "bernoulli_sample_log_prob: ", nan_count.load(), " of ", l.numel(),
                    " logits are NaN; a Bernoulli probability cannot be NaN");
  return {sample, log_prob};
}

at::Tensor bernoulli_log_prob_cpu(const at::Tensor& x,       // [..., D] states (0/1; any value in [0, 1])
                                  const at::Tensor& logits) {  // [..., D]
  check_bernoulli_log_prob_args(x, logits, "bernoulli_log_prob");
  const at::Tensor xc = x.contiguous(), l = logits.contiguous();
  at::Tensor log_prob = at::empty(row_shape(l), l.options());  // [...]
  const int64_t D = l.size(-1);
  const int64_t rows = log_prob.numel();
  if (rows == 0) return log_prob;
  if (D == 0) return log_prob.zero_();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, l.scalar_type(), "bernoulli_log_prob_cpu", [&] {
    const scalar_t* xp = xc.const_data_ptr<scalar_t>();
    const scalar_t* lp = l.const_data_ptr<scalar_t>();
    scalar_t* qp = log_prob.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, row_grain(D), [&](int64_t begin, int64_t end) {
      log_prob_rows(xp, lp, qp, D, begin, end);
    });
  });
  return log_prob;
}

at::Tensor bernoulli_log_prob_backward_cpu(const at::Tensor& grad,     // [...] incoming gradient per row
                                           const at::Tensor& x,        // [..., D]
                                           const at::Tensor& logits) {  // [..., D]
  check_bernoulli_log_prob_backward_args(grad, x, logits);
  const at::Tensor gc = grad.contiguous(), xc = x.contiguous(), l = logits.contiguous();
  at::Tensor out = at::empty(l.sizes(), l.options());  // [..., D] gradient in the logits
  const int64_t D = l.size(-1);
  const int64_t rows = gc.numel();
  if (rows == 0 || D == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, l.scalar_type(), "bernoulli_log_prob_backward_cpu", [&] {
    const scalar_t* gp = gc.const_data_ptr<scalar_t>();
    const scalar_t* xp = xc.const_data_ptr<scalar_t>();
    const scalar_t* lp = l.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, row_grain(D), [&](int64_t begin, int64_t end) {
      log_prob_backward_rows(gp, xp, lp, op, D, begin, end);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(dgm_fast, m) {
  m.def("bernoulli_sample_log_prob(Tensor logits, *, Generator? generator=None) -> (Tensor sample, Tensor log_prob)",
        {at::Tag::nondeterministic_seeded});
  m.def("bernoulli_log_prob(Tensor x, Tensor logits) -> Tensor");
  m.def("bernoulli_log_prob_backward(Tensor grad, Tensor x, Tensor logits) -> Tensor");
}

TORCH_LIBRARY_IMPL(dgm_fast, CPU, m) {
  m.impl("bernoulli_sample_log_prob", &bernoulli_sample_log_prob_cpu);
  m.impl("bernoulli_log_prob", &bernoulli_log_prob_cpu);
  m.impl("bernoulli_log_prob_backward", &bernoulli_log_prob_backward_cpu);
}

}  // namespace dgm_fast
