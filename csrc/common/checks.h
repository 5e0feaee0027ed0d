// Argument checks shared by every op family, so that all ops word the same problem the same way.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace dgm_fast {

inline bool is_float_dtype(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kBFloat16 || t == at::kHalf;
}

inline void check_float_dtype(const at::Tensor& t, const char* op, const char* arg) {
  TORCH_CHECK_TYPE(is_float_dtype(t.scalar_type()), op, ": ", arg,
                   " must be float32, float64, bfloat16 or float16, got ", t.scalar_type());
}

inline void check_same_device(const at::Tensor& a, const at::Tensor& b, const char* op,
                              const char* name_a, const char* name_b) {
  TORCH_CHECK(a.device() == b.device(), op, ": ", name_a, " is on ", a.device(), " but ",
              name_b, " is on ", b.device(), "; move both to the same device");
}

}  // namespace dgm_fast
