// The RBM ops: whole Gibbs chains, the CD gradient, the fused SGD update and AIS. Their schemas
// (TORCH_LIBRARY_FRAGMENT) and device-generic composites are here, the CPU kernel of the fused
// update in rbm_sgd_update.cpp; Python side: python/dgm_fast/ops/rbm.py; plain-PyTorch
// definitions: python/dgm_fast/reference/rbm.py.
//
// Chains and CD statistics are composites of ATen products and the dgm_fast samplers.
//
// Registered as CompositeImplicitAutograd: one native call runs a whole k-step chain without a
// Python round-trip per half-step, each product goes to MKL/oneDNN or cuBLAS through ATen, the
// bias + activation + sampling after each product is one fused sampler call, and under
// torch.compile the op decomposes into those same calls. Each sampler call takes its own Philox
// offset from the generator, exactly as the same sequence of calls made from Python would, so
// the chain is bit-identical to its Python loop (tests/ops/test_rbm.py checks it).
//
// Units (Hinton's practical guide, 2010; Nair & Hinton, 2010 for NReLU), with sigma = exp(log_std)
// for Gaussian visible units and beta the inverse temperature of each row:
//   hidden pre-activation   x = beta * (hidden_bias + (v / sigma) W)
//   Bernoulli hidden        h ~ Bernoulli(sigmoid(x)),             mean sigmoid(x)
//   NReLU hidden            h = max(0, x + N(0, sigmoid(x))),       mean max(0, x)
//   Bernoulli visible       v ~ Bernoulli(sigmoid(beta * (visible_bias + W h)))
//   Gaussian visible        v ~ N(visible_bias + sigma * (W h), sigma^2 / beta)
//
// matmul_dtype (bfloat16 or float16) runs the products in that precision against a rounded copy
// of the float32 master weights, accumulating in float32; biases, activations and sampling stay
// in the parameters' dtype. Off by default; bench/RESULTS.md measures its effect on the gradient.
#include <cmath>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "rbm/rbm_checks.h"
#include "samplers/sampler_calls.h"

namespace dgm_fast {
namespace {

using Tensor = at::Tensor;

Tensor call_normal_reparam(const Tensor& mu, const Tensor& log_var,
                           const std::optional<at::Generator>& gen) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("dgm_fast::normal_reparam", "")
                             .typed<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&,
                                                               std::optional<at::Generator>)>();
  return std::get<0>(op.call(mu, log_var, gen));
}

struct Units {
  bool gaussian_visible;
  bool nrelu_hidden;
};

Units parse_units(c10::string_view visible, c10::string_view hidden) {
  TORCH_CHECK_VALUE(visible == "bernoulli" || visible == "gaussian",
                    "rbm: visible units must be 'bernoulli' or 'gaussian', got '", visible, "'");
  TORCH_CHECK_VALUE(hidden == "bernoulli" || hidden == "nrelu",
                    "rbm: hidden units must be 'bernoulli' or 'nrelu', got '", hidden, "'");
  return {visible == "gaussian", hidden == "nrelu"};
}

