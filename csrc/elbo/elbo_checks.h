// Argument checks of the VAE losses, defined in csrc/elbo/elbo.cpp and shared with
// cuda/elbo/elbo.cu so that both devices reject the same inputs with the same messages.
#pragma once

#include <string_view>

#include <ATen/core/Tensor.h>

namespace dgm_fast {

// likelihood: "bernoulli" (recon holds logits) or "gaussian" (recon holds the mean).
bool elbo_is_bernoulli(std::string_view likelihood, const char* op);
void check_gaussian_elbo_args(const at::Tensor& x, const at::Tensor& recon, const at::Tensor& mu,
                              const at::Tensor& log_var, const char* op);
void check_gaussian_elbo_backward_args(const at::Tensor& grad, const at::Tensor& x,
                                       const at::Tensor& recon, const at::Tensor& mu,
                                       const at::Tensor& log_var);
void check_iwae_bound_args(const at::Tensor& log_weights, const char* op);
void check_iwae_bound_backward_args(const at::Tensor& grad, const at::Tensor& log_weights,
                                    const at::Tensor& bound);

}  // namespace dgm_fast
