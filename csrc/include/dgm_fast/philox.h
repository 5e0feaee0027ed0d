// Counter-based Philox4x32-10 (Salmon et al., SC'11) and the stream layout every dgm_fast
// sampler uses. Torch-free and header-only so that the CPU kernels and the CUDA kernels
// compile the very same code.
//
// The stream contract: the i-th 32-bit word of a call is
//
//     philox4x32_10(counter = {lo(i/4), hi(i/4), lo(offset), hi(offset)},
//                   key     = {lo(seed), hi(seed) ^ kStreamDomain})[i % 4]
//
// a pure function of (seed, offset, i). It does not depend on the device, the thread count or
// the launch configuration, which is what makes CPU and CUDA samples bit-identical.
//
// kStreamDomain separates our streams from the ones PyTorch's own CUDA kernels draw with curand
// from the same (seed, offset): curand uses key = seed and puts the offset into the low counter
// words, so without it our block i of offset o would be torch's subsequence o at offset 4i.
#pragma once

#include <cstdint>

// Always inlined on the host too: the CPU loops are compiled once per instruction set, and an
// out-of-line copy built for AVX-512 must never be shared with the baseline variant.
#if defined(__CUDACC__)
#define DGM_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define DGM_HD inline __attribute__((always_inline))
#else
#define DGM_HD inline
#endif

namespace dgm_fast {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1
constexpr uint32_t kStreamDomain = 0x64676D66u;  // "dgmf"

struct Words4 {
  uint32_t w[4];
};

DGM_HD uint32_t mulhi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// The raw generator: one 128-bit counter and a 64-bit key in, four words out.
DGM_HD Words4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                            uint32_t k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = mulhi32(kPhiloxM0, c0);
    const uint32_t lo0 = kPhiloxM0 * c0;
    const uint32_t hi1 = mulhi32(kPhiloxM1, c2);
    const uint32_t lo1 = kPhiloxM1 * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return Words4{{c0, c1, c2, c3}};
}

// Block `block` (words 4*block .. 4*block+3) of the stream (seed, offset).
DGM_HD Words4 philox_block(uint64_t seed, uint64_t offset, uint64_t block) {
  return philox4x32_10(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                       static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32),
                       static_cast<uint32_t>(seed),
                       static_cast<uint32_t>(seed >> 32) ^ kStreamDomain);
}

// How much one sampling call advances a generator's Philox offset. Every call gets its own
// offset, so its blocks never overlap another call's, whatever the sizes; PyTorch's CUDA
// generator wants increments that are multiples of 4.
constexpr uint64_t kOffsetPerCall = 4;

}  // namespace dgm_fast
