// The avx2 variant of the CPU sampler loops (compile flags set in CMakeLists.txt).
#define DGM_LOOPS_ISA_NAME "avx2"
#define DGM_LOOPS_ENTRY sampler_loops_avx2
#include "sampler_loops.inc"
