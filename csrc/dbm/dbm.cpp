// The DBM ops: mean-field inference, the block Gibbs chain and AIS over the odd layers, each a
// whole loop in one native call. Python side: python/dgm_fast/ops/dbm.py; plain-PyTorch
// definitions: python/dgm_fast/reference/dbm.py.
//
// A DBM has layers 0 (visible) to L; weights[l] ([n_l, n_{l+1}]) joins layers l and l + 1 and
// biases[l] ([n_l]) is layer l's. The input of layer l from its neighbours' states s is
//   x_l = b_l + s_{l-1} W_{l-1} + s_{l+1} W_l^T.
//
// Like the RBM's chain, these are device-generic composites of ATen products (MKL/oneDNN,
// cuBLAS) and the dgm_fast samplers: one call runs the whole loop without a Python round-trip
// per layer, the samplers add the bias inside their pass, and under torch.compile or meta
// tensors the op decomposes into those same calls (mean-field, chain) or runs its generic kernel
// (AIS), so fake tensors run the same checks as real ones. AIS also has a CPU kernel that fuses
// the even layers' float64 terms into one pass (dbm_loops.inc). Each sampler call takes its own
// Philox offset from the generator, in the order the reference's Python loop makes them, so
// the chain is bit-identical to it, and AIS draws the same states from the same logits with
// log-weights equal to float64 rounding (tests/ops/test_dbm.py).
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "common/checks.h"
#include "dbm/dbm_ais.h"
#include "dbm/dbm_loops.h"
#include "samplers/sampler_calls.h"

