// The inner loops of the NADE kernels, over the hidden units of one position: one table of
// function pointers per instruction-set variant (csrc/common/cpu_loops.h), the variant chosen
// once at run time. Every operation in them is correctly rounded and written out (no FMA the
// compiler forms), so all variants give bit-identical results; they differ only in speed.
#pragma once

#include <cstdint>

#include "common/cpu_loops.h"

namespace dgm_fast {

template <typename T>
struct NadeLoopsOf {
  // h[j] = sigmoid(a[j]) for j < n, and returns sum_j v[j] h[j] in the lane order of
  // dgm_fast/nade.h (v: the output weights V[d] of the position's unit)
  T (*hidden_dot)(const T* a, const T* v, int64_t n);
  // a[j] = fma(w[j], x, a[j]): the hidden pre-activations after unit d took the value x
  void (*advance)(T* a, const T* w, T x, int64_t n);
  // One position of the backward sweep, for n hidden units: with h = sigmoid(a) and the
  // logit's gradient dl,
  //   gv[j] += dl h[j];  p[j] += dl v[j] h[j] (1 - h[j]);
  // then, where x != 0, gw[j] -= x p[j] and a[j] = fma(w[j], x, a[j]).
  // p, gv and gw are double whatever T is (p's sums are differenced later).
  void (*backward_step)(T* a, double* p, const T* w, const T* v, double* gv, double* gw, T x, double dl,
                        int64_t n);
  // gw[j] += x s[j]
  void (*add_scaled)(double* gw, const double* s, double x, int64_t n);
};

struct NadeLoops {
  NadeLoopsOf<float> f32;
  NadeLoopsOf<double> f64;
};

DGM_FAST_DECLARE_LOOPS(NadeLoops, nade_loops)

}  // namespace dgm_fast
