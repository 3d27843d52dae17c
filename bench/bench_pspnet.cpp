// One PSPNet training step (forward, loss, backward, SGD update) on the CPU, as crossview-train
// takes it: every variant sees the same number of images per step (the VVD variants as view
// pairs, both views in one batch), the consistency loss (Eq. 10, alpha = 1) taps every residual
// block's output (the default --closs-layers blocks). Configurations (first argument):
//   config 0  the embedded default: ResNet-18 x0.25, PSPNet heads 128/64, crop 96, 8 images;
//   config 1  ResNet-18 x0.5, heads 128/64, crop 256, 4 images;
//   config 2  ResNet-50 x1 (the paper's backbone, deep stem), heads 512/256, crop 256, 4 images.
// Variants (second argument):
//   variant 0  baseline: plain 3x3 convs, cross-entropy (+ 0.4 aux);
//   variant 1  vvd+closs: the images as view pairs, cross-entropy on both views + consistency loss;
//   variant 2  vvd+ggdc+closs (the full method): variant 1 with GGDC in every residual block;
//   variant 3  ggdc alone: the baseline with GGDC in every residual block.
// The cost of the method is the ratio variant / baseline of the same config (the _min rows), same
// binary, same run:
//   bench_pspnet --benchmark_filter=PSPNet
// The view pair's homography is a paper-like rotation (yaw 6, pitch 3, roll 2 degrees) about a
// centred crop; building the pair (the data generator) is not part of the step.
#include <crossview/geometry.hpp>
#include <crossview/loss.hpp>
#include <crossview/models.hpp>
#include <crossview/nn.hpp>
#include <crossview/warp/homography_tensor.hpp>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

constexpr int64_t kClasses = 19;
constexpr double kAlpha = 1.0;

struct Config {
  int depth;
  double width;
  bool deep_stem;
  int64_t head, aux, crop, images;
  const char* name;
};

const Config kConfigs[] = {{18, 0.25, false, 128, 64, 96, 8, "R18x0.25 crop 96, 8 images (embedded default)"},
                           {18, 0.5, false, 128, 64, 256, 4, "R18x0.5 crop 256, 4 images"},
                           {50, 1.0, true, 512, 256, 256, 4, "R50x1 crop 256, 4 images"}};

crossview::PSPNet make_net(const Config& c, bool ggdc) {
  torch::manual_seed(0);
  const auto backbone = crossview::ResNetOptions(c.depth)
                            .width_multiplier(c.width)
                            .deep_stem(c.deep_stem)
                            .ggdc_placement(ggdc ? crossview::GGDCPlacement::kAllBlocks : crossview::GGDCPlacement::kNone);
  return crossview::PSPNet(crossview::PSPNetOptions(kClasses, backbone).channels(c.head).aux_channels(c.aux));
}

torch::Tensor pair_homography(int64_t crop, int64_t pairs) {
  constexpr double kDeg = 3.14159265358979323846 / 180.0;
  // Focal length of a 2048-px Cityscapes camera scaled to the crop's image (DESIGN.md).
  const auto K = crossview::Intrinsics<double>::centered(2262.0 * 2 * double(crop) / 2048, double(crop), double(crop));
  const Eigen::Matrix3d R = crossview::rotation_from_euler(6 * kDeg, 3 * kDeg, 2 * kDeg);
  return crossview::homography_to_tensor(crossview::rotation_homography(K, R)).expand({pairs, 3, 3}).contiguous();
}

void BM_PSPNet_TrainStep(benchmark::State& state) {
  const auto& config = kConfigs[state.range(0)];
  const int64_t variant = state.range(1);
  const bool pairs = variant == 1 || variant == 2;
  auto net = make_net(config, /*ggdc=*/variant >= 2);
  net->train();
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
  const crossview::ConsistencyLoss<> closs;
  const int64_t n = config.images, half = n / 2, crop = config.crop;
  const auto images = torch::randn({n, 3, crop, crop});
  const auto labels = torch::randint(0, kClasses, {n, crop, crop}, torch::kInt64);
  const auto H_b_a = pair_homography(crop, half);
  auto step = [&] {
    sgd.zero_grad();
    const auto out = net->forward(images);
    auto loss = net->loss(out, labels);
    if (pairs) {  // images [0, half) are the views a, [half, n) the views b of the same pairs
      std::vector<torch::Tensor> feats_a, feats_b;
      for (const auto& f : out.block_features) {
        feats_a.push_back(f.narrow(0, 0, half));
        feats_b.push_back(f.narrow(0, half, half));
      }
      loss = loss + kAlpha * closs(feats_a, feats_b, H_b_a, {crop, crop});
    }
    loss.backward();
    sgd.step();
    return loss.item<double>();
  };
  step();  // warm-up: allocator and lazily initialised kernels, outside the timed loop
  for (auto _ : state) benchmark::DoNotOptimize(step());
  static const char* const kNames[] = {"baseline", "vvd+closs", "vvd+ggdc+closs", "ggdc only"};
  state.SetLabel(std::string(kNames[variant]) + ", " + config.name);
}

