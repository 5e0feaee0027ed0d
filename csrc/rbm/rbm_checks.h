// Checks of the RBM ops, shared by the device-generic composites (rbm.cpp) and the device
// kernels that specialise them (rbm_sgd_update.cpp).
#pragma once

#include <optional>

#include <ATen/core/Tensor.h>

namespace dgm_fast {

// Checks the statistics of the two phases against a [V, H] weight (shapes, dtypes, devices).
void check_phase_statistics(const at::Tensor& v_data, const at::Tensor& h_data,
                            const at::Tensor& v_model, const at::Tensor& h_model,
                            const at::Tensor& weight, const char* op);

// Checks the parameters and momentum buffers of rbm_sgd_update_, its hyper-parameters (finite,
// non-negative) and that no tensor it writes shares memory with another argument.
void check_sgd_update_args(const at::Tensor& weight, const at::Tensor& visible_bias,
                           const at::Tensor& hidden_bias, const at::Tensor& weight_momentum,
                           const at::Tensor& visible_momentum, const at::Tensor& hidden_momentum,
                           const at::Tensor& v_data, const at::Tensor& h_data,
                           const at::Tensor& v_model, const at::Tensor& h_model, double lr,
                           double momentum, double weight_decay,
                           const std::optional<at::Tensor>& visible_log_std);

// visible_log_std: [V], the dtype and device of `like` (named like_name in the message).
void check_visible_log_std(const std::optional<at::Tensor>& visible_log_std, int64_t n_visible,
                           const at::Tensor& like, const char* like_name, const char* op);

// A hyper-parameter that must be a finite number >= 0.
void check_finite_non_negative(double value, const char* name, const char* op);

// rbm_sgd_update_ written with ATen ops: any device, and the meta/fake kernel.
void rbm_sgd_update_generic(const at::Tensor& weight, const at::Tensor& visible_bias,
                            const at::Tensor& hidden_bias, const at::Tensor& weight_momentum,
                            const at::Tensor& visible_momentum, const at::Tensor& hidden_momentum,
                            const at::Tensor& v_data, const at::Tensor& h_data,
                            const at::Tensor& v_model, const at::Tensor& h_model, double lr,
                            double momentum, double weight_decay,
                            const std::optional<at::Tensor>& visible_log_std);

}  // namespace dgm_fast
