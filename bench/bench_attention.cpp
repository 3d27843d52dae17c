// Criss-cross attention (CCNet's, crossview/nn/criss_cross_attention.hpp) against full non-local
// attention over all H*W pixels, on the feature map of a 776-px crop at output stride 8 (97 x 97),
// batch 1, CPU, one dtype (float). Both use the same query/key/value 1x1 convs (C -> C/8, C/8, C)
// and the same `gamma * attended + x`; only the attention differs:
//   criss-cross  energies [N, H, W, H + W]  (each pixel: its row and its column, itself once)
//   full         energies [N, H*W, H*W]
// Counters: energy_MB, the size of the energy tensor (the dominant allocation of each, and the
// softmax output has the same size again), and pixels_per_query (H + W - 1 against H*W).
//   bench_attention --benchmark_filter='BM_(CrissCross|FullAttention)_'
// Arguments: {size, channels}; 512 is CCNet's width, 64 a tiny variant's (CCNet x 0.125).
// On a loaded machine, read these with CROSSVIEW_BENCH_THREADS=1 or OMP_WAIT_POLICY=passive: the
// criss-cross attention is many small batched products, each an OpenMP region, and with both
// cores taken by other processes libgomp's spin-waiting at their barriers dominates (seen: 3.2 s
// instead of 15-30 ms for the 64-channel forward; full attention, a few large GEMMs, is unaffected).
#include <crossview/nn/criss_cross_attention.hpp>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdint>

namespace {

/// Full (non-local) attention of every pixel over all H*W pixels, with the layer's own convs.
torch::Tensor full_attention(crossview::CrissCrossAttentionImpl& layer, const torch::Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const auto q = layer.query_conv->forward(x).flatten(2);                       // [N, Cq, HW]
  const auto k = layer.key_conv->forward(x).flatten(2);                         // [N, Cq, HW]
  const auto v = layer.value_conv->forward(x).flatten(2);                       // [N, C, HW]
  const auto attention = torch::softmax(torch::bmm(q.transpose(1, 2), k), -1);  // [N, HW(query), HW(key)]
  const auto attended = torch::bmm(v, attention.transpose(1, 2)).view({N, C, H, W});
  return layer.gamma * attended + x;
}

struct Setup {
  crossview::CrissCrossAttention layer{nullptr};
  torch::Tensor x;
};

Setup make_setup(const benchmark::State& state, bool requires_grad) {
  torch::manual_seed(0);
  const int64_t size = state.range(0), channels = state.range(1);
  Setup s{crossview::CrissCrossAttention(crossview::CrissCrossAttentionOptions(channels)),
          torch::randn({1, channels, size, size}).requires_grad_(requires_grad)};
  torch::NoGradGuard no_grad;
  s.layer->gamma.fill_(0.5);
  return s;
}

void set_counters(benchmark::State& state, bool criss_cross) {
  const double size = double(state.range(0));
  const double per_query = criss_cross ? 2 * size : size * size;
  state.counters["energy_MB"] = size * size * per_query * sizeof(float) / 1e6;
  state.counters["pixels_per_query"] = criss_cross ? 2 * size - 1 : size * size;
}

void BM_CrissCross_Forward(benchmark::State& state) {
  auto s = make_setup(state, false);
  torch::NoGradGuard no_grad;
  benchmark::DoNotOptimize(s.layer->forward(s.x));  // warm-up, outside the timed loop
  for (auto _ : state) benchmark::DoNotOptimize(s.layer->forward(s.x));
  set_counters(state, true);
}

void BM_FullAttention_Forward(benchmark::State& state) {
  auto s = make_setup(state, false);
  torch::NoGradGuard no_grad;
  benchmark::DoNotOptimize(full_attention(*s.layer, s.x));
  for (auto _ : state) benchmark::DoNotOptimize(full_attention(*s.layer, s.x));
  set_counters(state, false);
}

void BM_CrissCross_ForwardBackward(benchmark::State& state) {
  auto s = make_setup(state, true);
  auto step = [&] {
    s.layer->forward(s.x).sum().backward();
    return s.x.grad();
  };
  step();
  for (auto _ : state) benchmark::DoNotOptimize(step());
  set_counters(state, true);
}

void BM_FullAttention_ForwardBackward(benchmark::State& state) {
  auto s = make_setup(state, true);
  auto step = [&] {
    full_attention(*s.layer, s.x).sum().backward();
    return s.x.grad();
  };
  step();
  for (auto _ : state) benchmark::DoNotOptimize(step());
  set_counters(state, false);
}

// 97 = 776 / 8, the paper's crop at output stride 8. Forward at CCNet's width and a tiny one;
// forward + backward at the tiny width only (full attention's at 512 takes many seconds per step).
void forward_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"size", "channels"})->Args({97, 64})->Args({97, 512});
  b->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
}
void backward_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"size", "channels"})->Args({97, 64});
  b->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
}
BENCHMARK(BM_CrissCross_Forward)->Apply(forward_args);
BENCHMARK(BM_FullAttention_Forward)->Apply(forward_args);
BENCHMARK(BM_CrissCross_ForwardBackward)->Apply(backward_args);
BENCHMARK(BM_FullAttention_ForwardBackward)->Apply(backward_args);

}  // namespace
