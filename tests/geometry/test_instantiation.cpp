// Explicit instantiation of every geometry template for float and double, so that a template
// that does not compile for one scalar fails here rather than in a user's build.
#include <crossview/geometry.hpp>

#include <doctest/doctest.h>

#include <random>

template struct crossview::Intrinsics<float>;
template struct crossview::Intrinsics<double>;
template struct crossview::EulerAngles<float>;
template struct crossview::EulerAngles<double>;

#define CROSSVIEW_INSTANTIATE_GEOMETRY(S)                                                                         \
  template Eigen::Matrix<S, 3, 3> crossview::rotation_from_euler<S>(S, S, S);                                    \
  template crossview::EulerAngles<S> crossview::euler_from_rotation(const Eigen::MatrixBase<Eigen::Matrix<S, 3, 3>>&); \
  template crossview::Matrix3<S> crossview::rotation_homography(const crossview::Intrinsics<S>&,                  \
                                                                const Eigen::MatrixBase<Eigen::Matrix<S, 3, 3>>&, \
                                                                const crossview::Intrinsics<S>&);                 \
  template crossview::Matrix3<S> crossview::crop_homography(const Eigen::MatrixBase<Eigen::Matrix<S, 3, 3>>&,     \
                                                            const Eigen::MatrixBase<Eigen::Matrix<S, 2, 1>>&,     \
                                                            const Eigen::MatrixBase<Eigen::Matrix<S, 2, 1>>&);    \
  template std::optional<crossview::Vector2<S>> crossview::transform_point(                                        \
      const Eigen::MatrixBase<Eigen::Matrix<S, 3, 3>>&, const Eigen::MatrixBase<Eigen::Matrix<S, 2, 1>>&);       \
  template crossview::Matrix3<S> crossview::inverse_homography(const Eigen::MatrixBase<Eigen::Matrix<S, 3, 3>>&); \
  template crossview::Matrix3<S> crossview::pixel_scaling<S>(S, S);                                               \
  template crossview::Matrix3<S> crossview::rescale_homography(const Eigen::MatrixBase<Eigen::Matrix<S, 3, 3>>&, S, S, S, S); \
  template crossview::Matrix3<S> crossview::feature_grid_homography(const Eigen::MatrixBase<Eigen::Matrix<S, 3, 3>>&, S, S); \
  template crossview::Rect crossview::largest_inscribed_rect(const Eigen::MatrixBase<Eigen::Matrix<S, 3, 3>>&,    \
                                                             std::int64_t, std::int64_t, const crossview::Rect&);  \
  template crossview::Rect crossview::largest_inscribed_rect(const Eigen::MatrixBase<Eigen::Matrix<S, 3, 3>>&,    \
                                                             std::int64_t, std::int64_t);                          \
  template crossview::EulerAngles<S> crossview::sample_view<S, std::mt19937>(const crossview::ViewRange&, std::mt19937&); \
  template crossview::EulerAngles<S> crossview::sample_view<S, std::mt19937_64>(const crossview::ViewRange&, std::mt19937_64&);

CROSSVIEW_INSTANTIATE_GEOMETRY(float)
CROSSVIEW_INSTANTIATE_GEOMETRY(double)

TEST_CASE("every geometry template instantiates for float and double") {
  CHECK(crossview::Intrinsicsf::centered(1.f, 2.f, 2.f).cx == 0.5f);
  CHECK(crossview::Intrinsicsd::centered(1.0, 2.0, 2.0).cy == 0.5);
}
