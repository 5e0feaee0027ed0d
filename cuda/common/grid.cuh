// Launch geometry shared by the CUDA kernels that use grid-stride loops.
#pragma once

#include <algorithm>
#include <cstdint>

#include <c10/cuda/CUDAException.h>

namespace dgm_fast {

constexpr int kThreads = 256;

// Grid size for a grid-stride loop over `work_items` threads' worth of work: enough blocks to
// fill the device, no more (the device is the current one; the callers hold a device guard).
inline int blocks_for(int64_t work_items) {
  int device = 0;
  int sms = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t wanted = (work_items + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(wanted, int64_t{sms} * 16)));
}

}  // namespace dgm_fast