// v: [B, V]; weight: [V, H]; visible_bias: [V]; hidden_bias: [H]; log_std: [V]; beta: [B].
void check_rbm_args(const Tensor& v, const Tensor& weight, const Tensor& visible_bias,
                    const Tensor& hidden_bias, const std::optional<Tensor>& log_std,
                    const std::optional<Tensor>& beta, const char* op) {
  TORCH_CHECK_VALUE(weight.dim() == 2, op, ": weight must be [n_visible, n_hidden], got ",
                    weight.sizes());
  const int64_t nv = weight.size(0), nh = weight.size(1);
  TORCH_CHECK_VALUE(v.dim() == 2 && v.size(1) == nv, op, ": v must be [batch, ", nv,
                    "] for a weight of shape ", weight.sizes(), ", got ", v.sizes());
  TORCH_CHECK_VALUE(visible_bias.dim() == 1 && visible_bias.size(0) == nv, op,
                    ": visible_bias must be [", nv, "], got ", visible_bias.sizes());
  TORCH_CHECK_VALUE(hidden_bias.dim() == 1 && hidden_bias.size(0) == nh, op,
                    ": hidden_bias must be [", nh, "], got ", hidden_bias.sizes());
  for (const Tensor* t : {&weight, &visible_bias, &hidden_bias}) {
    TORCH_CHECK_TYPE(t->scalar_type() == v.scalar_type(), op,
                     ": parameters and v must share a dtype, got ", t->scalar_type(), " and ",
                     v.scalar_type());
    TORCH_CHECK(t->device() == v.device(), op, ": parameters are on ", t->device(),
                " but v is on ", v.device());
  }
  check_visible_log_std(log_std, nv, v, "v", op);
  if (beta.has_value()) {
    TORCH_CHECK_VALUE(beta->dim() == 1 && beta->size(0) == v.size(0), op,
                      ": beta must hold one inverse temperature per row, [", v.size(0),
                      "], got ", beta->sizes());
    // A float64 beta on a float32 model would silently promote every output to float64.
    TORCH_CHECK_TYPE(beta->scalar_type() == v.scalar_type(), op, ": beta has dtype ",
                     beta->scalar_type(), " but v has ", v.scalar_type());
    TORCH_CHECK(beta->device() == v.device(), op, ": beta is on ", beta->device(),
                " but v is on ", v.device());
  }
}

void check_matmul_dtype(std::optional<at::ScalarType> matmul_dtype, const char* op) {
  if (matmul_dtype.has_value()) {
    TORCH_CHECK_VALUE(*matmul_dtype == at::kBFloat16 || *matmul_dtype == at::kHalf, op,
                      ": matmul_dtype must be bfloat16 or float16, got ", *matmul_dtype);
  }
}

struct Chain {
  Tensor weight;  // in matmul_dtype when one is given
  const Tensor& visible_bias;
  const Tensor& hidden_bias;
  Units units;
  std::optional<Tensor> log_std;   // [V], Gaussian visible only
  std::optional<Tensor> std;       // [V]
  std::optional<Tensor> inv_std;   // [V]
  std::optional<Tensor> beta_col;  // [B, 1]
  const std::optional<at::Generator>& gen;

  // a @ b with the product in b's (the weight's) dtype and the result in `out`.
  static Tensor product(const Tensor& a, const Tensor& b, at::ScalarType out) {
    if (a.scalar_type() == b.scalar_type()) return at::mm(a, b);
    return at::mm(a.to(b.scalar_type()), b).to(out);
  }
  // bias + a @ b, likewise.
  static Tensor affine(const Tensor& bias, const Tensor& a, const Tensor& b) {
    if (a.scalar_type() == b.scalar_type()) return at::addmm(bias, a, b);
    return product(a, b, bias.scalar_type()).add_(bias);
  }
  Tensor scaled(const Tensor& v) const { return inv_std.has_value() ? v * *inv_std : v; }
  Tensor hidden_preactivation(const Tensor& v) const {
    Tensor x = affine(hidden_bias, scaled(v), weight);
    return beta_col.has_value() ? x * *beta_col : x;
  }
  Tensor hidden_mean(const Tensor& v) const {
    const Tensor x = hidden_preactivation(v);
    return units.nrelu_hidden ? at::relu(x) : at::sigmoid(x);
  }
  // (sample, mean) of the hidden units given the visible states. Bernoulli units at beta = 1 add
  // the bias inside the sampler (RBM.sample_hidden does the same, so the bits agree).
  std::tuple<Tensor, Tensor> sample_hidden(const Tensor& v) const {
    if (units.nrelu_hidden) {
      const Tensor x = hidden_preactivation(v);
      return {at::relu(call_normal_reparam(x, at::log_sigmoid(x), gen)), at::relu(x)};
    }
    if (beta_col.has_value()) return call_bernoulli_logits(hidden_preactivation(v), std::nullopt, gen, true);
    return call_bernoulli_logits(product(scaled(v), weight, hidden_bias.scalar_type()), hidden_bias, gen,
                                 /*return_probs=*/true);
  }
  Tensor sample_visible(const Tensor& h) const {
    if (units.gaussian_visible) {
      const Tensor mu = product(h, weight.t(), visible_bias.scalar_type()).mul_(*std).add_(visible_bias);
      Tensor log_var = (2 * *log_std).expand_as(mu);
      if (beta_col.has_value()) log_var = log_var - at::log(*beta_col);
      return call_normal_reparam(mu, log_var.contiguous(), gen);
    }
    if (beta_col.has_value()) {
      return std::get<0>(call_bernoulli_logits(affine(visible_bias, h, weight.t()) * *beta_col,
                                               std::nullopt, gen, /*return_probs=*/false));
    }
    return std::get<0>(call_bernoulli_logits(product(h, weight.t(), visible_bias.scalar_type()),
                                             visible_bias, gen, /*return_probs=*/false));
  }
};

