// CPU kernel of rbm_train_epoch_ (the device-generic composite is in rbm_train_epoch.cpp).
//
// At the small end (64 x 100, batches of 10) an update's products take a few microseconds and
// the composite spends three times that in ATen calls: dispatch, an allocation per result,
// argument checks, per op. Here the buffers are allocated once per call and each update makes,
// on raw memory, the same calls those ops end in:
//   * the products: the BLAS gemm that ATen's CPU addmm/mm make (MKL's sgemm_/dgemm_, exported
//     by libtorch_cpu), with the transpositions and leading dimensions addmm_impl_cpu_ picks for
//     these row-major operands, and the bias copied into the result first when there is one;
//   * the samplers' own loops (bernoulli_logits_into), each call with its own Philox offset
//     from the generator, as an op call takes it;
//   * torch's sigmoid (at::sigmoid_out into a preallocated tensor);
//   * rbm_sgd_update_'s CPU passes (sgd_update_passes).
// So the bits are the composite's, which are the Python loop's (tests/ops/test_rbm_train_epoch.py
// checks it at several thread counts). Anything else (other dtypes, strided tensors, a matrix
// dimension of 1, where ATen's gemm arguments differ, or a torch without an exported BLAS) takes
// the composite.
#include <algorithm>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "common/philox_cpu_state.h"
#include "rbm/rbm_checks.h"
#include "samplers/samplers_cpu.h"

// The Fortran BLAS of torch's CPU library (weak: a torch built without one takes the composite).
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc) __attribute__((weak));
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc) __attribute__((weak));
}

