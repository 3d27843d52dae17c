// ConfusionMatrix::update on a 1024x2048 prediction (19 classes, ~10 % ignore), against the plain
// ATen reference (mask + bincount), and CVC on a pair of full-resolution predictions:
//   bench_metrics
#include <crossview/metrics.hpp>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cmath>

namespace {

constexpr int64_t kClasses = 19;
constexpr int64_t kHeight = 1024;
constexpr int64_t kWidth = 2048;

struct Labels {
  torch::Tensor prediction, target;
};

Labels make_labels(torch::Dtype dtype) {
  torch::manual_seed(0);
  auto target = torch::randint(0, kClasses, {1, kHeight, kWidth}, torch::kInt64);
  target.masked_fill_(torch::rand({1, kHeight, kWidth}) < 0.1, 255);
  return {torch::randint(0, kClasses, {1, kHeight, kWidth}, torch::kInt64).to(dtype), target.to(dtype)};
}

void BM_ConfusionMatrix_Update(benchmark::State& state) {
  const auto in = make_labels(state.range(0) == 0 ? torch::kInt64 : torch::kUInt8);
  crossview::ConfusionMatrix cm(kClasses);
  for (auto _ : state) cm.update(in.prediction, in.target);
  benchmark::DoNotOptimize(cm.total());
  state.SetItemsProcessed(state.iterations() * kHeight * kWidth);
  state.SetLabel(state.range(0) == 0 ? "int64" : "uint8");
}
BENCHMARK(BM_ConfusionMatrix_Update)->ArgName("uint8")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

// The straightforward reference: keep = target != ignore; bincount(target[keep] * K + pred[keep]).
void BM_ConfusionMatrix_UpdateBincountReference(benchmark::State& state) {
  const auto in = make_labels(torch::kInt64);
  auto counts = torch::zeros({kClasses, kClasses}, torch::kInt64);
  for (auto _ : state) {
    const auto keep = in.target != 255;
    const auto t = in.target.masked_select(keep);
    const auto p = in.prediction.masked_select(keep);
    counts += torch::bincount(t * kClasses + p, {}, kClasses * kClasses).view({kClasses, kClasses});
  }
  benchmark::DoNotOptimize(counts.sum().item<int64_t>());
  state.SetItemsProcessed(state.iterations() * kHeight * kWidth);
}
BENCHMARK(BM_ConfusionMatrix_UpdateBincountReference)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

// CVC of two 1024x2048 predictions related by a small rotation homography.
void BM_CrossViewConsistency_Homography(benchmark::State& state) {
  const auto in = make_labels(torch::kInt64);
  const double c = std::cos(0.05), s = std::sin(0.05);
  const auto H = torch::tensor({c, -s, 60.0, s, c, -20.0, 0.0, 0.0, 1.0}, torch::kFloat64).view({1, 3, 3});
  const auto pred_a = in.target.clamp_max(kClasses - 1);
  crossview::ConfusionMatrix cm(kClasses);
  for (auto _ : state) benchmark::DoNotOptimize(crossview::cross_view_consistency(pred_a, in.prediction, H, cm));
  state.SetItemsProcessed(state.iterations() * kHeight * kWidth);
}
BENCHMARK(BM_CrossViewConsistency_Homography)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

}  // namespace
