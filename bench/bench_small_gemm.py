"""MKL's sgemm (what rbm_train_epoch_'s CPU kernel calls, as ATen does) against a simple
register-blocked kernel, on the small products of an RBM update, one thread.

    python bench/bench_small_gemm.py

The product timed is the hidden pre-activation, out[B, H] = x[B, V] W[V, H] (row-major, float32),
the commonest of an update's five. Each figure is the median over 7 runs of a C++ loop of 20,000
products (no Python, dispatcher or allocation inside), in nanoseconds per product. The blocked
kernel keeps a 4 x 32 tile of the output in registers (the compiler vectorises it for the CPU it
runs on: -O3 -march=native, FMA contraction allowed; with -ffp-contract=off it measured the same)
and streams x and W through it. The two sum in different orders, so
switching rbm_train_epoch_ to the blocked kernel would change its bits against the per-update
path, which calls MKL: that is the price to weigh against the time measured here.

Compiled with torch.utils.cpp_extension.load_inline on first use (about a minute).
"""

from __future__ import annotations

import statistics

import torch
from torch.utils.cpp_extension import load_inline

from dgm_fast._machine import describe

SOURCE = r"""
#include <torch/extension.h>
#include <chrono>
#include <algorithm>

extern "C" void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                       const int*, const float*, const int*, const float*, float*, const int*);

// out[m, n] = x[m, k] w[k, n], row-major, register tiles of MR x NR.
template <int MR, int NR>
static void blocked(int m, int n, int k, const float* __restrict x, const float* __restrict w, float* __restrict out) {
  for (int i0 = 0; i0 < m; i0 += MR) {
    const int mr = std::min(MR, m - i0);
    for (int j0 = 0; j0 < n; j0 += NR) {
      const int nr = std::min(NR, n - j0);
      float acc[MR][NR] = {};
      if (mr == MR && nr == NR) {
        for (int p = 0; p < k; ++p) {
          const float* wrow = w + p * n + j0;
          for (int r = 0; r < MR; ++r) {
            const float a = x[(i0 + r) * k + p];
#pragma GCC ivdep
            for (int c = 0; c < NR; ++c) acc[r][c] += a * wrow[c];
          }
        }
      } else {
        for (int p = 0; p < k; ++p)
          for (int r = 0; r < mr; ++r)
            for (int c = 0; c < nr; ++c) acc[r][c] += x[(i0 + r) * k + p] * w[p * n + j0 + c];
      }
      for (int r = 0; r < mr; ++r)
        for (int c = 0; c < nr; ++c) out[(i0 + r) * n + j0 + c] = acc[r][c];
    }
  }
}

// Nanoseconds per product over `reps` products; which: 0 MKL, 1 blocked. Returns the last output.
std::tuple<double, torch::Tensor> time_products(torch::Tensor x, torch::Tensor w, int64_t which, int64_t reps) {
  const int m = x.size(0), k = x.size(1), n = w.size(1);
  auto out = torch::zeros({m, n}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float one = 1, zero = 0;
  const char nt = 'n';
  const auto start = std::chrono::steady_clock::now();
  for (int64_t r = 0; r < reps; ++r) {
    if (which == 0) sgemm_(&nt, &nt, &n, &m, &k, &one, wp, &n, xp, &k, &zero, op, &n);
    else blocked<4, 32>(m, n, k, xp, wp, op);
  }
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  return {ns / reps, out};
}
"""

SIZES = [(10, 64, 16), (10, 64, 100), (20, 64, 100), (100, 64, 100), (100, 784, 500)]


def main():
    module = load_inline("dgm_fast_small_gemm_fma", cpp_sources=SOURCE, functions=["time_products"],
                         extra_cflags=["-O3", "-march=native", "-ffp-contract=fast"], verbose=False)
    torch.set_num_threads(1)
    print(f"machine: {describe()} (one thread for both)\n")
    print("| B x V x H | MKL sgemm (ns) | register-blocked (ns) | MKL / blocked | max abs difference |")
    print("|---|---|---|---|---|")
    for b, v, h in SIZES:
        g = torch.Generator().manual_seed(0)
        x = torch.bernoulli(torch.full((b, v), 0.3), generator=g)
        w = 0.1 * torch.randn(v, h, generator=g)
        reps = max(20, int(2e9 / (b * v * h * 2)))  # about a second of work per run at 1 GFLOP/s
        runs = {which: [module.time_products(x, w, which, reps) for _ in range(7)] for which in (0, 1)}
        mkl, blk = (statistics.median(t for t, _ in runs[w_]) for w_ in (0, 1))
        diff = (runs[0][0][1] - runs[1][0][1]).abs().max().item()
        print(f"| {b} x {v} x {h} | {mkl:,.0f} | {blk:,.0f} | {mkl / blk:.2f}× | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
