#pragma once
/// \file
/// The network the programs train: PSPNet on a dilated ResNet (output stride 8), with GGDC in the
/// residual blocks when the model options ask for it, built from ModelOptions alone (so a
/// checkpoint's stored options rebuild it).

#include <crossview_programs/distributed.hpp>
#include <crossview_programs/options.hpp>

#include <crossview/models/pspnet.hpp>
#include <crossview/models/torchvision_weights.hpp>
#include <crossview/nn/ggdc.hpp>
#include <crossview/nn/gradient_ops.hpp>
#include <crossview/nn/offset_head.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace crossview_programs {

/// The network type of the programs.
using Network = crossview::PSPNet;

/// The GGDC layers' factory for `m`: the chosen gradient operator with the default offset head
/// (its hidden width from m.ggdc_head_channels).
inline crossview::GGDCFactory ggdc_factory_for(const ModelOptions& m) {
  const int64_t head = m.ggdc_head_channels;
  auto configure = [head](crossview::GGDCOptions& g) { g.head_channels(head); };
  if (m.ggdc_gradient == "sobel") return crossview::ggdc_factory<crossview::Sobel>(configure);
  if (m.ggdc_gradient == "scharr") return crossview::ggdc_factory<crossview::Scharr>(configure);
  if (m.ggdc_gradient == "central") return crossview::ggdc_factory<crossview::CentralDifference>(configure);
  throw std::invalid_argument("make_network: ggdc_gradient must be sobel, scharr or central, got '" + m.ggdc_gradient +
                              "'");
}

/// PSPNet with the given backbone; the head's widths (512 / 256 in the paper) scale with the
/// backbone's width multiplier so small CPU variants stay balanced. With the same torch seed, every
/// parameter a GGDC network shares with the plain one starts equal (GGDC draws what the conv it
/// replaces draws).
inline Network make_network(const ModelOptions& m, int64_t num_classes) {
  const auto placement = !m.ggdc ? crossview::GGDCPlacement::kNone
                                 : (m.ggdc_blocks == "last" ? crossview::GGDCPlacement::kLastBlockOfStage
                                                            : crossview::GGDCPlacement::kAllBlocks);
  const auto backbone = crossview::ResNetOptions(m.depth)
                            .deep_stem(m.deep_stem)
                            .width_multiplier(m.width)
                            .ggdc_placement(placement)
                            .ggdc_factory(ggdc_factory_for(m))
                            .norm_layer(norm_layer_for_run(m.sync_bn));  // the heads take the backbone's
  const auto scaled = [&](int64_t c) { return std::max<int64_t>(8, int64_t(std::lround(double(c) * m.width))); };
  Network net(crossview::PSPNetOptions(num_classes, backbone).channels(scaled(512)).aux_channels(scaled(256)));
  if (!m.pretrained.empty()) {
    crossview::load_torchvision_resnet(*net->backbone, m.pretrained);
    std::fprintf(stderr, "loaded ImageNet weights from %s\n", m.pretrained.c_str());
  }
  return net;
}

/// The GGDC layers of a network, by module name (e.g. "backbone.layer1.0.conv2"), whatever their
/// policies.
inline std::vector<std::pair<std::string, std::shared_ptr<crossview::GGDCBase>>> ggdc_layers(torch::nn::Module& network) {
  std::vector<std::pair<std::string, std::shared_ptr<crossview::GGDCBase>>> layers;
  for (const auto& item : network.named_modules()) {
    if (auto ggdc = std::dynamic_pointer_cast<crossview::GGDCBase>(item.value())) layers.emplace_back(item.key(), ggdc);
  }
  return layers;
}

/// Mean |offset| (pixels) of every GGDC layer's last forward, by name; empty for plain networks
/// and before any forward.
inline std::vector<std::pair<std::string, double>> mean_abs_offsets(torch::nn::Module& network) {
  std::vector<std::pair<std::string, double>> values;
  for (const auto& [name, layer] : ggdc_layers(network)) {
    const auto m = layer->mean_abs_offset();
    if (m.defined()) values.emplace_back(name, m.item<double>());
  }
  return values;
}

}  // namespace crossview_programs
