// Argument checks of the samplers, shared by their CPU and CUDA kernels, so that every device
// rejects the same inputs with the same message.
#pragma once

#include <optional>

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "common/checks.h"

namespace dgm_fast {

// logits: [..., H] any strides; bias: [H], same dtype and device.
inline void check_bernoulli_logits_args(const at::Tensor& logits,
                                        const std::optional<at::Tensor>& bias) {
  constexpr const char* op = "bernoulli_logits";
  check_float_dtype(logits, op, "logits");
  if (!bias.has_value() || !bias->defined()) return;
  check_same_device(logits, *bias, op, "logits", "bias");
  TORCH_CHECK_TYPE(bias->scalar_type() == logits.scalar_type(), op, ": bias has dtype ",
                   bias->scalar_type(), " but logits have dtype ", logits.scalar_type());
  TORCH_CHECK_VALUE(logits.dim() >= 1, op, ": a bias needs logits with at least one dimension");
  TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == logits.size(-1), op,
                    ": bias must have shape [", logits.size(-1),
                    "] (the last dimension of logits, shape ", logits.sizes(), "), got ",
                    bias->sizes());
}

// mu, log_var: same shape, dtype and device, any strides.
inline void check_normal_reparam_args(const at::Tensor& mu, const at::Tensor& log_var) {
  constexpr const char* op = "normal_reparam";
  check_float_dtype(mu, op, "mu");
  check_same_device(mu, log_var, op, "mu", "log_var");
  TORCH_CHECK_TYPE(log_var.scalar_type() == mu.scalar_type(), op, ": log_var has dtype ",
                   log_var.scalar_type(), " but mu has dtype ", mu.scalar_type());
  TORCH_CHECK_VALUE(mu.sizes() == log_var.sizes(), op,
                    ": mu and log_var must have the same shape, got ", mu.sizes(), " and ",
                    log_var.sizes());
}

}  // namespace dgm_fast
