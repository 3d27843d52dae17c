#pragma once
/// \file
/// Pinhole camera intrinsics in crossview's pixel convention: integer coordinates are pixel
/// centres, x right, y down, origin at the top-left pixel centre (OpenCV's convention).

#include "crossview/geometry/detail/checks.hpp"

#include <Eigen/Core>

namespace crossview {

/// Focal length of the Cityscapes cameras in pixels for 2048-px-wide images (paper Sec. 3.1).
inline constexpr double kCityscapesFocal = 2262.0;
/// Width of the Cityscapes images the focal length above refers to.
inline constexpr double kCityscapesWidth = 2048.0;

/// The paper's focal length scaled to an image of the given width: 2262 * width / 2048.
inline double cityscapes_focal_for_width(double width) {
  detail::check_positive(width, "cityscapes_focal_for_width", "width");
  return kCityscapesFocal * width / kCityscapesWidth;
}

/// Pinhole intrinsics K = [[fx, skew, cx], [0, fy, cy], [0, 0, 1]] mapping camera rays (x right,
/// y down, z forward) to pixel coordinates.
template <typename Scalar>
struct Intrinsics {
  Scalar fx{1};
  Scalar fy{1};
  Scalar cx{0};
  Scalar cy{0};
  Scalar skew{0};

  using Matrix3 = Eigen::Matrix<Scalar, 3, 3>;

  /// Intrinsics with fx = fy = focal, principal point at the image centre
  /// (cx = (width - 1) / 2, cy = (height - 1) / 2) and zero skew.
  /// \throws std::invalid_argument if focal, width or height is not a finite positive number.
  static Intrinsics centered(Scalar focal, Scalar width, Scalar height) {
    detail::check_positive(focal, "Intrinsics::centered", "focal");
    detail::check_positive(width, "Intrinsics::centered", "width");
    detail::check_positive(height, "Intrinsics::centered", "height");
    return Intrinsics{focal, focal, (width - Scalar(1)) / Scalar(2), (height - Scalar(1)) / Scalar(2), Scalar(0)};
  }

  /// The 3x3 calibration matrix K.
  Matrix3 matrix() const {
    Matrix3 K;
    K << fx, skew, cx, Scalar(0), fy, cy, Scalar(0), Scalar(0), Scalar(1);
    return K;
  }

  /// K^-1 in closed form (upper triangular).
  /// \throws std::invalid_argument if fx or fy is zero or not finite.
  Matrix3 matrix_inverse() const {
    validate("Intrinsics::matrix_inverse");
    Matrix3 Kinv;
    Kinv << Scalar(1) / fx, -skew / (fx * fy), (skew * cy - cx * fy) / (fx * fy),  //
        Scalar(0), Scalar(1) / fy, -cy / fy,                                       //
        Scalar(0), Scalar(0), Scalar(1);
    return Kinv;
  }

  /// The intrinsics of the same camera after resizing its image by (scale_x, scale_y), i.e. to
  /// (scale_x * width, scale_y * height). Pixel centres move as x' = scale_x * (x + 0.5) - 0.5.
  Intrinsics scaled(Scalar scale_x, Scalar scale_y) const {
    detail::check_positive(scale_x, "Intrinsics::scaled", "scale_x");
    detail::check_positive(scale_y, "Intrinsics::scaled", "scale_y");
    const Scalar half(0.5);
    return Intrinsics{fx * scale_x, fy * scale_y, scale_x * (cx + half) - half, scale_y * (cy + half) - half,
                      skew * scale_x};
  }
  Intrinsics scaled(Scalar scale) const { return scaled(scale, scale); }

  /// The same intrinsics in another scalar type.
  template <typename Other>
  Intrinsics<Other> cast() const {
    return Intrinsics<Other>{Other(fx), Other(fy), Other(cx), Other(cy), Other(skew)};
  }

  /// \throws std::invalid_argument naming `function` if an entry is not finite or a focal is <= 0.
  void validate(const char* function) const {
    detail::check_positive(fx, function, "intrinsics fx");
    detail::check_positive(fy, function, "intrinsics fy");
    detail::check_finite(cx, function, "intrinsics cx");
    detail::check_finite(cy, function, "intrinsics cy");
    detail::check_finite(skew, function, "intrinsics skew");
  }
};

using Intrinsicsd = Intrinsics<double>;
using Intrinsicsf = Intrinsics<float>;

}  // namespace crossview
