#pragma once
/// \file
/// DeepLabV3 (Chen et al. 2017) on the dilated ResNet, as mmsegmentation's `deeplabv3_r50-d8`
/// (paper Table 3): atrous spatial pyramid pooling (image pooling, a 1x1 branch and 3x3 branches
/// of dilation 12, 24, 36 at output stride 8), 3x3 bottleneck, dropout 0.1, 1x1 classifier,
/// auxiliary FCN head on stage 3 (loss weight 0.4); logits upsampled to the input size (bilinear,
/// align_corners = false). Same backbone, output and loss as `PSPNet`.

#include "crossview/models/detail/head_modules.hpp"
#include "crossview/models/resnet.hpp"
#include "crossview/models/segmentation_output.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace crossview {

/// Options of `ASPP`.
struct ASPPOptions {
  ASPPOptions(int64_t in_channels, int64_t channels) : in_channels_(in_channels), channels_(channels) {}

  /// Channels of the input feature map.
  TORCH_ARG(int64_t, in_channels);
  /// Channels of each branch.
  TORCH_ARG(int64_t, channels);
  /// One branch per entry, as mmseg's `dilations`: 1 is a 1x1 conv, d > 1 a 3x3 conv of dilation
  /// (and padding) d. {1, 12, 24, 36} is DeepLabV3 at output stride 8; at output stride 16 the
  /// DeepLabV3 paper halves the rates: {1, 6, 12, 18}.
  TORCH_ARG(std::vector<int64_t>, dilations) = std::vector<int64_t>{1, 12, 24, 36};
  /// Makes each branch's normalisation layer (see NormFactory); default BatchNorm2d.
  TORCH_ARG(NormFactory, norm_layer) = batch_norm_factory();
};

/// Atrous spatial pyramid pooling, as mmseg's `ASPPHead` before its bottleneck: an image-pooling
/// branch (global average pool, 1x1 conv, BN, ReLU, bilinear upsampling back, align_corners =
/// false) and one conv-BN-ReLU branch per dilation (bias-free convs), concatenated in that order.
/// Input `[N, in_channels, h, w]` -> `[N, (1 + dilations.size()) * channels, h, w]` (the input
/// itself is not part of the concatenation). Parameters `image_pool.1.weight`, `image_pool.2.*`
/// (BN), `branches.<i>.0.weight`, `branches.<i>.1.*` (mmseg: `image_pool.1.conv`,
/// `aspp_modules.<i>.conv`). "BN" is the layer `norm_layer` makes (BatchNorm2d by default).
/// Train-mode BatchNorm on the pooled 1x1 map needs N >= 2 (SyncBatchNorm: 2 over all processes).
class ASPPImpl : public torch::nn::Cloneable<ASPPImpl> {
 public:
  explicit ASPPImpl(const ASPPOptions& options) : options(options) { reset(); }

  void reset() override {
    TORCH_CHECK(options.in_channels() > 0 && options.channels() > 0,
                "ASPP: in_channels and channels must be positive, got ", options.in_channels(), " and ",
                options.channels());
    TORCH_CHECK(!options.dilations().empty(), "ASPP: dilations must not be empty");
    image_pool = register_module(
        "image_pool",
        torch::nn::Sequential(
            torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({1, 1})),
            torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_channels(), options.channels(), 1).bias(false)),
            detail::make_norm_layer(options.norm_layer(), options.channels(), "ASPP"),
            torch::nn::ReLU(torch::nn::ReLUOptions(true))));
    branches = register_module("branches", torch::nn::ModuleList());
    for (const auto dilation : options.dilations()) {
      TORCH_CHECK(dilation > 0, "ASPP: dilations must be positive, got ", dilation);
      branches->push_back(detail::conv_bn_relu(options.in_channels(), options.channels(), dilation == 1 ? 1 : 3,
                                               dilation, options.norm_layer(), "ASPP"));
    }
    reset_parameters();
  }

  /// mmseg's ConvModule initialisation: Kaiming-normal (fan_out, ReLU) convs, normalisation 1 / 0.
  void reset_parameters() {
    detail::init_conv_bn_relu(*image_pool, 1);
    for (size_t i = 0; i < branches->size(); ++i) detail::init_conv_bn_relu(branches->at<torch::nn::SequentialImpl>(i));
  }

  /// `x`: `[N, in_channels, h, w]` -> `[N, (1 + dilations.size()) * channels, h, w]`.
  torch::Tensor forward(const torch::Tensor& x) {
    TORCH_CHECK(x.defined() && x.dim() == 4 && x.size(1) == options.in_channels(), "ASPP: input must have shape [N, ",
                options.in_channels(), ", h, w], got ",
                x.defined() ? detail::shape_string(x) : std::string("an undefined tensor"));
    detail::check_matches_parameter(x, image_pool->parameters().front(), "ASPP", "input");
    std::vector<torch::Tensor> parts;
    parts.reserve(branches->size() + 1);
    parts.push_back(detail::resize_bilinear(image_pool->forward(x), x.size(2), x.size(3)));
    for (auto& branch : *branches) parts.push_back(branch->as<torch::nn::SequentialImpl>()->forward(x));
    return torch::cat(parts, 1);
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::ASPP(in=" << options.in_channels() << ", channels=" << options.channels()
           << ", dilations=" << torch::IntArrayRef(options.dilations()) << ")";
  }

  ASPPOptions options;
  /// Global average pool, 1x1 conv, BN, ReLU.
  torch::nn::Sequential image_pool{nullptr};
  /// One conv-BN-ReLU Sequential per dilation, registered as "0", "1", ...
  torch::nn::ModuleList branches{nullptr};
};
TORCH_MODULE(ASPP);

