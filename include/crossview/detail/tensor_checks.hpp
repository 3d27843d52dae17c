#pragma once
/// \file
/// Small helpers shared by crossview's libtorch code: argument checks whose messages name the
/// function, the argument, what was expected and what came.

#include <Eigen/Core>
#include <Eigen/LU>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <limits>
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

/// Checks that `t` holds integer values (bool excluded).
inline void check_integer(const torch::Tensor& t, const char* function, const char* argument) {
  TORCH_CHECK(c10::isIntegralType(t.scalar_type(), /*includeBool=*/false), function, ": ", argument,
              " must be an integer tensor, got ", t.scalar_type());
}

/// Checks that `t` has values that can be read: a tensor on the `meta` device has a shape but no
/// data, so a function that must read it (to copy a homography to the CPU, say) refuses it.
inline void check_has_values(const torch::Tensor& t, const char* function, const char* argument) {
  TORCH_CHECK(!t.is_meta(), function, ": ", argument,
              " must hold values (a CPU or CUDA tensor), got a tensor on the meta device");
}

/// Checks that the last two dimensions of `t` ([..., H, W]) are not empty.
inline void check_nonempty_hw(const torch::Tensor& t, const char* function, const char* argument) {
  TORCH_CHECK(t.dim() >= 2 && t.size(-1) > 0 && t.size(-2) > 0, function, ": ", argument,
              " must not be empty (H and W > 0), got ", shape_string(t));
}

/// Whether autocast (mixed precision) is on for tensors of `device`: layers then see inputs in
/// another floating dtype than their parameters, which autocast's ops reconcile.
/// Asked for CPU and CUDA only (libtorch throws for device types autocast does not know, e.g. meta).
inline bool autocast_enabled_for(const torch::Device& device) {
  if (!device.is_cpu() && !device.is_cuda()) return false;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(device.type());
#else
  return device.is_cuda() ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

/// Checks an input `x` of a module against one of its parameters: same device, and same dtype
/// (any floating dtype while autocast is on for that device).
inline void check_matches_parameter(const torch::Tensor& x, const torch::Tensor& parameter, const char* function,
                                    const char* argument) {
  TORCH_CHECK(x.device() == parameter.device(), function, ": ", argument, " must be on the module's device (",
              parameter.device(), "), got ", x.device());
  const bool autocast = x.is_floating_point() && parameter.is_floating_point() && autocast_enabled_for(x.device());
  TORCH_CHECK(autocast || x.scalar_type() == parameter.scalar_type(), function, ": ", argument,
              " must have the dtype of the module's parameters (", parameter.scalar_type(), "), got ",
              x.scalar_type());
}

/// Checks a batch of homographies `H` ([N, 3, 3] or [3, 3], already shape-checked): values
/// readable, every entry finite and, when `invertible`, each matrix invertible (|det| relative to
/// its scale^3, as warp_image decides). 9*N values are copied to the CPU (a synchronisation for
/// CUDA tensors); nothing per pixel.
inline void check_homographies(const torch::Tensor& H, const char* function, const char* argument,
                               bool invertible = false) {
  check_has_values(H, function, argument);
  const auto h = H.reshape({-1, 9}).to(torch::kCPU, torch::kFloat64).contiguous();
  const double* data = h.data_ptr<double>();
  for (int64_t n = 0; n < h.size(0); ++n) {
    const Eigen::Map<const Eigen::Matrix<double, 3, 3, Eigen::RowMajor>> M(data + 9 * n);
    TORCH_CHECK(M.allFinite(), function, ": ", argument, "[", n, "] must have finite entries, got a NaN or infinity");
    if (invertible) {
      const double scale = M.cwiseAbs().maxCoeff();
      const double det = M.determinant();
      TORCH_CHECK(scale > 0 && std::abs(det) > 64 * std::numeric_limits<double>::epsilon() * scale * scale * scale,
                  function, ": ", argument, "[", n, "] must be invertible, got determinant ", det);
    }
  }
}

}  // namespace crossview::detail
