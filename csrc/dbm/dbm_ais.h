// The DBM AIS loop, shared by the CPU and generic kernels (csrc/dbm/dbm.cpp) and the CUDA kernel
// (cuda/dbm/dbm.cu): they differ only in how they make each even layer's part of a temperature.
#pragma once

#include <optional>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace dgm_fast {

// The checks of dbm_ais, the same on every device.
void check_ais_args(at::TensorList odd_states, at::TensorList weights, at::TensorList biases,
                    at::TensorList base, at::ArrayRef<double> betas, const char* op);

// One even layer at one temperature: log_w [R] (float64) += sum_j softplus(beta x + (1 - beta) a)
// - softplus(previous x + (1 - previous) a) per run, from x [R, n] (the layer's input, bias
// included) and a [n] (the base model's biases); returns the logits x * beta + a * (1 - beta) in
// x's dtype when `logits`, else an undefined tensor.
using AisEven = at::Tensor (*)(const at::Tensor& x, const at::Tensor& a, double beta, double previous,
                               bool logits, at::Tensor& log_w);

// That part with ATen ops (any device and dtype).
at::Tensor ais_even_generic(const at::Tensor& x, const at::Tensor& a, double beta, double previous, bool logits,
                            at::Tensor& log_w);

// The whole AIS of dbm_ais (its comment in dbm.cpp), arguments already checked.
at::Tensor ais_loop(at::TensorList odd_states, at::TensorList weights, at::TensorList biases,
                    at::TensorList base, at::ArrayRef<double> betas,
                    const std::optional<at::Generator>& generator, AisEven ais_even);

}  // namespace dgm_fast
