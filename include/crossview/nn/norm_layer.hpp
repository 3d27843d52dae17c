#pragma once
/// \file
/// The normalisation layer of the models: a factory that makes one layer per place where the
/// residual blocks, the ResNet stem and the segmentation heads normalise (torchvision's
/// `norm_layer`, mmseg's `norm_cfg`). Default BatchNorm2d; `crossview::sync_batch_norm_factory(group)`
/// (<crossview/nn/sync_batch_norm.hpp>) makes SyncBatchNorm layers for data-parallel training.

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace crossview {

/// Makes the normalisation layer of `num_features` channels. The layer's `forward` maps
/// `[N, num_features, H, W]` to the same shape (any dtype and device the network uses). For the
/// torchvision weight loader and for checkpoints written with another factory to load, it names its
/// state as BatchNorm2d does: parameters `weight`, `bias` [num_features]; buffers `running_mean`,
/// `running_var` [num_features] and `num_batches_tracked` (BatchNorm2d and crossview::SyncBatchNorm
/// do). The models reset it with `detail::init_norm_layer` (weight 1, bias 0, fresh statistics).
using NormFactory = std::function<torch::nn::AnyModule(int64_t num_features)>;

/// A NormFactory making `torch::nn::BatchNorm2d(num_features)` (eps 1e-5, momentum 0.1): the models'
/// default. `configure`, when given, edits each layer's options first.
inline NormFactory batch_norm_factory(std::function<void(torch::nn::BatchNormOptions&)> configure = nullptr) {
  return [configure = std::move(configure)](int64_t num_features) {
    torch::nn::BatchNormOptions options(num_features);
    if (configure) configure(options);
    return torch::nn::AnyModule(torch::nn::BatchNorm2d(options));
  };
}

namespace detail {

/// The layer `factory` makes for `num_features` channels, checked: `who` names the model in the
/// messages ("ResNet: norm_layer returned an empty module").
inline torch::nn::AnyModule make_norm_layer(const NormFactory& factory, int64_t num_features, const char* who) {
  TORCH_CHECK(static_cast<bool>(factory), who, ": norm_layer is empty (pass crossview::batch_norm_factory() for "
                                          "BatchNorm2d)");
  auto layer = factory(num_features);
  TORCH_CHECK(!layer.is_empty(), who, ": norm_layer returned an empty module for ", num_features, " features");
  return layer;
}

/// `make_norm_layer`, registered as `name` in `owner` (so its state is `<name>.weight`, ...).
inline torch::nn::AnyModule register_norm_layer(torch::nn::Module& owner, const std::string& name,
                                                const NormFactory& factory, int64_t num_features, const char* who) {
  auto layer = make_norm_layer(factory, num_features, who);
  owner.register_module(name, layer.ptr());
  return layer;
}

/// BatchNorm's reset of any normalisation layer, by the names NormFactory documents: `weight` 1,
/// `bias` 0, `running_mean` 0, `running_var` 1, `num_batches_tracked` 0, for those it has (a
/// GroupNorm has only the first two). Draws no random numbers.
inline void init_norm_layer(torch::nn::Module& layer) {
  torch::NoGradGuard no_grad;
  for (auto& p : layer.named_parameters(/*recurse=*/false)) {
    if (p.key() == "weight") p.value().fill_(1);
    if (p.key() == "bias") p.value().zero_();
  }
  for (auto& b : layer.named_buffers(/*recurse=*/false)) {
    if (b.key() == "running_mean" || b.key() == "num_batches_tracked") b.value().zero_();
    if (b.key() == "running_var") b.value().fill_(1);
  }
}

}  // namespace detail
}  // namespace crossview
