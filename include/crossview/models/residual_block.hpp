#pragma once
/// \file
/// The residual blocks of ResNet (He et al. 2016) in torchvision's layout and parameter names
/// (`conv1`, `bn1`, ..., `downsample.0`, `downsample.1`), with dilation for output-stride-8
/// backbones and the option of a GGDC layer (paper Eq. 5-8) in place of the block's last 3x3
/// convolution, built by a `GGDCFactory` so that any gradient operator and offset head reach the
/// models; the normalisation layers come from a `NormFactory` (BatchNorm2d by default,
/// SyncBatchNorm for data-parallel training) and keep BatchNorm's names (`bn1.running_var`).

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/nn/ggdc.hpp"
#include "crossview/nn/norm_layer.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <utility>

namespace crossview {

/// Builds the GGDC layer that replaces a residual block's 3x3 conv. It receives the conv's shape,
/// `GGDCOptions(in, out, 3).stride(s).padding(d).dilation(d).bias(false)`, and returns the layer,
/// whose `forward` maps `[N, in, H, W]` to `[N, out, H / s, W / s]` and whose direct parameter
/// `weight` `[out, in, 3, 3]` is the conv weight (so torchvision's name `conv2.weight` stays). It
/// may set the GGDC's own options (offset_groups, modulated, head_channels, gradient_channels) but
/// not the conv's shape. Usually made with `ggdc_factory<GradientOp, OffsetHead>(configure)`.
using GGDCFactory = std::function<torch::nn::AnyModule(const GGDCOptions&)>;

/// A GGDCFactory making `GGDC<GradientOp, OffsetHead>` layers (policies: see
/// crossview/nn/ggdc_policies.hpp); `configure`, when given, edits each layer's options first:
///
///   ResNetOptions(50).ggdc_factory(ggdc_factory<MyGradient, MyHead>([](GGDCOptions& o) {
///     o.modulated(true).head_channels(64);
///   }));
template <typename GradientOp = Sobel, typename OffsetHead = ConvOffsetHead>
GGDCFactory ggdc_factory(std::function<void(GGDCOptions&)> configure = nullptr) {
  return [configure = std::move(configure)](const GGDCOptions& shape) {
    auto options = shape;
    if (configure) configure(options);
    return torch::nn::AnyModule(GGDC<GradientOp, OffsetHead>(options));
  };
}

/// Options of one residual block (`BasicBlock` or `Bottleneck`).
///
/// `planes` is the block's inner width; a block outputs `planes * expansion` channels
/// (1 for BasicBlock, 4 for Bottleneck). `first_dilation` is the dilation of the 3x3 conv that
/// carries the stride (conv1 of a BasicBlock, conv2 of a Bottleneck); `dilation` that of the
/// remaining 3x3 conv of a BasicBlock. torchvision's `replace_stride_with_dilation` gives the
/// first block of a dilated stage the previous stage's dilation as `first_dilation` and the stage's
/// dilation as `dilation`; every later block gets the stage's dilation for both.
struct ResidualBlockOptions {
  ResidualBlockOptions(int64_t in_channels, int64_t planes) : in_channels_(in_channels), planes_(planes) {}

