// Intrinsics, Euler rotations and the rotation homography (Eq. 1-2) against closed forms and
// OpenCV (cv::findHomography, cv::perspectiveTransform).
#include <crossview/geometry.hpp>

#include <doctest/doctest.h>
#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <Eigen/Geometry>

#include <cmath>
#include <random>
#include <vector>

namespace {

template <typename S>
S tol();
template <>
float tol<float>() { return 2e-3f; }
template <>
double tol<double>() { return 1e-9; }

// Independent projection of a rotated ray, written out by hand (no K matrices).
Eigen::Vector2d project_rotated(double x, double y, double f, double cx, double cy, const Eigen::Matrix3d& R) {
  const Eigen::Vector3d d((x - cx) / f, (y - cy) / f, 1.0);
  const Eigen::Vector3d e = R * d;
  return {cx + f * e.x() / e.z(), cy + f * e.y() / e.z()};
}

}  // namespace

TEST_CASE_TEMPLATE("Intrinsics: centred camera, inverse and resizing", S, float, double) {
  const auto K = crossview::Intrinsics<S>::centered(S(500), S(640), S(480));
  CHECK(K.cx == doctest::Approx(319.5));
  CHECK(K.cy == doctest::Approx(239.5));
  CHECK(K.fx == S(500));
  const Eigen::Matrix<S, 3, 3> I = K.matrix() * K.matrix_inverse();
  CHECK(I.isApprox(Eigen::Matrix<S, 3, 3>::Identity(), tol<S>()));

  crossview::Intrinsics<S> skewed{S(400), S(380), S(100), S(90), S(3)};
  const Eigen::Matrix<S, 3, 3> I2 = skewed.matrix() * skewed.matrix_inverse();
  CHECK(I2.isApprox(Eigen::Matrix<S, 3, 3>::Identity(), tol<S>()));

  // Halving a 640x480 image: the centred camera of 320x240 with half the focal length.
  const auto half = K.scaled(S(0.5));
  const auto expected = crossview::Intrinsics<S>::centered(S(250), S(320), S(240));
  CHECK(half.fx == doctest::Approx(expected.fx));
  CHECK(half.cx == doctest::Approx(expected.cx));
  CHECK(half.cy == doctest::Approx(expected.cy));

  CHECK(crossview::cityscapes_focal_for_width(1024.0) == doctest::Approx(1131.0));
}

