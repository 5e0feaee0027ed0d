// A row's sum for the CPU kernels that reduce element values (elbo, bernoulli).
#pragma once

#include <cstdint>

namespace dgm_fast {

// sum of values[0..n) with 8 partial sums: the additions pipeline and vectorise (a fixed order,
// so the same bits every run and at any thread count).
template <typename T>
inline T sum8(const T* values, int64_t n) {
  T part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) part[k] += values[i + k];
  T total = 0;
  for (; i < n; ++i) total += values[i];
  for (int k = 0; k < 8; ++k) total += part[k];
  return total;
}

}  // namespace dgm_fast