namespace dgm_fast {
namespace {

using Tensor = at::Tensor;

// weights[l]: [n_l, n_{l+1}]; biases[l]: [n_l], visible first; at least two hidden layers.
// Returns L, the index of the top layer.
int64_t check_dbm(at::TensorList weights, at::TensorList biases, const char* op) {
  TORCH_CHECK_VALUE(weights.size() >= 2, op,
                    ": a DBM needs at least two layers of weights (a visible and two hidden "
                    "layers), got ", weights.size());
  TORCH_CHECK_VALUE(biases.size() == weights.size() + 1, op, ": ", weights.size(),
                    " layers of weights need ", weights.size() + 1,
                    " biases (one per layer, visible first), got ", biases.size());
  const Tensor& like = weights[0];
  check_float_dtype(like, op, "weights[0]");
  const auto same_kind = [&](const Tensor& t, const std::string& name) {
    TORCH_CHECK_TYPE(t.scalar_type() == like.scalar_type(), op, ": ", name, " has dtype ",
                     t.scalar_type(), " but weights[0] has ", like.scalar_type());
    check_same_device(t, like, op, name.c_str(), "weights[0]");
  };
  for (size_t l = 0; l < biases.size(); ++l) {
    const std::string name = "biases[" + std::to_string(l) + "]";
    TORCH_CHECK_VALUE(biases[l].dim() == 1 && biases[l].size(0) > 0, op, ": ", name,
                      " must be a non-empty vector, got ", biases[l].sizes());
    same_kind(biases[l], name);
  }
  for (size_t l = 0; l < weights.size(); ++l) {
    const std::string name = "weights[" + std::to_string(l) + "]";
    const int64_t below = biases[l].size(0), above = biases[l + 1].size(0);
    TORCH_CHECK_VALUE(weights[l].dim() == 2 && weights[l].size(0) == below &&
                          weights[l].size(1) == above,
                      op, ": ", name, " must be [", below, ", ", above,
                      "] (the sizes of biases[", l, "] and biases[", l + 1, "]), got ",
                      weights[l].sizes());
    same_kind(weights[l], name);
  }
  return static_cast<int64_t>(weights.size());
}

// Checks states[i], the states of layer layers[i] ([B, n_layer], the model's dtype and device,
// one B for all); returns B.
int64_t check_states(at::TensorList states, const std::vector<int64_t>& layers,
                     at::TensorList biases, const char* what, const char* op) {
  TORCH_CHECK_VALUE(states.size() == layers.size(), op, ": ", what, " must hold ", layers.size(),
                    " tensors, got ", states.size());
  int64_t rows = -1;
  for (size_t i = 0; i < layers.size(); ++i) {
    const Tensor& s = states[i];
    const int64_t n = biases[layers[i]].size(0);
    const std::string name = std::string(what) + "[" + std::to_string(i) + "]";
    TORCH_CHECK_VALUE(s.dim() == 2 && s.size(1) == n && s.size(0) > 0, op, ": ", name,
                      " must be a non-empty [batch, ", n, "] matrix (layer ", layers[i],
                      "), got ", s.sizes());
    TORCH_CHECK_TYPE(s.scalar_type() == biases[0].scalar_type(), op, ": ", name, " has dtype ",
                     s.scalar_type(), " but the model has ", biases[0].scalar_type());
    check_same_device(s, biases[0], op, name.c_str(), "the model");
    TORCH_CHECK_VALUE(rows < 0 || s.size(0) == rows, op, ": ", what,
                      " must all have the same batch size, got ", rows, " and ", s.size(0),
                      " at ", name);
    rows = s.size(0);
  }
  return rows;
}

// s_{l-1} W_{l-1} + s_{l+1} W_l^T, as the reference computes it (two products, then one add),
// so that the samples drawn from it have the reference's bits.
Tensor neighbour_input(const std::vector<Tensor>& s, at::TensorList weights, int64_t layer) {
  const int64_t top = static_cast<int64_t>(weights.size());
  if (layer == 0) return at::mm(s[1], weights[0].t());
  Tensor x = at::mm(s[layer - 1], weights[layer - 1]);
  if (layer < top) x.add_(at::mm(s[layer + 1], weights[layer].t()));
  return x;
}

// Mean-field inference (the fixed-point equations of q(h | v) = prod Bernoulli(mu)):
//   start:  mu_l = sigmoid(b_l + 2 mu_{l-1} W_{l-1}) below the top, sigmoid(b_L + mu_{L-1} W_{L-1})
//           at the top (the doubled weights stand in for the input from above);
//   sweep:  for l = 1..L, mu_l <- (1 - damping) sigmoid(x_l(mu)) + damping mu_l,
// `iterations` sweeps, or fewer with `tol`: stop after the first sweep whose largest change is
// below tol (one host synchronisation per sweep; without tol there is none).
// Layer 1's input from the clamped visible layer, b_1 + v W_0, is computed once and then fed
// to each sweep's product as its addend, so every sweep is one product per neighbour with the
// bias folded in, then one sigmoid in place.
std::vector<Tensor> dbm_mean_field(const Tensor& v,  // [B, n_0] visible states
                                   at::TensorList weights, at::TensorList biases,
                                   int64_t iterations, std::optional<double> tol, double damping) {
  constexpr const char* op = "dbm_mean_field";
  const int64_t top = check_dbm(weights, biases, op);
  check_states({v}, {0}, biases, "v", op);
  TORCH_CHECK_VALUE(iterations >= 1, op, ": iterations must be at least 1, got ", iterations);
  TORCH_CHECK_VALUE(!tol.has_value() || (std::isfinite(*tol) && *tol > 0), op,
                    ": tol must be finite and > 0, got ", tol.value_or(0));
  TORCH_CHECK_VALUE(damping >= 0 && damping < 1, op, ": damping must be in [0, 1), got ", damping);

  std::vector<Tensor> mu(top + 1);
  mu[0] = v;
  const Tensor v_product = at::mm(v, weights[0]);
  const Tensor from_visible = v_product + biases[1];  // b_1 + v W_0
  mu[1] = at::add(from_visible, v_product).sigmoid_();
  for (int64_t l = 2; l <= top; ++l) {
    mu[l] = at::addmm(biases[l], mu[l - 1], weights[l - 1], 1, l == top ? 1 : 2).sigmoid_();
  }
  for (int64_t sweep = 0; sweep < iterations; ++sweep) {
    Tensor change;
    for (int64_t l = 1; l <= top; ++l) {
      Tensor x = l == 1 ? at::addmm(from_visible, mu[2], weights[1].t())
                        : at::addmm(biases[l], mu[l - 1], weights[l - 1]);
      if (l > 1 && l < top) x.addmm_(mu[l + 1], weights[l].t());
      x.sigmoid_();
      if (damping != 0) x.mul_(1 - damping).add_(mu[l], damping);
      if (tol.has_value()) {
        const Tensor moved = (x - mu[l]).abs_().max();
        change = change.defined() ? at::maximum(change, moved) : moved;
      }
      mu[l] = std::move(x);
    }
    if (tol.has_value() && change.item<double>() < *tol) break;
  }
  return {mu.begin() + 1, mu.end()};
}

// `steps` block Gibbs sweeps: the odd layers given the even ones, then the even layers given the
// odd ones, layers in increasing order, each drawn as bernoulli_logits(neighbour input, bias).
// clamp_visible keeps layer 0 (the data-dependent chain). Returns every layer's states.
std::vector<Tensor> dbm_gibbs_chain(at::TensorList states,  // L + 1 tensors [B, n_l]
                                    at::TensorList weights, at::TensorList biases, int64_t steps,
                                    bool clamp_visible, std::optional<at::Generator> generator) {
  constexpr const char* op = "dbm_gibbs_chain";
  const int64_t top = check_dbm(weights, biases, op);
  std::vector<int64_t> layers(top + 1);
  for (int64_t l = 0; l <= top; ++l) layers[l] = l;
  check_states(states, layers, biases, "states", op);
  TORCH_CHECK_VALUE(steps >= 0, op, ": steps must be >= 0, got ", steps);
  std::vector<Tensor> s(states.begin(), states.end());
  for (int64_t t = 0; t < steps; ++t) {
    for (const int64_t parity : {1, 0}) {
      for (int64_t l = parity; l <= top; l += 2) {
        if (l == 0 && clamp_visible) continue;
        s[l] = std::get<0>(call_bernoulli_logits(neighbour_input(s, weights, l), biases[l],
                                                 generator, /*return_probs=*/false));
      }
    }
  }
  // An op's outputs may not alias its inputs: layers the chain did not redraw are copied.
  for (int64_t l = 0; l <= top; ++l) {
    if (s[l].is_same(states[l])) s[l] = s[l].clone();
  }
  return s;
}

}  // namespace

// AIS over the odd layers with the even layers summed out (Salakhutdinov & Hinton 2009), all runs
// together, from a base model A of independent units with biases a_l to the DBM B, along
// p_beta ~ exp(-beta E_B - (1 - beta) E_A). With x_l the input of even layer l from the odd
// states (bias included):
//   log p*_beta(odd) = sum_{l odd} (beta b_l + (1 - beta) a_l) . h_l
//                      + sum_{l even} sum_j softplus(beta x_lj + (1 - beta) a_lj).
// For each beta after the first, log_w += log p*_beta - log p*_previous, in float64 (the
// increments are differences of nearly equal softplus sums); then, except after the last, a
// transition that leaves p_beta invariant: the even layers given the odd ones (from the same
// x_l), then the odd layers given the even ones. 0 -> 1 from samples of A is AIS; 1 -> 0 from
// samples of B is reverse AIS. Returns the log-weights [R] (float64, without log Z_A).
//
// The even layers' part of each temperature (two softplus per unit in float64, the logits of the
// next states) is most of the work besides the products: the CPU kernel makes it one pass per
// layer (dbm_loops.inc, at::parallel_for over the runs), the CUDA kernel one launch per layer
// (cuda/dbm/dbm.cu); the generic kernel (meta, other dtypes) makes it with ATen ops. All draw the
// same states from the same logits, and their log-weights agree to float64 rounding
// (tests/ops/test_dbm.py, tests/test_cuda.py).
void check_ais_args(at::TensorList odd_states, at::TensorList weights, at::TensorList biases,
                    at::TensorList base, at::ArrayRef<double> betas, const char* op) {
  const int64_t top = check_dbm(weights, biases, op);
  std::vector<int64_t> odd;
  for (int64_t l = 1; l <= top; l += 2) odd.push_back(l);
  check_states(odd_states, odd, biases, "odd_states", op);
  TORCH_CHECK_VALUE(base.size() == biases.size(), op, ": base must hold one bias vector per layer (",
                    biases.size(), "), got ", base.size());
  for (size_t l = 0; l < base.size(); ++l) {
    const std::string name = "base[" + std::to_string(l) + "]";
    TORCH_CHECK_VALUE(base[l].sizes() == biases[l].sizes(), op, ": ", name, " must be [",
                      biases[l].size(0), "], got ", base[l].sizes());
    TORCH_CHECK_TYPE(base[l].scalar_type() == biases[l].scalar_type(), op, ": ", name,
                     " has dtype ", base[l].scalar_type(), " but the model has ",
                     biases[l].scalar_type());
    check_same_device(base[l], biases[l], op, name.c_str(), "the model");
  }
  TORCH_CHECK_VALUE(betas.size() >= 2, op, ": betas needs at least 2 inverse temperatures, got ",
                    betas.size());
  for (const double b : betas) {
    TORCH_CHECK_VALUE(std::isfinite(b) && b >= 0 && b <= 1, op,
                      ": inverse temperatures must lie in [0, 1], got ", b);
  }
}

// The even layer's part of one temperature with ATen ops (AisEven, dbm_ais.h).
Tensor ais_even_generic(const Tensor& x, const Tensor& a, double beta, double previous, bool logits,
                        Tensor& log_w) {
  const Tensor x64 = x.to(at::kDouble), a64 = a.to(at::kDouble);
  log_w += (at::softplus(x64 * beta + a64 * (1 - beta)) - at::softplus(x64 * previous + a64 * (1 - previous)))
               .sum(1);
  return logits ? x * beta + a * (1 - beta) : Tensor();
}

namespace {

// The same in one pass per run (CPU, float32/float64).
Tensor ais_even_cpu(const Tensor& x, const Tensor& a, double beta, double previous, bool logits,
                    Tensor& log_w) {
  const Tensor xc = x.contiguous(), ac = a.contiguous();
  Tensor out = logits ? at::empty_like(xc) : Tensor();
  const int64_t rows = xc.size(0), n = xc.size(1);
  double* lw = log_w.data_ptr<double>();
  const auto& loops = dbm_loops();
  // About 2 x 50 flops per element: a grain of ~16k elements per task.
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1));
  if (xc.scalar_type() == at::kFloat) {
    const float* xp = xc.const_data_ptr<float>();
    const float* ap = ac.const_data_ptr<float>();
    float* op = logits ? out.data_ptr<float>() : nullptr;
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      loops.ais_even_f32(xp, ap, begin, end, n, beta, previous, op, lw);
    });
  } else {
    const double* xp = xc.const_data_ptr<double>();
    const double* ap = ac.const_data_ptr<double>();
    double* op = logits ? out.data_ptr<double>() : nullptr;
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      loops.ais_even_f64(xp, ap, begin, end, n, beta, previous, op, lw);
    });
  }
  return out;
}

}  // namespace

