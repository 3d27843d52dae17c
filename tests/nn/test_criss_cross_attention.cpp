// Criss-cross attention: the einsum formulation against a brute-force loop over each pixel's row
// and column (values and gradients, float and double, non-square maps, gamma != 0), the pixel
// itself counted once (uniform attention), a fresh layer is the identity, degenerate 1-pixel rows
// and columns, error texts.
#include <crossview/nn/criss_cross_attention.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using crossview::CrissCrossAttention;
using crossview::CrissCrossAttentionOptions;
using torch::indexing::Slice;

/// attended[:, p] of criss_cross_attention, written as the definition: for every pixel p = (h, w),
/// a softmax over its row (h, 0..W-1) and its column (i, w), i != h, then the weighted sum of the
/// values there. Differentiable (autograd through plain indexing).
torch::Tensor brute_force_attended(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value) {
  const int64_t N = query.size(0), H = query.size(2), W = query.size(3);
  std::vector<torch::Tensor> pixels;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t w = 0; w < W; ++w) {
        std::vector<torch::Tensor> energies, values;
        const auto q = query.index({n, Slice(), h, w});
        for (int64_t j = 0; j < W; ++j) {
          energies.push_back((q * key.index({n, Slice(), h, j})).sum());
          values.push_back(value.index({n, Slice(), h, j}));
        }
        for (int64_t i = 0; i < H; ++i) {
          if (i == h) continue;  // p already counted in its row
          energies.push_back((q * key.index({n, Slice(), i, w})).sum());
          values.push_back(value.index({n, Slice(), i, w}));
        }
        const auto attention = torch::softmax(torch::stack(energies), 0);          // [H + W - 1]
        pixels.push_back((attention.unsqueeze(1) * torch::stack(values)).sum(0));  // [C]
      }
    }
  }
  return torch::stack(pixels).view({N, H, W, -1}).permute({0, 3, 1, 2});
}

/// The layer's output by the brute-force definition: gamma * attended + x.
torch::Tensor brute_force_layer(crossview::CrissCrossAttentionImpl& layer, const torch::Tensor& x) {
  return layer.gamma * brute_force_attended(layer.query_conv->forward(x), layer.key_conv->forward(x),
                                            layer.value_conv->forward(x)) +
         x;
}

}  // namespace

TEST_CASE_TEMPLATE("CrissCrossAttention: equals the brute-force row + column attention, values and gradients", T, float,
                   double) {
  constexpr auto dtype = std::is_same_v<T, double> ? torch::kFloat64 : torch::kFloat32;
  const double tolerance = std::is_same_v<T, double> ? 1e-12 : 1e-5;
  torch::manual_seed(3);
  CrissCrossAttention layer(CrissCrossAttentionOptions(16));
  layer->to(dtype);
  {
    torch::NoGradGuard no_grad;
    layer->gamma.fill_(0.7);
    // Larger query/key weights than the default init, so that the softmax is far from uniform.
    layer->query_conv->weight.mul_(3.0);
    layer->key_conv->weight.mul_(3.0);
  }
  // Non-square (5 x 7) so that rows and columns cannot be swapped unnoticed; batch 2.
  const torch::Tensor x = torch::randn({2, 16, 5, 7}, dtype).requires_grad_(true);
  const torch::Tensor weights = torch::randn({2, 16, 5, 7}, dtype);

  const torch::Tensor y = layer->forward(x);
  (y * weights).sum().backward();
  std::vector<torch::Tensor> fast_grads{x.grad().clone()};
  for (auto& p : layer->parameters()) fast_grads.push_back(p.grad().clone());

  x.mutable_grad().zero_();
  layer->zero_grad();
  const torch::Tensor expected = brute_force_layer(*layer, x);
  (expected * weights).sum().backward();
  std::vector<torch::Tensor> brute_grads{x.grad().clone()};
  for (auto& p : layer->parameters()) brute_grads.push_back(p.grad().clone());

  CHECK(torch::allclose(y, expected, tolerance, tolerance));
  // The attention matters: the output is not x.
  CHECK((y - x).abs().max().item<double>() > 0.1);
  const auto names = layer->named_parameters().keys();
  REQUIRE(fast_grads.size() == brute_grads.size());
  for (size_t i = 0; i < fast_grads.size(); ++i) {
    const std::string name = i == 0 ? "x" : names[i - 1];
    CAPTURE(name);
    CHECK(fast_grads[i].abs().max().item<double>() > 0);
    CHECK(torch::allclose(fast_grads[i], brute_grads[i], tolerance, tolerance));
  }
}

TEST_CASE("criss_cross_attention: equal energies give the mean over row and column, the pixel once") {
  // query = 0: every energy is 0, so each pixel averages its H + W - 1 criss-cross values.
  const int64_t H = 4, W = 6;
  const auto value = torch::randn({1, 3, H, W}, torch::kFloat64);
  const auto query = torch::zeros({1, 2, H, W}, torch::kFloat64);
  const auto key = torch::randn({1, 2, H, W}, torch::kFloat64);
  const auto out = crossview::criss_cross_attention(query, key, value);
  const auto row_sums = value.sum(3, /*keepdim=*/true);     // [1, 3, H, 1]
  const auto column_sums = value.sum(2, /*keepdim=*/true);  // [1, 3, 1, W]
  const auto expected = (row_sums + column_sums - value) / double(H + W - 1);
  CHECK(torch::allclose(out, expected, 1e-12, 1e-12));
  // Counting the pixel twice (mean over H + W with p twice) would differ.
  CHECK_FALSE(torch::allclose(out, (row_sums + column_sums) / double(H + W), 1e-6, 1e-6));
}

