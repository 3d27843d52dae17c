// Consistency loss (Eq. 9) forward + backward on the four ResNet50-D8 stage outputs at crop 776,
// batch 2 (256/512/1024/2048 channels on 194/97/97/97 grids), against a naive reference built from
// grid_sample + cosine_similarity. Ratio = naive time / crossview time, same binary, same run:
//   bench_loss --benchmark_filter=ConsistencyLoss
#include <crossview/geometry.hpp>
#include <crossview/loss.hpp>
#include <crossview/warp/correspondence.hpp>
#include <crossview/warp/homography_tensor.hpp>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <vector>

namespace {

constexpr int64_t kBatch = 2;
constexpr int64_t kCrop = 776;
constexpr double kEps = 1e-6;
constexpr std::array<int64_t, 4> kChannels{256, 512, 1024, 2048};
constexpr std::array<int64_t, 4> kGrid{194, 97, 97, 97};  // strides 4, 8, 8, 8

// A VVD-like pair: the crops are centred on the principal point, view b rotated by a few degrees
// (yaw 6, pitch 3, roll 2; about 70 % of grid a has a correspondence in b).
torch::Tensor pair_homography() {
  constexpr double kDeg = 3.14159265358979323846 / 180.0;
  const auto K = crossview::Intrinsics<double>::centered(2262.0, double(kCrop), double(kCrop));
  const Eigen::Matrix3d R = crossview::rotation_from_euler(6 * kDeg, 3 * kDeg, 2 * kDeg);
  return crossview::homography_to_tensor(crossview::rotation_homography(K, R)).expand({kBatch, 3, 3}).contiguous();
}

struct StageInputs {
  std::vector<torch::Tensor> a, b;
};

StageInputs make_inputs(int64_t stage) {
  torch::manual_seed(0);
  StageInputs in;
  const int64_t first = stage < 4 ? stage : 0, last = stage < 4 ? stage + 1 : 4;
  for (int64_t s = first; s < last; ++s) {
    in.a.push_back(torch::randn({kBatch, kChannels[s], kGrid[s], kGrid[s]}).requires_grad_(true));
    in.b.push_back(torch::randn({kBatch, kChannels[s], kGrid[s], kGrid[s]}).requires_grad_(true));
  }
  return in;
}

void clear_grads(StageInputs& in) {
  for (auto& t : in.a) t.mutable_grad() = torch::Tensor();
  for (auto& t : in.b) t.mutable_grad() = torch::Tensor();
}

void set_label(benchmark::State& state) {
  const int64_t s = state.range(0);
  state.SetLabel(s < 4 ? "stage " + std::to_string(s + 1) + ": [2, " + std::to_string(kChannels[s]) + ", " +
                             std::to_string(kGrid[s]) + ", " + std::to_string(kGrid[s]) + "]"
                       : "all four stages (Eq. 10)");
}

// The naive reference: grid_sample every cell of a, cosine_similarity, mask, mean.
torch::Tensor naive_layer_loss(const torch::Tensor& fa, const torch::Tensor& fb, const torch::Tensor& H) {
  namespace F = torch::nn::functional;
  const crossview::SizeHW ga{fa.size(2), fa.size(3)}, gb{fb.size(2), fb.size(3)};
  const auto corr = crossview::correspondence_grid(H, ga, {kCrop, kCrop}, gb, {kCrop, kCrop});
  const auto grid = crossview::to_grid_sample_coordinates(corr.position_b, gb);
  const auto y = F::grid_sample(
      fb, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
  const auto s = F::cosine_similarity(fa, y, F::CosineSimilarityFuncOptions().dim(1).eps(kEps));
  const auto l = -torch::log(0.5 + 0.5 * s + kEps);
  const auto valid = corr.valid.to(l.scalar_type());
  return (l * valid).sum() / valid.sum().clamp_min(1);
}

void BM_ConsistencyLoss_ForwardBackward(benchmark::State& state) {
  auto in = make_inputs(state.range(0));
  const auto H = pair_homography();
  const crossview::ConsistencyLoss<> loss;
  for (auto _ : state) {
    clear_grads(in);
    auto L = loss(in.a, in.b, H, {kCrop, kCrop});
    L.backward();
    benchmark::DoNotOptimize(in.a[0].grad().data_ptr());
  }
  set_label(state);
}

// The same loss through the generic (ATen gather + autograd) path that CUDA tensors and other
// similarity policies take.
struct GenericCosine {
  static torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& y, double eps) {
    return crossview::CosineSimilarity::apply(x, y, eps);
  }
  static const char* name() { return "generic cosine"; }
};

void BM_ConsistencyLoss_ForwardBackwardGenericPath(benchmark::State& state) {
  auto in = make_inputs(state.range(0));
  const auto H = pair_homography();
  const crossview::ConsistencyLoss<GenericCosine> loss;
  for (auto _ : state) {
    clear_grads(in);
    auto L = loss(in.a, in.b, H, {kCrop, kCrop});
    L.backward();
    benchmark::DoNotOptimize(in.a[0].grad().data_ptr());
  }
  set_label(state);
}

void BM_ConsistencyLoss_NaiveGridSampleForwardBackward(benchmark::State& state) {
  auto in = make_inputs(state.range(0));
  const auto H = pair_homography();
  for (auto _ : state) {
    clear_grads(in);
    torch::Tensor L;
    for (size_t l = 0; l < in.a.size(); ++l) {
      auto term = naive_layer_loss(in.a[l], in.b[l], H);
      L = L.defined() ? L + term : term;
    }
    L.backward();
    benchmark::DoNotOptimize(in.a[0].grad().data_ptr());
  }
  set_label(state);
}

// Forward only (evaluation of the loss without gradients).
void BM_ConsistencyLoss_Forward(benchmark::State& state) {
  auto in = make_inputs(state.range(0));
  const auto H = pair_homography();
  const crossview::ConsistencyLoss<> loss;
  torch::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(loss(in.a, in.b, H, {kCrop, kCrop}).item<double>());
  set_label(state);
}

void stages(benchmark::internal::Benchmark* b) {
  b->ArgName("stage")->DenseRange(0, 4)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime()->MinTime(2.0);
}

BENCHMARK(BM_ConsistencyLoss_ForwardBackward)->Apply(stages);
BENCHMARK(BM_ConsistencyLoss_NaiveGridSampleForwardBackward)->Apply(stages);
BENCHMARK(BM_ConsistencyLoss_ForwardBackwardGenericPath)->Apply(stages);
BENCHMARK(BM_ConsistencyLoss_Forward)->Apply(stages);

}  // namespace
