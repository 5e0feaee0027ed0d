#pragma once

#include <cstdint>
#include <optional>

#include <ATen/core/Generator.h>

namespace dgm_fast {

struct PhiloxSeedOffset {
  uint64_t seed;
  uint64_t offset;
};

// The (seed, offset) of the next sampling call on the CPU, taken from `generator` or torch's
// default CPU generator, which is then advanced. See philox_cpu_state.cpp for the contract.
PhiloxSeedOffset next_cpu_philox(const std::optional<at::Generator>& generator);

}  // namespace dgm_fast
