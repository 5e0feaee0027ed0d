// CPU implementations of the samplers. Work is split over Philox blocks with at::parallel_for;
// element i always takes word i of the call's stream, so results do not depend on the thread
// count.
#include <algorithm>
#include <atomic>

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "dgm_fast/samplers.h"
#include "philox_cpu_state.h"
#include "sampler_checks.h"

namespace dgm_fast {
namespace {

constexpr int64_t kGrainBlocks = 2048;  // 8192 elements per task

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
  std::atomic<int64_t> nan_count{0};

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "bernoulli_logits_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const scalar_t* bp = has_bias ? b.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* sp = sample.mutable_data_ptr<scalar_t>();
    scalar_t* pp = return_probs ? probs.mutable_data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, (n + 3) / 4, kGrainBlocks, [&](int64_t begin, int64_t end) {
      int64_t nans = 0;
      int64_t col = (begin * 4) % width;  // bias column, advanced without a division per element
      for (int64_t block = begin; block < end; ++block) {
        const Words4 r = philox_block(so.seed, so.offset, static_cast<uint64_t>(block));
        const int64_t first = block * 4;
        const int lanes = static_cast<int>(std::min<int64_t>(4, n - first));
        for (int lane = 0; lane < lanes; ++lane) {
          const int64_t i = first + lane;
          acc_t v = static_cast<acc_t>(xp[i]);
          if (bp != nullptr) v = pm::add(v, static_cast<acc_t>(bp[col]));
          if (++col == width) col = 0;
          acc_t s;
          const acc_t p = bernoulli_logit_draw(v, r.w[lane], &s);
          nans += (p != p);
          sp[i] = static_cast<scalar_t>(s);
          if (pp != nullptr) pp[i] = static_cast<scalar_t>(p);
        }
      }
      if (nans != 0) nan_count += nans;
    });
  });
  TORCH_CHECK_VALUE(nan_count.load() == 0, "bernoulli_logits: ", nan_count.load(), " of ", n,
                    " logits", (has_bias ? " (after adding bias)" : ""),
                    " are NaN; a Bernoulli probability cannot be NaN");
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
    using acc_t = at::opmath_type<scalar_t>;
    constexpr int kPer = NormalsPerBlock<acc_t>::value;
    const scalar_t* mp = m.const_data_ptr<scalar_t>();
    const scalar_t* lp = lv.const_data_ptr<scalar_t>();
    scalar_t* zp = z.mutable_data_ptr<scalar_t>();
    scalar_t* ep = eps.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, (n + kPer - 1) / kPer, kGrainBlocks, [&](int64_t begin, int64_t end) {
      for (int64_t block = begin; block < end; ++block) {
        acc_t normals[kPer];
        normals_from_block(philox_block(so.seed, so.offset, static_cast<uint64_t>(block)), normals);
        const int64_t first = block * kPer;
        const int lanes = static_cast<int>(std::min<int64_t>(kPer, n - first));
        for (int lane = 0; lane < lanes; ++lane) {
          const int64_t i = first + lane;
          // eps is rounded to the output dtype first, so that z = mu + std * eps holds for the
          // eps the caller sees.
          const scalar_t e = static_cast<scalar_t>(normals[lane]);
          ep[i] = e;
          zp[i] = static_cast<scalar_t>(reparam(static_cast<acc_t>(mp[i]),
                                                static_cast<acc_t>(lp[i]), static_cast<acc_t>(e)));
        }
      }
    });
  });
  return {z, eps};
}

at::Tensor uniform_bits_cpu(at::IntArrayRef size, std::optional<at::Generator> generator,
                            std::optional<at::Device> device) {
  at::Tensor out = at::empty(size, at::TensorOptions().dtype(at::kUInt32).device(at::kCPU));
  const int64_t n = out.numel();
  if (n == 0) return out;
  const PhiloxSeedOffset so = next_cpu_philox(generator);
  uint32_t* op = out.mutable_data_ptr<uint32_t>();
  at::parallel_for(0, (n + 3) / 4, kGrainBlocks, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) {
      const Words4 r = philox_block(so.seed, so.offset, static_cast<uint64_t>(block));
      const int64_t first = block * 4;
      const int lanes = static_cast<int>(std::min<int64_t>(4, n - first));
      for (int lane = 0; lane < lanes; ++lane) op[first + lane] = r.w[lane];
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(dgm_fast, CPU, m) {
  m.impl("bernoulli_logits", &bernoulli_logits_cpu);
  m.impl("normal_reparam", &normal_reparam_cpu);
  m.impl("uniform_bits", &uniform_bits_cpu);
}

}  // namespace dgm_fast
