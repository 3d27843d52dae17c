#pragma once
/// \file
/// Camera rotations from yaw / pitch / roll in camera axes (x right, y down, z forward).

#include "crossview/geometry/detail/checks.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>

namespace crossview {

/// pi in the requested scalar type.
template <typename Scalar = double>
constexpr Scalar kPi = Scalar(3.14159265358979323846264338327950288);

/// Degrees to radians.
template <typename Scalar>
constexpr Scalar deg2rad(Scalar degrees) {
  return degrees * kPi<Scalar> / Scalar(180);
}
/// Radians to degrees.
template <typename Scalar>
constexpr Scalar rad2deg(Scalar radians) {
  return radians * Scalar(180) / kPi<Scalar>;
}

/// Yaw / pitch / roll of a view direction, in radians.
template <typename Scalar>
struct EulerAngles {
  Scalar yaw{0};    ///< about the camera y axis (down): positive turns the view to the right
  Scalar pitch{0};  ///< about the camera x axis (right)
  Scalar roll{0};   ///< about the optical axis z
};

/// R = Ry(yaw) * Rx(pitch) * Rz(roll), angles in radians, with the standard right-handed matrices
/// Ry(t) = [[c,0,s],[0,1,0],[-s,0,c]], Rx(t) = [[1,0,0],[0,c,-s],[0,s,c]], Rz(t) = [[c,-s,0],[s,c,0],[0,0,1]].
/// This is the paper's Rz(a)Ry(b)Rx(g) of a vehicle frame written in camera axes (Eq. 1).
/// \throws std::invalid_argument if an angle is not finite.
template <typename Scalar>
Eigen::Matrix<Scalar, 3, 3> rotation_from_euler(Scalar yaw, Scalar pitch, Scalar roll) {
  detail::check_finite(yaw, "rotation_from_euler", "yaw");
  detail::check_finite(pitch, "rotation_from_euler", "pitch");
  detail::check_finite(roll, "rotation_from_euler", "roll");
  using std::cos;
  using std::sin;
  const Scalar cy = cos(yaw), sy = sin(yaw);
  const Scalar cp = cos(pitch), sp = sin(pitch);
  const Scalar cr = cos(roll), sr = sin(roll);
  Eigen::Matrix<Scalar, 3, 3> Ry, Rx, Rz;
  Ry << cy, 0, sy, 0, 1, 0, -sy, 0, cy;
  Rx << 1, 0, 0, 0, cp, -sp, 0, sp, cp;
  Rz << cr, -sr, 0, sr, cr, 0, 0, 0, 1;
  return Ry * Rx * Rz;
}

/// Overload taking an EulerAngles triple.
template <typename Scalar>
Eigen::Matrix<Scalar, 3, 3> rotation_from_euler(const EulerAngles<Scalar>& angles) {
  return rotation_from_euler(angles.yaw, angles.pitch, angles.roll);
}

/// Inverse of rotation_from_euler: yaw in (-pi, pi], pitch in [-pi/2, pi/2], roll in (-pi, pi].
/// At gimbal lock (|pitch| = pi/2) roll is set to 0 and yaw absorbs the remaining rotation.
/// \throws std::invalid_argument if R is not finite or not a rotation (R^T R = I, det R = 1 within 1e-3).
template <typename Derived>
EulerAngles<typename Derived::Scalar> euler_from_rotation(const Eigen::MatrixBase<Derived>& R) {
  using Scalar = typename Derived::Scalar;
  static_assert(Derived::RowsAtCompileTime == 3 && Derived::ColsAtCompileTime == 3,
                "crossview::euler_from_rotation: R must be a 3x3 Eigen matrix");
  detail::check_finite(R, "euler_from_rotation", "R");
  const Eigen::Matrix<Scalar, 3, 3> Rm = R;
  if (!(Rm.transpose() * Rm).isApprox(Eigen::Matrix<Scalar, 3, 3>::Identity(), Scalar(1e-3)) ||
      std::abs(Rm.determinant() - Scalar(1)) > Scalar(1e-3)) {
    detail::throw_invalid("euler_from_rotation", "R", "must be a rotation matrix (orthonormal, det +1)");
  }
  // R = Ry Rx Rz: R(1,2) = -sin(pitch); R(0,2) = sin(yaw)cos(pitch); R(2,2) = cos(yaw)cos(pitch);
  // R(1,0) = cos(pitch)sin(roll); R(1,1) = cos(pitch)cos(roll).
  using std::atan2;
  using std::sqrt;
  const Scalar sp = std::clamp(-Rm(1, 2), Scalar(-1), Scalar(1));
  const Scalar cp = sqrt(Rm(1, 0) * Rm(1, 0) + Rm(1, 1) * Rm(1, 1));
  EulerAngles<Scalar> angles;
  angles.pitch = atan2(sp, cp);
  if (cp > Scalar(16) * Eigen::NumTraits<Scalar>::epsilon()) {
    angles.yaw = atan2(Rm(0, 2), Rm(2, 2));
    angles.roll = atan2(Rm(1, 0), Rm(1, 1));
  } else {
    // Gimbal lock: only yaw -/+ roll is determined; R(0,0) = cos(yaw -/+ roll), R(2,0) = -sin(...).
    angles.roll = Scalar(0);
    angles.yaw = atan2(-Rm(2, 0), Rm(0, 0));
  }
  return angles;
}

}  // namespace crossview
