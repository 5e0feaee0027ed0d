// NADE (Larochelle & Murray 2011): the log-probability of binary rows with its backward, and
// ancestral sampling, each one native call over the whole recurrence (CPU kernels and the op
// schemas; the CUDA kernels are in cuda/nade/nade.cu, fake kernels and autograd in
// python/dgm_fast/ops/nade.py, the plain-PyTorch loop in python/dgm_fast/reference/nade.py).
//
// The recurrence and its fixed summation order are in csrc/include/dgm_fast/nade.h. Memory is
// O(B (D + H) + D H): the running pre-activations a of one row at a time, never the [B, D, H]
// tensor of all positions' hidden units that the cumulative-sum formulation materialises.
//
// The forward pass runs the rows in parallel and returns, besides log p(x) per row, every
// position's logit: the conditionals p(x_d = 1 | x before d), useful in themselves, and all the
// backward needs from it. With g the incoming gradient of a row's log-probability (plus that of
// its logits), the logit's gradient is dl_d = g (x_d - sigmoid(logit_d)) + g_logit_d, and
//   db_d = sum_rows dl_d;  dV[d] = sum_rows dl_d h_i;
//   da_i = dl_d V[d] * h_i * (1 - h_i);  dc = sum_rows sum_i da_i;
//   dW[d] = sum_rows x_d sum_{i' > i} da_i'   (d at position i).
// The backward recomputes a_i, bit for bit as the forward did, in one sweep per row along the
// positions, with the prefix sums P_i = sum_{i' <= i} da_i' (in double): the suffix sum is
// S - P_i, S = P_{D-1}, so dW[d] = sum_rows x_d (S - P_i), gathered as -x_d P_i during the
// sweep and x_d S after it. Each hidden unit's recurrence is independent of the others' once
// the logits are known, so the sweep runs the hidden units in parallel blocks: every gradient
// element is written by one thread, in row order, and the result does not depend on the
// thread count.
#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/philox_cpu_state.h"
#include "dgm_fast/nade.h"
#include "dgm_fast/samplers.h"
#include "nade/nade_checks.h"
#include "nade/nade_loops.h"

