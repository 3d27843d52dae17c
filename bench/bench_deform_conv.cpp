// Deformable convolution vs torch::conv2d (oneDNN) at ResNet50-D8 shapes, N = 2, 3x3 kernels,
// padding = dilation (same size): (Cin = Cout, H = W, dilation) = (64, 97, 1), (128, 97, 1),
// (256, 49, 2), (512, 49, 4). Ratios = BM_DeformConv2d_* / BM_Conv2d_* of the same arguments.
// Offsets ~ N(0, 1) pixels. Two threads (at::set_num_threads(2)) unless CROSSVIEW_BENCH_THREADS
// says otherwise.
#include <crossview/nn.hpp>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>

namespace {

struct Case {
  torch::Tensor x, weight, bias, offset, grad;
  int64_t dilation;
};

Case make_case(const benchmark::State& state, bool requires_grad) {
  const int64_t c = state.range(0), hw = state.range(1), d = state.range(2);
  torch::manual_seed(0);
  Case k;
  k.dilation = d;
  k.x = torch::randn({2, c, hw, hw}).requires_grad_(requires_grad);
  k.weight = (torch::randn({c, c, 3, 3}) * 0.05).requires_grad_(requires_grad);
  k.bias = torch::randn({c}).requires_grad_(requires_grad);
  k.offset = torch::randn({2, 18, hw, hw}).requires_grad_(requires_grad);
  k.grad = torch::randn({2, c, hw, hw});
  return k;
}

torch::Tensor deform(const Case& k) {
  return crossview::deform_conv2d(k.x, k.weight, k.offset, {}, k.bias, 1, 1, k.dilation, k.dilation, k.dilation,
                                  k.dilation);
}

torch::Tensor conv(const Case& k) { return torch::conv2d(k.x, k.weight, k.bias, 1, k.dilation, k.dilation); }

void clear_grads(const Case& k) {
  for (auto t : {k.x, k.weight, k.bias, k.offset}) {
    if (t.grad().defined()) t.mutable_grad().reset();
  }
}

void BM_DeformConv2d_Forward(benchmark::State& state) {
  const auto k = make_case(state, false);
  torch::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(deform(k));
}

void BM_Conv2d_Forward(benchmark::State& state) {
  const auto k = make_case(state, false);
  torch::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(conv(k));
}

void BM_DeformConv2d_ForwardBackward(benchmark::State& state) {
  const auto k = make_case(state, true);
  for (auto _ : state) {
    deform(k).backward(k.grad);
    clear_grads(k);
  }
}

void BM_Conv2d_ForwardBackward(benchmark::State& state) {
  const auto k = make_case(state, true);
  for (auto _ : state) {
    conv(k).backward(k.grad);
    clear_grads(k);
  }
}

void BM_GGDC_ForwardBackward(benchmark::State& state) {
  const int64_t c = state.range(0), hw = state.range(1), d = state.range(2);
  torch::manual_seed(0);
  auto ggdc = crossview::GGDC<>(crossview::GGDCOptions(c, c, 3).padding(d).dilation(d));
  const auto x = torch::randn({2, c, hw, hw}).requires_grad_(true);
  const auto grad = torch::randn({2, c, hw, hw});
  for (auto _ : state) {
    ggdc(x).backward(grad);
    ggdc->zero_grad();
    x.mutable_grad().reset();
  }
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"C", "HW", "dil"});
  b->Args({64, 97, 1})->Args({128, 97, 1})->Args({256, 49, 2})->Args({512, 49, 4});
  // Process CPU time (all threads) next to wall time: on a shared machine the wall time of an
  // OpenMP program mostly measures how long its threads wait for a core.
  b->Unit(benchmark::kMillisecond)->MinTime(1.0)->MeasureProcessCPUTime();
}

BENCHMARK(BM_Conv2d_Forward)->Apply(shapes);
BENCHMARK(BM_DeformConv2d_Forward)->Apply(shapes);
BENCHMARK(BM_Conv2d_ForwardBackward)->Apply(shapes);
BENCHMARK(BM_DeformConv2d_ForwardBackward)->Apply(shapes);
BENCHMARK(BM_GGDC_ForwardBackward)->Apply(shapes);

}  // namespace