std::tuple<Tensor, Tensor, Tensor> rbm_gibbs_chain(
    const Tensor& v0, const Tensor& weight, const Tensor& visible_bias, const Tensor& hidden_bias,
    int64_t steps, c10::string_view visible, c10::string_view hidden,
    const std::optional<Tensor>& visible_log_std, const std::optional<Tensor>& beta,
    bool final_hidden, std::optional<at::ScalarType> matmul_dtype,
    std::optional<at::Generator> generator) {
  constexpr const char* op = "rbm_gibbs_chain";
  const Units units = parse_units(visible, hidden);
  check_rbm_args(v0, weight, visible_bias, hidden_bias, visible_log_std, beta, op);
  TORCH_CHECK_VALUE(steps >= 1, op, ": steps must be at least 1, got ", steps);
  TORCH_CHECK_VALUE(!units.gaussian_visible || visible_log_std.has_value(), op,
                    ": Gaussian visible units need visible_log_std");
  check_matmul_dtype(matmul_dtype, op);
  const Tensor mm_weight = matmul_dtype.has_value() ? weight.to(*matmul_dtype) : weight;
  Chain chain{mm_weight,    visible_bias, hidden_bias,  units, std::nullopt,
              std::nullopt, std::nullopt, std::nullopt, generator};
  if (units.gaussian_visible) {
    chain.log_std = *visible_log_std;
    chain.std = at::exp(*visible_log_std);
    chain.inv_std = at::exp(-*visible_log_std);
  }
  if (beta.has_value()) chain.beta_col = beta->unsqueeze(1);

  auto [h, h0_mean] = chain.sample_hidden(v0);
  Tensor v;
  for (int64_t t = 0; t < steps; ++t) {
    v = chain.sample_visible(h);
    if (t + 1 < steps) h = std::get<0>(chain.sample_hidden(v));
  }
  Tensor h_mean = final_hidden ? chain.hidden_mean(v) : at::empty({0}, v.options());
  return {h0_mean, v, h_mean};
}


