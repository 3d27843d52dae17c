#pragma once
/// \file
/// Loading ImageNet-pretrained torchvision ResNet weights (parameters and BatchNorm running
/// statistics) into `crossview::ResNet`.
///
/// Export once in Python (torchvision's weights, CPU tensors, a plain `dict` so libtorch's
/// unpickler reads it; `torch.save(model.state_dict())` writes an OrderedDict it cannot read):
///
/// \code{.py}
/// import torch, torchvision
/// torch.save(dict(torchvision.models.resnet50(weights="IMAGENET1K_V1").state_dict()), "resnet50.pt")
/// \endcode
///
/// then in C++ `crossview::load_torchvision_resnet(*backbone, "resnet50.pt")`. Names map one to one
/// (`ResNet` uses torchvision's names); dilation does not change any parameter shape, so the same
/// file serves output strides 8, 16 and 32. The classifier `fc.*` is not used.

#include "crossview/models/resnet.hpp"

#include <torch/torch.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

namespace crossview {

/// Reads a file written by `torch.save(dict_of_tensors, path)` in Python (or
/// `torch::pickle_save` in C++): name -> tensor, in file order, tensors on the CPU as saved.
/// \throws c10::Error when the file cannot be opened or does not hold a dict of string -> tensor.
inline torch::OrderedDict<std::string, torch::Tensor> load_state_dict_file(const std::string& path) {
  constexpr const char* kFn = "load_state_dict_file";
  std::ifstream file(path, std::ios::binary);
  TORCH_CHECK(file.good(), kFn, ": cannot open '", path, "'");
  const std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const char* kHint = " (export it in Python with torch.save(dict(model.state_dict()), path): a plain dict of "
                      "tensors, not the OrderedDict that state_dict() returns)";
  torch::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, kFn, ": cannot read '", path, "' as a dict of tensors", kHint, ": ", e.what_without_backtrace());
  }
  TORCH_CHECK(value.isGenericDict(), kFn, ": '", path, "' must hold a dict of tensors, got ", value.tagKind(), kHint);
  torch::OrderedDict<std::string, torch::Tensor> tensors;
  for (const auto& item : value.toGenericDict()) {
    TORCH_CHECK(item.key().isString() && item.value().isTensor(), kFn, ": '", path,
                "' must map names to tensors, got an entry ", item.key().tagKind(), " -> ", item.value().tagKind());
    tensors.insert(item.key().toStringRef(), item.value().toTensor());
  }
  return tensors;
}

/// What `load_torchvision_resnet` did.
struct WeightLoadReport {
  /// Model tensors (parameters and buffers) copied from the file.
  std::vector<std::string> loaded;
  /// Model tensors the file does not have, left as initialised: GGDC offset heads (by design: they
  /// start at zero so GGDC starts as the pretrained conv), and with `strict = false` anything else.
  std::vector<std::string> not_in_file;
  /// File tensors the model does not use (torchvision's classifier `fc.*`, and with
  /// `strict = false` anything else).
  std::vector<std::string> unused;
};

namespace detail {

/// "a, b, c" (at most `limit` names, then "... (n more)").
inline std::string join_names(const std::vector<std::string>& names, size_t limit = 8) {
  std::ostringstream s;
  for (size_t i = 0; i < names.size() && i < limit; ++i) s << (i ? ", " : "") << names[i];
  if (names.size() > limit) s << ", ... (" << names.size() - limit << " more)";
  return s.str();
}

/// Names of the tensors of `net` that pretrained torchvision weights cannot provide: the
/// parameters of GGDC layers other than their conv `weight`/`bias` (the offset heads).
inline std::unordered_set<std::string> ggdc_extra_tensor_names(ResNetImpl& net) {
  std::unordered_set<std::string> names;
  for (size_t s = 0; s < net.layers.size(); ++s) {
    for (size_t b = 0; b < net.layers[s]->size(); ++b) {
      const auto& block = net.layers[s]->ptr(b);
      const auto* basic = block->as<BasicBlockImpl>();
      const auto* neck = block->as<BottleneckImpl>();
      const bool ggdc = (basic && basic->options.ggdc()) || (neck && neck->options.ggdc());
      if (!ggdc) continue;
      const auto& conv = basic ? basic->conv2 : neck->conv2;
      const std::string prefix = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".conv2.";
      for (const auto& item : conv.ptr()->named_parameters()) {
        if (item.key() != "weight" && item.key() != "bias") names.insert(prefix + item.key());
      }
      for (const auto& item : conv.ptr()->named_buffers()) names.insert(prefix + item.key());
    }
  }
  return names;
}

}  // namespace detail

/// Copies torchvision ResNet weights — parameters and BatchNorm buffers (`running_mean`,
/// `running_var`, `num_batches_tracked`) — from `path` (see the file comment for the export) into
/// `net`, by name, converting to each model tensor's dtype and device.
///
/// Shapes must match (same depth and `width_multiplier` 1), always. With `strict` (default) every
/// model tensor except the GGDC offset heads must come from the file, and the file may hold
/// nothing else than `fc.*`; so a deep-stem model (`stem.*`) needs `strict = false` with
/// torchvision files, or a file with `stem.*` names (mmseg's ResNetV1c checkpoints, as a dict).
/// \throws c10::Error on unreadable files, shape mismatches and, if strict, missing or unknown names.
inline WeightLoadReport load_torchvision_resnet(ResNetImpl& net, const std::string& path, bool strict = true) {
  constexpr const char* kFn = "load_torchvision_resnet";
  const auto file = load_state_dict_file(path);
  const auto ggdc_extra = detail::ggdc_extra_tensor_names(net);

  WeightLoadReport report;
  std::vector<std::string> missing;
  std::unordered_set<std::string> used;
  torch::NoGradGuard no_grad;
  auto copy_from_file = [&](const std::string& name, torch::Tensor& target) {
    const auto* source = file.find(name);
    if (source == nullptr) {
      report.not_in_file.push_back(name);
      if (ggdc_extra.count(name) == 0) missing.push_back(name);
      return;
    }
    TORCH_CHECK(source->sizes() == target.sizes(), kFn, ": '", name, "' must have shape ", target.sizes(),
                " in '", path, "', got ", source->sizes(), " (same depth and width_multiplier 1 needed)");
    target.copy_(*source);
    report.loaded.push_back(name);
    used.insert(name);
  };
  for (auto& item : net.named_parameters()) copy_from_file(item.key(), item.value());
  for (auto& item : net.named_buffers()) copy_from_file(item.key(), item.value());

  std::vector<std::string> unknown;
  for (const auto& item : file) {
    if (used.count(item.key()) != 0) continue;
    report.unused.push_back(item.key());
    if (item.key().rfind("fc.", 0) != 0) unknown.push_back(item.key());
  }
  if (strict) {
    TORCH_CHECK(missing.empty(), kFn, ": '", path, "' lacks ", missing.size(), " tensors of the model: ",
                detail::join_names(missing), " (pass strict = false to keep their initial values)");
    TORCH_CHECK(unknown.empty(), kFn, ": '", path, "' holds ", unknown.size(), " tensors the model does not have: ",
                detail::join_names(unknown), " (pass strict = false to ignore them)");
  }
  return report;
}

}  // namespace crossview
