#pragma once
/// \file
/// Homographies between views of a rotating camera and between crops (paper Eq. 2-4).
/// Direction is in the name: H_dst_src maps src pixels to dst pixels, p_dst ~ H_dst_src * p_src.

#include "crossview/geometry/detail/checks.hpp"
#include "crossview/geometry/intrinsics.hpp"

#include <Eigen/Core>
#include <Eigen/LU>

#include <cmath>
#include <optional>

namespace crossview {

template <typename Scalar>
using Matrix3 = Eigen::Matrix<Scalar, 3, 3>;
template <typename Scalar>
using Vector2 = Eigen::Matrix<Scalar, 2, 1>;

/// Eq. (2): H_dst_src = K_dst * R * K_src^-1 -- the dst camera sees the ray R*d where the src
/// camera sees d. Both cameras share their centre (pure rotation).
/// \throws std::invalid_argument if an intrinsic or R is not finite, or a focal is <= 0.
template <typename Scalar, typename Derived>
Matrix3<Scalar> rotation_homography(const Intrinsics<Scalar>& K_src, const Eigen::MatrixBase<Derived>& R,
                                    const Intrinsics<Scalar>& K_dst) {
  static_assert(Derived::RowsAtCompileTime == 3 && Derived::ColsAtCompileTime == 3,
                "crossview::rotation_homography: R must be a 3x3 Eigen matrix");
  K_src.validate("rotation_homography");
  K_dst.validate("rotation_homography");
  detail::check_finite(R, "rotation_homography", "R");
  return K_dst.matrix() * R.template cast<Scalar>() * K_src.matrix_inverse();
}

/// Eq. (2) with one camera: H = K * R * K^-1.
template <typename Scalar, typename Derived>
Matrix3<Scalar> rotation_homography(const Intrinsics<Scalar>& K, const Eigen::MatrixBase<Derived>& R) {
  return rotation_homography(K, R, K);
}

/// The translation T(t) = [[1,0,tx],[0,1,ty],[0,0,1]].
/// \throws std::invalid_argument if t is not finite.
template <typename Scalar, typename Derived>
Matrix3<Scalar> translation_homography(const Eigen::MatrixBase<Derived>& t) {
  detail::check_finite(t, "translation_homography", "t");
  Matrix3<Scalar> T = Matrix3<Scalar>::Identity();
  T(0, 2) = t(0);
  T(1, 2) = t(1);
  return T;
}

/// Eq. (3): the homography between two crops, Hc = T(-origin_dst) * H_dst_src * T(origin_src).
/// `origin_src` is the top-left pixel of the src crop in the full src image, `origin_dst` that of
/// the dst crop in the full dst image (the paper's o - a and o' - a). Hc maps src-crop pixels to
/// dst-crop pixels.
/// \throws std::invalid_argument if an input is not finite.
template <typename DerivedH, typename DerivedA, typename DerivedB>
Matrix3<typename DerivedH::Scalar> crop_homography(const Eigen::MatrixBase<DerivedH>& H_dst_src,
                                                   const Eigen::MatrixBase<DerivedA>& origin_src,
                                                   const Eigen::MatrixBase<DerivedB>& origin_dst) {
  using Scalar = typename DerivedH::Scalar;
  detail::check_finite(H_dst_src, "crop_homography", "H_dst_src");
  detail::check_finite(origin_src, "crop_homography", "origin_src");
  detail::check_finite(origin_dst, "crop_homography", "origin_dst");
  const Vector2<Scalar> t_src = origin_src.template cast<Scalar>();
  const Vector2<Scalar> t_dst = -origin_dst.template cast<Scalar>();
  return translation_homography<Scalar>(t_dst) * H_dst_src * translation_homography<Scalar>(t_src);
}

/// Eq. (4): maps pixel p_src to p_dst = (u/w, v/w) with (u, v, w) = H_dst_src * (x, y, 1).
/// Returns an empty optional when w <= 0: the point lies behind the dst camera and has no image
/// (it is never mirrored through the centre).
/// \throws std::invalid_argument if H_dst_src or p_src is not finite.
template <typename DerivedH, typename DerivedP>
std::optional<Vector2<typename DerivedH::Scalar>> transform_point(const Eigen::MatrixBase<DerivedH>& H_dst_src,
                                                                  const Eigen::MatrixBase<DerivedP>& p_src) {
  using Scalar = typename DerivedH::Scalar;
  const Scalar x = Scalar(p_src(0)), y = Scalar(p_src(1));
  const Scalar w = H_dst_src(2, 0) * x + H_dst_src(2, 1) * y + H_dst_src(2, 2);
  const Scalar u = H_dst_src(0, 0) * x + H_dst_src(0, 1) * y + H_dst_src(0, 2);
  const Scalar v = H_dst_src(1, 0) * x + H_dst_src(1, 1) * y + H_dst_src(1, 2);
  // A NaN would fail the w > 0 test and pass for "behind the camera": refused instead. A
  // non-finite entry of H or p makes its row's sum non-finite (inf * 0 is NaN), so the inputs are
  // checked only then: the per-point cost stays three tests (the grid mapping is a hot loop).
  if (!(std::isfinite(u) && std::isfinite(v) && std::isfinite(w))) {
    detail::check_finite(H_dst_src, "transform_point", "H_dst_src");
    detail::check_finite(p_src, "transform_point", "p_src");
  }
  if (!(w > Scalar(0))) return std::nullopt;
  return Vector2<Scalar>(u / w, v / w);
}

/// The inverse homography H_src_dst = H_dst_src^-1. Its sign is kept (not normalised): the sign of
/// w decides which points lie in front of the camera.
/// \throws std::invalid_argument if H_dst_src is singular or not finite.
template <typename Derived>
Matrix3<typename Derived::Scalar> inverse_homography(const Eigen::MatrixBase<Derived>& H_dst_src) {
  detail::check_invertible_3x3(H_dst_src, "inverse_homography", "H_dst_src");
  return H_dst_src.inverse();
}

/// Pixel-centre scaling A(s) from an image to the same image resized by (scale_x, scale_y):
/// x' = scale_x * (x + 0.5) - 0.5. A feature grid of stride s is the resize with scale 1/s: cell j
/// sits at image coordinate s*j + (s-1)/2 (align_corners=False).
template <typename Scalar>
Matrix3<Scalar> pixel_scaling(Scalar scale_x, Scalar scale_y) {
  detail::check_positive(scale_x, "pixel_scaling", "scale_x");
  detail::check_positive(scale_y, "pixel_scaling", "scale_y");
  Matrix3<Scalar> A = Matrix3<Scalar>::Identity();
  A(0, 0) = scale_x;
  A(1, 1) = scale_y;
  A(0, 2) = Scalar(0.5) * scale_x - Scalar(0.5);
  A(1, 2) = Scalar(0.5) * scale_y - Scalar(0.5);
  return A;
}

/// H_dst_src re-expressed between resized images: src resized by (sx_src, sy_src), dst by
/// (sx_dst, sy_dst). Returns A(dst) * H_dst_src * A(src)^-1.
template <typename Derived>
Matrix3<typename Derived::Scalar> rescale_homography(const Eigen::MatrixBase<Derived>& H_dst_src,
                                                     typename Derived::Scalar sx_src, typename Derived::Scalar sy_src,
                                                     typename Derived::Scalar sx_dst, typename Derived::Scalar sy_dst) {
  using Scalar = typename Derived::Scalar;
  detail::check_finite(H_dst_src, "rescale_homography", "H_dst_src");
  const Matrix3<Scalar> A_src = pixel_scaling(sx_src, sy_src);
  Matrix3<Scalar> A_src_inv = Matrix3<Scalar>::Identity();
  A_src_inv(0, 0) = Scalar(1) / sx_src;
  A_src_inv(1, 1) = Scalar(1) / sy_src;
  A_src_inv(0, 2) = -A_src(0, 2) / sx_src;
  A_src_inv(1, 2) = -A_src(1, 2) / sy_src;
  return pixel_scaling(sx_dst, sy_dst) * H_dst_src * A_src_inv;
}

/// H_dst_src between image pixels re-expressed between feature grids of strides stride_src and
/// stride_dst (DESIGN.md: cell j at image coordinate s*j + (s-1)/2). Maps src-grid cells to
/// dst-grid cells (sub-cell positions).
/// \throws std::invalid_argument if a stride is not finite and positive or H_dst_src is not finite.
template <typename Derived>
Matrix3<typename Derived::Scalar> feature_grid_homography(const Eigen::MatrixBase<Derived>& H_dst_src,
                                                          typename Derived::Scalar stride_src,
                                                          typename Derived::Scalar stride_dst) {
  using Scalar = typename Derived::Scalar;
  detail::check_finite(H_dst_src, "feature_grid_homography", "H_dst_src");
  detail::check_positive(stride_src, "feature_grid_homography", "stride_src");
  detail::check_positive(stride_dst, "feature_grid_homography", "stride_dst");
  return rescale_homography(H_dst_src, Scalar(1) / stride_src, Scalar(1) / stride_src, Scalar(1) / stride_dst,
                            Scalar(1) / stride_dst);
}

}  // namespace crossview
