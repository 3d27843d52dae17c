#pragma once
/// \file
/// Precondition helpers for the geometry headers: each throws std::invalid_argument with a message
/// that names the function and the argument, so callers learn what was wrong without a debugger.

#include <Eigen/Core>
#include <Eigen/LU>

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace crossview::detail {

/// Throws std::invalid_argument("<function>: <argument> <what>").
[[noreturn]] inline void throw_invalid(const char* function, const char* argument, const std::string& what) {
  std::ostringstream message;
  message << function << ": " << argument << ' ' << what;
  throw std::invalid_argument(message.str());
}

template <typename Scalar>
void check_finite(Scalar value, const char* function, const char* argument) {
  if (!std::isfinite(static_cast<double>(value))) {
    std::ostringstream got;
    got << "must be finite, got " << value;
    throw_invalid(function, argument, got.str());
  }
}

template <typename Derived>
void check_finite(const Eigen::MatrixBase<Derived>& m, const char* function, const char* argument) {
  if (!m.allFinite()) {
    throw_invalid(function, argument, "must have finite entries, got a NaN or infinity");
  }
}

template <typename Scalar>
void check_positive(Scalar value, const char* function, const char* argument) {
  check_finite(value, function, argument);
  if (!(value > Scalar(0))) {
    std::ostringstream got;
    got << "must be > 0, got " << value;
    throw_invalid(function, argument, got.str());
  }
}

/// A 3x3 matrix with a non-negligible determinant relative to its scale.
template <typename Derived>
void check_invertible_3x3(const Eigen::MatrixBase<Derived>& H, const char* function, const char* argument) {
  static_assert(Derived::RowsAtCompileTime == 3 && Derived::ColsAtCompileTime == 3,
                "crossview: a homography must be a 3x3 Eigen matrix");
  check_finite(H, function, argument);
  // Decided in double: a float homography with pixel-sized translations has entries ~1e3, and
  // its determinant must be compared with the scale^3 it is homogeneous in.
  const Eigen::Matrix3d Hd = H.template cast<double>();
  const double scale = Hd.cwiseAbs().maxCoeff();
  const double det = Hd.determinant();
  if (!(scale > 0.0) || !(std::abs(det) > 1e-12 * scale * scale * scale)) {
    std::ostringstream got;
    got << "must be an invertible 3x3 homography, got determinant " << det;
    throw_invalid(function, argument, got.str());
  }
}

}  // namespace crossview::detail
