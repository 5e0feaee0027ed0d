// The default variant of the CPU sampler loops (compile flags set in CMakeLists.txt).
#define DGM_LOOPS_ISA_NAME "default"
#define DGM_LOOPS_ENTRY sampler_loops_default
#include "sampler_loops.inc"
