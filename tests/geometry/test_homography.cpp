// Crop homographies (Eq. 3), inverses, and re-expressing homographies between resized images and
// feature grids, checked against their definitions point by point.
#include <crossview/geometry.hpp>

#include <doctest/doctest.h>

#include <random>

namespace {
template <typename S>
S tol();
template <>
float tol<float>() { return 5e-2f; }  // pixels, for coordinates in the thousands
template <>
double tol<double>() { return 1e-7; }
}  // namespace

TEST_CASE_TEMPLATE("H then its inverse returns every point", S, float, double) {
  std::mt19937_64 rng(5);
  const auto K = crossview::Intrinsics<S>::centered(S(2262), S(2048), S(1024));
  for (int trial = 0; trial < 20; ++trial) {
    const auto a = crossview::sample_view<S>(crossview::ViewRange{}, rng);
    const Eigen::Matrix<S, 3, 3> H = crossview::rotation_homography(K, crossview::rotation_from_euler(a));
    const Eigen::Matrix<S, 3, 3> Hinv = crossview::inverse_homography(H);
    for (const auto& p : {Eigen::Matrix<S, 2, 1>(S(0), S(0)), Eigen::Matrix<S, 2, 1>(S(2047), S(1023)),
                          Eigen::Matrix<S, 2, 1>(S(1000.25), S(17.5))}) {
      const auto q = crossview::transform_point(H, p);
      REQUIRE(q.has_value());
      const auto back = crossview::transform_point(Hinv, *q);
      REQUIRE(back.has_value());
      CHECK(((*back) - p).norm() < tol<S>());
    }
  }
  CHECK_THROWS_WITH_AS(crossview::inverse_homography(Eigen::Matrix<S, 3, 3>::Zero().eval()),
                       "inverse_homography: H_dst_src must be an invertible 3x3 homography, got determinant 0",
                       std::invalid_argument);
}

TEST_CASE_TEMPLATE("crop_homography maps patch pixels where H maps the full-image pixels (Eq. 3)", S, float, double) {
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> ox(0, 1200), oy(0, 300), px(0, 775);
  const auto K = crossview::Intrinsics<S>::centered(S(2262), S(2048), S(1024));
  for (int trial = 0; trial < 30; ++trial) {
    const auto a = crossview::sample_view<S>(crossview::ViewRange{}, rng);
    const Eigen::Matrix<S, 3, 3> H = crossview::rotation_homography(K, crossview::rotation_from_euler(a));
    const Eigen::Matrix<S, 2, 1> origin_a(S(std::floor(ox(rng))), S(std::floor(oy(rng))));
    const Eigen::Matrix<S, 2, 1> origin_b(S(std::floor(ox(rng))), S(std::floor(oy(rng))));
    const Eigen::Matrix<S, 3, 3> Hc = crossview::crop_homography(H, origin_a, origin_b);
    for (int k = 0; k < 10; ++k) {
      const Eigen::Matrix<S, 2, 1> p_patch(S(px(rng)), S(px(rng)));
      const auto q_full = crossview::transform_point(H, Eigen::Matrix<S, 2, 1>(p_patch + origin_a));
      const auto q_patch = crossview::transform_point(Hc, p_patch);
      REQUIRE(q_full.has_value() == q_patch.has_value());
      if (q_full) CHECK(((*q_patch) - ((*q_full) - origin_b)).norm() < tol<S>());
    }
  }
  // Identity view: Hc is the translation between the two crops.
  const Eigen::Matrix<S, 3, 3> T = crossview::crop_homography(Eigen::Matrix<S, 3, 3>::Identity().eval(),
                                                              Eigen::Matrix<S, 2, 1>(S(10), S(20)),
                                                              Eigen::Matrix<S, 2, 1>(S(4), S(5)));
  CHECK(T(0, 2) == S(6));
  CHECK(T(1, 2) == S(15));
  CHECK_THROWS_WITH_AS(crossview::crop_homography(T, Eigen::Matrix<S, 2, 1>(S(NAN), S(0)), Eigen::Matrix<S, 2, 1>(S(0), S(0))),
                       "crop_homography: origin_src must have finite entries, got a NaN or infinity", std::invalid_argument);
}

TEST_CASE("pixel_scaling follows pixel centres; feature grids use s*j + (s-1)/2") {
  // Downscaling by 2: pixels 0 and 1 average into cell 0, whose centre is image coordinate 0.5.
  const Eigen::Matrix3d A = crossview::pixel_scaling(0.5, 0.5);
  CHECK((A * Eigen::Vector3d(0.5, 0.5, 1)).head<2>().norm() < 1e-12);
  // Upscaling by 4: pixel 0 covers new pixels 0..3, centre 1.5.
  const Eigen::Matrix3d B = crossview::pixel_scaling(4.0, 4.0);
  CHECK((B * Eigen::Vector3d(0, 0, 1)).head<2>().isApprox(Eigen::Vector2d(1.5, 1.5)));

  std::mt19937_64 rng(2);
  const auto K = crossview::Intrinsicsd::centered(900.0, 776.0, 776.0);
  const Eigen::Matrix3d H = crossview::rotation_homography(K, crossview::rotation_from_euler(crossview::sample_view(crossview::ViewRange{}, rng)));
  for (const double s_src : {1.0, 4.0, 8.0}) {
    for (const double s_dst : {2.0, 8.0}) {
      const Eigen::Matrix3d Hf = crossview::feature_grid_homography(H, s_src, s_dst);
      for (const Eigen::Vector2d cell : {Eigen::Vector2d(0, 0), Eigen::Vector2d(13, 40), Eigen::Vector2d(96, 96)}) {
        const Eigen::Vector2d image_src = s_src * cell + Eigen::Vector2d::Constant((s_src - 1) / 2);
        const auto image_dst = crossview::transform_point(H, image_src);
        const auto cell_dst = crossview::transform_point(Hf, cell);
        REQUIRE(image_dst.has_value());
        REQUIRE(cell_dst.has_value());
        const Eigen::Vector2d expected = ((*image_dst) - Eigen::Vector2d::Constant((s_dst - 1) / 2)) / s_dst;
        CHECK(((*cell_dst) - expected).norm() < 1e-9);
      }
    }
  }
  // Rescaling between image sizes: the same as mapping through the scaling matrices.
  const Eigen::Matrix3d Hr = crossview::rescale_homography(H, 0.5, 0.25, 2.0, 3.0);
  const Eigen::Vector2d p(40, 60);  // in the resized src image
  const Eigen::Vector2d p_orig((p.x() + 0.5) / 0.5 - 0.5, (p.y() + 0.5) / 0.25 - 0.5);
  const auto q_orig = crossview::transform_point(H, p_orig);
  const auto q = crossview::transform_point(Hr, p);
  REQUIRE(q.has_value());
  CHECK((*q - Eigen::Vector2d(2.0 * ((*q_orig).x() + 0.5) - 0.5, 3.0 * ((*q_orig).y() + 0.5) - 0.5)).norm() < 1e-9);
  CHECK_THROWS_WITH_AS(crossview::feature_grid_homography(H, 0.0, 8.0),
                       "feature_grid_homography: stride_src must be > 0, got 0", std::invalid_argument);
}
