#pragma once
/// \file
/// Building blocks the segmentation heads share (PSPNet, DeepLabV3, CCNet): mmseg's `ConvModule`
/// (bias-free conv, normalisation layer, ReLU), the auxiliary FCN head on stage 3, their
/// initialisation, the heads' choice of normalisation layer and the upsampling of logits to the
/// input size.

#include "crossview/models/resnet.hpp"
#include "crossview/nn/norm_layer.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace crossview::detail {

/// The normalisation layers of a head: its own `norm_layer` option, or, when that is empty (the
/// heads' default), its backbone's, so `ResNetOptions::norm_layer` alone switches a whole network.
inline const NormFactory& head_norm_layer(const NormFactory& head, const ResNetOptions& backbone) {
  return head ? head : backbone.norm_layer();
}

/// mmseg's ConvModule: `Conv2d(in, out, kernel_size, dilation, padding = dilation * (kernel_size / 2),
/// bias = false)`, the layer `norm` makes for `out` channels (BatchNorm2d by default), `ReLU`,
/// registered as "0", "1", "2". Keeps the spatial size.
inline torch::nn::Sequential conv_bn_relu(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                          int64_t dilation = 1, const NormFactory& norm = batch_norm_factory(),
                                          const char* who = "head") {
  return torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, kernel_size)
                                                     .padding(dilation * (kernel_size / 2))
                                                     .dilation(dilation)
                                                     .bias(false)),
                               make_norm_layer(norm, out_channels, who),
                               torch::nn::ReLU(torch::nn::ReLUOptions(true)));
}

/// ConvModule initialisation of a `conv_bn_relu` Sequential whose conv sits at `offset` (1 when a
/// pooling layer comes first): Kaiming-normal (fan_out, ReLU) conv, normalisation 1 / 0.
inline void init_conv_bn_relu(torch::nn::SequentialImpl& module, size_t offset = 0) {
  init_conv_weight(module[offset]->as<torch::nn::Conv2d>()->weight);
  init_norm_layer(*module[offset + 1]);
}

/// mmseg's `conv_seg` initialisation: weight normal(0, 0.01), bias 0.
inline void init_classifier(torch::nn::Conv2dImpl& classifier) {
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(classifier.weight, 0.0, 0.01);
  if (classifier.bias.defined()) torch::nn::init::zeros_(classifier.bias);
}

/// The auxiliary FCN head of PSPNet / DeepLabV3 / CCNet on stage 3 (mmseg's `FCNHead` with one
/// conv, no input concatenation): "0" 3x3 conv in -> channels (no bias), "1" the layer `norm` makes
/// (BatchNorm2d by default), "2" ReLU, "3" Dropout2d, "4" 1x1 classifier channels -> num_classes
/// (with bias).
inline torch::nn::Sequential fcn_aux_head(int64_t in_channels, int64_t channels, int64_t num_classes, double dropout,
                                          const NormFactory& norm = batch_norm_factory(), const char* who = "head") {
  return torch::nn::Sequential(
      torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, channels, 3).padding(1).bias(false)),
      make_norm_layer(norm, channels, who), torch::nn::ReLU(torch::nn::ReLUOptions(true)),
      torch::nn::Dropout2d(torch::nn::Dropout2dOptions(dropout)),
      torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, num_classes, 1)));
}

/// mmseg's initialisation of an `fcn_aux_head`: ConvModule, then classifier normal(0, 0.01).
inline void init_fcn_aux_head(torch::nn::SequentialImpl& aux) {
  init_conv_bn_relu(aux);
  init_classifier(*aux[4]->as<torch::nn::Conv2d>());
}

/// Bilinear resize of `[N, C, h, w]` to `[N, C, size_h, size_w]` with align_corners = false.
inline torch::Tensor resize_bilinear(const torch::Tensor& x, int64_t size_h, int64_t size_w) {
  return torch::nn::functional::interpolate(x, torch::nn::functional::InterpolateFuncOptions()
                                                   .size(std::vector<int64_t>{size_h, size_w})
                                                   .mode(torch::kBilinear)
                                                   .align_corners(false));
}

}  // namespace crossview::detail
