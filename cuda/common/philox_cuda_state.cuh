// The Philox state of the next sampling call on a CUDA device, shared by the CUDA kernels that draw.
#pragma once

#include <mutex>
#include <optional>

#include <ATen/core/Generator.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/PhiloxUtils.cuh>

#include "dgm_fast/philox.h"

namespace dgm_fast {

// (seed, offset) from `generator` or the device's default CUDA generator, which is advanced by
// kOffsetPerCall, as on the CPU (csrc/common/philox_cpu_state.cpp). Under CUDA-graph capture the
// offset is read from device memory, so that every replay draws fresh numbers.
inline at::PhiloxCudaState next_cuda_philox(const std::optional<at::Generator>& generator,
                                            const at::Device& device) {
  auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(
      generator, at::cuda::detail::getDefaultCUDAGenerator(device.index()));
  std::lock_guard<std::mutex> lock(gen->mutex_);
  return gen->philox_cuda_state(kOffsetPerCall);
}

}  // namespace dgm_fast
