// The samplers: bernoulli_logits, normal_reparam and uniform_bits. This file defines the dgm_fast
// op library (TORCH_LIBRARY; every other family adds a TORCH_LIBRARY_FRAGMENT), the samplers'
// schemas, the BackendSelect kernel of uniform_bits and the CPU kernels. CUDA kernels:
// cuda/samplers/samplers.cu; fake kernels and autograd: python/dgm_fast/ops/samplers.py;
// plain-PyTorch definitions: python/dgm_fast/reference/samplers.py.
//
// CPU kernels:
// Work is split into chunks of kChunk elements over at::parallel_for; element i always takes
// word i of the call's Philox stream, so results do not depend on the thread count. Inside a
// chunk each stage (Philox words, sigmoid, comparison, Box-Muller, ...) runs as one vectorised
// loop over local buffers (samplers_loops.h: one variant per instruction set, identical bits).
#include <algorithm>
#include <atomic>
#include <type_traits>

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <c10/core/DispatchKeySet.h>
#include <torch/library.h>

#include "dgm_fast/samplers.h"
#include "common/philox_cpu_state.h"
#include "samplers/samplers_checks.h"
#include "samplers/samplers_cpu.h"
#include "samplers/samplers_loops.h"

namespace dgm_fast {
namespace {

constexpr int64_t kChunk = 1024;     // elements; a multiple of 4 (one Philox block)
constexpr int64_t kGrainChunks = 8;  // chunks per parallel task

// The loop variant for this CPU, per compute type.
struct Loops {
  const SamplerLoops& l = samplers_loops();
  void sigmoid(float* v, int64_t n) const { l.sigmoid_f32(v, n); }
  void sigmoid(double* v, int64_t n) const { l.sigmoid_f64(v, n); }
  int64_t bernoulli(const float* p, const uint32_t* w, float* s, int64_t n) const {
    return l.bernoulli_f32(p, w, s, n);
  }
  int64_t bernoulli(const double* p, const uint32_t* w, double* s, int64_t n) const {
    return l.bernoulli_f64(p, w, s, n);
  }
  void normals(const uint32_t* w, int64_t blocks, float* z) const { l.normals_f32(w, blocks, z); }
  void normals(const uint32_t* w, int64_t blocks, double* z) const { l.normals_f64(w, blocks, z); }
  void reparam(const float* m, const float* lv, const float* e, float* z, int64_t n) const {
    l.reparam_f32(m, lv, e, z, n);
  }
  void reparam(const double* m, const double* lv, const double* e, double* z, int64_t n) const {
    l.reparam_f64(m, lv, e, z, n);
  }
};

// ---- chunking ----------------------------------------------------------------------------------

// The chunks of [0, n), in parallel: body(first_element, length).
template <typename Body>
void for_each_chunk(int64_t n, const Body& body) {
  at::parallel_for(0, (n + kChunk - 1) / kChunk, kGrainChunks, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t first = c * kChunk;
      body(first, std::min(kChunk, n - first));
    }
  });
}

template <typename To, typename From>
void convert(const From* src, To* dst, int64_t len) {
  for (int64_t i = 0; i < len; ++i) dst[i] = static_cast<To>(src[i]);
}

// One chunk of bernoulli_logits: elements [first, first + len). Returns the number of NaNs.
template <typename scalar_t>
int64_t bernoulli_chunk(const PhiloxSeedOffset& so, const scalar_t* logits, const scalar_t* bias,
                        int64_t width, scalar_t* sample, scalar_t* probs, int64_t first,
                        int64_t len) {
  using acc_t = at::opmath_type<scalar_t>;
  const Loops loops;
  alignas(64) uint32_t words[kChunk];
  alignas(64) acc_t p[kChunk];
  loops.l.philox_fill(so.seed, so.offset, static_cast<uint64_t>(first / 4), len, words);
  const scalar_t* x = logits + first;
  if (bias != nullptr) {  // row segments, so that the bias index needs no division
    int64_t col = first % width;
    for (int64_t i = 0; i < len;) {
      const int64_t seg = std::min(len - i, width - col);
      for (int64_t j = 0; j < seg; ++j)
        p[i + j] = pm::add(static_cast<acc_t>(x[i + j]), static_cast<acc_t>(bias[col + j]));
      i += seg;
      col = 0;
    }
  } else {
    convert(x, p, len);
  }
  loops.sigmoid(p, len);
  int64_t nans;
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    nans = loops.bernoulli(p, words, sample + first, len);
  } else {
    alignas(64) acc_t s[kChunk];
    nans = loops.bernoulli(p, words, s, len);
    convert(s, sample + first, len);
  }
  if (probs != nullptr) convert(p, probs + first, len);
  return nans;
}

}  // namespace

template <typename scalar_t>
int64_t bernoulli_logits_into(const PhiloxSeedOffset& so, const scalar_t* logits, const scalar_t* bias,
                              int64_t width, scalar_t* sample, scalar_t* probs, int64_t n) {
  std::atomic<int64_t> nan_count{0};
  for_each_chunk(n, [&](int64_t first, int64_t len) {
    const int64_t nans = bernoulli_chunk(so, logits, bias, width, sample, probs, first, len);
    if (nans != 0) nan_count += nans;
  });
  return nan_count.load();
}

template int64_t bernoulli_logits_into<float>(const PhiloxSeedOffset&, const float*, const float*, int64_t,
                                              float*, float*, int64_t);
template int64_t bernoulli_logits_into<double>(const PhiloxSeedOffset&, const double*, const double*, int64_t,
                                               double*, double*, int64_t);
