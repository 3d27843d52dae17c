// VVD dataset derivation throughput (paper Sec. 4.2) for Cityscapes-sized (2048x1024) and
// CamVid-sized (360x480) inputs: derive_vvd_view (largest inscribed rectangle + bilinear image warp
// + nearest label warp) against the same warps done with OpenCV's warpPerspective into the same
// crop (the comparison, without the rectangle search), and a whole pair written as PNG + JSON as
// crossview-derive-vvd does. Plus SyntheticStreet renders.
//   bench_datasets                         (ratios: BM_Datasets_DeriveView / BM_OpenCV_DeriveWarps)
#include <crossview/data/vvd_view.hpp>
#include <crossview/data/synthetic_street.hpp>
#include <crossview/io/derived_dataset.hpp>

#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

namespace {

constexpr double kCamVidFocal = 2262.0 * 480.0 / 2048.0;  // as crossview-derive-vvd's default

// A textured uint8 image [3, H, W] and a label map [H, W] of 19 classes in blocks.
struct Source {
  torch::Tensor image, label;
};
Source make_source(int64_t h, int64_t w) {
  torch::manual_seed(0);
  auto smooth = torch::nn::functional::interpolate(
      torch::rand({1, 3, h / 8, w / 8}),
      torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kBilinear).align_corners(false));
  auto image = (smooth.squeeze(0) * 200 + torch::rand({3, h, w}) * 55).to(torch::kUInt8);
  auto label = torch::randint(0, 19, {1, 1, h / 16, w / 16}).to(torch::kFloat32);
  label = torch::nn::functional::interpolate(label, torch::nn::functional::InterpolateFuncOptions()
                                                        .size(std::vector<int64_t>{h, w})
                                                        .mode(torch::kNearest))
              .squeeze()
              .to(torch::kInt64);
  return {image.contiguous(), label.contiguous()};
}

double focal_for(int64_t w) { return w == 480 ? kCamVidFocal : crossview::cityscapes_focal_for_width(double(w)); }

cv::Mat to_cv(const Eigen::Matrix3d& H) {
  cv::Mat M(3, 3, CV_64F);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) M.at<double>(r, c) = H(r, c);
  return M;
}

// derive_vvd_view: rectangle search + both warps. Views drawn from the paper's ranges.
void BM_Datasets_DeriveView(benchmark::State& state) {
  const auto source = make_source(state.range(0), state.range(1));
  std::mt19937_64 rng(1);
  for (auto _ : state) {
    auto view = crossview::derive_vvd_view(source.image, source.label, focal_for(state.range(1)),
                                           crossview::ViewRange{}, rng);
    benchmark::DoNotOptimize(view.image.data_ptr());
  }
  state.SetItemsProcessed(state.iterations());  // images/s
}

// The comparison: OpenCV's warpPerspective (bilinear image, nearest label) into the same crops,
// the crops precomputed (no rectangle search).
void BM_OpenCV_DeriveWarps(benchmark::State& state) {
  const auto source = make_source(state.range(0), state.range(1));
  const auto hwc = source.image.permute({1, 2, 0}).contiguous();
  const cv::Mat image(int(state.range(0)), int(state.range(1)), CV_8UC3, hwc.data_ptr<uint8_t>());
  const auto lab8 = source.label.to(torch::kUInt8).contiguous();
  const cv::Mat label(int(state.range(0)), int(state.range(1)), CV_8UC1, lab8.data_ptr<uint8_t>());
  std::vector<crossview::DerivedView> views;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 16; ++i) {
    const auto angles = crossview::sample_view(crossview::ViewRange{}, rng);
    const auto K = crossview::Intrinsicsd::centered(focal_for(state.range(1)), double(state.range(1)), double(state.range(0)));
    const Eigen::Matrix3d H = crossview::rotation_homography(K, crossview::rotation_from_euler(angles));
    crossview::DerivedView v;
    v.crop = crossview::largest_inscribed_rect(H, state.range(1), state.range(0));
    v.H_derived_source = crossview::translation_homography<double>(Eigen::Vector2d(-double(v.crop.x), -double(v.crop.y))) * H;
    views.push_back(v);
  }
  std::size_t i = 0;
  cv::Mat out_image, out_label;
  for (auto _ : state) {
    const auto& v = views[i++ % views.size()];
    const cv::Size size(int(v.crop.width), int(v.crop.height));
    cv::warpPerspective(image, out_image, to_cv(v.H_derived_source), size, cv::INTER_LINEAR);
    cv::warpPerspective(label, out_label, to_cv(v.H_derived_source), size, cv::INTER_NEAREST, cv::BORDER_CONSTANT,
                        cv::Scalar::all(255));
    benchmark::DoNotOptimize(out_image.data);
    benchmark::DoNotOptimize(out_label.data);
  }
  state.SetItemsProcessed(state.iterations());
}

// The rectangle search alone (largest_inscribed_rect over the rotated view's bounding box).
void BM_Datasets_InscribedRect(benchmark::State& state) {
  std::mt19937_64 rng(1);
  const auto K = crossview::Intrinsicsd::centered(focal_for(state.range(1)), double(state.range(1)), double(state.range(0)));
  for (auto _ : state) {
    const Eigen::Matrix3d H =
        crossview::rotation_homography(K, crossview::rotation_from_euler(crossview::sample_view(crossview::ViewRange{}, rng)));
    benchmark::DoNotOptimize(crossview::largest_inscribed_rect(H, state.range(1), state.range(0)));
  }
  state.SetItemsProcessed(state.iterations());
}

// A whole pair as crossview-derive-vvd makes it: derive + PNG image + PNG label + JSON.
void BM_Datasets_DeriveAndWritePair(benchmark::State& state) {
  const auto source = make_source(state.range(0), state.range(1));
  const auto out = std::filesystem::temp_directory_path() / "crossview_bench_datasets";
  std::filesystem::create_directories(out);
  std::mt19937_64 rng(1);
  for (auto _ : state) {
    const auto view = crossview::derive_vvd_view(source.image, source.label, focal_for(state.range(1)),
                                                 crossview::ViewRange{}, rng);
    const auto record = crossview::make_derived_record("bench", "source.png", "label.png",
                                                       crossview::LabelFormat::kTrainIds, 19, view);
    crossview::write_derived_pair(out, record, view.image, view.label);
  }
  state.SetItemsProcessed(state.iterations());
  std::filesystem::remove_all(out);
}

// SyntheticStreet: one identity view (2 rays per pixel, labels from the centre ray).
void BM_SyntheticStreet_Render(benchmark::State& state) {
  const crossview::SyntheticStreet street(3);
  const auto K = crossview::Intrinsicsd::centered(crossview::cityscapes_focal_for_width(double(state.range(1))),
                                                  double(state.range(1)), double(state.range(0)));
  for (auto _ : state) {
    auto view = street.render(K, Eigen::Matrix3d::Identity(), state.range(0), state.range(1));
    benchmark::DoNotOptimize(view.image.data_ptr());
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_Datasets_DeriveView)->Args({1024, 2048})->Args({360, 480})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_OpenCV_DeriveWarps)->Args({1024, 2048})->Args({360, 480})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Datasets_InscribedRect)->Args({1024, 2048})->Args({360, 480})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Datasets_DeriveAndWritePair)->Args({1024, 2048})->Args({360, 480})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SyntheticStreet_Render)->Args({128, 256})->Args({256, 512})->Unit(benchmark::kMillisecond)->UseRealTime();
