// rbm_train_epoch_: many training updates of an RBM in one native call, e.g. a whole epoch of
// CD-k or PCD-k over a data tensor, in minibatches, each update SGD with momentum.
//
// Why: at the small end (64 visible, 100 hidden, batches of 10) the products of an update take a
// few microseconds, and a Python loop of the per-update ops spends ten times that in Python, the
// DataLoader and the dispatcher. Here the loop over the minibatches is C++.
//
// Each update is exactly what the per-update path does, op for op, so the bits are those of the
// Python loop with the same generator (tests/ops/test_rbm_train_epoch.py):
//   CD-k    (chains None):             h_data, v_model, h_model = rbm_gibbs_chain(v, ..., k)
//   PCD-k   (chains [C, V] visible):   h_data = sigmoid(hidden_bias + v W)
//                                      _, v_model, h_model = rbm_gibbs_chain(chains, ..., k)
//                                      chains <- v_model
//   scikit-learn's PCD (chains [C, H] hidden states, k = 1):
//                                      h_data = sigmoid(hidden_bias + v W)
//                                      v_model = bernoulli_logits(h_chains W^T, visible_bias)
//                                      h_next, h_model = bernoulli_logits(hidden_bias + v_model W)
//                                      chains <- h_next
//   then                               rbm_sgd_update_(..., v, h_data, v_model, h_model, lr, ...)
// The ops are called through the dispatcher, so the op runs on every device whose kernels they
// have (CPU, CUDA, meta), and each sampler call takes its Philox offset from the generator as
// the same call from Python would.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include "rbm/rbm_checks.h"

namespace dgm_fast {
namespace {

using Tensor = at::Tensor;

struct Ops {
  c10::TypedOperatorHandle<std::tuple<Tensor, Tensor, Tensor>(
      const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, c10::string_view,
      c10::string_view, const std::optional<Tensor>&, const std::optional<Tensor>&, bool,
      std::optional<at::ScalarType>, std::optional<at::Generator>)>
      chain;
  c10::TypedOperatorHandle<std::tuple<Tensor, Tensor>(const Tensor&, const std::optional<Tensor>&,
                                                      std::optional<at::Generator>, bool)>
      bernoulli_logits;
  c10::TypedOperatorHandle<void(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                const Tensor&, const Tensor&, double, double, double,
                                const std::optional<Tensor>&)>
      sgd_update;

