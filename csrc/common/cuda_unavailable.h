#pragma once

namespace dgm_fast {

// Builds without CUDA kernels: registers, for every dgm_fast op that needs one, a CUDA kernel
// that raises a clear "rebuild with CUDA" error (cuda_unavailable.cpp). Called once, at import.
void register_cuda_unavailable_kernels();

}  // namespace dgm_fast