// The CD gradient of the mean negative log-likelihood, i.e. of mean F(v_data) - mean F(v_model)
// (F the free energy), from the positive and negative statistics:
//   grad_weight = (v_model/sigma)^T h_model / B_model - (v_data/sigma)^T h_data / B_data
//                 + weight_decay * weight
// computed as ONE product of the stacked phases [v_data; v_model]^T [-h_data / B_data;
// h_model / B_model], with the weight decay folded into the same addmm. With matmul_dtype the
// product runs in that precision (the visible states of binary units are exact in it) and the
// weight decay is added in the weight's dtype.
std::tuple<Tensor, Tensor, Tensor> rbm_cd_gradient(const Tensor& v_data,   // [Bd, V]
                                                   const Tensor& h_data,   // [Bd, H] means
                                                   const Tensor& v_model,  // [Bm, V]
                                                   const Tensor& h_model,  // [Bm, H] means
                                                   const Tensor& weight,   // [V, H]
                                                   double weight_decay,
                                                   const std::optional<Tensor>& visible_log_std,
                                                   std::optional<at::ScalarType> matmul_dtype) {
  constexpr const char* op = "rbm_cd_gradient";
  check_phase_statistics(v_data, h_data, v_model, h_model, weight, op);
  check_finite_non_negative(weight_decay, "weight_decay", op);
  check_matmul_dtype(matmul_dtype, op);
  check_visible_log_std(visible_log_std, weight.size(0), weight, "weight", op);
  const double bd = static_cast<double>(v_data.size(0)), bm = static_cast<double>(v_model.size(0));
  Tensor vd = v_data, vm = v_model;
  std::optional<Tensor> inv_var;
  if (visible_log_std.has_value()) {
    const Tensor inv_std = at::exp(-*visible_log_std);
    vd = v_data * inv_std;
    vm = v_model * inv_std;
    inv_var = inv_std * inv_std;
  }
  const Tensor v_stack = at::cat({vd, vm}, 0);
  const Tensor h_stack = at::cat({h_data * (-1.0 / bd), h_model * (1.0 / bm)}, 0);
  Tensor grad_weight;
  if (matmul_dtype.has_value() && *matmul_dtype != weight.scalar_type()) {
    grad_weight = at::mm(v_stack.t().to(*matmul_dtype), h_stack.to(*matmul_dtype)).to(weight.scalar_type());
    if (weight_decay != 0) grad_weight.add_(weight, weight_decay);
  } else {
    grad_weight = at::addmm(weight, v_stack.t(), h_stack, /*beta=*/weight_decay, /*alpha=*/1);
  }
  Tensor grad_visible = v_model.mean(0) - v_data.mean(0);
  if (inv_var.has_value()) grad_visible = grad_visible * *inv_var;
  Tensor grad_hidden = h_model.mean(0) - h_data.mean(0);
  return {grad_weight, grad_visible, grad_hidden};
}

// Annealed importance sampling (Neal 2001; Salakhutdinov & Murray 2008) between a base-rate
// model A (no weights, visible biases a, the RBM's sigma) and the RBM B, all runs advancing
// together. The intermediate distributions, with x = hidden_bias + (v / sigma) W:
//   log p*_beta(v) = (1 - beta) a.v + beta b.v + sum_j softplus(beta x_j)            Bernoulli
//   log p*_beta(v) = -sum_i [(1 - beta)(v_i - a_i)^2 + beta (v_i - b_i)^2] / (2 sigma_i^2)
//                    + sum_j softplus(beta x_j)                                        Gaussian
// For each beta after the first: log_w += log p*_beta(v) - log p*_previous(v) (in float64: the
// increments are differences of nearly equal softplus sums), then, except after the last, one
// Gibbs transition that leaves p_beta invariant. The betas may run either way: 0 -> 1 is AIS
// (E[log Z_A + logmeanexp(log_w)] <= log Z_B), 1 -> 0 from samples of B is reverse AIS.
std::tuple<Tensor, Tensor> rbm_ais(const Tensor& v0,                 // [R, V] runs
                                   const Tensor& weight,             // [V, H]
                                   const Tensor& visible_bias,       // [V]
                                   const Tensor& hidden_bias,        // [H]
                                   const Tensor& base_visible_bias,  // [V]
                                   c10::ArrayRef<double> betas,
                                   const std::optional<Tensor>& visible_log_std,
                                   std::optional<at::Generator> generator) {
  constexpr const char* op = "rbm_ais";
  check_rbm_args(v0, weight, visible_bias, hidden_bias, visible_log_std, std::nullopt, op);
  TORCH_CHECK_VALUE(base_visible_bias.sizes() == visible_bias.sizes(), op,
                    ": base_visible_bias must be [", weight.size(0), "], got ",
                    base_visible_bias.sizes());
  TORCH_CHECK_TYPE(base_visible_bias.scalar_type() == v0.scalar_type(), op,
                   ": base_visible_bias has dtype ", base_visible_bias.scalar_type(), " but v has ",
                   v0.scalar_type());
  TORCH_CHECK(base_visible_bias.device() == v0.device(), op, ": base_visible_bias is on ",
              base_visible_bias.device(), " but v is on ", v0.device());
  TORCH_CHECK_VALUE(betas.size() >= 2, op, ": need at least two inverse temperatures");
  for (const double beta : betas) {
    TORCH_CHECK_VALUE(beta >= 0 && beta <= 1, op, ": inverse temperatures must lie in [0, 1], got ", beta);
  }
  const bool gaussian = visible_log_std.has_value();
  const Tensor w_t = weight.t();
  Tensor inv_std, inv_var, std_dev;
  if (gaussian) {
    inv_std = at::exp(-*visible_log_std);
    inv_var = inv_std * inv_std;
    std_dev = at::exp(*visible_log_std);
  }
  const Tensor bias_diff = visible_bias - base_visible_bias;  // Bernoulli visible term
  Tensor v = v0;
  Tensor log_w = at::zeros({v0.size(0)}, v0.options().dtype(at::kDouble));
  const auto log_p_visible_delta = [&](const Tensor& v_, double dbeta) -> Tensor {
    if (!gaussian) return at::mv(v_, bias_diff).to(at::kDouble) * dbeta;
    // -(dbeta) * sum_i [(v - b)^2 - (v - a)^2] / (2 sigma^2)
    const Tensor d = ((v_ - visible_bias).square() - (v_ - base_visible_bias).square()) * inv_var;
    return d.sum(1).to(at::kDouble) * (-0.5 * dbeta);
  };
  for (size_t k = 1; k < betas.size(); ++k) {
    const double beta = betas[k], previous = betas[k - 1];
    const Tensor x = at::addmm(hidden_bias, gaussian ? v * inv_std : v, weight);  // [R, H]
    const Tensor x64 = x.to(at::kDouble);
    log_w += log_p_visible_delta(v, beta - previous) +
             (at::softplus(x64 * beta) - at::softplus(x64 * previous)).sum(1);
    if (k + 1 == betas.size()) break;
    const Tensor h = std::get<0>(call_bernoulli_logits(x * beta, std::nullopt, generator, false));
    const Tensor mixed = base_visible_bias * (1 - beta) + visible_bias * beta;
    if (gaussian) {
      const Tensor mu = at::mm(h, w_t).mul_(std_dev * beta).add_(mixed);
      v = call_normal_reparam(mu, (2 * *visible_log_std).expand_as(mu).contiguous(), generator);
    } else {
      v = std::get<0>(call_bernoulli_logits(at::addmm(mixed, h, w_t, 1, beta), std::nullopt, generator, false));
    }
  }
  return {log_w, v};
}

}  // namespace

