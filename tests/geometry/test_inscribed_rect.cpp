// largest_inscribed_rect against a brute-force search over every rectangle of a mask computed
// independently (OpenCV's matrix inverse and perspectiveTransform, explicit w test).
#include <crossview/geometry.hpp>

#include <doctest/doctest.h>
#include <opencv2/core.hpp>

#include <random>
#include <vector>

namespace {

struct Mask {
  int64_t x0, y0, w, h;
  std::vector<int> valid;  // row-major
  int at(int64_t x, int64_t y) const { return valid[size_t((y - y0) * w + (x - x0))]; }
};

Mask brute_mask(const Eigen::Matrix3d& H_dst_src, int64_t src_w, int64_t src_h, const crossview::Rect& canvas) {
  cv::Matx33d H;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) H(r, c) = H_dst_src(r, c);
  const cv::Matx33d Hinv = H.inv();
  Mask m{canvas.x, canvas.y, canvas.width, canvas.height, {}};
  m.valid.resize(size_t(canvas.width * canvas.height));
  for (int64_t y = 0; y < canvas.height; ++y) {
    for (int64_t x = 0; x < canvas.width; ++x) {
      const cv::Vec3d p = Hinv * cv::Vec3d(double(canvas.x + x), double(canvas.y + y), 1.0);
      const bool inside = p[2] > 0 && p[0] / p[2] >= -1e-7 && p[0] / p[2] <= double(src_w - 1) + 1e-7 &&
                          p[1] / p[2] >= -1e-7 && p[1] / p[2] <= double(src_h - 1) + 1e-7;
      m.valid[size_t(y * canvas.width + x)] = inside ? 1 : 0;
    }
  }
  return m;
}

// Largest all-valid rectangle area by trying every rectangle, with 2-D prefix sums.
int64_t brute_best_area(const Mask& m) {
  std::vector<int64_t> S(size_t((m.w + 1) * (m.h + 1)), 0);
  auto s = [&](int64_t x, int64_t y) -> int64_t& { return S[size_t(y * (m.w + 1) + x)]; };
  for (int64_t y = 0; y < m.h; ++y)
    for (int64_t x = 0; x < m.w; ++x) s(x + 1, y + 1) = m.valid[size_t(y * m.w + x)] + s(x, y + 1) + s(x + 1, y) - s(x, y);
  int64_t best = 0;
  for (int64_t y0 = 0; y0 < m.h; ++y0)
    for (int64_t y1 = y0 + 1; y1 <= m.h; ++y1)
      for (int64_t x0 = 0; x0 < m.w; ++x0)
        for (int64_t x1 = x0 + 1; x1 <= m.w; ++x1) {
          const int64_t area = (x1 - x0) * (y1 - y0);
          if (area <= best) continue;
          if (s(x1, y1) - s(x0, y1) - s(x1, y0) + s(x0, y0) == area) best = area;
          else break;  // wider rectangles from x0 contain this invalid one
        }
  return best;
}

void check_optimal(const Eigen::Matrix3d& H, int64_t src_w, int64_t src_h, const crossview::Rect& canvas,
                   const crossview::Rect& rect) {
  const Mask m = brute_mask(H, src_w, src_h, canvas);
  CHECK(rect.area() == brute_best_area(m));
  for (int64_t y = rect.y; y < rect.y + rect.height; ++y)
    for (int64_t x = rect.x; x < rect.x + rect.width; ++x) REQUIRE(m.at(x, y) == 1);
}

}  // namespace

TEST_CASE("largest_inscribed_rect is optimal on the paper's view ranges (brute force, small images)") {
  std::mt19937_64 rng(21);
  const int64_t W = 48, Hh = 24;  // a 2048x1024 Cityscapes frame at 1/42.7 scale
  const auto K = crossview::Intrinsicsd::centered(crossview::cityscapes_focal_for_width(double(W)), double(W), double(Hh));
  for (int trial = 0; trial < 25; ++trial) {
    const Eigen::Matrix3d H = crossview::rotation_homography(K, crossview::rotation_from_euler(crossview::sample_view(crossview::ViewRange{}, rng)));
    const crossview::Rect rect = crossview::largest_inscribed_rect(H, W, Hh);
    REQUIRE_FALSE(rect.empty());
    // The bounding box of the image of the source, a little enlarged.
    check_optimal(H, W, Hh, crossview::Rect{rect.x - 30, rect.y - 30, rect.width + 60, rect.height + 60}, rect);
  }
}

TEST_CASE("largest_inscribed_rect: strong perspective (yaw up to 80 degrees), shear, bounded canvas") {
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> yaw(-80, 80), pitch(-40, 40), roll(-30, 30);
  const int64_t W = 32, Hh = 20;
  const auto K = crossview::Intrinsicsd::centered(30.0, double(W), double(Hh));
  const crossview::Rect canvas{-40, -30, 110, 80};
  int nonempty = 0;
  for (int trial = 0; trial < 150; ++trial) {
    const Eigen::Matrix3d R = crossview::rotation_from_euler(crossview::deg2rad(yaw(rng)), crossview::deg2rad(pitch(rng)),
                                                             crossview::deg2rad(roll(rng)));
    const Eigen::Matrix3d H = crossview::rotation_homography(K, R);
    const crossview::Rect rect = crossview::largest_inscribed_rect(H, W, Hh, canvas);
    check_optimal(H, W, Hh, canvas, rect);
    nonempty += rect.empty() ? 0 : 1;
  }
  CHECK(nonempty > 75);
  // An affine shear.
  Eigen::Matrix3d S = Eigen::Matrix3d::Identity();
  S(0, 1) = 0.7;
  S(1, 0) = -0.2;
  const crossview::Rect sheared = crossview::largest_inscribed_rect(S, W, Hh, canvas);
  check_optimal(S, W, Hh, canvas, sheared);
}

TEST_CASE("largest_inscribed_rect: identity, no rectangle, unbounded images and bad input") {
  const crossview::Rect id = crossview::largest_inscribed_rect(Eigen::Matrix3d::Identity(), 640, 480);
  CHECK(id == crossview::Rect{0, 0, 640, 480});

  // A canvas that the image of the source never reaches: reported as empty, not an error.
  const crossview::Rect none = crossview::largest_inscribed_rect(Eigen::Matrix3d::Identity(), 10, 10, crossview::Rect{100, 100, 5, 5});
  CHECK(none.empty());
  CHECK(none.area() == 0);

  // Yaw 80 degrees with a short focal length: part of the source lies behind the dst camera.
  const auto K = crossview::Intrinsicsd::centered(30.0, 32.0, 20.0);
  const Eigen::Matrix3d H = crossview::rotation_homography(K, crossview::rotation_from_euler(crossview::deg2rad(80.0), 0.0, 0.0));
  CHECK_THROWS_WITH_AS(crossview::largest_inscribed_rect(H, 32, 20),
                       "largest_inscribed_rect: H_dst_src maps a source corner behind the camera (w <= 0): the image of "
                       "the source is unbounded; pass a dst canvas",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::largest_inscribed_rect(Eigen::Matrix3d::Zero().eval(), 32, 20),
                       "largest_inscribed_rect: H_dst_src must be an invertible 3x3 homography, got determinant 0",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::largest_inscribed_rect(Eigen::Matrix3d::Identity(), 0, 20),
                       "largest_inscribed_rect: src_width x src_height must be positive, got 0x20", std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::largest_inscribed_rect(Eigen::Matrix3d::Identity(), 5, 5, crossview::Rect{0, 0, 0, 3}),
                       "largest_inscribed_rect: canvas must have a positive size, got 0x3", std::invalid_argument);
}
