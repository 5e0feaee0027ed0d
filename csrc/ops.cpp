// The op schemas, declared once for every backend. CPU kernels live in csrc/cpu, CUDA kernels in
// cuda/, fake (meta) kernels and autograd formulas in python/dgm_fast/ops.py.
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/DispatchKeySet.h>
#include <torch/library.h>

namespace dgm_fast {
namespace {

// uniform_bits has no tensor argument to dispatch on, so, like ATen's factory functions, it
// picks the backend from its device argument here and re-dispatches.
at::Tensor uniform_bits_backend_select(at::IntArrayRef size, std::optional<at::Generator> generator,
                                       std::optional<at::Device> device) {
  const at::Device target =
      device.has_value() ? *device : (generator.has_value() ? generator->device() : at::kCPU);
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("dgm_fast::uniform_bits", "")
          .typed<at::Tensor(at::IntArrayRef, std::optional<at::Generator>,
                            std::optional<at::Device>)>();
  const c10::DispatchKeySet keys(c10::computeDispatchKey(at::kUInt32, at::kStrided, target));
  return op.redispatch(keys, size, generator, target);
}

}  // namespace

TORCH_LIBRARY(dgm_fast, m) {
  // Random ops carry nondeterministic_seeded so that compilers never merge or reorder two calls.
  m.def(
      "bernoulli_logits(Tensor logits, Tensor? bias=None, *, Generator? generator=None, "
      "bool return_probs=False) -> (Tensor sample, Tensor probs)",
      {at::Tag::nondeterministic_seeded});
  m.def(
      "normal_reparam(Tensor mu, Tensor log_var, *, Generator? generator=None) "
      "-> (Tensor z, Tensor eps)",
      {at::Tag::nondeterministic_seeded});
  m.def(
      "uniform_bits(int[] size, *, Generator? generator=None, Device? device=None) -> Tensor",
      {at::Tag::nondeterministic_seeded});

  // RBM building blocks (csrc/rbm_ops.cpp): composites of ATen's products and the samplers
  // above, so a whole chain runs in one native call and torch.compile sees through them.
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

TORCH_LIBRARY_IMPL(dgm_fast, BackendSelect, m) {
  m.impl("uniform_bits", &uniform_bits_backend_select);
}

}  // namespace dgm_fast