// Whether a and b may read or write the same bytes: the same storage and intersecting extents.
// (ATen's get_overlap_status gives up, "too hard", on any expanded or strided tensor.)
bool may_share_memory(const Tensor& a, const Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0 || !a.has_storage() || !b.has_storage()) return false;
  if (!a.storage().is_alias_of(b.storage())) return false;
  const auto extent = [](const Tensor& t) {  // [first, last] byte, from the offset and strides
    int64_t lo = t.storage_offset(), hi = t.storage_offset();
    for (int64_t d = 0; d < t.dim(); ++d) {
      const int64_t reach = (t.size(d) - 1) * t.stride(d);
      (reach < 0 ? lo : hi) += reach;
    }
    return std::pair<int64_t, int64_t>{lo * t.element_size(), (hi + 1) * t.element_size() - 1};
  };
  const auto [a0, a1] = extent(a);
  const auto [b0, b1] = extent(b);
  return a0 <= b1 && b0 <= a1;
}

// Checks the statistics of the two phases against a [V, H] weight.
void check_phase_statistics(const Tensor& v_data, const Tensor& h_data, const Tensor& v_model,
                            const Tensor& h_model, const Tensor& weight, const char* op) {
  TORCH_CHECK_VALUE(weight.dim() == 2, op, ": weight must be [n_visible, n_hidden], got ",
                    weight.sizes());
  const int64_t nv = weight.size(0), nh = weight.size(1);
  const auto check = [&](const Tensor& t, int64_t cols, const char* name) {
    TORCH_CHECK_VALUE(t.dim() == 2 && t.size(1) == cols && t.size(0) > 0, op, ": ", name,
                      " must be a non-empty [batch, ", cols, "] matrix, got ", t.sizes());
    TORCH_CHECK_TYPE(t.scalar_type() == weight.scalar_type(), op, ": ", name, " has dtype ",
                     t.scalar_type(), " but weight has ", weight.scalar_type());
    TORCH_CHECK(t.device() == weight.device(), op, ": ", name, " is on ", t.device(),
                " but weight is on ", weight.device());
  };
  check(v_data, nv, "v_data");
  check(h_data, nh, "h_data");
  check(v_model, nv, "v_model");
  check(h_model, nh, "h_model");
  TORCH_CHECK_VALUE(v_data.size(0) == h_data.size(0) && v_model.size(0) == h_model.size(0), op,
                    ": v and h of a phase must have the same batch size");
}