namespace dgm_fast {

void check_nade_params(const at::Tensor* bias_visible, const at::Tensor& bias_hidden,
                       const at::Tensor& weight_in, const at::Tensor& weight_out, const char* op) {
  const std::pair<const at::Tensor*, const char*> params[] = {
      {&weight_in, "weight_in"}, {&weight_out, "weight_out"}, {bias_visible, "bias_visible"},
      {&bias_hidden, "bias_hidden"}};
  for (const auto& [t, name] : params) {
    if (t == nullptr) continue;
    TORCH_CHECK_TYPE(t->scalar_type() == at::kFloat || t->scalar_type() == at::kDouble, op, ": ", name,
                     " must be float32 or float64, got ", t->scalar_type());
    check_same_device(weight_in, *t, op, "weight_in", name);
    TORCH_CHECK_TYPE(t->scalar_type() == weight_in.scalar_type(), op, ": ", name, " has dtype ",
                     t->scalar_type(), " but weight_in has dtype ", weight_in.scalar_type());
  }
  TORCH_CHECK_VALUE(weight_in.dim() == 2 && weight_in.size(0) >= 1 && weight_in.size(1) >= 1, op,
                    ": weight_in must be [D, H] (a row of hidden-unit weights per visible unit, D, H >= 1), "
                    "got ", weight_in.sizes());
  TORCH_CHECK_VALUE(weight_out.sizes() == weight_in.sizes(), op, ": weight_out must have the shape of weight_in ",
                    weight_in.sizes(), ", got ", weight_out.sizes());
  const int64_t D = weight_in.size(0), H = weight_in.size(1);
  TORCH_CHECK_VALUE(bias_visible == nullptr || (bias_visible->dim() == 1 && bias_visible->size(0) == D), op,
                    ": bias_visible must be [", D, "], got ", bias_visible->sizes());
  TORCH_CHECK_VALUE(bias_hidden.dim() == 1 && bias_hidden.size(0) == H, op, ": bias_hidden must be [", H,
                    "], got ", bias_hidden.sizes());
}

void check_nade_rows(const at::Tensor& t, const char* name, int64_t rows, int64_t D, const at::Tensor& like,
                     const char* op) {
  check_same_device(like, t, op, "weight_in", name);
  TORCH_CHECK_TYPE(t.scalar_type() == like.scalar_type(), op, ": ", name, " has dtype ", t.scalar_type(),
                   " but the parameters have dtype ", like.scalar_type());
  const std::string expected =
      "[" + (rows < 0 ? std::string("batch") : std::to_string(rows)) + ", " + std::to_string(D) + "]";
  TORCH_CHECK_VALUE(t.dim() == 2 && t.size(1) == D && (rows < 0 || t.size(0) == rows), op, ": ", name,
                    " must be ", expected, ", got ", t.sizes());
}

void check_nade_order(const std::optional<at::Tensor>& order, int64_t rows, int64_t D, const at::Tensor& like,
                      const char* op) {
  if (!order.has_value()) return;
  const at::Tensor& o = *order;
  check_same_device(like, o, op, "weight_in", "order");
  TORCH_CHECK_TYPE(o.scalar_type() == at::kLong, op, ": order must be int64, got ", o.scalar_type());
  TORCH_CHECK_VALUE((o.dim() == 1 && o.size(0) == D) || (o.dim() == 2 && o.size(0) == rows && o.size(1) == D), op,
                    ": order must be [", D, "] (one ordering for every row) or [", rows, ", ", D,
                    "] (one per row), got ", o.sizes());
}

void check_nade_backward_args(const at::Tensor& grad_log_prob, const std::optional<at::Tensor>& grad_logits,
                              const at::Tensor& x, const at::Tensor& logits, const at::Tensor& bias_hidden,
                              const at::Tensor& weight_in, const at::Tensor& weight_out,
                              const std::optional<at::Tensor>& order) {
  constexpr const char* op = "nade_log_prob_backward";
  check_nade_params(nullptr, bias_hidden, weight_in, weight_out, op);
  const int64_t D = weight_in.size(0);
  check_nade_rows(x, "x", -1, D, weight_in, op);
  const int64_t B = x.size(0);
  check_nade_rows(logits, "logits", B, D, weight_in, op);
  if (grad_logits.has_value()) check_nade_rows(*grad_logits, "grad_logits", B, D, weight_in, op);
  check_same_device(weight_in, grad_log_prob, op, "weight_in", "grad_log_prob");
  TORCH_CHECK_TYPE(grad_log_prob.scalar_type() == weight_in.scalar_type(), op, ": grad_log_prob has dtype ",
                   grad_log_prob.scalar_type(), " but the parameters have dtype ", weight_in.scalar_type());
  TORCH_CHECK_VALUE(grad_log_prob.dim() == 1 && grad_log_prob.size(0) == B, op, ": grad_log_prob must be [", B,
                    "], got ", grad_log_prob.sizes());
  check_nade_order(order, B, D, weight_in, op);
}

namespace {

template <typename T>
const NadeLoopsOf<T>& loops_of();
template <>
const NadeLoopsOf<float>& loops_of<float>() { return nade_loops().f32; }
template <>
const NadeLoopsOf<double>& loops_of<double>() { return nade_loops().f64; }

// The orderings as a pointer and a row stride (0: one ordering for every row). Without one, the
// identity, made here. On the CPU each ordering must be a permutation of 0..D-1: the first row
// that is not one is named in the error.
struct Orderings {
  at::Tensor storage;
  const int64_t* data;
  int64_t stride;
  const int64_t* row(int64_t r) const { return data + r * stride; }
};

Orderings orderings_cpu(const std::optional<at::Tensor>& order, int64_t D, const char* op) {
  if (!order.has_value()) {
    at::Tensor identity = at::arange(D, at::TensorOptions().dtype(at::kLong));
    return {identity, identity.const_data_ptr<int64_t>(), 0};
  }
  at::Tensor o = order->contiguous();
  const int64_t n = o.dim() == 1 ? 1 : o.size(0);
  const int64_t* p = o.const_data_ptr<int64_t>();
  std::vector<char> seen(D);
  for (int64_t r = 0; r < n; ++r) {
    std::fill(seen.begin(), seen.end(), 0);
    for (int64_t i = 0; i < D; ++i) {
      const int64_t v = p[r * D + i];
      const bool inside = v >= 0 && v < D;
      // (the message's arguments are evaluated only when the check fails)
      TORCH_CHECK_VALUE(inside && !seen[v], op, ": ",
                        o.dim() == 1 ? std::string("order") : "order[" + std::to_string(r) + "]",
                        " is not a permutation of 0..", D - 1, ": position ",
                        i, " holds ", v,
                        inside ? ", which an earlier position holds too" : ", outside 0..D-1");
      seen[v] = 1;
    }
  }
  return {o, p, o.dim() == 1 ? 0 : D};
}

template <typename T>
void forward_rows(const T* x, const T* b, const T* c, const T* W, const T* V, const Orderings& ord, T* log_prob,
                  T* logits, int64_t D, int64_t H, int64_t begin, int64_t end) {
  const NadeLoopsOf<T>& loops = loops_of<T>();
  std::vector<T> a(H);
  for (int64_t r = begin; r < end; ++r) {
    std::copy(c, c + H, a.begin());
    const int64_t* o = ord.row(r);
    double nll = 0.0;
    for (int64_t i = 0; i < D; ++i) {
      const int64_t d = o[i];
      const T logit = pm::add(b[d], loops.hidden_dot(a.data(), V + d * H, H));
      const T xv = x[r * D + d];
      logits[r * D + d] = logit;
      nll += static_cast<double>(bernoulli_nll_from_logit(xv, logit));
      if (xv != T(0)) loops.advance(a.data(), W + d * H, xv, H);
    }
    log_prob[r] = static_cast<T>(-nll);
  }
}

template <typename T>
int64_t sample_rows(const PhiloxSeedOffset& so, const T* b, const T* c, const T* W, const T* V,
                    const Orderings& ord, T* sample, T* logits, int64_t D, int64_t H, int64_t begin, int64_t end) {
  const NadeLoopsOf<T>& loops = loops_of<T>();
  std::vector<T> a(H);
  int64_t nans = 0;
  for (int64_t r = begin; r < end; ++r) {
    std::copy(c, c + H, a.begin());
    const int64_t* o = ord.row(r);
    for (int64_t i = 0; i < D; ++i) {
      const int64_t d = o[i];
      const T logit = pm::add(b[d], loops.hidden_dot(a.data(), V + d * H, H));
      T s, unused_nll;
      bernoulli_sample_and_nll(logit, nade_sample_word(so.seed, so.offset, r, i, D), &s, &unused_nll);
      logits[r * D + d] = logit;
      sample[r * D + d] = s;
      nans += s != s;
      if (s == T(1)) loops.advance(a.data(), W + d * H, T(1), H);
    }
  }
  return nans;
}

constexpr int64_t kHiddenBlock = 64;  // hidden units per task of the backward sweep

template <typename T>
void backward_sweep(const T* x, const double* dl, const T* c, const T* W, const T* V, const Orderings& ord,
                    double* gc, double* gv, double* gw, int64_t B, int64_t D, int64_t H) {
  const NadeLoopsOf<T>& loops = loops_of<T>();
  const int64_t blocks = (H + kHiddenBlock - 1) / kHiddenBlock;
  at::parallel_for(0, blocks, 1, [&](int64_t first, int64_t last) {
    alignas(64) T a[kHiddenBlock];
    alignas(64) double p[kHiddenBlock];
    for (int64_t blk = first; blk < last; ++blk) {
      const int64_t j0 = blk * kHiddenBlock, n = std::min(kHiddenBlock, H - j0);
      for (int64_t r = 0; r < B; ++r) {
        std::copy(c + j0, c + j0 + n, a);
        std::fill(p, p + n, 0.0);
        const int64_t* o = ord.row(r);
        for (int64_t i = 0; i < D; ++i) {
          const int64_t d = o[i], e = d * H + j0;
          loops.backward_step(a, p, W + e, V + e, gv + e, gw + e, x[r * D + d], dl[r * D + d], n);
        }
        for (int64_t j = 0; j < n; ++j) gc[j0 + j] += p[j];  // S = P_{D-1}
        for (int64_t d = 0; d < D; ++d) {
          const T xv = x[r * D + d];
          if (xv != T(0)) loops.add_scaled(gw + d * H + j0, p, static_cast<double>(xv), n);
        }
      }
    }
  });
}

// The rows' work: one recurrence of D positions over H hidden units each.
int64_t row_grain(int64_t D, int64_t H) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, D * H)); }