/// Options of `DeepLabV3`. Defaults are mmseg's `deeplabv3_r50-d8` (the paper's Table 3 network);
/// tiny CPU variants set a backbone with a small `width_multiplier` and scale `channels` /
/// `aux_channels` alike.
struct DeepLabV3Options {
  explicit DeepLabV3Options(int64_t num_classes, ResNetOptions backbone = ResNetOptions(50))
      : num_classes_(num_classes), backbone_(std::move(backbone)) {}

  /// Number of classes of the logits.
  TORCH_ARG(int64_t, num_classes);
  /// The dilated ResNet (output stride 8 in the paper; GGDC placement is set here).
  TORCH_ARG(ResNetOptions, backbone);
  /// ASPP dilations (1 = the 1x1 branch); see `ASPPOptions::dilations`.
  TORCH_ARG(std::vector<int64_t>, dilations) = std::vector<int64_t>{1, 12, 24, 36};
  /// Channels of each ASPP branch and of the 3x3 bottleneck after the concatenation.
  TORCH_ARG(int64_t, channels) = 512;
  /// Dropout before both classifiers.
  TORCH_ARG(double, dropout) = 0.1;
  /// Build the auxiliary FCN head on stage 3 (3x3 conv, BN, ReLU, dropout, 1x1 classifier).
  TORCH_ARG(bool, aux_head) = true;
  /// Channels of the auxiliary head's 3x3 conv.
  TORCH_ARG(int64_t, aux_channels) = 256;
  /// Weight of the auxiliary cross-entropy in `DeepLabV3Impl::loss`.
  TORCH_ARG(double, aux_weight) = 0.4;
  /// Label ignored by `DeepLabV3Impl::loss`.
  TORCH_ARG(int64_t, ignore_index) = 255;
  /// Makes the head's normalisation layers (see NormFactory); empty (the default): the backbone's
  /// `norm_layer`, so `ResNetOptions::norm_layer` alone switches the whole network.
  TORCH_ARG(NormFactory, norm_layer) = nullptr;
};

/// DeepLabV3. Input `[N, 3, H, W]` float, ImageNet-normalised; output `SegmentationOutput` (=
/// `PSPNetOutput`: logits, auxiliary logits in training mode, stage and block features).
///
/// Parameter names (mmseg's in brackets):
///   `backbone.*`                    torchvision ResNet names (`load_torchvision_resnet(*net->backbone, path)`)
///   `aspp.image_pool.{1,2}.*`       [`decode_head.image_pool.1.{conv,bn}`]
///   `aspp.branches.<i>.{0,1}.*`     [`decode_head.aspp_modules.<i>.{conv,bn}`]
///   `bottleneck.{0,1}.*`            3x3 conv + BN [`decode_head.bottleneck.{conv,bn}`]
///   `classifier.*`                  1x1 conv with bias [`decode_head.conv_seg`]
///   `aux.{0,1,4}.*`                 [`auxiliary_head.convs.0.{conv,bn}`, `auxiliary_head.conv_seg`]
/// Heads initialised as mmseg's: Kaiming-normal (fan_out) convs, BN 1 / 0, classifiers N(0, 0.01).
class DeepLabV3Impl : public torch::nn::Cloneable<DeepLabV3Impl> {
 public:
  explicit DeepLabV3Impl(const DeepLabV3Options& options) : options(options) { reset(); }

