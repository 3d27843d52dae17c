#pragma once
/// \file
/// Small helpers shared by crossview's libtorch code: argument checks whose messages name the
/// function, the argument, what was expected and what came.

#include <torch/torch.h>

#include <sstream>
#include <string>

namespace crossview::detail {

/// "[2, 3, 4]" for a tensor's sizes.
inline std::string shape_string(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

/// Checks that `t` is defined and has one of the given ranks.
inline void check_rank(const torch::Tensor& t, std::initializer_list<int64_t> ranks, const char* function,
                       const char* argument, const char* layout) {
  TORCH_CHECK(t.defined(), function, ": ", argument, " must be a defined tensor ", layout, ", got an undefined tensor");
  bool ok = false;
  for (const auto r : ranks) ok = ok || t.dim() == r;
  TORCH_CHECK(ok, function, ": ", argument, " must have shape ", layout, ", got ", shape_string(t));
}

/// Checks that `t` holds floating-point values.
inline void check_floating(const torch::Tensor& t, const char* function, const char* argument) {
  TORCH_CHECK(t.is_floating_point(), function, ": ", argument, " must be a floating-point tensor, got ",
              t.scalar_type());
}

/// Checks that two tensors live on the same device.
inline void check_same_device(const torch::Tensor& a, const torch::Tensor& b, const char* function,
                              const char* argument_a, const char* argument_b) {
  TORCH_CHECK(a.device() == b.device(), function, ": ", argument_a, " and ", argument_b,
              " must be on the same device, got ", a.device(), " and ", b.device());
}

}  // namespace crossview::detail
