// The CPU per-instruction-set loop machinery, shared by every op family.
//
// A family keeps its element-wise loops in csrc/<family>/<family>_loops.inc and their table of
// function pointers in <family>_loops.h. The build compiles each .inc once per x86-64 instruction
// set (baseline, AVX2, AVX-512; CMakeLists.txt generates the translation units, each defining
// DGM_FAST_ISA and built with its -m flags), and <family>_loops() returns the table of the
// variant chosen once for this CPU. The loops use correctly rounded operations only, with the
// FMAs written out (portable_math.h's fma_rn) and no others formed by the compiler
// (-ffp-contract=off), so all variants give bit-identical results and differ only in
// speed. DGM_FAST_CPU_ISA=default|avx2|avx512 forces a variant (the tests use it to check
// identity).
#pragma once

#include <cstdint>
#include <string_view>

namespace dgm_fast {

// "default", "avx2" or "avx512": the variant in use, chosen once from the CPU's features or
// DGM_FAST_CPU_ISA (an unknown or unsupported value is an error).
const char* cpu_isa();

// Lane-parallel double accumulators of the reductions: lane j takes the terms i = j mod kLanes,
// and the lanes are added in order at the end, so every variant gives the same sums.
constexpr int64_t kLanes = 16;

template <typename Table>
const Table& select_loops(const Table* baseline, const Table* avx2, const Table* avx512) {
  const std::string_view isa = cpu_isa();
  if (isa == "avx512") return *avx512;
  if (isa == "avx2") return *avx2;
  return *baseline;
}

}  // namespace dgm_fast

#define DGM_FAST_CONCAT_(a, b) a##_##b
#define DGM_FAST_CONCAT(a, b) DGM_FAST_CONCAT_(a, b)
// In a generated translation unit: the name of this variant's table getter, e.g. gan_loops_avx2.
#define DGM_FAST_LOOPS_ENTRY(prefix) DGM_FAST_CONCAT(prefix, DGM_FAST_ISA)

// Declares a family's variant getters and `const Table& prefix()`, the one in use.
#if defined(DGM_FAST_CPU_AVX2) && defined(DGM_FAST_CPU_AVX512)
#define DGM_FAST_DECLARE_LOOPS(Table, prefix)                                  \
  const Table* prefix##_default();                                             \
  const Table* prefix##_avx2();                                                \
  const Table* prefix##_avx512();                                              \
  inline const Table& prefix() {                                               \
    static const Table& loops =                                                \
        select_loops(prefix##_default(), prefix##_avx2(), prefix##_avx512());  \
    return loops;                                                              \
  }
#else  // not x86-64: the baseline variant only (cpu_isa() never names another)
#define DGM_FAST_DECLARE_LOOPS(Table, prefix)                                          \
  const Table* prefix##_default();                                                     \
  inline const Table& prefix() {                                                       \
    static const Table& loops = select_loops<Table>(prefix##_default(), nullptr, nullptr); \
    return loops;                                                                      \
  }
#endif