  void reset() override {
    TORCH_CHECK(options.num_classes() > 0, "DeepLabV3: num_classes must be positive, got ", options.num_classes());
    TORCH_CHECK(options.channels() > 0 && options.aux_channels() > 0,
                "DeepLabV3: channels and aux_channels must be positive, got ", options.channels(), " and ",
                options.aux_channels());
    TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0, "DeepLabV3: dropout must be in [0, 1), got ",
                options.dropout());
    backbone = register_module("backbone", ResNet(options.backbone()));
    const auto& stage_channels = backbone->stage_channels();
    const auto& norm = detail::head_norm_layer(options.norm_layer(), options.backbone());
    aspp = register_module("aspp", ASPP(ASPPOptions(stage_channels[3], options.channels())
                                            .dilations(options.dilations())
                                            .norm_layer(norm)));
    const int64_t concat = (1 + static_cast<int64_t>(options.dilations().size())) * options.channels();
    bottleneck =
        register_module("bottleneck", detail::conv_bn_relu(concat, options.channels(), 3, 1, norm, "DeepLabV3"));
    dropout = register_module("dropout", torch::nn::Dropout2d(torch::nn::Dropout2dOptions(options.dropout())));
    classifier = register_module(
        "classifier", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.channels(), options.num_classes(), 1)));
    aux = options.aux_head()
              ? register_module("aux", detail::fcn_aux_head(stage_channels[2], options.aux_channels(),
                                                            options.num_classes(), options.dropout(), norm, "DeepLabV3"))
              : nullptr;
    reset_parameters();
  }

  /// Heads as mmseg initialises them (the ASPP and the backbone initialise themselves).
  void reset_parameters() {
    detail::init_conv_bn_relu(*bottleneck);
    detail::init_classifier(*classifier);
    if (aux) detail::init_fcn_aux_head(*aux);
  }

  /// `x`: `[N, 3, H, W]` -> logits `[N, num_classes, H, W]`, auxiliary logits (training mode),
  /// the four stage outputs and every block's output.
  SegmentationOutput forward(const torch::Tensor& x) {
    backbone->check_input(x, "DeepLabV3");
    SegmentationOutput out;
    auto backbone_features = backbone->forward_features(x);
    out.features = std::move(backbone_features.stages);
    out.block_features = std::move(backbone_features.blocks);
    const auto head = dropout->forward(bottleneck->forward(aspp->forward(out.features[3])));
    out.logits = detail::resize_bilinear(classifier->forward(head), x.size(2), x.size(3));
    if (aux && is_training()) {
      out.aux_logits = detail::resize_bilinear(aux->forward(out.features[2]), x.size(2), x.size(3));
    }
    return out;
  }

  /// Cross-entropy of `logits` plus `aux_weight` times that of `aux_logits` (when defined), both
  /// ignoring `ignore_index`. `target`: `[N, H, W]` int64 train ids.
  torch::Tensor loss(const SegmentationOutput& output, const torch::Tensor& target) const {
    return segmentation_loss(output, target, options.aux_weight(), options.ignore_index(), "DeepLabV3::loss");
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::DeepLabV3(num_classes=" << options.num_classes() << ", channels=" << options.channels()
           << ", dilations=" << torch::IntArrayRef(options.dilations()) << ", aux_head=" << std::boolalpha
           << options.aux_head() << ")";
  }

  DeepLabV3Options options;
  ResNet backbone{nullptr};
  ASPP aspp{nullptr};
  /// 3x3 conv ((1 + dilations.size()) * channels -> channels), BN, ReLU.
  torch::nn::Sequential bottleneck{nullptr};
  torch::nn::Dropout2d dropout{nullptr};
  /// 1x1 conv channels -> num_classes (with bias).
  torch::nn::Conv2d classifier{nullptr};
  /// Auxiliary FCN head on stage 3, or empty.
  torch::nn::Sequential aux{nullptr};
};
TORCH_MODULE(DeepLabV3);

}  // namespace crossview