TEST_CASE("Intrinsics: bad input is refused with the function and argument named") {
  using crossview::Intrinsicsd;
  CHECK_THROWS_WITH_AS(Intrinsicsd::centered(0.0, 640.0, 480.0), "Intrinsics::centered: focal must be > 0, got 0",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Intrinsicsd::centered(500.0, -1.0, 480.0), "Intrinsics::centered: width must be > 0, got -1",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Intrinsicsd::centered(NAN, 640.0, 480.0), "Intrinsics::centered: focal must be finite, got nan",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS((Intrinsicsd{0.0, 1.0, 0.0, 0.0, 0.0}.matrix_inverse()),
                       "Intrinsics::matrix_inverse: intrinsics fx must be > 0, got 0", std::invalid_argument);
}

TEST_CASE_TEMPLATE("rotation_from_euler: the documented matrices, orthonormal, det +1", S, float, double) {
  const S yaw = S(0.3), pitch = S(-0.2), roll = S(0.05);
  const Eigen::Matrix<S, 3, 3> R = crossview::rotation_from_euler(yaw, pitch, roll);
  Eigen::Matrix<S, 3, 3> Ry, Rx, Rz;
  Ry << std::cos(yaw), 0, std::sin(yaw), 0, 1, 0, -std::sin(yaw), 0, std::cos(yaw);
  Rx << 1, 0, 0, 0, std::cos(pitch), -std::sin(pitch), 0, std::sin(pitch), std::cos(pitch);
  Rz << std::cos(roll), -std::sin(roll), 0, std::sin(roll), std::cos(roll), 0, 0, 0, 1;
  CHECK(R.isApprox(Ry * Rx * Rz, tol<S>()));
  CHECK((R.transpose() * R).isApprox(Eigen::Matrix<S, 3, 3>::Identity(), tol<S>()));
  CHECK(R.determinant() == doctest::Approx(1.0).epsilon(1e-5));
  // Positive yaw turns the optical axis towards +x (right).
  CHECK((R * Eigen::Matrix<S, 3, 1>(0, 0, 1)).x() > S(0));
}

TEST_CASE_TEMPLATE("euler_from_rotation inverts rotation_from_euler, large angles and gimbal lock", S, float, double) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> yaw(-3.1, 3.1), pitch(-1.5, 1.5), roll(-3.1, 3.1);
  for (int i = 0; i < 200; ++i) {
    const S y = S(yaw(rng)), p = S(pitch(rng)), r = S(roll(rng));
    const auto angles = crossview::euler_from_rotation(crossview::rotation_from_euler(y, p, r));
    CHECK(angles.yaw == doctest::Approx(y).epsilon(tol<S>() * 10));
    CHECK(angles.pitch == doctest::Approx(p).epsilon(tol<S>() * 10));
    CHECK(angles.roll == doctest::Approx(r).epsilon(tol<S>() * 10));
  }
  // Gimbal lock: the angles differ, the rotation is reproduced.
  const Eigen::Matrix<S, 3, 3> R = crossview::rotation_from_euler(S(0.4), crossview::kPi<S> / 2, S(0.1));
  const Eigen::Matrix<S, 3, 3> back = crossview::rotation_from_euler(crossview::euler_from_rotation(R));
  CHECK(back.isApprox(R, tol<S>() * 10));

  CHECK_THROWS_WITH_AS(crossview::euler_from_rotation(Eigen::Matrix<S, 3, 3>(Eigen::Matrix<S, 3, 3>::Identity() * 2)),
                       "euler_from_rotation: R must be a rotation matrix (orthonormal, det +1)", std::invalid_argument);
}

TEST_CASE("rotation_homography equals cv::findHomography of four rotated rays (up to scale)") {
  std::mt19937_64 rng(11);
  const double W = 2048, H = 1024, f = 2262;
  const auto K = crossview::Intrinsicsd::centered(f, W, H);
  for (int trial = 0; trial < 20; ++trial) {
    const auto a = crossview::sample_view(crossview::ViewRange{}, rng);
    const Eigen::Matrix3d R = crossview::rotation_from_euler(a);
    const Eigen::Matrix3d Hm = crossview::rotation_homography(K, R);
    std::vector<cv::Point2d> src, dst;
    for (const auto& p : {cv::Point2d(100, 80), cv::Point2d(1900, 120), cv::Point2d(1800, 950), cv::Point2d(200, 900)}) {
      src.push_back(p);
      const auto q = project_rotated(p.x, p.y, f, K.cx, K.cy, R);
      dst.emplace_back(q.x(), q.y());
    }
    const cv::Mat Hcv = cv::findHomography(src, dst, 0);
    REQUIRE(!Hcv.empty());
    const Eigen::Matrix3d ours = Hm / Hm(2, 2);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) CHECK(ours(r, c) == doctest::Approx(Hcv.at<double>(r, c)).epsilon(1e-4).scale(1e-3));
  }
}

