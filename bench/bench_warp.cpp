// Warping a 776x776 patch out of a 2048x1024 image (paper's crop and Cityscapes size): ours
// against OpenCV's warpPerspective, on the same number of threads; and whole VVD pairs.
//   bench_warp --benchmark_filter='Warp|OpenCV'   (ratios: BM_Warp_* / BM_OpenCV_*)
#include <crossview/data/vvd_pair.hpp>
#include <crossview/geometry.hpp>
#include <crossview/warp.hpp>

#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>

namespace {

constexpr int64_t kSrcH = 1024, kSrcW = 2048, kCrop = 776;

// A view with yaw 20, pitch -10, roll 2 degrees; the output is the kCrop x kCrop patch centred
// on where the image centre lands (Eq. 2-4).
Eigen::Matrix3d patch_homography() {
  const auto K = crossview::Intrinsicsd::centered(crossview::cityscapes_focal_for_width(kSrcW), kSrcW, kSrcH);
  const Eigen::Matrix3d R =
      crossview::rotation_from_euler(crossview::deg2rad(20.0), crossview::deg2rad(-10.0), crossview::deg2rad(2.0));
  const Eigen::Matrix3d H = crossview::rotation_homography(K, R);
  const Eigen::Vector2d o((kSrcW - 1) / 2.0, (kSrcH - 1) / 2.0);
  const Eigen::Vector2d o_b = *crossview::transform_point(H, o);
  const Eigen::Vector2d half((kCrop - 1) / 2.0, (kCrop - 1) / 2.0);
  return crossview::crop_homography(H, Eigen::Vector2d::Zero(), Eigen::Vector2d(o_b - half));
}

cv::Mat to_cv(const Eigen::Matrix3d& H) {
  cv::Mat M(3, 3, CV_64F);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) M.at<double>(r, c) = H(r, c);
  return M;
}

struct Inputs {
  torch::Tensor image_u8 = torch::randint(0, 256, {3, kSrcH, kSrcW}, torch::kUInt8);
  torch::Tensor image_f = image_u8.to(torch::kFloat32) / 255.0;
  torch::Tensor labels_u8 = torch::randint(0, 19, {kSrcH, kSrcW}, torch::kUInt8);
  torch::Tensor labels_i64 = labels_u8.to(torch::kInt64);
  cv::Mat image_hwc = cv::Mat(kSrcH, kSrcW, CV_8UC3, image_u8.permute({1, 2, 0}).contiguous().data_ptr()).clone();
  cv::Mat labels_mat = cv::Mat(kSrcH, kSrcW, CV_8UC1, labels_u8.data_ptr()).clone();
  Eigen::Matrix3d H = patch_homography();
};

const Inputs& inputs() {
  static const Inputs in;
  return in;
}

void BM_Warp_Image(benchmark::State& state) {
  const auto& in = inputs();
  for (auto _ : state) benchmark::DoNotOptimize(crossview::warp_image(in.image_u8, in.H, {kCrop, kCrop}));
  state.SetItemsProcessed(state.iterations() * kCrop * kCrop);
}

void BM_Warp_ImageFloat(benchmark::State& state) {
  const auto& in = inputs();
  for (auto _ : state) benchmark::DoNotOptimize(crossview::warp_image(in.image_f, in.H, {kCrop, kCrop}));
  state.SetItemsProcessed(state.iterations() * kCrop * kCrop);
}

void BM_OpenCV_WarpPerspective(benchmark::State& state) {
  const auto& in = inputs();
  const cv::Mat M = to_cv(in.H);
  cv::Mat out(kCrop, kCrop, CV_8UC3);
  for (auto _ : state) {
    cv::warpPerspective(in.image_hwc, out, M, cv::Size(kCrop, kCrop), cv::INTER_LINEAR, cv::BORDER_CONSTANT);
    benchmark::DoNotOptimize(out.data);
  }
  state.SetItemsProcessed(state.iterations() * kCrop * kCrop);
}

void BM_Warp_Labels(benchmark::State& state) {
  const auto& in = inputs();
  for (auto _ : state) benchmark::DoNotOptimize(crossview::warp_labels(in.labels_u8, in.H, {kCrop, kCrop}));
  state.SetItemsProcessed(state.iterations() * kCrop * kCrop);
}

void BM_Warp_LabelsInt64(benchmark::State& state) {
  const auto& in = inputs();
  for (auto _ : state) benchmark::DoNotOptimize(crossview::warp_labels(in.labels_i64, in.H, {kCrop, kCrop}));
  state.SetItemsProcessed(state.iterations() * kCrop * kCrop);
}

void BM_OpenCV_WarpPerspectiveNearest(benchmark::State& state) {
  const auto& in = inputs();
  const cv::Mat M = to_cv(in.H);
  cv::Mat out(kCrop, kCrop, CV_8UC1);
  for (auto _ : state) {
    cv::warpPerspective(in.labels_mat, out, M, cv::Size(kCrop, kCrop), cv::INTER_NEAREST, cv::BORDER_CONSTANT,
                        cv::Scalar::all(255));
    benchmark::DoNotOptimize(out.data);
  }
  state.SetItemsProcessed(state.iterations() * kCrop * kCrop);
}

// A whole training pair at the paper's crop (776) from a 2048x1024 float image with int64
// labels: view sampling, crop, warp of image and labels with the validity mask, H_b_a, plus the
// stride-8 correspondence grid the consistency loss uses. items_per_second = pairs/s.
void BM_VVD_Pair(benchmark::State& state) {
  const auto& in = inputs();
  const crossview::VVDPairGenerator generator(crossview::VVDOptions().crop_size(kCrop));
  std::mt19937_64 rng(0);
  const int64_t grid = (kCrop + 7) / 8;
  for (auto _ : state) {
    auto pair = generator(in.image_f, in.labels_i64, rng);
    auto corr = crossview::correspondence_grid(crossview::homography_to_tensor(pair.H_b_a), {grid, grid},
                                               {kCrop, kCrop}, {grid, grid}, {kCrop, kCrop});
    benchmark::DoNotOptimize(pair.image_b.data_ptr());
    benchmark::DoNotOptimize(corr.valid.data_ptr());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["fallbacks"] = double(generator.statistics().fallbacks);
  state.counters["tries_per_pair"] = double(generator.statistics().tries) / double(generator.statistics().pairs);
}

}  // namespace

BENCHMARK(BM_Warp_Image)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_OpenCV_WarpPerspective)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Warp_ImageFloat)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Warp_Labels)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Warp_LabelsInt64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_OpenCV_WarpPerspectiveNearest)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_VVD_Pair)->Unit(benchmark::kMillisecond)->UseRealTime();