namespace dgm_fast {
namespace {

using Tensor = at::Tensor;

// Column-major C[m, n] = alpha A B + beta C, as at::native::cpublas::gemm hands it to BLAS.
void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int m_ = m, n_ = n, k_ = k, lda_ = lda, ldb_ = ldb, ldc_ = ldc;
  sgemm_(&ta, &tb, &m_, &n_, &k_, &alpha, a, &lda_, b, &ldb_, &beta, c, &ldc_);
}
void gemm(char ta, char tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  const int m_ = m, n_ = n, k_ = k, lda_ = lda, ldb_ = ldb, ldc_ = ldc;
  dgemm_(&ta, &tb, &m_, &n_, &k_, &alpha, a, &lda_, b, &ldb_, &beta, c, &ldc_);
}
template <typename T>
bool have_blas();
template <>
bool have_blas<float>() { return sgemm_ != nullptr; }
template <>
bool have_blas<double>() { return dgemm_ != nullptr; }

// The row-major products of an update, with the gemm arguments ATen's addmm_impl_cpu_ derives
// for contiguous row-major operands whose dimensions all exceed 1 (it swaps the operands so as to
// compute the transposed, column-major product).
template <typename T>
struct Products {
  const T* w;  // [V, H]
  int64_t nv, nh;
  // out[r, H] = x[r, V] W (at::mm), or bias + x W (at::addmm): the bias rows are copied in first.
  void hidden(const T* x, int64_t rows, T* out, const T* bias) const {
    if (bias != nullptr) {
      for (int64_t r = 0; r < rows; ++r) std::copy(bias, bias + nh, out + r * nh);
    }
    gemm('n', 'n', nh, rows, nv, T(1), w, nh, x, nv, bias != nullptr ? T(1) : T(0), out, nh);
  }
  // out[r, V] = h[r, H] W^T (at::mm(h, W.t())).
  void visible(const T* h, int64_t rows, T* out) const {
    gemm('t', 'n', nv, rows, nh, T(1), w, nh, h, nh, T(0), out, nv);
  }
  // buf[V, H] = beta buf + alpha v^T h (buf.addmm_(v.t(), h, beta, alpha)).
  void outer(const T* v, const T* h, int64_t rows, double alpha, double beta, T* buf) const {
    gemm('n', 't', nh, nv, rows, static_cast<T>(alpha), h, nh, v, nv, static_cast<T>(beta), buf, nh);
  }
};

template <typename T>
void sample(const std::optional<at::Generator>& generator, const T* logits, const T* bias, int64_t width,
            T* out, T* probs, int64_t n) {
  const PhiloxSeedOffset so = next_cpu_philox(generator);
  check_no_nan_logits(bernoulli_logits_into(so, logits, bias, width, out, probs, n), n, bias != nullptr);
}

template <typename T>
void train_epoch(const Tensor& weight, const Tensor& visible_bias, const Tensor& hidden_bias,
                 const Tensor& weight_momentum, const Tensor& visible_momentum, const Tensor& hidden_momentum,
                 const std::optional<Tensor>& chains, const Tensor& data, int64_t batch_size, int64_t k,
                 EpochChains kind, double lr, double momentum, double weight_decay,
                 const std::optional<at::Generator>& generator) {
  const int64_t nv = weight.size(0), nh = weight.size(1), n = data.size(0);
  const int64_t n_chains = kind == EpochChains::kNone ? batch_size : chains->size(0);
  const int64_t rows = std::max(batch_size, n_chains);
  const Products<T> mm{weight.const_data_ptr<T>(), nv, nh};
  T* w = weight.mutable_data_ptr<T>();
  T* b = visible_bias.mutable_data_ptr<T>();
  T* c = hidden_bias.mutable_data_ptr<T>();
  T* mw = weight_momentum.mutable_data_ptr<T>();
  T* mb = visible_momentum.mutable_data_ptr<T>();
  T* mc = hidden_momentum.mutable_data_ptr<T>();
  T* chain = chains.has_value() ? chains->mutable_data_ptr<T>() : nullptr;
  const T* x = data.const_data_ptr<T>();
  // Scratch: hidden pre-activations and samples, the data's hidden means, the negative
  // phase's visible states and hidden means.
  const auto opts = data.options();
  Tensor pre_h = at::empty({rows, nh}, opts), h_sample = at::empty({rows, nh}, opts);
  Tensor h_data = at::empty({batch_size, nh}, opts), h_model = at::empty({rows, nh}, opts);
  Tensor pre_v = at::empty({rows, nv}, opts), v_model = at::empty({rows, nv}, opts);
  Tensor h_probs = at::empty({rows, nh}, opts);  // the chain's first hidden means (CD's h_data)
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t bd = std::min(batch_size, n - start);
    const T* v = x + start * nv;
    const int64_t bm = kind == EpochChains::kNone ? bd : n_chains;
    const T* hd = nullptr;
    T* vm = v_model.mutable_data_ptr<T>();
    T* hm = h_model.mutable_data_ptr<T>();
    if (kind != EpochChains::kNone) {  // h_data = sigmoid(hidden_bias + v W)
      mm.hidden(v, bd, pre_h.mutable_data_ptr<T>(), c);
      Tensor out = h_data.narrow(0, 0, bd);
      at::sigmoid_out(out, pre_h.narrow(0, 0, bd));
      hd = h_data.const_data_ptr<T>();
    }
    if (kind == EpochChains::kHidden) {
      // v_model ~ p(v | h_chains); (h_next, h_model) = bernoulli_logits(hidden_bias + v_model W).
      mm.visible(chain, bm, pre_v.mutable_data_ptr<T>());
      sample(generator, pre_v.const_data_ptr<T>(), b, nv, vm, static_cast<T*>(nullptr), bm * nv);
      mm.hidden(vm, bm, pre_h.mutable_data_ptr<T>(), c);
      sample(generator, pre_h.const_data_ptr<T>(), static_cast<const T*>(nullptr), 1, chain, hm, bm * nh);
    } else {
      // rbm_gibbs_chain(start, k): h ~ p(h | start) (with its means), then k sweeps, then the
      // hidden means of the last visible states.
      const T* from = kind == EpochChains::kNone ? v : chain;
      T* hs = h_sample.mutable_data_ptr<T>();
      mm.hidden(from, bm, pre_h.mutable_data_ptr<T>(), nullptr);
      sample(generator, pre_h.const_data_ptr<T>(), static_cast<const T*>(c), nh, hs,
             h_probs.mutable_data_ptr<T>(), bm * nh);
      for (int64_t t = 0; t < k; ++t) {
        mm.visible(hs, bm, pre_v.mutable_data_ptr<T>());
        sample(generator, pre_v.const_data_ptr<T>(), static_cast<const T*>(b), nv, vm, static_cast<T*>(nullptr), bm * nv);
        if (t + 1 < k) {
          mm.hidden(vm, bm, pre_h.mutable_data_ptr<T>(), nullptr);
          sample(generator, pre_h.const_data_ptr<T>(), static_cast<const T*>(c), nh, hs, static_cast<T*>(nullptr), bm * nh);
        }
      }
      mm.hidden(vm, bm, pre_h.mutable_data_ptr<T>(), c);
      Tensor out = h_model.narrow(0, 0, bm);
      at::sigmoid_out(out, pre_h.narrow(0, 0, bm));
      if (kind == EpochChains::kNone) {
        hd = h_probs.const_data_ptr<T>();
      } else {
        std::copy(vm, vm + bm * nv, chain);
      }
    }
    // rbm_sgd_update_: the two phases' products into the weight's momentum, then the passes.
    mm.outer(v, hd, bd, -1.0 / static_cast<double>(bd), momentum, mw);
    mm.outer(vm, hm, bm, 1.0 / static_cast<double>(bm), 1.0, mw);
    sgd_update_passes<T>(w, mw, b, mb, c, mc, v, hd, bd, vm, hm, bm, nv, nh, lr, momentum, weight_decay);
  }
}