Tensor ais_loop(at::TensorList odd_states, at::TensorList weights, at::TensorList biases,
                at::TensorList base, at::ArrayRef<double> betas,
                const std::optional<at::Generator>& generator, AisEven ais_even) {
  const int64_t top = static_cast<int64_t>(weights.size());
  std::vector<int64_t> odd, even;
  for (int64_t l = 0; l <= top; ++l) (l % 2 ? odd : even).push_back(l);
  std::vector<Tensor> s(top + 1);
  for (size_t i = 0; i < odd.size(); ++i) s[odd[i]] = odd_states[i];
  std::vector<Tensor> bias_gap(top + 1);  // float64 b_l - a_l of the odd layers
  for (const int64_t l : odd) bias_gap[l] = biases[l].to(at::kDouble) - base[l].to(at::kDouble);
  Tensor log_w = at::zeros({odd_states[0].size(0)}, odd_states[0].options().dtype(at::kDouble));
  std::vector<Tensor> logits(top + 1);
  for (size_t k = 1; k < betas.size(); ++k) {
    const double beta = betas[k], previous = betas[k - 1];
    const bool last = k + 1 == betas.size();
    for (const int64_t l : odd) log_w += at::mv(s[l].to(at::kDouble), bias_gap[l]) * (beta - previous);
    for (const int64_t l : even) {
      const Tensor x = neighbour_input(s, weights, l).add_(biases[l]);
      logits[l] = ais_even(x, base[l], beta, previous, /*logits=*/!last, log_w);
    }
    if (last) break;
    for (const int64_t l : even) {
      s[l] = std::get<0>(call_bernoulli_logits(logits[l], std::nullopt, generator, /*return_probs=*/false));
    }
    for (const int64_t l : odd) {
      const Tensor input = neighbour_input(s, weights, l).add_(biases[l]);
      s[l] = std::get<0>(call_bernoulli_logits(input * beta + base[l] * (1 - beta), std::nullopt,
                                               generator, /*return_probs=*/false));
    }
  }
  return log_w;
}

