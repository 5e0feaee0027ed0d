// The samplers called from other families' composites, through the dispatcher (so that each call
// takes its own Philox offset from the generator exactly as the same call from Python would).
#pragma once

#include <optional>
#include <tuple>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>

namespace dgm_fast {

// bernoulli_logits(logits + bias): the bias is added inside the sampler's pass, not by an addmm
// that first copies it into the product's output. Returns (samples, probabilities or empty).
inline std::tuple<at::Tensor, at::Tensor> call_bernoulli_logits(
    const at::Tensor& logits, const std::optional<at::Tensor>& bias,
    const std::optional<at::Generator>& gen, bool return_probs) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("dgm_fast::bernoulli_logits", "")
                             .typed<std::tuple<at::Tensor, at::Tensor>(
                                 const at::Tensor&, const std::optional<at::Tensor>&,
                                 std::optional<at::Generator>, bool)>();
  return op.call(logits, bias, gen, return_probs);
}

}  // namespace dgm_fast
