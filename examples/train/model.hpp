#pragma once
/// \file
/// The network the programs train: PSPNet on a dilated ResNet (output stride 8), with GGDC in the
/// residual blocks for the "+ggdc" variant; and the ImageNet normalisation of its input.

#include "options.hpp"

#include <crossview/models/pspnet.hpp>
#include <crossview/models/torchvision_weights.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace crossview::train {

/// The network type of the programs.
using Network = PSPNet;

/// PSPNet with the given backbone; the head's widths (512 / 256 in the paper) scale with the
/// backbone's width multiplier so small CPU variants stay balanced.
inline Network make_network(const ModelOptions& m, int64_t num_classes, bool ggdc) {
  const auto placement = !ggdc ? GGDCPlacement::kNone
                                : (m.ggdc_blocks == "last" ? GGDCPlacement::kLastBlockOfStage : GGDCPlacement::kAllBlocks);
  const auto backbone =
      ResNetOptions(m.depth).deep_stem(m.deep_stem).width_multiplier(m.width).ggdc_placement(placement);
  const auto scaled = [&](int64_t c) { return std::max<int64_t>(8, int64_t(std::lround(double(c) * m.width))); };
  Network net(PSPNetOptions(num_classes, backbone).channels(scaled(512)).aux_channels(scaled(256)));
  if (!m.pretrained.empty()) {
    load_torchvision_resnet(*net->backbone, m.pretrained);
    std::fprintf(stderr, "loaded ImageNet weights from %s\n", m.pretrained.c_str());
  }
  return net;
}

/// ImageNet mean / std normalisation of [N, 3, H, W] (or [3, H, W]) RGB in [0, 1].
inline torch::Tensor normalize_images(const torch::Tensor& images) {
  const auto shape = images.dim() == 4 ? std::vector<int64_t>{1, 3, 1, 1} : std::vector<int64_t>{3, 1, 1};
  const auto mean = torch::tensor({0.485, 0.456, 0.406}, images.options()).view(shape);
  const auto std = torch::tensor({0.229, 0.224, 0.225}, images.options()).view(shape);
  return (images - mean) / std;
}

}  // namespace crossview::train