  static const Ops& get() {
    static const Ops ops = [] {
      auto& d = c10::Dispatcher::singleton();
      return Ops{
          d.findSchemaOrThrow("dgm_fast::rbm_gibbs_chain", "")
              .typed<std::tuple<Tensor, Tensor, Tensor>(
                  const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t,
                  c10::string_view, c10::string_view, const std::optional<Tensor>&,
                  const std::optional<Tensor>&, bool, std::optional<at::ScalarType>,
                  std::optional<at::Generator>)>(),
          d.findSchemaOrThrow("dgm_fast::bernoulli_logits", "")
              .typed<std::tuple<Tensor, Tensor>(const Tensor&, const std::optional<Tensor>&,
                                                std::optional<at::Generator>, bool)>(),
          d.findSchemaOrThrow("dgm_fast::rbm_sgd_update_", "")
              .typed<void(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                          const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                          double, double, double, const std::optional<Tensor>&)>(),
      };
    }();
    return ops;
  }
};

using Chains = EpochChains;

}  // namespace

namespace {

EpochChains check_shapes(const Tensor& weight, const std::optional<Tensor>& chains, const Tensor& data,
                         int64_t batch_size, int64_t k, c10::string_view chains_hold) {
  constexpr const char* op = "rbm_train_epoch_";
  TORCH_CHECK_VALUE(weight.dim() == 2, op, ": weight must be [n_visible, n_hidden], got ", weight.sizes());
  const int64_t nv = weight.size(0), nh = weight.size(1);
  TORCH_CHECK_VALUE(data.dim() == 2 && data.size(1) == nv && data.size(0) > 0, op,
                    ": data must be a non-empty [n_samples, ", nv, "] matrix, got ", data.sizes());
  TORCH_CHECK_TYPE(data.scalar_type() == weight.scalar_type(), op, ": data has dtype ",
                   data.scalar_type(), " but weight has ", weight.scalar_type());
  TORCH_CHECK(data.device() == weight.device(), op, ": data is on ", data.device(),
              " but weight is on ", weight.device());
  TORCH_CHECK_VALUE(batch_size >= 1, op, ": batch_size must be at least 1, got ", batch_size);
  TORCH_CHECK_VALUE(k >= 1, op, ": k must be at least 1, got ", k);
  TORCH_CHECK_VALUE(chains_hold == "visible" || chains_hold == "hidden", op,
                    ": chains_hold must be 'visible' or 'hidden', got '", chains_hold, "'");
  if (!chains.has_value()) return Chains::kNone;
  const bool hidden = chains_hold == "hidden";
  const int64_t width = hidden ? nh : nv;
  TORCH_CHECK_VALUE(chains->dim() == 2 && chains->size(1) == width && chains->size(0) > 0, op,
                    ": chains holding ", chains_hold, " states must be a non-empty [n_chains, ", width,
                    "] matrix, got ", chains->sizes());
  TORCH_CHECK_TYPE(chains->scalar_type() == weight.scalar_type(), op, ": chains have dtype ",
                   chains->scalar_type(), " but weight has ", weight.scalar_type());
  TORCH_CHECK(chains->device() == weight.device(), op, ": chains are on ", chains->device(),
              " but weight is on ", weight.device());
  TORCH_CHECK_VALUE(!hidden || k == 1, op,
                    ": chains holding hidden states advance one half-step per update (scikit-learn's "
                    "PCD); k must be 1, got ", k);
  return hidden ? Chains::kHidden : Chains::kVisible;
}

}  // namespace

EpochChains check_train_epoch(const Tensor& weight, const Tensor& visible_bias, const Tensor& hidden_bias,
                              const Tensor& weight_momentum, const Tensor& visible_momentum,
                              const Tensor& hidden_momentum, const std::optional<Tensor>& chains,
                              const Tensor& data, int64_t batch_size, int64_t k, c10::string_view chains_hold,
                              double lr, double momentum, double weight_decay) {
  const Chains kind = check_shapes(weight, chains, data, batch_size, k, chains_hold);
  // Checked before the first update, so that bad input changes nothing: the update's own checks
  // run per batch, and the samplers would refuse a NaN only batches later.
  const Tensor first = data.narrow(0, 0, std::min(batch_size, data.size(0)));
  const int64_t bm = kind == Chains::kNone ? first.size(0) : chains->size(0);
  const auto opts = first.options();
  if (chains.has_value() && !data.is_meta()) {  // the chains are written while the others are read
    const std::pair<const Tensor*, const char*> others[] = {
        {&data, "data"}, {&weight, "weight"}, {&visible_bias, "visible_bias"}, {&hidden_bias, "hidden_bias"},
        {&weight_momentum, "weight_momentum"}, {&visible_momentum, "visible_momentum"},
        {&hidden_momentum, "hidden_momentum"}};
    for (const auto& [t, name] : others) {
      TORCH_CHECK_VALUE(!may_share_memory(*chains, *t), "rbm_train_epoch_: chains share memory with ", name,
                        "; pass a tensor of their own");
    }
  }
  check_sgd_update_args(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum, hidden_momentum,
                        first, at::empty({first.size(0), weight.size(1)}, opts), at::empty({bm, weight.size(0)}, opts),
                        at::empty({bm, weight.size(1)}, opts), lr, momentum, weight_decay, std::nullopt);
  // On the CPU (as the samplers there do) NaN is refused up front; on a GPU, as its samplers do,
  // NaN propagates instead: refusing it would synchronise the device (and break graph capture).
  if (data.is_cpu()) {
    TORCH_CHECK_VALUE(at::isfinite(data).all().item<bool>(), "rbm_train_epoch_: data contains NaN or Inf");
  }
  return kind;
}

void rbm_train_epoch_generic(const Tensor& weight, const Tensor& visible_bias, const Tensor& hidden_bias,
                             const Tensor& weight_momentum, const Tensor& visible_momentum,
                             const Tensor& hidden_momentum, const std::optional<Tensor>& chains,
                             const Tensor& data, int64_t batch_size, int64_t k,
                             c10::string_view chains_hold, double lr, double momentum,
                             double weight_decay, std::optional<at::Generator> generator) {
  const Chains kind = check_train_epoch(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum,
                                        hidden_momentum, chains, data, batch_size, k, chains_hold, lr, momentum,
                                        weight_decay);
  const int64_t n_batches = (data.size(0) + batch_size - 1) / batch_size;
  rbm_train_batches(kind, data, batch_size, 0, n_batches, weight, visible_bias, hidden_bias, weight_momentum,
                    visible_momentum, hidden_momentum, chains, k, lr, momentum, weight_decay, generator);
}

namespace {

// One update on the batch v, through the per-update ops.
void train_batch(EpochChains kind, const Tensor& v, const Tensor& weight, const Tensor& visible_bias,
                 const Tensor& hidden_bias, const Tensor& weight_momentum, const Tensor& visible_momentum,
                 const Tensor& hidden_momentum, const std::optional<Tensor>& chains, int64_t k, double lr,
                 double momentum, double weight_decay, const std::optional<at::Generator>& generator) {
  const Ops& ops = Ops::get();
  Tensor h_data, v_model, h_model;
  switch (kind) {
    case Chains::kNone:
      std::tie(h_data, v_model, h_model) = ops.chain.call(
          v, weight, visible_bias, hidden_bias, k, "bernoulli", "bernoulli", std::nullopt,
          std::nullopt, true, std::nullopt, generator);
      break;
    case Chains::kVisible: {
      h_data = at::sigmoid(at::addmm(hidden_bias, v, weight));
      std::tie(std::ignore, v_model, h_model) = ops.chain.call(
          *chains, weight, visible_bias, hidden_bias, k, "bernoulli", "bernoulli", std::nullopt,
          std::nullopt, true, std::nullopt, generator);
      chains->copy_(v_model);
      break;
    }
    case Chains::kHidden: {
      h_data = at::sigmoid(at::addmm(hidden_bias, v, weight));
      v_model = std::get<0>(ops.bernoulli_logits.call(at::mm(*chains, weight.t()), visible_bias, generator, false));
      Tensor h_next;
      std::tie(h_next, h_model) =
          ops.bernoulli_logits.call(at::addmm(hidden_bias, v_model, weight), std::nullopt, generator, true);
      chains->copy_(h_next);
      break;
    }
  }
  ops.sgd_update.call(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum, hidden_momentum, v,
                      h_data, v_model, h_model, lr, momentum, weight_decay, std::nullopt);
}

}  // namespace

void rbm_train_batches(EpochChains kind, const Tensor& data, int64_t batch_size, int64_t first, int64_t last,
                       const Tensor& weight, const Tensor& visible_bias, const Tensor& hidden_bias,
                       const Tensor& weight_momentum, const Tensor& visible_momentum, const Tensor& hidden_momentum,
                       const std::optional<Tensor>& chains, int64_t k, double lr, double momentum,
                       double weight_decay, const std::optional<at::Generator>& generator) {
  const int64_t n = data.size(0);
  for (int64_t i = first; i < last; ++i) {
    const int64_t start = i * batch_size;
    train_batch(kind, data.narrow(0, start, std::min(batch_size, n - start)), weight, visible_bias, hidden_bias,
                weight_momentum, visible_momentum, hidden_momentum, chains, k, lr, momentum, weight_decay,
                generator);
  }
}

namespace {

// The Autograd kernel: as rbm_sgd_update_'s, refuses tensors that require grad under grad mode
// and bumps the version counter of everything written.
void rbm_train_epoch_autograd(const Tensor& weight, const Tensor& visible_bias, const Tensor& hidden_bias,
                              const Tensor& weight_momentum, const Tensor& visible_momentum,
                              const Tensor& hidden_momentum, const std::optional<Tensor>& chains,
                              const Tensor& data, int64_t batch_size, int64_t k,
                              c10::string_view chains_hold, double lr, double momentum,
                              double weight_decay, std::optional<at::Generator> generator) {
  std::vector<std::pair<const Tensor*, const char*>> written = {
      {&weight, "weight"}, {&visible_bias, "visible_bias"}, {&hidden_bias, "hidden_bias"},
      {&weight_momentum, "weight_momentum"}, {&visible_momentum, "visible_momentum"},
      {&hidden_momentum, "hidden_momentum"}};
  if (chains.has_value()) written.push_back({&*chains, "chains"});
  if (at::GradMode::is_enabled()) {
    for (const auto& [t, name] : written) {
      TORCH_CHECK(!t->requires_grad(), "rbm_train_epoch_: ", name,
                  " requires grad, and training is not differentiable: pass its .detach() (it "
                  "shares the version counter) or call under torch.no_grad(), as optimizers do");
    }
  }
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;  // on to the device's kernel
    static const auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("dgm_fast::rbm_train_epoch_", "")
            .typed<void(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        const Tensor&, const std::optional<Tensor>&, const Tensor&, int64_t, int64_t,
                        c10::string_view, double, double, double, std::optional<at::Generator>)>();
    op.call(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum, hidden_momentum, chains,
            data, batch_size, k, chains_hold, lr, momentum, weight_decay, std::move(generator));
  }
  for (const auto& [t, name] : written) t->unsafeGetTensorImpl()->bump_version();
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(dgm_fast, m) {
  m.def(
      "rbm_train_epoch_(Tensor(a!) weight, Tensor(b!) visible_bias, Tensor(c!) hidden_bias, "
      "Tensor(d!) weight_momentum, Tensor(e!) visible_momentum, Tensor(f!) hidden_momentum, "
      "Tensor(g!)? chains, Tensor data, int batch_size, *, int k=1, str chains_hold=\"visible\", "
      "float lr, float momentum, float weight_decay=0.0, Generator? generator=None) -> ()",
      {at::Tag::nondeterministic_seeded});
}

TORCH_LIBRARY_IMPL(dgm_fast, CompositeExplicitAutograd, m) {
  m.impl("rbm_train_epoch_", &rbm_train_epoch_generic);
}

TORCH_LIBRARY_IMPL(dgm_fast, Autograd, m) {
  m.impl("rbm_train_epoch_", &rbm_train_epoch_autograd);
}

}  // namespace dgm_fast