TEST_CASE("rotation_homography: closed-form cases (pure yaw, pure roll) and two cameras") {
  const double f = 800, W = 640, H = 480;
  const auto K = crossview::Intrinsicsd::centered(f, W, H);
  const Eigen::Vector2d c(K.cx, K.cy);
  for (const double yaw_deg : {-30.0, -5.0, 12.0, 45.0}) {
    const double yaw = crossview::deg2rad(yaw_deg);
    const auto p = crossview::transform_point(crossview::rotation_homography(K, crossview::rotation_from_euler(yaw, 0.0, 0.0)), c);
    REQUIRE(p.has_value());
    CHECK((*p)(0) == doctest::Approx(K.cx + f * std::tan(yaw)));
    CHECK((*p)(1) == doctest::Approx(K.cy));
  }
  // Roll about the principal point is a pure image rotation about it.
  const double roll = crossview::deg2rad(7.0);
  const Eigen::Matrix3d Hr = crossview::rotation_homography(K, crossview::rotation_from_euler(0.0, 0.0, roll));
  const Eigen::Rotation2Dd rot(roll);
  for (const Eigen::Vector2d p : {Eigen::Vector2d(0, 0), Eigen::Vector2d(600, 50), Eigen::Vector2d(123.5, 400)}) {
    const auto q = crossview::transform_point(Hr, p);
    REQUIRE(q.has_value());
    const Eigen::Vector2d expected = c + rot * (p - c);
    CHECK((*q - expected).norm() < 1e-9);
  }
  // Two cameras, no rotation: H = K_dst K_src^-1 (a zoom about the centres).
  const auto K2 = crossview::Intrinsicsd::centered(2 * f, W, H);
  const auto q = crossview::transform_point(crossview::rotation_homography(K, Eigen::Matrix3d::Identity(), K2),
                                            Eigen::Vector2d(K.cx + 10, K.cy - 4));
  REQUIRE(q.has_value());
  CHECK((*q - Eigen::Vector2d(K.cx + 20, K.cy - 8)).norm() < 1e-9);
}

TEST_CASE_TEMPLATE("transform_point agrees with cv::perspectiveTransform where w > 0 and refuses w <= 0", S, float, double) {
  const auto K = crossview::Intrinsics<S>::centered(S(150), S(320), S(240));
  const Eigen::Matrix<S, 3, 3> Hm = crossview::rotation_homography(K, crossview::rotation_from_euler(S(1.0), S(0.2), S(0.05)));
  cv::Matx33d Hcv;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) Hcv(r, c) = double(Hm(r, c));
  int front = 0, behind = 0;
  for (int y = 0; y < 240; y += 7) {
    for (int x = 0; x < 320; x += 7) {
      const auto p = crossview::transform_point(Hm, Eigen::Matrix<S, 2, 1>(S(x), S(y)));
      const double w = Hcv(2, 0) * x + Hcv(2, 1) * y + Hcv(2, 2);
      if (w > 1e-3) {
        REQUIRE(p.has_value());
        std::vector<cv::Point2d> in{{double(x), double(y)}}, out;
        cv::perspectiveTransform(in, out, Hcv);
        CHECK(double((*p)(0)) == doctest::Approx(out[0].x).epsilon(tol<S>() * 10));
        CHECK(double((*p)(1)) == doctest::Approx(out[0].y).epsilon(tol<S>() * 10));
        ++front;
      } else if (w < -1e-3) {
        CHECK_FALSE(p.has_value());  // OpenCV would mirror it through the centre
        ++behind;
      }
    }
  }
  // Yaw of 1 rad with a 150 px focal length puts the right part of the image behind the camera.
  CHECK(front > 100);
  CHECK(behind > 100);
}

TEST_CASE("rotation_homography: bad input") {
  const auto K = crossview::Intrinsicsd::centered(500.0, 64.0, 48.0);
  Eigen::Matrix3d R = Eigen::Matrix3d::Identity();
  R(0, 1) = INFINITY;
  CHECK_THROWS_WITH_AS(crossview::rotation_homography(K, R), "rotation_homography: R must have finite entries, got a NaN or infinity",
                       std::invalid_argument);
  crossview::Intrinsicsd bad = K;
  bad.fy = -1.0;
  CHECK_THROWS_WITH_AS(crossview::rotation_homography(bad, Eigen::Matrix3d::Identity()),
                       "rotation_homography: intrinsics fy must be > 0, got -1", std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::rotation_from_euler(0.0, double(NAN), 0.0), "rotation_from_euler: pitch must be finite, got nan",
                       std::invalid_argument);
}
