#pragma once
/// \file
/// PSPNet (Zhao et al. 2017) on the dilated ResNet: pyramid pooling module (bins 1, 2, 3, 6),
/// 3x3 bottleneck, dropout 0.1, 1x1 classifier, auxiliary FCN head on stage 3 (loss weight 0.4);
/// logits upsampled to the input size (bilinear, align_corners = false). The network of the paper's
/// experiments (PSPNet50).

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

/// Options of `PyramidPooling`.
struct PyramidPoolingOptions {
  PyramidPoolingOptions(int64_t in_channels, int64_t channels) : in_channels_(in_channels), channels_(channels) {}

  /// Channels of the input feature map.
  TORCH_ARG(int64_t, in_channels);
  /// Channels of each pooled branch.
  TORCH_ARG(int64_t, channels);
  /// Output sizes of the adaptive average pools (bins x bins cells each).
  TORCH_ARG(std::vector<int64_t>, bins) = std::vector<int64_t>{1, 2, 3, 6};
  /// Makes each branch's normalisation layer (see NormFactory); default BatchNorm2d.
  TORCH_ARG(NormFactory, norm_layer) = batch_norm_factory();
};

/// Pyramid pooling module: for each bin b, adaptive average pool to b x b, 1x1 conv to `channels`,
/// normalisation (BatchNorm2d unless `norm_layer` says otherwise), ReLU, bilinear upsampling back (align_corners = false); concatenated after the input.
/// Input `[N, in_channels, h, w]` -> `[N, in_channels + bins.size() * channels, h, w]`.
/// Train-mode BatchNorm on the 1x1 bin needs N >= 2 (libtorch refuses one value per channel);
/// SyncBatchNorm needs 2 over all processes.
class PyramidPoolingImpl : public torch::nn::Cloneable<PyramidPoolingImpl> {
 public:
  explicit PyramidPoolingImpl(const PyramidPoolingOptions& options) : options(options) { reset(); }

  void reset() override {
    TORCH_CHECK(options.in_channels() > 0 && options.channels() > 0,
                "PyramidPooling: in_channels and channels must be positive, got ", options.in_channels(), " and ",
                options.channels());
    TORCH_CHECK(!options.bins().empty(), "PyramidPooling: bins must not be empty");
    branches.clear();
    for (size_t i = 0; i < options.bins().size(); ++i) {
      const auto bin = options.bins()[i];
      TORCH_CHECK(bin > 0, "PyramidPooling: bins must be positive, got ", bin);
      branches.push_back(register_module(
          std::to_string(i),
          torch::nn::Sequential(torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({bin, bin})),
                                torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_channels(), options.channels(), 1)
                                                      .bias(false)),
                                detail::make_norm_layer(options.norm_layer(), options.channels(), "PyramidPooling"),
                                torch::nn::ReLU(torch::nn::ReLUOptions(true)))));
    }
    reset_parameters();
  }

  /// mmseg's ConvModule initialisation: Kaiming-normal (fan_out, ReLU) convs, normalisation 1 / 0.
  void reset_parameters() {
    for (auto& branch : branches) detail::init_conv_bn_relu(*branch, 1);
  }

  /// `x`: `[N, in_channels, h, w]` -> `[N, in_channels + bins.size() * channels, h, w]`.
  torch::Tensor forward(const torch::Tensor& x) {
    TORCH_CHECK(x.defined() && x.dim() == 4 && x.size(1) == options.in_channels(),
                "PyramidPooling: input must have shape [N, ", options.in_channels(), ", h, w], got ",
                x.defined() ? detail::shape_string(x) : std::string("an undefined tensor"));
    if (!branches.empty()) {
      detail::check_matches_parameter(x, branches.front()->parameters().front(), "PyramidPooling", "input");
    }
    std::vector<torch::Tensor> parts{x};
    const std::vector<int64_t> size{x.size(2), x.size(3)};
    for (auto& branch : branches) {
      parts.push_back(torch::nn::functional::interpolate(
          branch->forward(x),
          torch::nn::functional::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(false)));
    }
    return torch::cat(parts, 1);
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::PyramidPooling(in=" << options.in_channels() << ", channels=" << options.channels()
           << ", bins=" << torch::IntArrayRef(options.bins()) << ")";
  }

  PyramidPoolingOptions options;
  /// One Sequential per bin, registered as "0", "1", ...
  std::vector<torch::nn::Sequential> branches;
};
TORCH_MODULE(PyramidPooling);

/// Options of `PSPNet`. Defaults are the paper's PSPNet50; tiny CPU variants set a backbone with a
/// small `width_multiplier` and scale `channels` / `aux_channels` alike.
struct PSPNetOptions {
  explicit PSPNetOptions(int64_t num_classes, ResNetOptions backbone = ResNetOptions(50))
      : num_classes_(num_classes), backbone_(std::move(backbone)) {}

