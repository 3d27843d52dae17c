#pragma once
/// \file
/// The gradient guided deformable convolution (GGDC, paper Sec. 3.2, Eq. (8)):
///   y(p) = sum_k w(dp_k) * m_k(p) * x(p + dp_k + F(G(x))_k(p)),
/// a deformable convolution whose offsets F(G(x)) are predicted by an offset head F from the
/// image gradients G(x) of its own input (G = Sobel in the paper).

#include "crossview/nn/deform_conv2d.hpp"
#include "crossview/nn/ggdc_options.hpp"
#include "crossview/nn/gradient_ops.hpp"
#include "crossview/nn/offset_head.hpp"

#include <torch/torch.h>

#include <array>
#include <cmath>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace crossview {

/// The GGDC layer. `GradientOp`: a gradient policy (gradient_ops.hpp: Sobel, Scharr,
/// CentralDifference); `OffsetHead`: an offset head holder (offset_head.hpp: ConvOffsetHead).
/// Input [N, Cin, H, W] -> output [N, Cout, Hout, Wout] with Conv2d's output size; float or
/// double (half/bfloat16 on CUDA). A fresh layer equals a torch::nn::Conv2d with the same weight
/// and bias (the head's output layer starts at zero).
template <typename GradientOp = Sobel, typename OffsetHead = ConvOffsetHead>
class GGDCImpl : public torch::nn::Cloneable<GGDCImpl<GradientOp, OffsetHead>> {
  // Policy contracts (gradient_ops.hpp, offset_head.hpp).
  static_assert(std::is_same_v<decltype(GradientOp::apply(std::declval<const torch::Tensor&>())), torch::Tensor>,
                "GGDC: GradientOp needs `static torch::Tensor apply(const torch::Tensor& x)` ([N,C,H,W] -> [N,2C,H,W])");
  static_assert(std::is_convertible_v<decltype(GradientOp::name()), std::string>,
                "GGDC: GradientOp needs `static const char* name()`");
  static_assert(std::is_constructible_v<OffsetHead, const GGDCOptions&>,
                "GGDC: OffsetHead must be a module holder constructible from `const GGDCOptions&`");
  static_assert(std::is_same_v<decltype(std::declval<OffsetHead&>()->forward(std::declval<torch::Tensor>())),
                               torch::Tensor>,
                "GGDC: OffsetHead needs `torch::Tensor forward(torch::Tensor gradients)` on its module");

 public:
  using Options = GGDCOptions;

  explicit GGDCImpl(GGDCOptions options) : options(std::move(options)) { reset(); }
  GGDCImpl(int64_t in_channels, int64_t out_channels, torch::ExpandingArray<2> kernel_size)
      : GGDCImpl(GGDCOptions(in_channels, out_channels, kernel_size)) {}

  /// (Re)creates weight [Cout, Cin/groups, kh, kw], bias [Cout] and the offset head.
  void reset() override {
    const auto k = *options.kernel_size();
    TORCH_CHECK(options.in_channels() > 0 && options.out_channels() > 0, "GGDC: channels must be positive, got in=",
                options.in_channels(), " out=", options.out_channels());
    TORCH_CHECK(options.groups() > 0 && options.in_channels() % options.groups() == 0 &&
                    options.out_channels() % options.groups() == 0,
                "GGDC: in_channels (", options.in_channels(), ") and out_channels (", options.out_channels(),
                ") must be divisible by groups (", options.groups(), ")");
    TORCH_CHECK(options.offset_groups() > 0 && options.in_channels() % options.offset_groups() == 0,
                "GGDC: in_channels (", options.in_channels(), ") must be divisible by offset_groups (",
                options.offset_groups(), ")");
    weight = this->register_parameter(
        "weight", torch::empty({options.out_channels(), options.in_channels() / options.groups(), k[0], k[1]}));
    bias = options.bias() ? this->register_parameter("bias", torch::empty({options.out_channels()}))
                          : this->register_parameter("bias", torch::Tensor(), /*requires_grad=*/false);
    offset_head = this->register_module("offset_head", OffsetHead(options));
    reset_parameters();
  }

  /// torch::nn::Conv2d's initialisation for weight and bias (kaiming uniform, a = sqrt(5));
  /// the offset head's own reset_parameters() (zero output) when it has one.
  void reset_parameters() {
    torch::NoGradGuard no_grad;
    torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
    if (bias.defined()) {
      const auto fan_in = static_cast<double>(weight.size(1) * weight.size(2) * weight.size(3));
      torch::nn::init::uniform_(bias, -1.0 / std::sqrt(fan_in), 1.0 / std::sqrt(fan_in));
    }
  }

  /// Offsets [N, 2*offset_groups*kh*kw, Hout, Wout] and mask ([N, offset_groups*kh*kw, Hout,
  /// Wout] in (0, 2), undefined unless modulated) predicted for input x.
  std::pair<torch::Tensor, torch::Tensor> offsets_and_mask(const torch::Tensor& x) {
    const auto k = *options.kernel_size();
    const int64_t taps = options.offset_groups() * k[0] * k[1];
    const auto h = offset_head->forward(GradientOp::apply(x));
    const int64_t expected = (options.modulated() ? 3 : 2) * taps;
    TORCH_CHECK(h.dim() == 4 && h.size(1) == expected, "GGDC: the offset head must return [N, ", expected,
                ", Hout, Wout] (", options.modulated() ? "3" : "2", "*offset_groups*kh*kw channels), got ",
                h.sizes());
    auto offset = h.narrow(1, 0, 2 * taps);
    auto mask = options.modulated() ? 2 * torch::sigmoid(h.narrow(1, 2 * taps, taps)) : torch::Tensor();
    return {offset, mask};
  }

