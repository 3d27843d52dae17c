#pragma once
/// \file
/// The network the programs train: PSPNet, DeepLabV3 or CCNet (--model) on a dilated ResNet (output
/// stride 8), with GGDC in the residual blocks when the model options ask for it, built from
/// ModelOptions alone (so a checkpoint's stored options rebuild it).

#include <crossview_programs/distributed.hpp>
#include <crossview_programs/options.hpp>

#include <crossview/models/ccnet.hpp>
#include <crossview/models/deeplabv3.hpp>
#include <crossview/models/pspnet.hpp>
#include <crossview/models/segmentation_output.hpp>
#include <crossview/models/torchvision_weights.hpp>
#include <crossview/nn/ggdc.hpp>
#include <crossview/nn/gradient_ops.hpp>
#include <crossview/nn/offset_head.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace crossview_programs {

/// The network of the programs: one of crossview's segmentation models (`crossview::PSPNet`,
/// `DeepLabV3`, `CCNet`) behind one type, so the training loop, the evaluation and the checkpoints
/// do not care which. `forward` and `loss` are the model's; `backbone` is its ResNet.
///
/// The model's own submodules (backbone, ppm / aspp / conv_in..., bottleneck, classifier, aux) are
/// registered here under their own names, not under a prefix: parameter names, GGDC layer names and
/// the checkpoint archive are exactly those of the plain model ("backbone.layer1.0.conv2.weight",
/// "ppm.0.1.weight"), so PSPNet checkpoints written when Network was crossview::PSPNet still load,
/// and Python reads the same names from model.weights.pt. The model itself is not a child, so
/// `train` / `eval` also switch its own mode (its forward asks is_training() for the aux head).
class NetworkImpl : public torch::nn::Module {
 public:
  /// `model_name`: "pspnet", "deeplabv3" or "ccnet"; `model`: a holder of that model
  /// (`crossview::PSPNet`, ...), whose submodules this network shares.
  template <typename Model>
  NetworkImpl(std::string model_name, Model model) : model_name_(std::move(model_name)), model_(model.ptr()) {
    using Impl = typename Model::ContainedType;
    static_assert(std::is_same_v<decltype(std::declval<Impl&>().forward(std::declval<const torch::Tensor&>())),
                                 crossview::SegmentationOutput>,
                  "Network: the model's forward(x) must return crossview::SegmentationOutput");
    static_assert(std::is_same_v<decltype(std::declval<Impl&>().backbone), crossview::ResNet>,
                  "Network: the model must have a `backbone` member of type crossview::ResNet");
    for (const auto& child : model_->named_children()) register_module(child.key(), child.value());
    backbone = model->backbone;
    auto impl = model.ptr();
    forward_ = [impl](const torch::Tensor& x) { return impl->forward(x); };
    loss_ = [impl](const crossview::SegmentationOutput& out, const torch::Tensor& target) {
      return impl->loss(out, target);
    };
  }

  /// The model's forward: `x` `[N, 3, H, W]` float, ImageNet-normalised -> logits `[N, K, H, W]`,
  /// auxiliary logits (training mode), stage and block features.
  crossview::SegmentationOutput forward(const torch::Tensor& x) { return forward_(x); }

  /// The model's segmentation loss (cross-entropy plus 0.4 x the auxiliary head's).
  torch::Tensor loss(const crossview::SegmentationOutput& output, const torch::Tensor& target) const {
    return loss_(output, target);
  }

  void train(bool on = true) override {
    torch::nn::Module::train(on);
    model_->train(on);
  }

  /// "pspnet", "deeplabv3" or "ccnet" (ModelOptions::name).
  const std::string& model_name() const { return model_name_; }

  /// The model itself, e.g. `network->model<crossview::CCNetImpl>()`; null when it is another one.
  template <typename Impl>
  std::shared_ptr<Impl> model() const {
    return std::dynamic_pointer_cast<Impl>(model_);
  }

  void pretty_print(std::ostream& stream) const override { model_->pretty_print(stream); }

  /// The model's dilated ResNet (torchvision names: load_torchvision_resnet(*network->backbone, path)).
  crossview::ResNet backbone{nullptr};

 private:
  std::string model_name_;
  std::shared_ptr<torch::nn::Module> model_;
  std::function<crossview::SegmentationOutput(const torch::Tensor&)> forward_;
  std::function<torch::Tensor(const crossview::SegmentationOutput&, const torch::Tensor&)> loss_;
};
TORCH_MODULE(Network);

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

/// The model `m.name` (pspnet | deeplabv3 | ccnet) with the given backbone; the head's widths (512 /
/// 256 in the paper and mmseg's configs, for all three) scale with the backbone's width multiplier
/// so small CPU variants stay balanced. With the same torch seed, every parameter a GGDC network
/// shares with the plain one starts equal (GGDC draws what the conv it replaces draws).
/// \throws std::invalid_argument for another model name.
inline Network make_network(const ModelOptions& m, int64_t num_classes) {
  const auto& models = all_models();
  if (std::find(models.begin(), models.end(), m.name) == models.end()) {
    throw std::invalid_argument("make_network: the model must be pspnet, deeplabv3 or ccnet, got '" + m.name + "'");
  }
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
  const auto build = [&]() -> Network {
    if (m.name == "deeplabv3") {
      return Network(m.name, crossview::DeepLabV3(crossview::DeepLabV3Options(num_classes, backbone)
                                                      .channels(scaled(512))
                                                      .aux_channels(scaled(256))));
    }
    if (m.name == "ccnet") {
      return Network(m.name, crossview::CCNet(crossview::CCNetOptions(num_classes, backbone)
                                                  .channels(scaled(512))
                                                  .aux_channels(scaled(256))));
    }
    return Network(m.name, crossview::PSPNet(crossview::PSPNetOptions(num_classes, backbone)
                                                 .channels(scaled(512))
                                                 .aux_channels(scaled(256))));
  };
  Network net = build();
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
