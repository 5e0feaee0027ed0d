// GAN losses from discriminator logits, forward and backward, in one pass each (CPU kernels and
// the op schemas; the CUDA kernels are in cuda/gan/gan.cu, fake kernels and autograd in
// python/dgm_fast/ops/gan.py, the plain-PyTorch definition in python/dgm_fast/reference/gan.py).
//
// With softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)) (never overflows) and
// D(x) = sigmoid(logit), over real logits r (n_r elements) and fake logits f (n_f elements):
//   discriminator loss  mean_r softplus(-r) + mean_f softplus(f)
//                       (= -mean log D(x) - mean log(1 - D(G(z))))
//   generator loss      minimax         -mean_f softplus(f)           (= mean log(1 - D(G(z))))
//                       non_saturating   mean_f softplus(-f)          (= -mean log D(G(z)))
//                       reversed         mean_f softplus(-f) + mean_r softplus(r)
//                          the discriminator's loss with the labels swapped (fakes labelled
//                          real, reals labelled fake): the unified / variational-EM view in which
//                          the generator minimises the same cross-entropy as the discriminator
//                          under reversed labels. Its real-logit term has a gradient with respect
//                          to r (none flows to a generator unless r depends on it).
// Gradients: d softplus(x)/dx = sigmoid(x); sigmoid(x) and sigmoid(-x) both come from one
// exp(-|x|), which cannot overflow.
//
// Each term is computed in float (double for float64 inputs) with the portable exp/log of
// dgm_fast/portable_math.h, in the per-instruction-set loops of gan_loops.h; the sums are
// accumulated in double in fixed chunks and lanes and added in order, so a result depends on
// neither the thread count nor the instruction set.
#include <cmath>
#include <type_traits>
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common/checks.h"
#include "gan/gan_checks.h"
#include "gan/gan_loops.h"

namespace dgm_fast {

int parse_gan_kind(c10::string_view kind) {
  if (kind == "minimax") return kMinimax;
  if (kind == "non_saturating") return kNonSaturating;
  if (kind == "reversed") return kReversed;
  TORCH_CHECK_VALUE(false, "gan_losses: kind must be 'minimax', 'non_saturating' or 'reversed', got '",
                    kind, "'");
}

// real_logits, fake_logits: any shapes (each averaged over all its elements), same dtype and
// device, at least one element each.
void check_gan_losses_args(const at::Tensor& real_logits, const at::Tensor& fake_logits) {
  constexpr const char* op = "gan_losses";
  check_float_dtype(real_logits, op, "real_logits");
  check_same_device(real_logits, fake_logits, op, "real_logits", "fake_logits");
  TORCH_CHECK_TYPE(fake_logits.scalar_type() == real_logits.scalar_type(), op,
                   ": fake_logits has dtype ", fake_logits.scalar_type(), " but real_logits has dtype ",
                   real_logits.scalar_type());
  TORCH_CHECK_VALUE(real_logits.numel() > 0 && fake_logits.numel() > 0, op,
                    ": real_logits and fake_logits need at least one element each (a mean over "
                    "an empty batch is undefined), got shapes ", real_logits.sizes(), " and ",
                    fake_logits.sizes());
}

// grad_d, grad_g: 0-dim gradients of the two losses, the logits' dtype and device.
void check_gan_losses_backward_args(const at::Tensor& grad_d, const at::Tensor& grad_g,
                                    const at::Tensor& real_logits, const at::Tensor& fake_logits) {
  check_gan_losses_args(real_logits, fake_logits);
  for (const at::Tensor* g : {&grad_d, &grad_g}) {
    TORCH_CHECK_VALUE(g->dim() == 0, "gan_losses_backward: the loss gradients must be 0-dim, got shape ",
                      g->sizes());
    check_same_device(*g, real_logits, "gan_losses_backward", "a loss gradient", "real_logits");
    TORCH_CHECK_TYPE(g->scalar_type() == real_logits.scalar_type(),
                     "gan_losses_backward: a loss gradient has dtype ", g->scalar_type(),
                     " but the logits have dtype ", real_logits.scalar_type());
  }
}

namespace {

constexpr int64_t kChunk = 4096;  // elements per partial sum (fixed: results independent of threads)

// The element loops: gan_loops.h, compiled once per x86-64 instruction set.
void softplus_parts(const float* v, int64_t n, double sums[3]) { gan_loops().softplus_parts_f32(v, n, sums); }
void softplus_parts(const double* v, int64_t n, double sums[3]) { gan_loops().softplus_parts_f64(v, n, sums); }
void sigmoid_pair(const float* v, float* out, int64_t n, float a, float b) {
  gan_loops().sigmoid_pair_f32(v, out, n, a, b);
}
void sigmoid_pair(const double* v, double* out, int64_t n, double a, double b) {
  gan_loops().sigmoid_pair_f64(v, out, n, a, b);
}

// sums[0] = sum softplus(-x), sums[1] = sum softplus(x): softplus(-+v) = max(-+v, 0) + log1p(exp(-|v|)).
// Each chunk computes its terms in acc_t (float for float32/bfloat16/float16) and adds them in
// double; the chunks' sums are added in chunk order.
template <typename scalar_t>
void softplus_sums(const scalar_t* x, int64_t n, double sums[2]) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> parts(3 * chunks, 0.0);  // [chunk][log1p part, positive part, negative part]
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    alignas(64) acc_t v[kChunk];
    for (int64_t c = begin; c < end; ++c) {
      const int64_t first = c * kChunk, len = std::min(n - first, kChunk);
      if constexpr (std::is_same_v<scalar_t, acc_t>) {
        softplus_parts(x + first, len, parts.data() + 3 * c);
      } else {
        for (int64_t i = 0; i < len; ++i) v[i] = static_cast<acc_t>(x[first + i]);
        softplus_parts(v, len, parts.data() + 3 * c);
      }
    }
  });
  sums[0] = sums[1] = 0.0;
  for (int64_t c = 0; c < chunks; ++c) {
    sums[0] += parts[3 * c + 2] + parts[3 * c];
    sums[1] += parts[3 * c + 1] + parts[3 * c];
  }
}