  /// Number of classes of the logits.
  TORCH_ARG(int64_t, num_classes);
  /// The dilated ResNet (output stride 8 in the paper; GGDC placement is set here).
  TORCH_ARG(ResNetOptions, backbone);
  /// Pyramid pooling bins.
  TORCH_ARG(std::vector<int64_t>, bins) = std::vector<int64_t>{1, 2, 3, 6};
  /// Channels of each pyramid branch and of the 3x3 bottleneck after the concatenation.
  TORCH_ARG(int64_t, channels) = 512;
  /// Dropout before both classifiers.
  TORCH_ARG(double, dropout) = 0.1;
  /// Build the auxiliary FCN head on stage 3 (3x3 conv, BN, ReLU, dropout, 1x1 classifier).
  TORCH_ARG(bool, aux_head) = true;
  /// Channels of the auxiliary head's 3x3 conv.
  TORCH_ARG(int64_t, aux_channels) = 256;
  /// Weight of the auxiliary cross-entropy in `PSPNetImpl::loss`.
  TORCH_ARG(double, aux_weight) = 0.4;
  /// Label ignored by `PSPNetImpl::loss`.
  TORCH_ARG(int64_t, ignore_index) = 255;
  /// Makes the head's normalisation layers (see NormFactory); empty (the default): the backbone's
  /// `norm_layer`, so `ResNetOptions::norm_layer` alone switches the whole network.
  TORCH_ARG(NormFactory, norm_layer) = nullptr;
};

/// What `PSPNet` computes: the output struct all of crossview's segmentation models share.
using PSPNetOutput = SegmentationOutput;

/// PSPNet. Input `[N, 3, H, W]` float, ImageNet-normalised; output `PSPNetOutput`. Submodules
/// `backbone` (a `ResNet`, torchvision names: load ImageNet weights with
/// `load_torchvision_resnet(*net->backbone, path)`), `ppm`, `bottleneck`, `classifier`, `aux`.
class PSPNetImpl : public torch::nn::Cloneable<PSPNetImpl> {
 public:
  explicit PSPNetImpl(const PSPNetOptions& options) : options(options) { reset(); }

  void reset() override {
    TORCH_CHECK(options.num_classes() > 0, "PSPNet: num_classes must be positive, got ", options.num_classes());
    TORCH_CHECK(options.channels() > 0 && options.aux_channels() > 0,
                "PSPNet: channels and aux_channels must be positive, got ", options.channels(), " and ",
                options.aux_channels());
    TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0, "PSPNet: dropout must be in [0, 1), got ",
                options.dropout());
    backbone = register_module("backbone", ResNet(options.backbone()));
    const auto& stage_channels = backbone->stage_channels();
    const auto& norm = detail::head_norm_layer(options.norm_layer(), options.backbone());
    ppm = register_module("ppm", PyramidPooling(PyramidPoolingOptions(stage_channels[3], options.channels())
                                                    .bins(options.bins())
                                                    .norm_layer(norm)));
    const int64_t concat = stage_channels[3] + static_cast<int64_t>(options.bins().size()) * options.channels();
    bottleneck = register_module("bottleneck", detail::conv_bn_relu(concat, options.channels(), 3, 1, norm, "PSPNet"));
    dropout = register_module("dropout", torch::nn::Dropout2d(torch::nn::Dropout2dOptions(options.dropout())));
    classifier = register_module("classifier",
                                 torch::nn::Conv2d(torch::nn::Conv2dOptions(options.channels(), options.num_classes(), 1)));
    if (options.aux_head()) {
      aux = register_module("aux", detail::fcn_aux_head(stage_channels[2], options.aux_channels(),
                                                        options.num_classes(), options.dropout(), norm, "PSPNet"));
    } else {
      aux = nullptr;
    }
    reset_parameters();
  }

  /// Heads as mmseg initialises them: Kaiming-normal (fan_out, ReLU) 3x3 convs, normalisation 1 / 0,
  /// classifiers normal(0, 0.01) with bias 0 (the pyramid and the backbone initialise themselves).
  void reset_parameters() {
    detail::init_conv_bn_relu(*bottleneck);
    detail::init_classifier(*classifier);
    if (aux) detail::init_fcn_aux_head(*aux);
  }

  /// `x`: `[N, 3, H, W]` -> logits `[N, num_classes, H, W]`, auxiliary logits (training mode) and
  /// the four stage outputs.
  PSPNetOutput forward(const torch::Tensor& x) {
    backbone->check_input(x, "PSPNet");
    PSPNetOutput out;
    auto backbone_features = backbone->forward_features(x);
    out.features = std::move(backbone_features.stages);
    out.block_features = std::move(backbone_features.blocks);
    auto head = dropout->forward(bottleneck->forward(ppm->forward(out.features[3])));
    out.logits = detail::resize_bilinear(classifier->forward(head), x.size(2), x.size(3));
    if (aux && is_training()) out.aux_logits = detail::resize_bilinear(aux->forward(out.features[2]), x.size(2), x.size(3));
    return out;
  }

  /// Segmentation loss: cross-entropy of `logits` plus `aux_weight` times that of `aux_logits`
  /// (when defined), both ignoring `ignore_index`. `target`: `[N, H, W]` int64 train ids.
  torch::Tensor loss(const PSPNetOutput& output, const torch::Tensor& target) const {
    return segmentation_loss(output, target, options.aux_weight(), options.ignore_index(), "PSPNet::loss");
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::PSPNet(num_classes=" << options.num_classes() << ", channels=" << options.channels()
           << ", aux_head=" << std::boolalpha << options.aux_head() << ")";
  }

  PSPNetOptions options;
  ResNet backbone{nullptr};
  PyramidPooling ppm{nullptr};
  /// 3x3 conv (concat -> channels), BN, ReLU.
  torch::nn::Sequential bottleneck{nullptr};
  torch::nn::Dropout2d dropout{nullptr};
  /// 1x1 conv channels -> num_classes (with bias).
  torch::nn::Conv2d classifier{nullptr};
  /// Auxiliary FCN head on stage 3, or empty.
  torch::nn::Sequential aux{nullptr};
};
TORCH_MODULE(PSPNet);

}  // namespace crossview