  /// x [N, Cin, H, W] -> [N, Cout, Hout, Wout] (Eq. (8)).
  torch::Tensor forward(const torch::Tensor& x) {
    const auto [offset, mask] = offsets_and_mask(x);
    const auto s = *options.stride();
    const auto p = *options.padding();
    const auto d = *options.dilation();
    return deform_conv2d(x, weight, offset, mask, bias, s[0], s[1], p[0], p[1], d[0], d[1], options.groups(),
                         options.offset_groups(), options.modulated());
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::GGDC<" << GradientOp::name() << ">(" << options.in_channels() << ", "
           << options.out_channels() << ", kernel_size=" << options.kernel_size() << ", stride=" << options.stride()
           << ", padding=" << options.padding() << ", dilation=" << options.dilation()
           << ", groups=" << options.groups() << ", offset_groups=" << options.offset_groups()
           << ", bias=" << (options.bias() ? "true" : "false") << ", modulated=" << (options.modulated() ? "true" : "false")
           << ")";
  }

  GGDCOptions options;
  torch::Tensor weight;  ///< [Cout, Cin/groups, kh, kw]
  torch::Tensor bias;    ///< [Cout], undefined without bias
  OffsetHead offset_head{nullptr};
};

template <typename GradientOp = Sobel, typename OffsetHead = ConvOffsetHead>
class GGDC;

/// A GGDC that replaces `conv` and starts equal to it: same channels, kernel, stride, padding,
/// dilation, groups and bias, weights copied (and the offset head's output at zero). `conv`
/// must use zero padding (padding_mode kZeros) given as numbers, kValid, or kSame with an even
/// total padding. This is how the models swap GGDC into ResNet blocks.
template <typename GradientOp = Sobel, typename OffsetHead = ConvOffsetHead>
GGDC<GradientOp, OffsetHead> ggdc_from_conv(const torch::nn::Conv2d& conv, int64_t offset_groups = 1,
                                            bool modulated = false) {
  TORCH_CHECK(!conv.is_empty(), "ggdc_from_conv: conv is an empty module holder");
  const auto& o = conv->options;
  TORCH_CHECK(std::holds_alternative<torch::enumtype::kZeros>(o.padding_mode()),
              "ggdc_from_conv: conv must use zero padding (padding_mode kZeros), got ",
              torch::enumtype::get_enum_name(o.padding_mode()));
  TORCH_CHECK(!o.transposed(), "ggdc_from_conv: conv must not be transposed");
  const auto k = *o.kernel_size();
  const auto d = *o.dilation();
  std::array<int64_t, 2> padding{0, 0};  // kValid
  if (const auto* numbers = std::get_if<torch::ExpandingArray<2>>(&o.padding())) {
    padding = {(**numbers)[0], (**numbers)[1]};
  } else if (std::holds_alternative<torch::enumtype::kSame>(o.padding())) {
    for (size_t i = 0; i < 2; ++i) {
      const int64_t total = d[i] * (k[i] - 1);
      TORCH_CHECK(total % 2 == 0, "ggdc_from_conv: padding kSame needs an even total padding, got ", total);
      padding[i] = total / 2;
    }
  }
  auto options = GGDCOptions(o.in_channels(), o.out_channels(), torch::ExpandingArray<2>(k))
                     .stride(o.stride())
                     .padding(torch::ExpandingArray<2>(padding))
                     .dilation(torch::ExpandingArray<2>(d))
                     .groups(o.groups())
                     .bias(o.bias())
                     .offset_groups(offset_groups)
                     .modulated(modulated);
  GGDC<GradientOp, OffsetHead> ggdc(options);
  torch::NoGradGuard no_grad;
  ggdc->weight.copy_(conv->weight);
  if (o.bias()) ggdc->bias.copy_(conv->bias);
  ggdc->to(conv->weight.device(), conv->weight.scalar_type());
  return ggdc;
}

/// Module holder of GGDCImpl (written by hand: TORCH_MODULE cannot take template arguments).
/// `GGDC<>(GGDCOptions(in, out, 3).stride(s).padding(d).dilation(d))`, or
/// `GGDC<>::from_conv(conv)` to replace an existing torch::nn::Conv2d keeping its weights.
template <typename GradientOp, typename OffsetHead>
class GGDC : public torch::nn::ModuleHolder<GGDCImpl<GradientOp, OffsetHead>> {
 public:
  using Impl = GGDCImpl<GradientOp, OffsetHead>;
  using torch::nn::ModuleHolder<Impl>::ModuleHolder;

  /// See ggdc_from_conv.
  static GGDC from_conv(const torch::nn::Conv2d& conv, int64_t offset_groups = 1, bool modulated = false) {
    return ggdc_from_conv<GradientOp, OffsetHead>(conv, offset_groups, modulated);
  }
};

}  // namespace crossview
