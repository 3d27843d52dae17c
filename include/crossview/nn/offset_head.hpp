#pragma once
/// \file
/// Offset heads F of the GGDC layer (paper Eq. (8)): modules that turn the gradient maps G(x)
/// [N, Cg, H, W] (Cg = offset_head_in_channels(options), 2*Cin for the built-in operators) into
/// offsets [N, 2*offset_groups*kh*kw, Hout, Wout], followed, when `modulated`, by
/// offset_groups*kh*kw mask logits. The contract of a user-written head is stated in
/// ggdc_policies.hpp (checked by GGDCImpl with static_assert, trait `is_offset_head_v`).

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/nn/ggdc_options.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>

namespace crossview {

/// The default offset head, on offset_head_in_channels(options) input channels:
/// [3x3 conv to head_channels + ReLU] (only when head_channels > 0),
/// then a conv with the GGDC's own kernel size, stride, padding and dilation (so its output has
/// the GGDC's output size) to (2 or 3)*offset_groups*kh*kw channels, zero-initialised.
class ConvOffsetHeadImpl : public torch::nn::Cloneable<ConvOffsetHeadImpl> {
 public:
  explicit ConvOffsetHeadImpl(GGDCOptions options) : options(std::move(options)) { reset(); }

  void reset() override {
    TORCH_CHECK(options.head_channels() >= 0, "ConvOffsetHead: head_channels must be >= 0, got ",
                options.head_channels());
    const int64_t in = offset_head_in_channels(options);
    int64_t out_in = in;
    hidden = nullptr;
    if (options.head_channels() > 0) {
      hidden = register_module("hidden",
                               torch::nn::Conv2d(torch::nn::Conv2dOptions(in, options.head_channels(), 3).padding(1)));
      out_in = options.head_channels();
    }
    const auto k = *options.kernel_size();
    const int64_t taps = options.offset_groups() * k[0] * k[1];
    output = register_module(
        "output",
        torch::nn::Conv2d(torch::nn::Conv2dOptions(out_in, (options.modulated() ? 3 : 2) * taps, options.kernel_size())
                              .stride(options.stride())
                              .padding(options.padding())
                              .dilation(options.dilation())));
    reset_parameters();
  }

  /// Default init for the hidden conv; zeros for the output conv (zero offsets, unit mask).
  void reset_parameters() {
    torch::NoGradGuard no_grad;
    if (hidden) hidden->reset_parameters();
    output->weight.zero_();
    output->bias.zero_();
  }

  /// gradients [N, Cg, H, W] (the head's dtype and device) ->
  /// [N, (2 or 3)*offset_groups*kh*kw, Hout, Wout].
  torch::Tensor forward(const torch::Tensor& gradients) {
    constexpr const char* kFn = "ConvOffsetHead";
    const int64_t in = offset_head_in_channels(options);
    TORCH_CHECK(gradients.defined() && gradients.dim() == 4 && gradients.size(1) == in, kFn,
                ": gradients must have shape [N, ", in, ", H, W], got ",
                gradients.defined() ? detail::shape_string(gradients) : std::string("an undefined tensor"));
    detail::check_matches_parameter(gradients, output->weight, kFn, "gradients");
    return output->forward(hidden ? torch::relu(hidden->forward(gradients)) : gradients);
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::ConvOffsetHead(in=" << offset_head_in_channels(options)
           << ", head_channels=" << options.head_channels() << ")";
  }

  GGDCOptions options;
  torch::nn::Conv2d hidden{nullptr};
  torch::nn::Conv2d output{nullptr};
};

/// Holder of ConvOffsetHeadImpl.
TORCH_MODULE(ConvOffsetHead);

}  // namespace crossview
