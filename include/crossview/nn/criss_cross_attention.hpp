#pragma once
/// \file
/// Criss-cross attention (Huang et al., "CCNet: Criss-Cross Attention for Semantic Segmentation",
/// ICCV 2019), as mmcv's `CrissCrossAttention`: every pixel attends to the pixels of its row and
/// its column, itself counted once. Written with ATen ops (einsum / batched matrix products), so
/// it runs, and differentiates, on every device without a custom kernel. The attention of CCNet
/// (crossview/models/ccnet.hpp), applied there twice (recurrence 2) with shared weights.

#include "crossview/detail/tensor_checks.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <ostream>
#include <string>

namespace crossview {

/// Criss-cross attention of `query`, `key` `[N, Cq, H, W]` and `value` `[N, C, H, W]` (floating,
/// one dtype and device): for pixel p = (h, w), with the criss-cross set
/// S(p) = {(h, j) : 0 <= j < W} ∪ {(i, w) : 0 <= i < H, i != h} (row and column, p once),
///
///   attended[:, p] = Σ_{s ∈ S(p)} softmax_{s ∈ S(p)}(query[:, p] · key[:, s]) value[:, s].
///
/// Returns `[N, C, H, W]`. Memory: the energies take N·H·W·(H + W) values (full attention would
/// take N·(H·W)²). As mmcv: the column energies get -inf on the diagonal (i = h), so p appears only
/// in its row.
inline torch::Tensor criss_cross_attention(const torch::Tensor& query, const torch::Tensor& key,
                                           const torch::Tensor& value) {
  constexpr const char* kFn = "criss_cross_attention";
  detail::check_rank(query, {4}, kFn, "query", "[N, Cq, H, W]");
  detail::check_rank(key, {4}, kFn, "key", "[N, Cq, H, W]");
  detail::check_rank(value, {4}, kFn, "value", "[N, C, H, W]");
  detail::check_floating(query, kFn, "query");
  TORCH_CHECK(key.sizes() == query.sizes(), kFn, ": key must have query's shape ", detail::shape_string(query),
              ", got ", detail::shape_string(key));
  TORCH_CHECK(value.size(0) == query.size(0) && value.size(2) == query.size(2) && value.size(3) == query.size(3), kFn,
              ": value must have shape [", query.size(0), ", C, ", query.size(2), ", ", query.size(3), "], got ",
              detail::shape_string(value));
  TORCH_CHECK(key.scalar_type() == query.scalar_type() && value.scalar_type() == query.scalar_type(), kFn,
              ": query, key and value must have one dtype, got ", query.scalar_type(), ", ", key.scalar_type(), " and ",
              value.scalar_type());
  detail::check_same_device(query, key, kFn, "query", "key");
  detail::check_same_device(query, value, kFn, "query", "value");
  const int64_t H = query.size(2);
  // Column energies [N, W, h, i] (p = (h, w) against (i, w)); p itself is left to the row term.
  auto energy_column = torch::einsum("nchw,nciw->nwhi", {query, key});
  const auto diagonal = torch::eye(H, query.options().dtype(torch::kBool));
  energy_column = energy_column.masked_fill(diagonal, -std::numeric_limits<double>::infinity());
  // Row energies [N, h, w, j] (p = (h, w) against (h, j)).
  const auto energy_row = torch::einsum("nchw,nchj->nhwj", {query, key});
  // One softmax over the H + W candidates of each pixel: [N, h, w, H + W].
  const auto attention = torch::softmax(torch::cat({energy_column.transpose(1, 2), energy_row}, -1), -1);
  const auto attention_column = attention.narrow(-1, 0, H);
  const auto attention_row = attention.narrow(-1, H, attention.size(-1) - H);
  return torch::einsum("nciw,nhwi->nchw", {value, attention_column}) +
         torch::einsum("nchj,nhwj->nchw", {value, attention_row});
}

/// Options of `CrissCrossAttention`.
struct CrissCrossAttentionOptions {
  /// `channels`: C of the input and output.
  explicit CrissCrossAttentionOptions(int64_t channels) : channels_(channels) {}

  /// Channels of the input `[N, C, H, W]` (and of the value and output).
  TORCH_ARG(int64_t, channels);
  /// Query and key channels are `channels / reduction` (mmcv: 8).
  TORCH_ARG(int64_t, reduction) = 8;
};

/// One criss-cross attention step, as mmcv's `CrissCrossAttention`:
/// `y = gamma * criss_cross_attention(query_conv(x), key_conv(x), value_conv(x)) + x`.
/// Input and output `[N, C, H, W]` float. Parameters: `query_conv`, `key_conv` (1x1, C -> C /
/// reduction, with bias), `value_conv` (1x1, C -> C, with bias), `gamma` `[1]` (mmcv's
/// `gamma.scale`), initialised to 0, so a fresh layer is the identity; the convs keep PyTorch's
/// default initialisation, as in mmcv. Recurrence (CCNet applies the layer R times) is the
/// caller's loop.
class CrissCrossAttentionImpl : public torch::nn::Cloneable<CrissCrossAttentionImpl> {
 public:
  explicit CrissCrossAttentionImpl(const CrissCrossAttentionOptions& options) : options(options) { reset(); }

  void reset() override {
    TORCH_CHECK(options.reduction() > 0, "CrissCrossAttention: reduction must be positive, got ", options.reduction());
    TORCH_CHECK(options.channels() >= options.reduction(),
                "CrissCrossAttention: channels must be >= reduction = ", options.reduction(),
                " (query and key get channels / reduction), got ", options.channels());
    const int64_t c = options.channels();
    const int64_t cq = c / options.reduction();
    query_conv = register_module("query_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, cq, 1)));
    key_conv = register_module("key_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, cq, 1)));
    value_conv = register_module("value_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c, 1)));
    gamma = register_parameter("gamma", torch::zeros({1}));
  }

  /// PyTorch's default initialisation of the three convs; `gamma` 0.
  void reset_parameters() {
    query_conv->reset_parameters();
    key_conv->reset_parameters();
    value_conv->reset_parameters();
    torch::NoGradGuard no_grad;
    gamma.zero_();
  }

  /// `x`: `[N, channels, H, W]` (the layer's dtype and device, H, W > 0) -> `[N, channels, H, W]`.
  torch::Tensor forward(const torch::Tensor& x) {
    constexpr const char* kFn = "CrissCrossAttention";
    TORCH_CHECK(x.defined() && x.dim() == 4 && x.size(1) == options.channels(), kFn, ": input must have shape [N, ",
                options.channels(), ", H, W], got ",
                x.defined() ? detail::shape_string(x) : std::string("an undefined tensor"));
    detail::check_matches_parameter(x, gamma, kFn, "input");
    detail::check_nonempty_hw(x, kFn, "input");
    const auto attended = criss_cross_attention(query_conv->forward(x), key_conv->forward(x), value_conv->forward(x));
    return gamma * attended + x;
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::CrissCrossAttention(channels=" << options.channels()
           << ", query_key_channels=" << options.channels() / options.reduction() << ")";
  }

  CrissCrossAttentionOptions options;
  /// 1x1 conv channels -> channels / reduction.
  torch::nn::Conv2d query_conv{nullptr};
  /// 1x1 conv channels -> channels / reduction.
  torch::nn::Conv2d key_conv{nullptr};
  /// 1x1 conv channels -> channels.
  torch::nn::Conv2d value_conv{nullptr};
  /// `[1]`, the weight of the attended term (0 at the start).
  torch::Tensor gamma;
};
TORCH_MODULE(CrissCrossAttention);

}  // namespace crossview