BENCHMARK(BM_PSPNet_TrainStep)
    ->ArgNames({"config", "variant"})
    ->ArgsProduct({{0, 1, 2}, {0, 1, 2, 3}})
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()  // CPU column: all of libtorch's threads
    ->UseRealTime()
    // One step per repetition; the minimum over repetitions is the figure least disturbed by
    // other processes on a shared machine (read the _min rows).
    ->Iterations(1)
    ->Repetitions(5)
    ->ComputeStatistics("min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); })
    ->ReportAggregatesOnly(true);

// What one GGDC layer costs, part by part, at the embedded default's shapes (crossview-train with
// no arguments: ResNet-18 x0.25, crop 96, batch 8 -> the conv2 of each stage's blocks sees
// [8, C, H, W] = [8, 16, 24, 24], [8, 32, 12, 12], [8, 64, 12, 12] dilation 2, [8, 128, 12, 12]
// dilation 4). Forward + backward of
//   part 0  the plain 3x3 conv GGDC replaces (torch::conv2d, the reference),
//   part 1  the gradient operator (Sobel: replicate padding + depthwise conv, 2C channels),
//   part 2  the offset head (3x3 conv 2C -> 18 channels),
//   part 3  the deformable convolution alone (offsets given, ~N(0, 0.5) px),
//   part 4  the whole GGDC layer (1 + 2 + 3 and the glue),
//   part 5  part 1 as the replicate-padded depthwise convolution (torch::conv2d, groups = C) that
//           computed it before the fused kernels (the comparison case for part 1).
//   bench_pspnet --benchmark_filter=GGDCParts
void BM_GGDCParts(benchmark::State& state) {
  const int64_t part = state.range(0), stage = state.range(1);
  static const int64_t kC[] = {16, 32, 64, 128}, kHW[] = {24, 12, 12, 12}, kDil[] = {1, 1, 2, 4};
  const int64_t c = kC[stage], hw = kHW[stage], d = kDil[stage], n = 8;
  torch::manual_seed(0);
  auto ggdc = crossview::GGDC<>(crossview::GGDCOptions(c, c, 3).padding(d).dilation(d).bias(false));
  const auto x = torch::randn({n, c, hw, hw}).requires_grad_(true);
  const auto grad = torch::randn({n, c, hw, hw});
  const auto sobel = crossview::Sobel::apply(x.detach()).requires_grad_(true);
  const auto offset = (torch::randn({n, 18, hw, hw}) * 0.5).requires_grad_(true);
  auto run = [&]() -> torch::Tensor {
    switch (part) {
      case 0: return torch::conv2d(x, ggdc->weight, {}, 1, d, d);
      case 1: return crossview::Sobel::apply(x);
      case 2: return ggdc->offset_head(sobel);
      case 3: return crossview::deform_conv2d(x, ggdc->weight, offset, {}, {}, 1, 1, d, d, d, d);
      case 4: return ggdc(x);
      default: {
        const auto k = torch::tensor({-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0}).view({3, 3}) / 8;
        const auto w = torch::stack({k, k.t()}).unsqueeze(1).repeat({c, 1, 1, 1});
        namespace F = torch::nn::functional;
        return F::conv2d(F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate)), w,
                         F::Conv2dFuncOptions().groups(c));
      }
    }
  };
  auto step = [&] {
    const auto out = run();
    out.backward(out.size(1) == c ? grad : torch::ones_like(out));
    ggdc->zero_grad();
    for (auto t : {x, sobel, offset}) {
      if (t.grad().defined()) t.mutable_grad().reset();
    }
  };
  step();
  for (auto _ : state) step();
  static const char* const kNames[] = {"conv2d (reference)", "Sobel", "offset head", "deform_conv2d", "GGDC layer",
                                       "Sobel as depthwise conv (before)"};
  state.SetLabel(kNames[part]);
}

BENCHMARK(BM_GGDCParts)
    ->ArgNames({"part", "stage"})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5}, {0, 1, 2, 3}})
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.3)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

}  // namespace
