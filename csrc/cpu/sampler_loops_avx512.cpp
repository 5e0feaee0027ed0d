// The avx512 variant of the CPU sampler loops (compile flags set in CMakeLists.txt).
#define DGM_LOOPS_ISA_NAME "avx512"
#define DGM_LOOPS_ENTRY sampler_loops_avx512
#include "sampler_loops.inc"