std::tuple<at::Tensor, at::Tensor> nade_log_prob_cpu(const at::Tensor& x,             // [B, D] states
                                                     const at::Tensor& bias_visible,  // [D]
                                                     const at::Tensor& bias_hidden,   // [H]
                                                     const at::Tensor& weight_in,     // [D, H]
                                                     const at::Tensor& weight_out,    // [D, H]
                                                     const std::optional<at::Tensor>& order) {  // [D] or [B, D]
  constexpr const char* op = "nade_log_prob";
  check_nade_params(&bias_visible, bias_hidden, weight_in, weight_out, op);
  const int64_t D = weight_in.size(0), H = weight_in.size(1);
  check_nade_rows(x, "x", -1, D, weight_in, op);
  const int64_t B = x.size(0);
  check_nade_order(order, B, D, weight_in, op);
  const Orderings ord = orderings_cpu(order, D, op);
  const at::Tensor xc = x.contiguous(), b = bias_visible.contiguous(), c = bias_hidden.contiguous();
  const at::Tensor W = weight_in.contiguous(), V = weight_out.contiguous();
  at::Tensor log_prob = at::empty({B}, W.options());  // [B]
  at::Tensor logits = at::empty({B, D}, W.options());  // [B, D]: logit of p(x_d = 1 | x before d)
  AT_DISPATCH_FLOATING_TYPES(W.scalar_type(), "nade_log_prob_cpu", [&] {
    at::parallel_for(0, B, row_grain(D, H), [&](int64_t begin, int64_t end) {
      forward_rows(xc.const_data_ptr<scalar_t>(), b.const_data_ptr<scalar_t>(), c.const_data_ptr<scalar_t>(),
                   W.const_data_ptr<scalar_t>(), V.const_data_ptr<scalar_t>(), ord,
                   log_prob.mutable_data_ptr<scalar_t>(), logits.mutable_data_ptr<scalar_t>(), D, H, begin, end);
    });
  });
  return {log_prob, logits};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> nade_log_prob_backward_cpu(
    const at::Tensor& grad_log_prob,              // [B]
    const std::optional<at::Tensor>& grad_logits,  // [B, D] or None (zero)
    const at::Tensor& x,                          // [B, D]
    const at::Tensor& logits,                     // [B, D] the forward's
    const at::Tensor& bias_hidden,                // [H]
    const at::Tensor& weight_in,                  // [D, H]
    const at::Tensor& weight_out,                 // [D, H]
    const std::optional<at::Tensor>& order) {     // [D] or [B, D]
  constexpr const char* op = "nade_log_prob_backward";
  check_nade_backward_args(grad_log_prob, grad_logits, x, logits, bias_hidden, weight_in, weight_out, order);
  const int64_t D = weight_in.size(0), H = weight_in.size(1), B = x.size(0);
  const Orderings ord = orderings_cpu(order, D, op);
  const at::Tensor g = grad_log_prob.contiguous(), xc = x.contiguous(), l = logits.contiguous();
  const at::Tensor gl = grad_logits.has_value() ? grad_logits->contiguous() : at::Tensor();
  const at::Tensor c = bias_hidden.contiguous(), W = weight_in.contiguous(), V = weight_out.contiguous();
  const auto f64 = W.options().dtype(at::kDouble);
  at::Tensor dl = at::empty({B, D}, f64), gb = at::empty({D}, f64);
  at::Tensor gc = at::zeros({H}, f64), gv = at::zeros({D, H}, f64), gw = at::zeros({D, H}, f64);
  AT_DISPATCH_FLOATING_TYPES(W.scalar_type(), "nade_log_prob_backward_cpu", [&] {
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const scalar_t* xp = xc.const_data_ptr<scalar_t>();
    const scalar_t* lp = l.const_data_ptr<scalar_t>();
    const scalar_t* glp = gl.defined() ? gl.const_data_ptr<scalar_t>() : nullptr;
    double* dlp = dl.mutable_data_ptr<double>();
    // dl = g (x - sigmoid(l)) + g_logit, with sigmoid(l) - x as bernoulli_log_prob's backward forms it
    at::parallel_for(0, B, 16, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        for (int64_t d = 0; d < D; ++d) {
          const int64_t e = r * D + d;
          scalar_t unused_nll, grad_nll;
          bernoulli_nll_and_grad(xp[e], lp[e], &unused_nll, &grad_nll);
          const double v = -static_cast<double>(gp[r]) * static_cast<double>(grad_nll);
          dlp[e] = glp == nullptr ? v : v + static_cast<double>(glp[e]);
        }
    });
    double* gbp = gb.mutable_data_ptr<double>();
    for (int64_t d = 0; d < D; ++d) gbp[d] = 0.0;
    for (int64_t r = 0; r < B; ++r)
      for (int64_t d = 0; d < D; ++d) gbp[d] += dlp[r * D + d];
    backward_sweep(xp, dlp, c.const_data_ptr<scalar_t>(), W.const_data_ptr<scalar_t>(),
                   V.const_data_ptr<scalar_t>(), ord, gc.mutable_data_ptr<double>(),
                   gv.mutable_data_ptr<double>(), gw.mutable_data_ptr<double>(), B, D, H);
  });
  const auto dtype = W.scalar_type();
  return {gb.to(dtype), gc.to(dtype), gw.to(dtype), gv.to(dtype)};
}

