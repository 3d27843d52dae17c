#pragma once
/// \file
/// Dilated ResNet backbone (depths 18, 34, 50, 101) in torchvision's layout and parameter names,
/// output stride 8 by default (PSPNet / mmseg ResNetV1c: stages 3 and 4 dilated 2 and 4, no
/// stride), optional deep stem, width multiplier, and GGDC (paper Eq. 5-8) in place of the 3x3
/// conv of residual blocks. `forward` returns the four stage outputs: the taps of the consistency
/// loss (paper Eq. 10).

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/models/residual_block.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace crossview {

/// Which residual blocks get a GGDC layer in place of their last 3x3 convolution.
///
/// The paper (Sec. 3.2) replaces "the last 3×3 convolution layer of each residual block". We read
/// this as: in EVERY residual block, its last 3x3 conv (conv2 of a BasicBlock, the 3x3 conv2 of a
/// Bottleneck) becomes GGDC — `kAllBlocks`, the default. `kLastBlockOfStage` is the other reading
/// (only the last block of each of the four stages); `kNone` is the plain ResNet (the baseline).
enum class GGDCPlacement { kNone, kLastBlockOfStage, kAllBlocks };

/// Name of a placement, for logs: "none", "last_block_of_stage", "all_blocks".
inline const char* to_string(GGDCPlacement placement) {
  switch (placement) {
    case GGDCPlacement::kNone:
      return "none";
    case GGDCPlacement::kLastBlockOfStage:
      return "last_block_of_stage";
    case GGDCPlacement::kAllBlocks:
      return "all_blocks";
  }
  return "?";
}

/// Options of `ResNet`.
struct ResNetOptions {
  /// `depth`: 18, 34 (BasicBlock) or 50, 101 (Bottleneck).
  explicit ResNetOptions(int64_t depth) : depth_(depth) {}

  /// 18, 34, 50 or 101.
  TORCH_ARG(int64_t, depth);
  /// Stride of the last stage's output with respect to the input: 8 (stages 3 and 4 dilated 2 and
  /// 4, the paper's and PSPNet's), 16 (stage 4 dilated 2) or 32 (plain ImageNet ResNet).
  TORCH_ARG(int64_t, output_stride) = 8;
  /// ResNetV1c deep stem (three 3x3 convs of widths w/2, w/2, w, named as mmseg's `stem.*`) instead
  /// of torchvision's 7x7 `conv1`/`bn1`.
  TORCH_ARG(bool, deep_stem) = false;
  /// Scales every width: stage widths are round(64 m) * {1, 2, 4, 8} (times 4 for Bottleneck).
  /// 1 is the real network; 0.25 or 0.5 give CPU-sized variants.
  TORCH_ARG(double, width_multiplier) = 1.0;
  /// Where GGDC replaces the 3x3 conv; default the paper's reading, every block (see GGDCPlacement).
  TORCH_ARG(GGDCPlacement, ggdc_placement) = GGDCPlacement::kAllBlocks;
  /// Makes each GGDC layer from the shape of the conv it replaces (see GGDCFactory): the gradient
  /// operator and offset head, e.g. `ggdc_factory<Scharr>()` or a user's own policies. Default
  /// `GGDC<Sobel, ConvOffsetHead>`, the paper's.
  TORCH_ARG(GGDCFactory, ggdc_factory) = crossview::ggdc_factory<>();
  /// Channels of the input image.
  TORCH_ARG(int64_t, in_channels) = 3;
  /// Makes every normalisation layer of the backbone (stem and blocks) from its channel count (see
  /// NormFactory): default BatchNorm2d; `sync_batch_norm_factory(group)`
  /// (<crossview/nn/sync_batch_norm.hpp>) for SyncBatchNorm in data-parallel training. Names stay
  /// BatchNorm's (`bn1.running_var`), so torchvision weights and checkpoints load either way.
  TORCH_ARG(NormFactory, norm_layer) = batch_norm_factory();
};

namespace detail {

/// Blocks per stage for a supported depth.
inline std::array<int64_t, 4> resnet_stage_blocks(int64_t depth) {
  switch (depth) {
    case 18:
      return {2, 2, 2, 2};
    case 34:
    case 50:
      return {3, 4, 6, 3};
    case 101:
      return {3, 4, 23, 3};
    default:
      TORCH_CHECK(false, "ResNet: depth must be 18, 34, 50 or 101, got ", depth);
  }
  return {};
}

/// round(64 m), at least 1.
inline int64_t resnet_base_width(double width_multiplier) {
  TORCH_CHECK(width_multiplier > 0.0 && std::isfinite(width_multiplier),
              "ResNet: width_multiplier must be positive, got ", width_multiplier);
  return std::max<int64_t>(1, static_cast<int64_t>(std::lround(64.0 * width_multiplier)));
}

}  // namespace detail

/// What `ResNetImpl::forward_features` computes.
struct ResNetFeatures {
  /// `{layer1, layer2, layer3, layer4}` outputs.
  std::vector<torch::Tensor> stages;
  /// Every residual block's output in order (`layer1.0`, `layer1.1`, ..., the last block of
  /// `layer4`); the stage outputs are the last block of each stage.
  std::vector<torch::Tensor> blocks;
};

/// ResNet backbone for segmentation.
///
/// Input `[N, in_channels, H, W]` float (ImageNet-normalised images), any device. Output: the four
/// stage outputs `{layer1, layer2, layer3, layer4}` with channels `stage_channels()` and strides
/// 4, 8, 8, 8 at output stride 8 (4, 8, 16, 16 at 16; 4, 8, 16, 32 at 32); spatial sizes follow
/// the convolution arithmetic (H = 64 gives 16, 8, 8, 8 at output stride 8).
///
/// Parameter names equal torchvision's `resnetXX` ones (`conv1.weight`, `layer3.5.conv2.weight`,
/// `layer1.0.downsample.1.running_var`, ...), so ImageNet weights load by name
/// (`load_torchvision_resnet`). Dilation follows torchvision's `replace_stride_with_dilation`:
/// the first block of a dilated stage keeps the previous dilation on its strided conv.
/// Weights are initialised as torchvision does (Kaiming-normal fan_out convs, BN 1/0); GGDC offset
/// heads keep GGDC's zero initialisation, so a fresh GGDC network computes what the plain one does,
/// and after the same torch::manual_seed every tensor the two share starts equal (GGDC layers draw
/// what the convs they replace draw; their policies' modules draw from a forked generator).
class ResNetImpl : public torch::nn::Cloneable<ResNetImpl> {
 public:
  explicit ResNetImpl(const ResNetOptions& options) : options(options) { reset(); }

  void reset() override {
    const auto blocks = detail::resnet_stage_blocks(options.depth());
    TORCH_CHECK(options.output_stride() == 8 || options.output_stride() == 16 || options.output_stride() == 32,
                "ResNet: output_stride must be 8, 16 or 32, got ", options.output_stride());
    TORCH_CHECK(options.in_channels() > 0, "ResNet: in_channels must be positive, got ", options.in_channels());
    const int64_t width = detail::resnet_base_width(options.width_multiplier());
    const bool bottleneck = options.depth() >= 50;
    const int64_t expansion = bottleneck ? BottleneckImpl::kExpansion : BasicBlockImpl::kExpansion;

    if (options.deep_stem()) {
      const int64_t half = std::max<int64_t>(1, width / 2);
      auto conv = [](int64_t in, int64_t out, int64_t stride) {
        return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
      };
      auto norm = [&](int64_t channels) { return detail::make_norm_layer(options.norm_layer(), channels, "ResNet"); };
      stem = register_module("stem", torch::nn::Sequential(
                                          conv(options.in_channels(), half, 2), norm(half),
                                          torch::nn::ReLU(torch::nn::ReLUOptions(true)), conv(half, half, 1),
                                          norm(half), torch::nn::ReLU(torch::nn::ReLUOptions(true)),
                                          conv(half, width, 1), norm(width),
                                          torch::nn::ReLU(torch::nn::ReLUOptions(true))));
    } else {
      conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_channels(), width, 7)
                                                             .stride(2)
                                                             .padding(3)
                                                             .bias(false)));
      bn1 = detail::register_norm_layer(*this, "bn1", options.norm_layer(), width, "ResNet");
    }
    maxpool = register_module("maxpool", torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1)));

    // torchvision's _make_layer with replace_stride_with_dilation: a dilated stage trades its
    // stride 2 for doubling the dilation; its first block keeps the previous dilation.
    const std::array<bool, 4> dilate = {false, false, options.output_stride() <= 8, options.output_stride() <= 16};
    int64_t in = width;
    int64_t dilation = 1;
    stage_channels_.clear();
    for (int stage = 0; stage < 4; ++stage) {
      const int64_t planes = width << stage;
      int64_t stride = stage == 0 ? 1 : 2;
      const int64_t previous_dilation = dilation;
      if (dilate[stage]) {
        dilation *= stride;
        stride = 1;
      }
      torch::nn::Sequential layer;
      for (int64_t b = 0; b < blocks[stage]; ++b) {
        const bool ggdc = options.ggdc_placement() == GGDCPlacement::kAllBlocks ||
                          (options.ggdc_placement() == GGDCPlacement::kLastBlockOfStage && b == blocks[stage] - 1);
        auto block_options = ResidualBlockOptions(in, planes)
                                 .stride(b == 0 ? stride : 1)
                                 .first_dilation(b == 0 ? previous_dilation : dilation)
                                 .dilation(dilation)
                                 .ggdc(ggdc)
                                 .ggdc_factory(options.ggdc_factory())
                                 .norm_layer(options.norm_layer());
        if (bottleneck) {
          layer->push_back(Bottleneck(block_options));
        } else {
          layer->push_back(BasicBlock(block_options));
        }
        in = planes * expansion;
      }
      stage_channels_.push_back(in);
      layers[stage] = register_module("layer" + std::to_string(stage + 1), layer);
    }
    reset_parameters();
  }

  /// torchvision's initialisation of the stem (the blocks initialise themselves in their reset()):
  /// Kaiming-normal convs, normalisation layers weight 1 and bias 0.
  void reset_parameters() {
    if (stem) {
      // conv, norm, ReLU three times.
      for (size_t k = 0; k < stem->size(); k += 3) {
        detail::init_conv_weight(stem[k]->as<torch::nn::Conv2d>()->weight);
        detail::init_norm_layer(*stem[k + 1]);
      }
    } else {
      detail::init_conv_weight(conv1->weight);
      detail::init_norm_layer(*bn1.ptr());
    }
  }

  /// `x`: `[N, in_channels, H, W]` -> `{layer1, layer2, layer3, layer4}` outputs (see class doc).
  std::vector<torch::Tensor> forward(const torch::Tensor& x) { return forward_features(x).stages; }

  /// `x` -> the four stage outputs and every residual block's output (the paper's consistency-loss
  /// taps, "the outputs of all residual blocks"), computed once.
  ResNetFeatures forward_features(const torch::Tensor& x) {
    check_input(x, "ResNet");
    auto out = stem ? stem->forward(x) : bn1.forward(conv1->forward(x)).relu_();
    out = maxpool->forward(out);
    ResNetFeatures features;
    features.stages.reserve(4);
    for (auto& layer : layers) {
      for (auto& block : *layer) {
        out = block.forward(out);
        features.blocks.push_back(out);
      }
      features.stages.push_back(out);
    }
    return features;
  }

  /// Checks a network input for the model named `function` (ResNet, or a head built on it):
  /// `[N, in_channels, H, W]`, not empty, in the network's dtype and on its device.
  /// \throws c10::Error naming `function` and "input".
  void check_input(const torch::Tensor& x, const char* function) const {
    TORCH_CHECK(x.defined() && x.dim() == 4 && x.size(1) == options.in_channels(), function,
                ": input must have shape [N, ", options.in_channels(), ", H, W], got ",
                x.defined() ? detail::shape_string(x) : std::string("an undefined tensor"));
    detail::check_matches_parameter(x, stem ? stem->parameters().front() : conv1->weight, function, "input");
    TORCH_CHECK(x.numel() > 0, function, ": input must not be empty, got ", detail::shape_string(x));
  }

  /// Output channels of the four stages, e.g. {256, 512, 1024, 2048} for ResNet-50.
  const std::vector<int64_t>& stage_channels() const { return stage_channels_; }

  /// Number of residual blocks whose 3x3 conv is a GGDC layer.
  int64_t num_ggdc_blocks() const {
    int64_t count = 0;
    for (const auto& layer : layers) {
      for (const auto& block : *layer) {
        if (const auto* basic = block.ptr()->as<BasicBlockImpl>()) count += basic->options.ggdc() ? 1 : 0;
        if (const auto* neck = block.ptr()->as<BottleneckImpl>()) count += neck->options.ggdc() ? 1 : 0;
      }
    }
    return count;
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::ResNet(depth=" << options.depth() << ", output_stride=" << options.output_stride()
           << ", width_multiplier=" << options.width_multiplier() << ", deep_stem=" << std::boolalpha
           << options.deep_stem() << ", ggdc=" << to_string(options.ggdc_placement()) << ")";
  }

  ResNetOptions options;
  /// Deep stem (ResNetV1c), or empty.
  torch::nn::Sequential stem{nullptr};
  /// torchvision stem, or empty with a deep stem.
  torch::nn::Conv2d conv1{nullptr};
  /// Its normalisation layer (ResNetOptions::norm_layer), or empty with a deep stem.
  torch::nn::AnyModule bn1;
  torch::nn::MaxPool2d maxpool{nullptr};
  /// `layer1` ... `layer4`: Sequentials of BasicBlock or Bottleneck.
  std::array<torch::nn::Sequential, 4> layers{{torch::nn::Sequential{nullptr}, torch::nn::Sequential{nullptr},
                                              torch::nn::Sequential{nullptr}, torch::nn::Sequential{nullptr}}};

 private:
  std::vector<int64_t> stage_channels_;
};
TORCH_MODULE(ResNet);

}  // namespace crossview