// One step of SGD with momentum (torch.optim.SGD's rule with dampening 0, no Nesterov)
// on the CD gradient g of rbm_cd_gradient, without materialising g:
//   buffer <- momentum * buffer + g,   parameter <- parameter - lr * buffer.
// For the weights the two phases' products accumulate straight into the momentum buffer
// (GEMM's beta = momentum, then beta = 1), and the weight decay is one pass folded into the
// parameter update. Two products of depth B instead of one of depth 2B over the stacked phases:
// the same flops, without copying the phases into a stack (measured faster at 100x784x500).
void check_sgd_update_args(const Tensor& weight, const Tensor& visible_bias, const Tensor& hidden_bias,
                           const Tensor& weight_momentum, const Tensor& visible_momentum,
                           const Tensor& hidden_momentum, const Tensor& v_data, const Tensor& h_data,
                           const Tensor& v_model, const Tensor& h_model, double lr, double momentum,
                           double weight_decay, const std::optional<Tensor>& visible_log_std) {
  constexpr const char* op = "rbm_sgd_update_";
  check_phase_statistics(v_data, h_data, v_model, h_model, weight, op);
  TORCH_CHECK_VALUE(visible_bias.dim() == 1 && visible_bias.size(0) == weight.size(0) &&
                        hidden_bias.dim() == 1 && hidden_bias.size(0) == weight.size(1),
                    op, ": biases must be [", weight.size(0), "] and [", weight.size(1), "], got ",
                    visible_bias.sizes(), " and ", hidden_bias.sizes());
  const std::pair<const Tensor*, const Tensor*> pairs[] = {
      {&weight, &weight_momentum}, {&visible_bias, &visible_momentum}, {&hidden_bias, &hidden_momentum}};
  for (const auto& [param, buffer] : pairs) {
    TORCH_CHECK_VALUE(param->sizes() == buffer->sizes() && param->dtype() == buffer->dtype() &&
                          param->device() == buffer->device(),
                      op, ": a momentum buffer must match its parameter: ", param->sizes(), " ",
                      param->dtype(), " on ", param->device(), ", got ", buffer->sizes(), " ",
                      buffer->dtype(), " on ", buffer->device());
    TORCH_CHECK_TYPE(param->scalar_type() == weight.scalar_type(), op,
                     ": parameters must share a dtype, got ", param->scalar_type(), " and ",
                     weight.scalar_type());
  }
  check_finite_non_negative(lr, "lr", op);
  check_finite_non_negative(momentum, "momentum", op);
  check_finite_non_negative(weight_decay, "weight_decay", op);
  check_visible_log_std(visible_log_std, weight.size(0), weight, "weight", op);
  if (weight.is_meta()) return;  // meta tensors have no memory to share
  // The update writes six tensors while it reads the others: any overlap gives wrong values.
  const std::pair<const Tensor*, const char*> written[] = {
      {&weight, "weight"}, {&visible_bias, "visible_bias"}, {&hidden_bias, "hidden_bias"},
      {&weight_momentum, "weight_momentum"}, {&visible_momentum, "visible_momentum"},
      {&hidden_momentum, "hidden_momentum"}};
  std::vector<std::pair<const Tensor*, const char*>> read = {
      {&v_data, "v_data"}, {&h_data, "h_data"}, {&v_model, "v_model"}, {&h_model, "h_model"}};
  if (visible_log_std.has_value()) read.push_back({&*visible_log_std, "visible_log_std"});
  for (size_t i = 0; i < std::size(written); ++i) {
    const auto& [t, name] = written[i];
    TORCH_CHECK_VALUE(at::has_internal_overlap(*t) != at::MemOverlap::Yes, op, ": ", name,
                      " has elements that share memory (an expanded tensor?); pass a tensor of its own");
    for (size_t j = 0; j < i; ++j) {
      TORCH_CHECK_VALUE(!may_share_memory(*t, *written[j].first),
                        op, ": ", name, " and ", written[j].second,
                        " share memory; each must be a tensor of its own");
    }
    for (const auto& [r, r_name] : read) {
      TORCH_CHECK_VALUE(!may_share_memory(*t, *r), op, ": ",
                        r_name, " and ", name, " share memory; the update would change ", r_name,
                        " while it reads it (pass a copy)");
    }
  }
}