std::tuple<at::Tensor, at::Tensor> nade_sample_cpu(const at::Tensor& bias_visible,  // [D]
                                                   const at::Tensor& bias_hidden,   // [H]
                                                   const at::Tensor& weight_in,     // [D, H]
                                                   const at::Tensor& weight_out,    // [D, H]
                                                   int64_t n,
                                                   const std::optional<at::Tensor>& order,  // [D] or [n, D]
                                                   std::optional<at::Generator> generator) {
  constexpr const char* op = "nade_sample";
  check_nade_params(&bias_visible, bias_hidden, weight_in, weight_out, op);
  TORCH_CHECK_VALUE(n >= 0, op, ": n must be >= 0, got ", n);
  const int64_t D = weight_in.size(0), H = weight_in.size(1);
  check_nade_order(order, n, D, weight_in, op);
  const Orderings ord = orderings_cpu(order, D, op);
  const at::Tensor b = bias_visible.contiguous(), c = bias_hidden.contiguous();
  const at::Tensor W = weight_in.contiguous(), V = weight_out.contiguous();
  at::Tensor sample = at::empty({n, D}, W.options());  // [n, D] 0/1
  at::Tensor logits = at::empty({n, D}, W.options());  // [n, D] each unit's logit given the units drawn before it
  if (n == 0) return {sample, logits};
  const PhiloxSeedOffset so = next_cpu_philox(generator);
  std::atomic<int64_t> nan_count{0};
  AT_DISPATCH_FLOATING_TYPES(W.scalar_type(), "nade_sample_cpu", [&] {
    at::parallel_for(0, n, row_grain(D, H), [&](int64_t begin, int64_t end) {
      const int64_t nans = sample_rows(so, b.const_data_ptr<scalar_t>(), c.const_data_ptr<scalar_t>(),
                                       W.const_data_ptr<scalar_t>(), V.const_data_ptr<scalar_t>(), ord,
                                       sample.mutable_data_ptr<scalar_t>(), logits.mutable_data_ptr<scalar_t>(), D,
                                       H, begin, end);
      if (nans != 0) nan_count += nans;
    });
  });
  TORCH_CHECK_VALUE(nan_count.load() == 0, op, ": ", nan_count.load(),
                    " of the conditional probabilities are NaN; the parameters hold NaN or Inf");
  return {sample, logits};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(dgm_fast, m) {
  m.def("nade_log_prob(Tensor x, Tensor bias_visible, Tensor bias_hidden, Tensor weight_in, Tensor weight_out, "
        "Tensor? order=None) -> (Tensor log_prob, Tensor logits)");
  m.def("nade_log_prob_backward(Tensor grad_log_prob, Tensor? grad_logits, Tensor x, Tensor logits, "
        "Tensor bias_hidden, Tensor weight_in, Tensor weight_out, Tensor? order=None) "
        "-> (Tensor grad_bias_visible, Tensor grad_bias_hidden, Tensor grad_weight_in, Tensor grad_weight_out)");
  m.def("nade_sample(Tensor bias_visible, Tensor bias_hidden, Tensor weight_in, Tensor weight_out, int n, "
        "Tensor? order=None, *, Generator? generator=None) -> (Tensor sample, Tensor logits)",
        {at::Tag::nondeterministic_seeded});
}

TORCH_LIBRARY_IMPL(dgm_fast, CPU, m) {
  m.impl("nade_log_prob", &nade_log_prob_cpu);
  m.impl("nade_log_prob_backward", &nade_log_prob_backward_cpu);
  m.impl("nade_sample", &nade_sample_cpu);
}

}  // namespace dgm_fast