// out = a * sigmoid(x) + b * sigmoid(-x), elementwise, in acc_t.
template <typename scalar_t>
void sigmoid_combination_all(const scalar_t* x, scalar_t* out, int64_t n, double a, double b) {
  using acc_t = at::opmath_type<scalar_t>;
  at::parallel_for(0, (n + kChunk - 1) / kChunk, 1, [&](int64_t begin, int64_t end) {
    alignas(64) acc_t v[kChunk], o[kChunk];
    for (int64_t c = begin; c < end; ++c) {
      const int64_t first = c * kChunk, len = std::min(n - first, kChunk);
      if constexpr (std::is_same_v<scalar_t, acc_t>) {
        sigmoid_pair(x + first, out + first, len, static_cast<acc_t>(a), static_cast<acc_t>(b));
      } else {
        for (int64_t i = 0; i < len; ++i) v[i] = static_cast<acc_t>(x[first + i]);
        sigmoid_pair(v, o, len, static_cast<acc_t>(a), static_cast<acc_t>(b));
        for (int64_t i = 0; i < len; ++i) out[first + i] = static_cast<scalar_t>(o[i]);
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> gan_losses_cpu(const at::Tensor& real_logits,  // [*]
                                                  const at::Tensor& fake_logits,  // [*]
                                                  c10::string_view kind) {
  check_gan_losses_args(real_logits, fake_logits);
  const int k = parse_gan_kind(kind);
  const at::Tensor r = real_logits.contiguous();
  const at::Tensor f = fake_logits.contiguous();
  at::Tensor d_loss = at::empty({}, r.options());
  at::Tensor g_loss = at::empty({}, r.options());
  const double n_r = static_cast<double>(r.numel()), n_f = static_cast<double>(f.numel());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, r.scalar_type(), "gan_losses_cpu", [&] {
    double rs[2], fs[2];  // [sum softplus(-x), sum softplus(x)]
    softplus_sums(r.const_data_ptr<scalar_t>(), r.numel(), rs);
    softplus_sums(f.const_data_ptr<scalar_t>(), f.numel(), fs);
    const double d = rs[0] / n_r + fs[1] / n_f;
    double g = 0.0;
    if (k == kMinimax) g = -fs[1] / n_f;
    if (k == kNonSaturating) g = fs[0] / n_f;
    if (k == kReversed) g = fs[0] / n_f + rs[1] / n_r;
    *d_loss.mutable_data_ptr<scalar_t>() = static_cast<scalar_t>(d);
    *g_loss.mutable_data_ptr<scalar_t>() = static_cast<scalar_t>(g);
  });
  return {d_loss, g_loss};
}

std::tuple<at::Tensor, at::Tensor> gan_losses_backward_cpu(const at::Tensor& grad_d,  // []
                                                           const at::Tensor& grad_g,  // []
                                                           const at::Tensor& real_logits,  // [*]
                                                           const at::Tensor& fake_logits,  // [*]
                                                           c10::string_view kind) {
  check_gan_losses_backward_args(grad_d, grad_g, real_logits, fake_logits);
  const int k = parse_gan_kind(kind);
  const at::Tensor r = real_logits.contiguous();
  const at::Tensor f = fake_logits.contiguous();
  at::Tensor grad_r = at::empty(r.sizes(), r.options());
  at::Tensor grad_f = at::empty(f.sizes(), f.options());
  const double n_r = static_cast<double>(r.numel()), n_f = static_cast<double>(f.numel());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, r.scalar_type(), "gan_losses_backward_cpu", [&] {
    const double gd = static_cast<double>(grad_d.item<scalar_t>());
    const double gg = static_cast<double>(grad_g.item<scalar_t>());
    // d/dr: D loss -sigmoid(-r)/n_r; reversed G loss +sigmoid(r)/n_r.
    const double r_pos = k == kReversed ? gg / n_r : 0.0, r_neg = -gd / n_r;
    // d/df: D loss +sigmoid(f)/n_f; G loss -sigmoid(f)/n_f (minimax) or -sigmoid(-f)/n_f.
    const double f_pos = gd / n_f + (k == kMinimax ? -gg / n_f : 0.0);
    const double f_neg = k == kMinimax ? 0.0 : -gg / n_f;
    sigmoid_combination_all(r.const_data_ptr<scalar_t>(), grad_r.mutable_data_ptr<scalar_t>(), r.numel(),
                        r_pos, r_neg);
    sigmoid_combination_all(f.const_data_ptr<scalar_t>(), grad_f.mutable_data_ptr<scalar_t>(), f.numel(),
                        f_pos, f_neg);
  });
  return {grad_r, grad_f};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(dgm_fast, m) {
  m.def("gan_losses(Tensor real_logits, Tensor fake_logits, str kind=\"non_saturating\") "
        "-> (Tensor discriminator_loss, Tensor generator_loss)");
  m.def("gan_losses_backward(Tensor grad_discriminator_loss, Tensor grad_generator_loss, "
        "Tensor real_logits, Tensor fake_logits, str kind) "
        "-> (Tensor grad_real_logits, Tensor grad_fake_logits)");
}

TORCH_LIBRARY_IMPL(dgm_fast, CPU, m) {
  m.impl("gan_losses", &gan_losses_cpu);
  m.impl("gan_losses_backward", &gan_losses_backward_cpu);
}

}  // namespace dgm_fast