void check_visible_log_std(const std::optional<Tensor>& visible_log_std, int64_t n_visible,
                           const Tensor& like, const char* like_name, const char* op) {
  if (!visible_log_std.has_value()) return;
  TORCH_CHECK_VALUE(visible_log_std->dim() == 1 && visible_log_std->size(0) == n_visible, op,
                    ": visible_log_std must be [", n_visible, "], got ", visible_log_std->sizes());
  TORCH_CHECK_TYPE(visible_log_std->scalar_type() == like.scalar_type(), op,
                   ": visible_log_std has dtype ", visible_log_std->scalar_type(), " but ",
                   like_name, " has ", like.scalar_type());
  TORCH_CHECK(visible_log_std->device() == like.device(), op, ": visible_log_std is on ",
              visible_log_std->device(), " but ", like_name, " is on ", like.device());
}

void check_finite_non_negative(double value, const char* name, const char* op) {
  TORCH_CHECK_VALUE(std::isfinite(value) && value >= 0, op, ": ", name,
                    " must be finite and non-negative, got ", value);
}

void rbm_sgd_update_generic(const Tensor& weight, const Tensor& visible_bias, const Tensor& hidden_bias,
                            const Tensor& weight_momentum, const Tensor& visible_momentum,
                            const Tensor& hidden_momentum, const Tensor& v_data, const Tensor& h_data,
                            const Tensor& v_model, const Tensor& h_model, double lr, double momentum,
                            double weight_decay, const std::optional<Tensor>& visible_log_std) {
  check_sgd_update_args(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum,
                        hidden_momentum, v_data, h_data, v_model, h_model, lr, momentum, weight_decay,
                        visible_log_std);
  const double bd = static_cast<double>(v_data.size(0)), bm = static_cast<double>(v_model.size(0));
  Tensor vd = v_data, vm = v_model;
  Tensor grad_visible = v_model.sum(0) / bm - v_data.sum(0) / bd;
  if (visible_log_std.has_value()) {
    const Tensor inv_std = at::exp(-*visible_log_std);
    vd = v_data * inv_std;
    vm = v_model * inv_std;
    grad_visible = grad_visible * (inv_std * inv_std);
  }
  weight_momentum.addmm_(vd.t(), h_data, /*beta=*/momentum, /*alpha=*/-1.0 / bd);
  weight_momentum.addmm_(vm.t(), h_model, /*beta=*/1, /*alpha=*/1.0 / bm);
  if (weight_decay != 0) weight_momentum.add_(weight, weight_decay);
  weight.sub_(weight_momentum, lr);
  visible_momentum.mul_(momentum).add_(grad_visible);
  visible_bias.sub_(visible_momentum, lr);
  hidden_momentum.mul_(momentum).add_(h_model.sum(0), 1.0 / bm).sub_(h_data.sum(0), 1.0 / bd);
  hidden_bias.sub_(hidden_momentum, lr);
}

