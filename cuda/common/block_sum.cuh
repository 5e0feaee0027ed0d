// A block-wide sum in double, shared by the CUDA kernels that reduce.
#pragma once

#include "common/grid.cuh"

namespace dgm_fast {

// Block-wide sum of v over kThreads threads (a fixed order, so the same bits every run); the
// result is valid in thread 0. `shared` holds kThreads / 32 doubles.
__device__ __forceinline__ double block_sum(double v, double* shared) {
  for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = threadIdx.x < kThreads / 32 ? shared[threadIdx.x] : 0.0;
  if (warp == 0)
    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  __syncthreads();
  return v;
}

}  // namespace dgm_fast
