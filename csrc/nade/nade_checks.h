// Argument checks of the NADE ops, defined in csrc/nade/nade.cpp and shared with
// cuda/nade/nade.cu, so that both devices reject the same inputs with the same message.
#pragma once

#include <optional>

#include <ATen/core/Tensor.h>

namespace dgm_fast {

// bias_visible [D] (nullptr: not an argument of the op), bias_hidden [H], weight_in [D, H],
// weight_out [D, H]: float32 or float64, one dtype and device, D >= 1 and H >= 1.
void check_nade_params(const at::Tensor* bias_visible, const at::Tensor& bias_hidden,
                       const at::Tensor& weight_in, const at::Tensor& weight_out, const char* op);
// t: [rows, D] in the dtype and on the device of `like` (a parameter).
void check_nade_rows(const at::Tensor& t, const char* name, int64_t rows, int64_t D, const at::Tensor& like,
                     const char* op);
// order: int64, [D] (one ordering for every row) or [rows, D], on like's device. Whether each
// row is a permutation of 0..D-1 is checked by the kernels (a CPU error; NaN results on CUDA).
void check_nade_order(const std::optional<at::Tensor>& order, int64_t rows, int64_t D, const at::Tensor& like,
                      const char* op);
// All the arguments of nade_log_prob_backward: grad_log_prob [B], grad_logits [B, D] (optional),
// x and logits [B, D], the parameters but bias_visible, and order.
void check_nade_backward_args(const at::Tensor& grad_log_prob, const std::optional<at::Tensor>& grad_logits,
                              const at::Tensor& x, const at::Tensor& logits, const at::Tensor& bias_hidden,
                              const at::Tensor& weight_in, const at::Tensor& weight_out,
                              const std::optional<at::Tensor>& order);

}  // namespace dgm_fast
