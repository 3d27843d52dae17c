#pragma once
/// \file
/// CCNet (Huang et al. 2019) on the dilated ResNet, as mmsegmentation's `ccnet_r50-d8` (paper
/// Table 3): 3x3 conv to 512 channels, criss-cross attention applied twice with shared weights
/// (recurrence 2), 3x3 conv, the stage-4 input concatenated before a 3x3 bottleneck, dropout 0.1,
/// 1x1 classifier, auxiliary FCN head on stage 3 (loss weight 0.4); logits upsampled to the input
/// size (bilinear, align_corners = false). Same backbone, output and loss as `PSPNet`.

#include "crossview/models/detail/head_modules.hpp"
#include "crossview/models/resnet.hpp"
#include "crossview/models/segmentation_output.hpp"
#include "crossview/nn/criss_cross_attention.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <ostream>
#include <utility>

namespace crossview {

/// Options of `CCNet`. Defaults are mmseg's `ccnet_r50-d8` (the paper's Table 3 network); tiny CPU
/// variants set a backbone with a small `width_multiplier` and scale `channels` / `aux_channels`
/// alike (`channels` must stay >= 8: query and key get channels / 8).
struct CCNetOptions {
  explicit CCNetOptions(int64_t num_classes, ResNetOptions backbone = ResNetOptions(50))
      : num_classes_(num_classes), backbone_(std::move(backbone)) {}

  /// Number of classes of the logits.
  TORCH_ARG(int64_t, num_classes);
  /// The dilated ResNet (output stride 8 in the paper; GGDC placement is set here).
  TORCH_ARG(ResNetOptions, backbone);
  /// Channels of the head's convs and of the attention.
  TORCH_ARG(int64_t, channels) = 512;
  /// How many times the (one, shared) criss-cross attention is applied; 2 lets every pixel see
  /// every other.
  TORCH_ARG(int64_t, recurrence) = 2;
  /// Concatenate the stage-4 input with the attention branch before the 3x3 bottleneck (mmseg's
  /// `concat_input`; without it the attention branch goes to the classifier directly).
  TORCH_ARG(bool, concat_input) = true;
  /// Dropout before both classifiers.
  TORCH_ARG(double, dropout) = 0.1;
  /// Build the auxiliary FCN head on stage 3 (3x3 conv, BN, ReLU, dropout, 1x1 classifier).
  TORCH_ARG(bool, aux_head) = true;
  /// Channels of the auxiliary head's 3x3 conv.
  TORCH_ARG(int64_t, aux_channels) = 256;
  /// Weight of the auxiliary cross-entropy in `CCNetImpl::loss`.
  TORCH_ARG(double, aux_weight) = 0.4;
  /// Label ignored by `CCNetImpl::loss`.
  TORCH_ARG(int64_t, ignore_index) = 255;
  /// Makes the head's normalisation layers (see NormFactory); empty (the default): the backbone's
  /// `norm_layer`, so `ResNetOptions::norm_layer` alone switches the whole network.
  TORCH_ARG(NormFactory, norm_layer) = nullptr;
};

/// CCNet. Input `[N, 3, H, W]` float, ImageNet-normalised; output `SegmentationOutput` (=
/// `PSPNetOutput`: logits, auxiliary logits in training mode, stage and block features).
///
/// Head: `y = conv_in(x4)`, `y = cca(y)` `recurrence` times, `y = conv_out(y)`,
/// `y = bottleneck(cat(x4, y))` (with `concat_input`), `classifier(dropout(y))`.
/// Parameter names (mmseg's in brackets):
///   `backbone.*`                  torchvision ResNet names (`load_torchvision_resnet(*net->backbone, path)`)
///   `conv_in.{0,1}.*`             3x3 conv + BN [`decode_head.convs.0.{conv,bn}`]
///   `cca.{query,key,value}_conv.*`, `cca.gamma`   [`decode_head.cca.*`, `gamma.scale`]
///   `conv_out.{0,1}.*`            3x3 conv + BN [`decode_head.convs.1.{conv,bn}`]
///   `bottleneck.{0,1}.*`          3x3 conv + BN over the concatenation [`decode_head.conv_cat.{conv,bn}`]
///   `classifier.*`                1x1 conv with bias [`decode_head.conv_seg`]
///   `aux.{0,1,4}.*`               [`auxiliary_head.convs.0.{conv,bn}`, `auxiliary_head.conv_seg`]
/// Heads initialised as mmseg's: Kaiming-normal (fan_out) ConvModules, BN 1 / 0, classifiers
/// N(0, 0.01); the attention's 1x1 convs keep PyTorch's default and `gamma` starts at 0.
class CCNetImpl : public torch::nn::Cloneable<CCNetImpl> {
 public:
  explicit CCNetImpl(const CCNetOptions& options) : options(options) { reset(); }