namespace {

Tensor dbm_ais_generic(at::TensorList odd_states,  // one [R, n_l] per odd layer l = 1, 3, ...
                       at::TensorList weights, at::TensorList biases,
                       at::TensorList base,  // A's biases, one [n_l] per layer
                       at::ArrayRef<double> betas, std::optional<at::Generator> generator) {
  check_ais_args(odd_states, weights, biases, base, betas, "dbm_ais");
  return ais_loop(odd_states, weights, biases, base, betas, generator, &ais_even_generic);
}

Tensor dbm_ais_cpu(at::TensorList odd_states, at::TensorList weights, at::TensorList biases,
                   at::TensorList base, at::ArrayRef<double> betas, std::optional<at::Generator> generator) {
  check_ais_args(odd_states, weights, biases, base, betas, "dbm_ais");
  const at::ScalarType t = weights[0].scalar_type();
  const bool fused = t == at::kFloat || t == at::kDouble;
  return ais_loop(odd_states, weights, biases, base, betas, generator,
                  fused ? &ais_even_cpu : &ais_even_generic);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(dgm_fast, m) {
  m.def(
      "dbm_mean_field(Tensor v, Tensor[] weights, Tensor[] biases, int iterations, *, "
      "float? tol=None, float damping=0.0) -> Tensor[]");
  m.def(
      "dbm_gibbs_chain(Tensor[] states, Tensor[] weights, Tensor[] biases, int steps, *, "
      "bool clamp_visible=False, Generator? generator=None) -> Tensor[]",
      {at::Tag::nondeterministic_seeded});
  m.def(
      "dbm_ais(Tensor[] odd_states, Tensor[] weights, Tensor[] biases, Tensor[] base, "
      "float[] betas, *, Generator? generator=None) -> Tensor",
      {at::Tag::nondeterministic_seeded});
}

TORCH_LIBRARY_IMPL(dgm_fast, CompositeImplicitAutograd, m) {
  m.impl("dbm_mean_field", &dbm_mean_field);
  m.impl("dbm_gibbs_chain", &dbm_gibbs_chain);
}

// Any device (meta for fake tensors, dtypes without a fused pass); the CPU and CUDA kernels fuse
// the even layers' part.
TORCH_LIBRARY_IMPL(dgm_fast, CompositeExplicitAutograd, m) {
  m.impl("dbm_ais", &dbm_ais_generic);
}

TORCH_LIBRARY_IMPL(dgm_fast, CPU, m) {
  m.impl("dbm_ais", &dbm_ais_cpu);
}

}  // namespace dgm_fast