TORCH_LIBRARY_FRAGMENT(dgm_fast, m) {
  m.def(
      "rbm_gibbs_chain(Tensor v, Tensor weight, Tensor visible_bias, Tensor hidden_bias, "
      "int steps, *, str visible=\"bernoulli\", str hidden=\"bernoulli\", "
      "Tensor? visible_log_std=None, Tensor? beta=None, bool final_hidden=True, "
      "ScalarType? matmul_dtype=None, Generator? generator=None) "
      "-> (Tensor h0_mean, Tensor v, Tensor h_mean)",
      {at::Tag::nondeterministic_seeded});
  m.def(
      "rbm_ais(Tensor v, Tensor weight, Tensor visible_bias, Tensor hidden_bias, "
      "Tensor base_visible_bias, float[] betas, *, Tensor? visible_log_std=None, "
      "Generator? generator=None) -> (Tensor log_weights, Tensor v)",
      {at::Tag::nondeterministic_seeded});
  m.def(
      "rbm_cd_gradient(Tensor v_data, Tensor h_data, Tensor v_model, Tensor h_model, "
      "Tensor weight, *, float weight_decay=0.0, "
      "Tensor? visible_log_std=None, ScalarType? matmul_dtype=None) "
      "-> (Tensor grad_weight, Tensor grad_visible_bias, "
      "Tensor grad_hidden_bias)");
  m.def(
      "rbm_sgd_update_(Tensor(a!) weight, Tensor(b!) visible_bias, Tensor(c!) hidden_bias, "
      "Tensor(d!) weight_momentum, Tensor(e!) visible_momentum, Tensor(f!) hidden_momentum, "
      "Tensor v_data, Tensor h_data, Tensor v_model, Tensor h_model, *, float lr, "
      "float momentum, float weight_decay=0.0, Tensor? visible_log_std=None) -> ()");
}

TORCH_LIBRARY_IMPL(dgm_fast, CompositeImplicitAutograd, m) {
  m.impl("rbm_ais", &rbm_ais);
  m.impl("rbm_gibbs_chain", &rbm_gibbs_chain);
  m.impl("rbm_cd_gradient", &rbm_cd_gradient);
}

// Any device (CUDA, meta for fake tensors); the CPU kernel in cpu/rbm_update_cpu.cpp fuses the
// element-wise part into one pass.
TORCH_LIBRARY_IMPL(dgm_fast, CompositeExplicitAutograd, m) {
  m.impl("rbm_sgd_update_", &rbm_sgd_update_generic);
}

namespace {

// The Autograd kernel of rbm_sgd_update_: what an in-place op owes autograd. A tensor that
// requires grad may not be updated while grad mode is on (an optimizer steps under no_grad, and
// cd_step passes .detach()ed parameters, which share the version counter). After the update,
// every written tensor's version counter is bumped, so that a graph built from the old values
// refuses to backpropagate instead of silently using the new ones.
void rbm_sgd_update_autograd(const Tensor& weight, const Tensor& visible_bias, const Tensor& hidden_bias,
                             const Tensor& weight_momentum, const Tensor& visible_momentum,
                             const Tensor& hidden_momentum, const Tensor& v_data, const Tensor& h_data,
                             const Tensor& v_model, const Tensor& h_model, double lr, double momentum,
                             double weight_decay, const std::optional<Tensor>& visible_log_std) {
  const std::pair<const Tensor*, const char*> written[] = {
      {&weight, "weight"}, {&visible_bias, "visible_bias"}, {&hidden_bias, "hidden_bias"},
      {&weight_momentum, "weight_momentum"}, {&visible_momentum, "visible_momentum"},
      {&hidden_momentum, "hidden_momentum"}};
  if (at::GradMode::is_enabled()) {
    for (const auto& [t, name] : written) {
      TORCH_CHECK(!t->requires_grad(), "rbm_sgd_update_: ", name,
                  " requires grad, and the update is not differentiable: pass its .detach() (it "
                  "shares the version counter) or call under torch.no_grad(), as optimizers do");
    }
  }
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    static const auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("dgm_fast::rbm_sgd_update_", "")
            .typed<void(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        double, double, double, const std::optional<Tensor>&)>();
    op.call(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum, hidden_momentum,
            v_data, h_data, v_model, h_model, lr, momentum, weight_decay, visible_log_std);
  }
  for (const auto& [t, name] : written) t->unsafeGetTensorImpl()->bump_version();
}

}  // namespace

TORCH_LIBRARY_IMPL(dgm_fast, Autograd, m) {
  m.impl("rbm_sgd_update_", &rbm_sgd_update_autograd);
}

}  // namespace dgm_fast
