// Picks the variant of the CPU sampler loops once, from the CPU's features or DGM_FAST_CPU_ISA.
#include "sampler_loops.h"

#include <cstdlib>
#include <string>

#include <c10/util/Exception.h>

namespace dgm_fast {

#if !defined(DGM_FAST_CPU_AVX2)
const SamplerLoops* sampler_loops_avx2() { return nullptr; }
#endif
#if !defined(DGM_FAST_CPU_AVX512)
const SamplerLoops* sampler_loops_avx512() { return nullptr; }
#endif

namespace {

bool cpu_has(const std::string& isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (isa == "avx2") return __builtin_cpu_supports("avx2");
  if (isa == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
#endif
  return isa == "default";
}

const SamplerLoops* compiled(const std::string& isa) {
  if (isa == "avx512") return sampler_loops_avx512();
  if (isa == "avx2") return sampler_loops_avx2();
  if (isa == "default") return sampler_loops_default();
  return nullptr;
}

const SamplerLoops& choose() {
  if (const char* forced = std::getenv("DGM_FAST_CPU_ISA"); forced != nullptr && *forced) {
    const std::string isa(forced);
    TORCH_CHECK(isa == "default" || isa == "avx2" || isa == "avx512",
                "DGM_FAST_CPU_ISA must be default, avx2 or avx512, got '", isa, "'");
    TORCH_CHECK(compiled(isa) != nullptr, "DGM_FAST_CPU_ISA=", isa,
                ": this build of dgm_fast has no ", isa, " kernels (not an x86-64 build)");
    TORCH_CHECK(cpu_has(isa), "DGM_FAST_CPU_ISA=", isa, ": this CPU does not support ", isa);
    return *compiled(isa);
  }
  for (const char* isa : {"avx512", "avx2"})
    if (compiled(isa) != nullptr && cpu_has(isa)) return *compiled(isa);
  return *sampler_loops_default();
}

}  // namespace

const SamplerLoops& sampler_loops() {
  static const SamplerLoops& loops = choose();
  return loops;
}

}  // namespace dgm_fast