template int64_t bernoulli_logits_into<at::BFloat16>(const PhiloxSeedOffset&, const at::BFloat16*,
                                                     const at::BFloat16*, int64_t, at::BFloat16*,
                                                     at::BFloat16*, int64_t);
template int64_t bernoulli_logits_into<at::Half>(const PhiloxSeedOffset&, const at::Half*, const at::Half*,
                                                 int64_t, at::Half*, at::Half*, int64_t);

namespace {

// One chunk of normal_reparam: elements [first, first + len).
template <typename scalar_t>
void normal_reparam_chunk(const PhiloxSeedOffset& so, const scalar_t* mu, const scalar_t* log_var,
                          scalar_t* z, scalar_t* eps, int64_t first, int64_t len) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int64_t kPer = NormalsPerBlock<acc_t>::value;
  const int64_t n_blocks = (len + kPer - 1) / kPer;
  alignas(64) uint32_t words[kChunk / kPer * 4];
  alignas(64) acc_t normals[kChunk];
  const Loops loops;
  loops.l.philox_fill(so.seed, so.offset, static_cast<uint64_t>(first / kPer), 4 * n_blocks, words);
  loops.normals(words, n_blocks, normals);
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    std::copy(normals, normals + len, eps + first);
    loops.reparam(mu + first, log_var + first, normals, z + first, len);
  } else {
    // eps is rounded to the output dtype before z is formed, so that z = mu + std * eps holds
    // for the eps the caller sees.
    alignas(64) acc_t mu_c[kChunk], lv_c[kChunk], z_c[kChunk];
    convert(normals, eps + first, len);
    convert(eps + first, normals, len);
    convert(mu + first, mu_c, len);
    convert(log_var + first, lv_c, len);
    loops.reparam(mu_c, lv_c, normals, z_c, len);
    convert(z_c, z + first, len);
  }
}

// ---- ops ---------------------------------------------------------------------------------------

std::tuple<at::Tensor, at::Tensor> bernoulli_logits_cpu(const at::Tensor& logits,  // [..., H]
                                                        const std::optional<at::Tensor>& bias,  // [H]
                                                        std::optional<at::Generator> generator,
                                                        bool return_probs) {
  check_bernoulli_logits_args(logits, bias);
  const at::Tensor x = logits.contiguous();
  const bool has_bias = bias.has_value() && bias->defined();
  const at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();
  at::Tensor sample = at::empty(x.sizes(), x.options());
  at::Tensor probs = at::empty(return_probs ? x.sizes() : at::IntArrayRef{0}, x.options());
  const int64_t n = x.numel();
  if (n == 0) return {sample, probs};
  const PhiloxSeedOffset so = next_cpu_philox(generator);
  const int64_t width = has_bias ? b.numel() : 1;
  int64_t nan_count = 0;

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "bernoulli_logits_cpu", [&] {
    nan_count = bernoulli_logits_into(so, x.const_data_ptr<scalar_t>(),
                                      has_bias ? b.const_data_ptr<scalar_t>() : nullptr, width,
                                      sample.mutable_data_ptr<scalar_t>(),
                                      return_probs ? probs.mutable_data_ptr<scalar_t>() : nullptr, n);
  });
  check_no_nan_logits(nan_count, n, has_bias);
  return {sample, probs};
}

std::tuple<at::Tensor, at::Tensor> normal_reparam_cpu(const at::Tensor& mu,       // [*]
                                                      const at::Tensor& log_var,  // [*]
                                                      std::optional<at::Generator> generator) {
  check_normal_reparam_args(mu, log_var);
  const at::Tensor m = mu.contiguous();
  const at::Tensor lv = log_var.contiguous();
  at::Tensor z = at::empty(m.sizes(), m.options());
  at::Tensor eps = at::empty(m.sizes(), m.options());
  const int64_t n = m.numel();
  if (n == 0) return {z, eps};
  const PhiloxSeedOffset so = next_cpu_philox(generator);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, m.scalar_type(), "normal_reparam_cpu", [&] {
    const scalar_t* mp = m.const_data_ptr<scalar_t>();
    const scalar_t* lp = lv.const_data_ptr<scalar_t>();
    scalar_t* zp = z.mutable_data_ptr<scalar_t>();
    scalar_t* ep = eps.mutable_data_ptr<scalar_t>();
    for_each_chunk(n, [&](int64_t first, int64_t len) {
      normal_reparam_chunk(so, mp, lp, zp, ep, first, len);
    });
  });
  return {z, eps};
}

at::Tensor uniform_bits_cpu(at::IntArrayRef size, std::optional<at::Generator> generator,
                            std::optional<at::Device> /*device: the CPU, chosen by dispatch*/) {
  at::Tensor out = at::empty(size, at::TensorOptions().dtype(at::kUInt32).device(at::kCPU));
  const int64_t n = out.numel();
  if (n == 0) return out;
  const PhiloxSeedOffset so = next_cpu_philox(generator);
  uint32_t* op = out.mutable_data_ptr<uint32_t>();
  const SamplerLoops& loops = samplers_loops();
  for_each_chunk(n, [&](int64_t first, int64_t len) {
    loops.philox_fill(so.seed, so.offset, static_cast<uint64_t>(first / 4), len, op + first);
  });
  return out;
}

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
}

TORCH_LIBRARY_IMPL(dgm_fast, BackendSelect, m) {
  m.impl("uniform_bits", &uniform_bits_backend_select);
}


TORCH_LIBRARY_IMPL(dgm_fast, CPU, m) {
  m.impl("bernoulli_logits", &bernoulli_logits_cpu);
  m.impl("normal_reparam", &normal_reparam_cpu);
  m.impl("uniform_bits", &uniform_bits_cpu);
}

}  // namespace dgm_fast
