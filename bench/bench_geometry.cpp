// Camera-geometry micro-benchmarks: building homographies (Eq. 2-3), mapping a whole 2048x1024
// pixel grid (Eq. 4) beside OpenCV's cv::perspectiveTransform, and the largest inscribed rectangle.
#include <crossview/geometry.hpp>

#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>

#include <random>
#include <vector>

namespace {

constexpr int kWidth = 2048;
constexpr int kHeight = 1024;

Eigen::Matrix3d paper_view_homography(unsigned seed) {
  std::mt19937_64 rng(seed);
  const auto K = crossview::Intrinsicsd::centered(crossview::kCityscapesFocal, kWidth, kHeight);
  return crossview::rotation_homography(K, crossview::rotation_from_euler(crossview::sample_view(crossview::ViewRange{}, rng)));
}

void BM_Homography_Construct(benchmark::State& state) {
  std::mt19937_64 rng(1);
  const auto K = crossview::Intrinsicsd::centered(crossview::kCityscapesFocal, kWidth, kHeight);
  const Eigen::Vector2d origin_a(300, 100), origin_b(500, 120);
  for (auto _ : state) {
    const auto angles = crossview::sample_view(crossview::ViewRange{}, rng);
    const Eigen::Matrix3d H = crossview::rotation_homography(K, crossview::rotation_from_euler(angles));
    const Eigen::Matrix3d Hc = crossview::crop_homography(H, origin_a, origin_b);
    benchmark::DoNotOptimize(Hc.data());
  }
}
BENCHMARK(BM_Homography_Construct);

void BM_Homography_MapGrid(benchmark::State& state) {
  const Eigen::Matrix3d H = paper_view_homography(2);
  std::vector<Eigen::Vector2d> out(size_t(kWidth) * kHeight);
  for (auto _ : state) {
    size_t i = 0;
    for (int y = 0; y < kHeight; ++y)
      for (int x = 0; x < kWidth; ++x) {
        const auto p = crossview::transform_point(H, Eigen::Vector2d(x, y));
        out[i++] = p ? *p : Eigen::Vector2d(-1, -1);
      }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kWidth * kHeight);
}
BENCHMARK(BM_Homography_MapGrid)->Unit(benchmark::kMillisecond);

void BM_OpenCV_PerspectiveTransformGrid(benchmark::State& state) {
  const Eigen::Matrix3d H = paper_view_homography(2);
  cv::Matx33d Hcv;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) Hcv(r, c) = H(r, c);
  std::vector<cv::Point2d> in;
  in.reserve(size_t(kWidth) * kHeight);
  for (int y = 0; y < kHeight; ++y)
    for (int x = 0; x < kWidth; ++x) in.emplace_back(x, y);
  std::vector<cv::Point2d> out;
  for (auto _ : state) {
    cv::perspectiveTransform(in, out, Hcv);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kWidth * kHeight);
}
BENCHMARK(BM_OpenCV_PerspectiveTransformGrid)->Unit(benchmark::kMillisecond);

void BM_Homography_InscribedRect(benchmark::State& state) {
  const Eigen::Matrix3d H = paper_view_homography(3);
  for (auto _ : state) {
    const crossview::Rect r = crossview::largest_inscribed_rect(H, kWidth, kHeight);
    benchmark::DoNotOptimize(r.width);
  }
}
BENCHMARK(BM_Homography_InscribedRect)->Unit(benchmark::kMillisecond);

}  // namespace