bool all_contiguous(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (!t->is_contiguous()) return false;
  return true;
}

void rbm_train_epoch_cpu(const Tensor& weight, const Tensor& visible_bias, const Tensor& hidden_bias,
                         const Tensor& weight_momentum, const Tensor& visible_momentum,
                         const Tensor& hidden_momentum, const std::optional<Tensor>& chains, const Tensor& data,
                         int64_t batch_size, int64_t k, c10::string_view chains_hold, double lr, double momentum,
                         double weight_decay, std::optional<at::Generator> generator) {
  const EpochChains kind = check_train_epoch(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum,
                                             hidden_momentum, chains, data, batch_size, k, chains_hold, lr, momentum,
                                             weight_decay);
  const auto type = weight.scalar_type();
  const int64_t nv = weight.size(0), nh = weight.size(1), n = data.size(0);
  const int64_t n_chains = chains.has_value() ? chains->size(0) : 2;
  // Every matrix dimension above 1 (a batch of one row included), so that ATen's gemm arguments
  // are the ones Products derives.
  const bool shapes = nv > 1 && nh > 1 && n_chains > 1 && std::min(batch_size, n) > 1 &&
                      (n % batch_size == 0 || n % batch_size > 1);
  const bool blas = type == at::kFloat ? have_blas<float>() : type == at::kDouble ? have_blas<double>() : false;
  if (!blas || !shapes ||
      !all_contiguous({&weight, &visible_bias, &hidden_bias, &weight_momentum, &visible_momentum,
                       &hidden_momentum, &data}) ||
      (chains.has_value() && !chains->is_contiguous())) {
    rbm_train_batches(kind, data, batch_size, 0, (n + batch_size - 1) / batch_size, weight, visible_bias,
                      hidden_bias, weight_momentum, visible_momentum, hidden_momentum, chains, k, lr, momentum,
                      weight_decay, generator);
    return;
  }
  AT_DISPATCH_FLOATING_TYPES(type, "rbm_train_epoch_cpu", [&] {
    train_epoch<scalar_t>(weight, visible_bias, hidden_bias, weight_momentum, visible_momentum, hidden_momentum,
                          chains, data, batch_size, k, kind, lr, momentum, weight_decay, generator);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(dgm_fast, CPU, m) {
  m.impl("rbm_train_epoch_", &rbm_train_epoch_cpu);
}

}  // namespace dgm_fast