  void reset() override {
    TORCH_CHECK(options.num_classes() > 0, "CCNet: num_classes must be positive, got ", options.num_classes());
    TORCH_CHECK(options.channels() > 0 && options.aux_channels() > 0,
                "CCNet: channels and aux_channels must be positive, got ", options.channels(), " and ",
                options.aux_channels());
    TORCH_CHECK(options.recurrence() >= 0, "CCNet: recurrence must be >= 0, got ", options.recurrence());
    TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0, "CCNet: dropout must be in [0, 1), got ",
                options.dropout());
    backbone = register_module("backbone", ResNet(options.backbone()));
    const auto& stage_channels = backbone->stage_channels();
    const auto& norm = detail::head_norm_layer(options.norm_layer(), options.backbone());
    conv_in = register_module("conv_in", detail::conv_bn_relu(stage_channels[3], options.channels(), 3, 1, norm, "CCNet"));
    cca = register_module("cca", CrissCrossAttention(CrissCrossAttentionOptions(options.channels())));
    conv_out =
        register_module("conv_out", detail::conv_bn_relu(options.channels(), options.channels(), 3, 1, norm, "CCNet"));
    bottleneck = options.concat_input()
                     ? register_module("bottleneck", detail::conv_bn_relu(stage_channels[3] + options.channels(),
                                                                          options.channels(), 3, 1, norm, "CCNet"))
                     : nullptr;
    dropout = register_module("dropout", torch::nn::Dropout2d(torch::nn::Dropout2dOptions(options.dropout())));
    classifier = register_module(
        "classifier", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.channels(), options.num_classes(), 1)));
    aux = options.aux_head()
              ? register_module("aux", detail::fcn_aux_head(stage_channels[2], options.aux_channels(),
                                                            options.num_classes(), options.dropout(), norm, "CCNet"))
              : nullptr;
    reset_parameters();
  }

  /// Heads as mmseg initialises them (the attention and the backbone initialise themselves).
  void reset_parameters() {
    detail::init_conv_bn_relu(*conv_in);
    detail::init_conv_bn_relu(*conv_out);
    if (bottleneck) detail::init_conv_bn_relu(*bottleneck);
    detail::init_classifier(*classifier);
    if (aux) detail::init_fcn_aux_head(*aux);
  }

  /// `x`: `[N, 3, H, W]` -> logits `[N, num_classes, H, W]`, auxiliary logits (training mode),
  /// the four stage outputs and every block's output.
  SegmentationOutput forward(const torch::Tensor& x) {
    backbone->check_input(x, "CCNet");
    SegmentationOutput out;
    auto backbone_features = backbone->forward_features(x);
    out.features = std::move(backbone_features.stages);
    out.block_features = std::move(backbone_features.blocks);
    const auto& x4 = out.features[3];
    auto head = conv_in->forward(x4);
    for (int64_t r = 0; r < options.recurrence(); ++r) head = cca->forward(head);
    head = conv_out->forward(head);
    if (bottleneck) head = bottleneck->forward(torch::cat({x4, head}, 1));
    out.logits = detail::resize_bilinear(classifier->forward(dropout->forward(head)), x.size(2), x.size(3));
    if (aux && is_training()) {
      out.aux_logits = detail::resize_bilinear(aux->forward(out.features[2]), x.size(2), x.size(3));
    }
    return out;
  }

  /// Cross-entropy of `logits` plus `aux_weight` times that of `aux_logits` (when defined), both
  /// ignoring `ignore_index`. `target`: `[N, H, W]` int64 train ids.
  torch::Tensor loss(const SegmentationOutput& output, const torch::Tensor& target) const {
    return segmentation_loss(output, target, options.aux_weight(), options.ignore_index(), "CCNet::loss");
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::CCNet(num_classes=" << options.num_classes() << ", channels=" << options.channels()
           << ", recurrence=" << options.recurrence() << ", concat_input=" << std::boolalpha << options.concat_input()
           << ", aux_head=" << options.aux_head() << ")";
  }

  CCNetOptions options;
  ResNet backbone{nullptr};
  /// 3x3 conv (stage-4 channels -> channels), BN, ReLU.
  torch::nn::Sequential conv_in{nullptr};
  /// The criss-cross attention, applied `recurrence` times.
  CrissCrossAttention cca{nullptr};
  /// 3x3 conv (channels -> channels), BN, ReLU.
  torch::nn::Sequential conv_out{nullptr};
  /// 3x3 conv (stage-4 channels + channels -> channels), BN, ReLU; empty without `concat_input`.
  torch::nn::Sequential bottleneck{nullptr};
  torch::nn::Dropout2d dropout{nullptr};
  /// 1x1 conv channels -> num_classes (with bias).
  torch::nn::Conv2d classifier{nullptr};
  /// Auxiliary FCN head on stage 3, or empty.
  torch::nn::Sequential aux{nullptr};
};
TORCH_MODULE(CCNet);

}  // namespace crossview