TEST_CASE("criss_cross_attention: one-pixel rows or columns, and a single pixel") {
  torch::manual_seed(4);
  for (const auto& hw : std::vector<std::pair<int64_t, int64_t>>{{1, 5}, {5, 1}, {1, 1}}) {
    CAPTURE(hw.first);
    CAPTURE(hw.second);
    const auto q = torch::randn({2, 2, hw.first, hw.second}, torch::kFloat64);
    const auto k = torch::randn({2, 2, hw.first, hw.second}, torch::kFloat64);
    const auto v = torch::randn({2, 3, hw.first, hw.second}, torch::kFloat64);
    const auto out = crossview::criss_cross_attention(q, k, v);
    CHECK(torch::isfinite(out).all().item<bool>());
    CHECK(torch::allclose(out, brute_force_attended(q, k, v), 1e-12, 1e-12));
  }
  // A single pixel attends to itself only.
  const auto v = torch::randn({1, 3, 1, 1}, torch::kFloat64);
  CHECK(torch::allclose(crossview::criss_cross_attention(torch::randn({1, 2, 1, 1}, torch::kFloat64),
                                                         torch::randn({1, 2, 1, 1}, torch::kFloat64), v),
                        v));
}

TEST_CASE(
    "CrissCrossAttention: mmcv's layout (C/8 query and key, C value, gamma 0) and a fresh layer is the identity") {
  CrissCrossAttention layer(CrissCrossAttentionOptions(64));
  const auto params = layer->named_parameters();
  CHECK(params["query_conv.weight"].sizes() == torch::IntArrayRef({8, 64, 1, 1}));
  CHECK(params["query_conv.bias"].sizes() == torch::IntArrayRef({8}));
  CHECK(params["key_conv.weight"].sizes() == torch::IntArrayRef({8, 64, 1, 1}));
  CHECK(params["value_conv.weight"].sizes() == torch::IntArrayRef({64, 64, 1, 1}));
  CHECK(params["gamma"].sizes() == torch::IntArrayRef({1}));
  CHECK(params.size() == 7);
  CHECK(params["gamma"].item<double>() == 0.0);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 64, 6, 5});
  CHECK(torch::equal(layer->forward(x), x));
  layer->gamma.fill_(1.0);
  layer->reset_parameters();
  CHECK(layer->gamma.item<double>() == 0.0);
  std::ostringstream printed;
  layer->pretty_print(printed);
  CHECK(printed.str() == "crossview::CrissCrossAttention(channels=64, query_key_channels=8)");
}

TEST_CASE("CrissCrossAttention: errors name the function, the argument and what came") {
  CHECK_THROWS_WITH_AS(CrissCrossAttention(CrissCrossAttentionOptions(4)),
                       doctest::Contains("CrissCrossAttention: channels must be >= reduction = 8"), c10::Error);
  CrissCrossAttention layer(CrissCrossAttentionOptions(16));
  CHECK_THROWS_WITH_AS(layer->forward(torch::randn({1, 8, 4, 4})),
                       doctest::Contains("CrissCrossAttention: input must have shape [N, 16, H, W], got [1, 8, 4, 4]"),
                       c10::Error);
  const auto q = torch::randn({1, 2, 4, 5});
  CHECK_THROWS_WITH_AS(
      crossview::criss_cross_attention(q, torch::randn({1, 2, 5, 4}), torch::randn({1, 3, 4, 5})),
      doctest::Contains("criss_cross_attention: key must have query's shape [1, 2, 4, 5], got [1, 2, 5, 4]"),
      c10::Error);
  CHECK_THROWS_WITH_AS(crossview::criss_cross_attention(q, q, torch::randn({1, 3, 4, 4})),
                       doctest::Contains("criss_cross_attention: value must have shape [1, C, 4, 5], got [1, 3, 4, 4]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(crossview::criss_cross_attention(q, q, torch::randn({1, 3, 4, 5}, torch::kFloat64)),
                       doctest::Contains("criss_cross_attention: query, key and value must have one dtype"),
                       c10::Error);
}

TEST_CASE("CrissCrossAttention: CUDA agrees with the CPU") {
  if (!torch::cuda::is_available()) {
    MESSAGE("skipped: no CUDA device");
    return;
  }
  torch::manual_seed(5);
  CrissCrossAttention layer(CrissCrossAttentionOptions(16));
  {
    torch::NoGradGuard no_grad;
    layer->gamma.fill_(0.5);
  }
  const auto x = torch::randn({2, 16, 9, 11});
  torch::NoGradGuard no_grad;
  const auto cpu = layer->forward(x);
  layer->to(torch::kCUDA);
  const auto cuda = layer->forward(x.cuda()).cpu();
  CHECK(torch::allclose(cpu, cuda, 1e-4, 1e-5));
}
