// One PSPNet training step (forward, loss, backward, SGD update) for a small backbone
// (ResNet-18, width 0.5, PPM/bottleneck 128 channels, aux 64) at crop 256, batch 2, on the CPU:
//   variant 0  baseline: plain 3x3 convs, cross-entropy (+ 0.4 aux) on one view;
//   variant 1  vvd+closs: two views (batch 2 each), cross-entropy on both, consistency loss
//              (Eq. 10, alpha = 1) on the four stage outputs, plain convs;
//   variant 2  vvd+ggdc+closs (the full method): variant 1 with GGDC in every residual block;
//   variant 3  ggdc alone: the baseline with GGDC in every residual block (one view, no closs).
// The cost of the method is the ratio variant / baseline (the _min rows), same binary, same run:
//   bench_pspnet --benchmark_filter=PSPNet
// The view pair's homography is a paper-like rotation (yaw 6, pitch 3, roll 2 degrees) about a
// centred crop; building the pair (the data generator) is not part of the step.
#include <crossview/geometry.hpp>
#include <crossview/loss.hpp>
#include <crossview/models.hpp>
#include <crossview/warp/homography_tensor.hpp>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

constexpr int64_t kBatch = 2;
constexpr int64_t kCrop = 256;
constexpr int64_t kClasses = 19;
constexpr double kAlpha = 1.0;

crossview::PSPNet make_net(bool ggdc) {
  torch::manual_seed(0);
  const auto backbone = crossview::ResNetOptions(18).width_multiplier(0.5).ggdc_placement(
      ggdc ? crossview::GGDCPlacement::kAllBlocks : crossview::GGDCPlacement::kNone);
  return crossview::PSPNet(crossview::PSPNetOptions(kClasses, backbone).channels(128).aux_channels(64));
}

torch::Tensor pair_homography() {
  constexpr double kDeg = 3.14159265358979323846 / 180.0;
  // Focal length of a 2048-px Cityscapes camera scaled to the crop's image (DESIGN.md).
  const auto K = crossview::Intrinsics<double>::centered(2262.0 * 512 / 2048, double(kCrop), double(kCrop));
  const Eigen::Matrix3d R = crossview::rotation_from_euler(6 * kDeg, 3 * kDeg, 2 * kDeg);
  return crossview::homography_to_tensor(crossview::rotation_homography(K, R)).expand({kBatch, 3, 3}).contiguous();
}

void BM_PSPNet_TrainStep(benchmark::State& state) {
  const int64_t variant = state.range(0);
  const bool two_views = variant == 1 || variant == 2;
  auto net = make_net(/*ggdc=*/variant >= 2);
  net->train();
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
  const crossview::ConsistencyLoss<> closs;
  const auto image_a = torch::randn({kBatch, 3, kCrop, kCrop});
  const auto image_b = torch::randn({kBatch, 3, kCrop, kCrop});
  const auto label_a = torch::randint(0, kClasses, {kBatch, kCrop, kCrop}, torch::kInt64);
  const auto label_b = torch::randint(0, kClasses, {kBatch, kCrop, kCrop}, torch::kInt64);
  const auto H_b_a = pair_homography();
  auto step = [&] {
    sgd.zero_grad();
    torch::Tensor loss;
    if (!two_views) {
      loss = net->loss(net->forward(image_a), label_a);
    } else {
      // Both views in one batch, as a training program does (BatchNorm sees both).
      auto out = net->forward(torch::cat({image_a, image_b}));
      loss = net->loss(out, torch::cat({label_a, label_b}));
      std::vector<torch::Tensor> feats_a, feats_b;
      for (const auto& f : out.features) {
        feats_a.push_back(f.narrow(0, 0, kBatch));
        feats_b.push_back(f.narrow(0, kBatch, kBatch));
      }
      loss = loss + kAlpha * closs(feats_a, feats_b, H_b_a, {kCrop, kCrop});
    }
    loss.backward();
    sgd.step();
    return loss.item<double>();
  };
  step();  // warm-up: allocator and lazily initialised kernels, outside the timed loop
  for (auto _ : state) benchmark::DoNotOptimize(step());
  static const char* const kNames[] = {"baseline: plain convs, CE, 1 view",
                                       "vvd+closs: plain convs, CE on 2 views + consistency loss",
                                       "vvd+ggdc+closs: GGDC in every block, CE on 2 views + consistency loss",
                                       "ggdc: GGDC in every block, CE, 1 view"};
  state.SetLabel(kNames[variant]);
}

BENCHMARK(BM_PSPNet_TrainStep)
    ->ArgName("variant")
    ->DenseRange(0, 3)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()  // CPU column: all of libtorch's threads
    ->UseRealTime()
    // One step per repetition; the minimum over repetitions is the figure least disturbed by
    // other processes on a shared machine (read the _min rows).
    ->Iterations(1)
    ->Repetitions(5)
    ->ComputeStatistics("min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); })
    ->ReportAggregatesOnly(true);

}  // namespace