  /// Channels of the block's input.
  TORCH_ARG(int64_t, in_channels);
  /// Inner width of the block.
  TORCH_ARG(int64_t, planes);
  /// Stride of the block (1 or 2), carried by its first 3x3 conv and its downsample projection.
  TORCH_ARG(int64_t, stride) = 1;
  /// Dilation (= padding) of the 3x3 conv that carries the stride.
  TORCH_ARG(int64_t, first_dilation) = 1;
  /// Dilation (= padding) of a BasicBlock's second 3x3 conv (unused by Bottleneck).
  TORCH_ARG(int64_t, dilation) = 1;
  /// Replace the block's last 3x3 conv (`conv2` in both block types) by a GGDC layer made by
  /// `ggdc_factory` with the same shape, stride and dilation. Its parameter `conv2.weight` keeps
  /// the plain conv's name and shape; the offset head adds `conv2.offset_head.*` (and a stateful
  /// gradient operator `conv2.gradient.*`).
  TORCH_ARG(bool, ggdc) = false;
  /// Makes the GGDC layer when `ggdc` is set; default `GGDC<Sobel, ConvOffsetHead>`.
  TORCH_ARG(GGDCFactory, ggdc_factory) = crossview::ggdc_factory<>();
  /// Makes the block's normalisation layers (`bn1`, `bn2`, `bn3`, `downsample.1`); default
  /// BatchNorm2d, `sync_batch_norm_factory(group)` for SyncBatchNorm (see NormFactory).
  TORCH_ARG(NormFactory, norm_layer) = batch_norm_factory();
};

namespace detail {

/// The 3x3 convolution of a residual block: a plain `Conv2d` or, when `ggdc` is set, the layer
/// `factory` makes from the conv's shape (see GGDCFactory). Both take `[N, in, H, W]` and return
/// `[N, out, H', W']`. Registered as `name` in `owner` so parameter names match torchvision's
/// (`conv2.weight`). A GGDC layer draws from the global generator what the conv draws, so a
/// network starts with the same shared values with and without GGDC (GGDCImpl's class comment).
inline torch::nn::AnyModule make_block_conv3x3(torch::nn::Module& owner, const char* block, const char* name,
                                               int64_t in, int64_t out, int64_t stride, int64_t dilation, bool ggdc,
                                               const GGDCFactory& factory) {
  if (ggdc) {
    TORCH_CHECK(static_cast<bool>(factory), block, ": ggdc is set but ggdc_factory is empty");
    const auto shape = GGDCOptions(in, out, 3).stride(stride).padding(dilation).dilation(dilation).bias(false);
    auto layer = factory(shape);
    TORCH_CHECK(!layer.is_empty(), block, ": ggdc_factory returned an empty module");
    const auto params = layer.ptr()->named_parameters(/*recurse=*/false);
    const auto* weight = params.find("weight");
    TORCH_CHECK(weight != nullptr && weight->sizes() == torch::IntArrayRef({out, in, 3, 3}), block,
                ": ggdc_factory must return a layer whose own parameter `weight` is the conv weight [", out, ", ", in,
                ", 3, 3], got ",
                weight == nullptr ? std::string("no parameter named weight") : c10::str(weight->sizes()));
    if (const auto* g = dynamic_cast<const GGDCBase*>(layer.ptr().get())) {
      TORCH_CHECK(detail::same_convolution(g->ggdc_options(), shape), block,
                  ": ggdc_factory may set the GGDC's own options (offset_groups, modulated, head_channels, "
                  "gradient_channels), not the conv's channels, kernel, stride, padding, dilation, groups or bias");
    }
    owner.register_module(name, layer.ptr());
    return layer;
  }
  auto conv = owner.register_module(
      name, torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(dilation).dilation(dilation)
                                  .bias(false)));
  return torch::nn::AnyModule(conv);
}

/// torchvision's `downsample`: 1x1 conv (no bias) with the block's stride, then the normalisation
/// layer `norm` makes (BatchNorm2d by default).
inline torch::nn::Sequential make_downsample(int64_t in, int64_t out, int64_t stride, const NormFactory& norm,
                                             const char* block) {
  return torch::nn::Sequential(
      torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
      make_norm_layer(norm, out, block));
}

/// torchvision's conv initialisation: Kaiming normal, fan_out mode, ReLU gain.
inline void init_conv_weight(torch::Tensor weight) {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
}

/// Initialises a `make_downsample` projection.
inline void init_downsample(torch::nn::Sequential& downsample) {
  init_conv_weight(downsample[0]->as<torch::nn::Conv2d>()->weight);
  init_norm_layer(*downsample[1]);
}

/// The convolution weight `[out, in, 3, 3]` of a block's 3x3 conv (plain or GGDC): its direct
/// parameter named `weight`.
inline torch::Tensor block_conv_weight(const torch::nn::AnyModule& conv) {
  const auto params = conv.ptr()->named_parameters(/*recurse=*/false);
  const auto* weight = params.find("weight");
  // make_block_conv3x3 refused layers without one.
  TORCH_INTERNAL_ASSERT(weight != nullptr, "residual block: 3x3 conv without a parameter named weight");
  return *weight;
}

/// Validates the options shared by both block types.
inline void check_block_options(const ResidualBlockOptions& o, const char* block) {
  TORCH_CHECK(o.in_channels() > 0 && o.planes() > 0, block, ": in_channels and planes must be positive, got ",
              o.in_channels(), " and ", o.planes());
  TORCH_CHECK(o.stride() == 1 || o.stride() == 2, block, ": stride must be 1 or 2, got ", o.stride());
  TORCH_CHECK(o.first_dilation() >= 1 && o.dilation() >= 1, block, ": dilations must be >= 1, got ",
              o.first_dilation(), " and ", o.dilation());
}

/// A block's input: `[N, in_channels, H, W]` in the block's dtype and on its device (cheap: no data
/// is read).
inline void check_block_input(const torch::Tensor& x, const ResidualBlockOptions& o, const torch::Tensor& weight,
                              const char* block) {
  TORCH_CHECK(x.defined() && x.dim() == 4 && x.size(1) == o.in_channels(), block, ": input must have shape [N, ",
              o.in_channels(), ", H, W], got ", x.defined() ? shape_string(x) : std::string("an undefined tensor"));
  check_matches_parameter(x, weight, block, "input");
}

}  // namespace detail

