// Checks of the RBM ops, shared by the device-generic composites (rbm.cpp) and the device
// kernels that specialise them (rbm_sgd_update.cpp).
#pragma once

#include <optional>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

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

// Whether a and b may read or write the same bytes: the same storage and intersecting extents.
bool may_share_memory(const at::Tensor& a, const at::Tensor& b);

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

// rbm_sgd_update_'s CPU kernel after its two products (which have accumulated the phases into
// the weight's momentum buffer `buf`): the weight decay and weight step, then the bias
// gradients, momentum and steps. Contiguous operands.
template <typename scalar_t>
void sgd_update_passes(scalar_t* w, scalar_t* buf, scalar_t* b, scalar_t* b_buf, scalar_t* c, scalar_t* c_buf,
                       const scalar_t* vd, const scalar_t* hd, int64_t bd, const scalar_t* vm,
                       const scalar_t* hm, int64_t bm, int64_t nv, int64_t nh, double lr, double momentum,
                       double weight_decay);

// The kind of persistent chains of rbm_train_epoch_.
enum class EpochChains { kNone, kVisible, kHidden };

// rbm_train_epoch_'s checks, before anything changes: shapes, dtypes, devices, k, the update's
// arguments, and (on the CPU) finite data. Returns the kind of chains.
EpochChains check_train_epoch(const at::Tensor& weight, const at::Tensor& visible_bias,
                              const at::Tensor& hidden_bias, const at::Tensor& weight_momentum,
                              const at::Tensor& visible_momentum, const at::Tensor& hidden_momentum,
                              const std::optional<at::Tensor>& chains, const at::Tensor& data,
                              int64_t batch_size, int64_t k, c10::string_view chains_hold, double lr,
                              double momentum, double weight_decay);

// The updates of rbm_train_epoch_ for batches [first, last) of data, through the per-update ops
// (any device): the composite's loop, and the fallback of the device kernels.
void rbm_train_batches(EpochChains kind, const at::Tensor& data, int64_t batch_size, int64_t first, int64_t last,
                       const at::Tensor& weight, const at::Tensor& visible_bias, const at::Tensor& hidden_bias,
                       const at::Tensor& weight_momentum, const at::Tensor& visible_momentum,
                       const at::Tensor& hidden_momentum, const std::optional<at::Tensor>& chains, int64_t k,
                       double lr, double momentum, double weight_decay,
                       const std::optional<at::Generator>& generator);

}  // namespace dgm_fast
