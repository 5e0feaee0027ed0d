// Where a CPU call's Philox (seed, offset) comes from.
//
// PyTorch's CUDA generator is itself a Philox (seed, offset) pair: manual_seed(s) sets (s, 0)
// and each of our calls takes the current offset and advances it by kOffsetPerCall. Its CPU
// generator is a Mersenne Twister with no offset, so we derive one from the twister's state,
// which keeps every property of a torch random op:
//   * a pure function of the generator state: manual_seed, get_state/set_state, fork_rng and
//     activation checkpointing reproduce a call exactly;
//   * each call advances the generator (by one 32-bit draw), so consecutive calls differ;
//   * right after manual_seed(s), a run of our calls gets offsets 0, 4, 8, ... -- the offsets
//     the CUDA generator hands out after the same manual_seed(s) -- so the same seed gives the
//     same bits on CPU and CUDA. This holds while only dgm_fast ops draw from the generators,
//     for the first 624 calls after seeding (one twister cycle); later or interleaved calls get
//     offsets that are still distinct and reproducible, but no longer equal to CUDA's.
#include "common/philox_cpu_state.h"

#include <array>
#include <mutex>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/DistributionsHelper.h>
#include <ATen/core/MT19937RNGEngine.h>

#include "dgm_fast/philox.h"

namespace dgm_fast {
namespace {

// The twister's state during its first cycle after seeding with `seed`, i.e. after the first
// draw regenerated it. Cached per thread: recomputing costs two passes over 624 words.
const std::array<uint32_t, at::MERSENNE_STATE_N>& first_cycle_state(uint64_t seed) {
  thread_local bool valid = false;
  thread_local uint64_t cached_seed = 0;
  thread_local std::array<uint32_t, at::MERSENNE_STATE_N> cached{};
  if (!valid || cached_seed != seed) {
    at::mt19937 engine(seed);
    engine();  // the first draw regenerates the state
    cached = engine.data().state_;
    cached_seed = seed;
    valid = true;
  }
  return cached;
}

uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

uint64_t offset_from_state(const at::mt19937_data_pod& d) {
  if (d.left_ == 1 && d.next_ == 0) return 0;  // freshly seeded, nothing drawn yet
  // next_ counts the words drawn in the current cycle (1..624).
  const uint64_t position = kOffsetPerCall * d.next_;
  if (d.state_ == first_cycle_state(d.seed_)) return position;
  // A later cycle: a hash of the cycle's state in the high bits keeps offsets of different
  // cycles apart; bit 63 keeps them apart from the first cycle's.
  uint64_t h = mix64(d.seed_);
  for (const int j : {0, 1, 2, at::MERSENNE_STATE_N - 1}) h = mix64(h ^ d.state_[j]);
  return (uint64_t{1} << 63) | ((h << 12) & ~(uint64_t{1} << 63)) | position;
}

}  // namespace

PhiloxSeedOffset next_cpu_philox(const std::optional<at::Generator>& generator) {
  auto* gen = at::get_generator_or_default<at::CPUGeneratorImpl>(
      generator, at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(gen->mutex_);
  const at::mt19937_data_pod state = gen->engine().data();
  const PhiloxSeedOffset result{state.seed_, offset_from_state(state)};
  gen->random();
  return result;
}

}  // namespace dgm_fast