/// ResNet's basic block (ResNet-18/34): 3x3 conv - BN - ReLU - 3x3 conv - BN, plus identity (or a
/// 1x1 projection when the stride or the width changes), then ReLU.
/// Input `[N, in_channels, H, W]`, output `[N, planes, H / stride, W / stride]` (float, any device).
/// With `ggdc`, conv2 (the block's last 3x3 conv) is a GGDC layer made by `ggdc_factory`.
class BasicBlockImpl : public torch::nn::Cloneable<BasicBlockImpl> {
 public:
  static constexpr int64_t kExpansion = 1;

  explicit BasicBlockImpl(const ResidualBlockOptions& options) : options(options) { reset(); }

  void reset() override {
    detail::check_block_options(options, "BasicBlock");
    const auto in = options.in_channels();
    const auto planes = options.planes();
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, planes, 3)
                                                           .stride(options.stride())
                                                           .padding(options.first_dilation())
                                                           .dilation(options.first_dilation())
                                                           .bias(false)));
    bn1 = detail::register_norm_layer(*this, "bn1", options.norm_layer(), planes, "BasicBlock");
    conv2 = detail::make_block_conv3x3(*this, "BasicBlock", "conv2", planes, planes, 1, options.dilation(),
                                       options.ggdc(), options.ggdc_factory());
    bn2 = detail::register_norm_layer(*this, "bn2", options.norm_layer(), planes, "BasicBlock");
    if (options.stride() != 1 || in != planes * kExpansion) {
      downsample = register_module("downsample", detail::make_downsample(in, planes * kExpansion, options.stride(),
                                                                         options.norm_layer(), "BasicBlock"));
    } else {
      downsample = nullptr;
    }
    reset_parameters();
  }

  /// torchvision's initialisation: Kaiming-normal (fan_out, ReLU) conv weights, normalisation weight
  /// 1 and bias 0. A GGDC conv2 gets the same for its conv weight; its offset head stays as GGDC
  /// made it (zero, so the block starts as the plain-conv block).
  void reset_parameters() {
    detail::init_conv_weight(conv1->weight);
    detail::init_conv_weight(detail::block_conv_weight(conv2));
    detail::init_norm_layer(*bn1.ptr());
    detail::init_norm_layer(*bn2.ptr());
    if (downsample) detail::init_downsample(downsample);
  }

  /// `x`: `[N, in_channels, H, W]` -> `[N, planes, H / stride, W / stride]`.
  torch::Tensor forward(const torch::Tensor& x) {
    detail::check_block_input(x, options, conv1->weight, "BasicBlock");
    auto out = bn1.forward(conv1->forward(x)).relu_();
    out = bn2.forward(conv2.forward(out));
    out += downsample ? downsample->forward(x) : x;
    return out.relu_();
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::BasicBlock(in=" << options.in_channels() << ", planes=" << options.planes()
           << ", stride=" << options.stride() << ", dilation=" << options.first_dilation() << "/"
           << options.dilation() << ", conv2=" << (options.ggdc() ? "GGDC" : "Conv2d") << ")";
  }

  ResidualBlockOptions options;
  torch::nn::Conv2d conv1{nullptr};
  /// Normalisation layers made by `ResidualBlockOptions::norm_layer` (BatchNorm2d by default).
  torch::nn::AnyModule bn1;
  /// Plain `Conv2d` or GGDC (see `ResidualBlockOptions::ggdc`, `ggdc_factory`).
  torch::nn::AnyModule conv2;
  torch::nn::AnyModule bn2;
  /// Projection of the identity path; empty when shapes match.
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

/// ResNet's bottleneck block (ResNet-50/101, torchvision's "v1.5": the stride sits on the 3x3
/// conv): 1x1 - BN - ReLU - 3x3 - BN - ReLU - 1x1 - BN, plus identity or projection, then ReLU.
/// Input `[N, in_channels, H, W]`, output `[N, 4 * planes, H / stride, W / stride]`.
/// With `ggdc`, conv2 (the block's only, hence last, 3x3 conv) is a GGDC layer made by `ggdc_factory`.
class BottleneckImpl : public torch::nn::Cloneable<BottleneckImpl> {
 public:
  static constexpr int64_t kExpansion = 4;

  explicit BottleneckImpl(const ResidualBlockOptions& options) : options(options) { reset(); }

  void reset() override {
    detail::check_block_options(options, "Bottleneck");
    const auto in = options.in_channels();
    const auto planes = options.planes();
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, planes, 1).bias(false)));
    bn1 = detail::register_norm_layer(*this, "bn1", options.norm_layer(), planes, "Bottleneck");
    conv2 = detail::make_block_conv3x3(*this, "Bottleneck", "conv2", planes, planes, options.stride(),
                                       options.first_dilation(), options.ggdc(), options.ggdc_factory());
    bn2 = detail::register_norm_layer(*this, "bn2", options.norm_layer(), planes, "Bottleneck");
    conv3 = register_module("conv3",
                            torch::nn::Conv2d(torch::nn::Conv2dOptions(planes, planes * kExpansion, 1).bias(false)));
    bn3 = detail::register_norm_layer(*this, "bn3", options.norm_layer(), planes * kExpansion, "Bottleneck");
    if (options.stride() != 1 || in != planes * kExpansion) {
      downsample = register_module("downsample", detail::make_downsample(in, planes * kExpansion, options.stride(),
                                                                         options.norm_layer(), "Bottleneck"));
    } else {
      downsample = nullptr;
    }
    reset_parameters();
  }

  /// torchvision's initialisation: Kaiming-normal (fan_out, ReLU) conv weights, normalisation weight
  /// 1 and bias 0. A GGDC conv2 gets the same for its conv weight; its offset head stays as GGDC
  /// made it (zero, so the block starts as the plain-conv block).
  void reset_parameters() {
    detail::init_conv_weight(conv1->weight);
    detail::init_conv_weight(detail::block_conv_weight(conv2));
    detail::init_conv_weight(conv3->weight);
    detail::init_norm_layer(*bn1.ptr());
    detail::init_norm_layer(*bn2.ptr());
    detail::init_norm_layer(*bn3.ptr());
    if (downsample) detail::init_downsample(downsample);
  }

  /// `x`: `[N, in_channels, H, W]` -> `[N, 4 * planes, H / stride, W / stride]`.
  torch::Tensor forward(const torch::Tensor& x) {
    detail::check_block_input(x, options, conv1->weight, "Bottleneck");
    auto out = bn1.forward(conv1->forward(x)).relu_();
    out = bn2.forward(conv2.forward(out)).relu_();
    out = bn3.forward(conv3->forward(out));
    out += downsample ? downsample->forward(x) : x;
    return out.relu_();
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::Bottleneck(in=" << options.in_channels() << ", planes=" << options.planes()
           << ", stride=" << options.stride() << ", dilation=" << options.first_dilation()
           << ", conv2=" << (options.ggdc() ? "GGDC" : "Conv2d") << ")";
  }

  ResidualBlockOptions options;
  torch::nn::Conv2d conv1{nullptr};
  /// Normalisation layers made by `ResidualBlockOptions::norm_layer` (BatchNorm2d by default).
  torch::nn::AnyModule bn1;
  /// Plain `Conv2d` or GGDC (see `ResidualBlockOptions::ggdc`, `ggdc_factory`).
  torch::nn::AnyModule conv2;
  torch::nn::AnyModule bn2;
  torch::nn::Conv2d conv3{nullptr};
  torch::nn::AnyModule bn3;
  /// Projection of the identity path; empty when shapes match.
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

}  // namespace crossview
