// Picks the variant of the CPU loops once, from the CPU's features or DGM_FAST_CPU_ISA.
#include "common/cpu_loops.h"

#include <cstdlib>
#include <string>

#include <c10/util/Exception.h>

namespace dgm_fast {
namespace {

bool cpu_has(const std::string& isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  // both vector variants are built with FMA (portable_math.h's fma_rn)
  if (isa == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == "avx512")
    return __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw");
#endif
  return isa == "default";
}

bool compiled(const std::string& isa) {
#if defined(DGM_FAST_CPU_AVX2) && defined(DGM_FAST_CPU_AVX512)
  return isa == "default" || isa == "avx2" || isa == "avx512";
#else
  return isa == "default";
#endif
}

const char* choose() {
  if (const char* forced = std::getenv("DGM_FAST_CPU_ISA"); forced != nullptr && *forced) {
    const std::string isa(forced);
    TORCH_CHECK(isa == "default" || isa == "avx2" || isa == "avx512",
                "DGM_FAST_CPU_ISA must be default, avx2 or avx512, got '", isa, "'");
    TORCH_CHECK(compiled(isa), "DGM_FAST_CPU_ISA=", isa,
                ": this build of dgm_fast has no ", isa, " kernels (not an x86-64 build)");
    TORCH_CHECK(cpu_has(isa), "DGM_FAST_CPU_ISA=", isa, ": this CPU does not support ", isa);
    return isa == "avx512" ? "avx512" : isa == "avx2" ? "avx2" : "default";
  }
  for (const char* isa : {"avx512", "avx2"})
    if (compiled(isa) && cpu_has(isa)) return isa;
  return "default";
}

}  // namespace

const char* cpu_isa() {
  static const char* const isa = choose();
  return isa;
}

}  // namespace dgm_fast
