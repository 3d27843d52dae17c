#pragma once
/// \file
/// What every segmentation model of crossview (PSPNet, DeepLabV3, CCNet) computes, and the
/// segmentation loss the three share: cross-entropy of the logits plus a weighted auxiliary term.

#include "crossview/detail/tensor_checks.hpp"

#include <torch/torch.h>

#include <string>
#include <vector>

namespace crossview {

/// Output of a segmentation model's `forward` (`PSPNet`, `DeepLabV3`, `CCNet`; `PSPNetOutput` is
/// another name of this struct).
struct SegmentationOutput {
  /// `[N, num_classes, H, W]` logits at the input resolution.
  torch::Tensor logits;
  /// `[N, num_classes, H, W]` auxiliary logits from stage 3; defined only in training mode with an
  /// auxiliary head.
  torch::Tensor aux_logits;
  /// The four backbone stage outputs `{layer1, ..., layer4}` (consistency-loss taps, Eq. 10).
  std::vector<torch::Tensor> features;
  /// Every residual block's output (the paper's taps: "the outputs of all residual blocks").
  std::vector<torch::Tensor> block_features;
};

/// Cross-entropy of `output.logits` plus `aux_weight` times that of `output.aux_logits` (when
/// defined), both ignoring `ignore_index`. `target`: `[N, H, W]` int64 train ids. `fn` names the
/// caller in the error message (e.g. "DeepLabV3::loss").
inline torch::Tensor segmentation_loss(const SegmentationOutput& output, const torch::Tensor& target, double aux_weight,
                                       int64_t ignore_index, const char* fn = "segmentation_loss") {
  TORCH_CHECK(target.dim() == 3 && target.scalar_type() == torch::kInt64, fn, ": target must be [N, H, W] int64, got ",
              target.sizes(), " ", target.scalar_type());
  TORCH_CHECK(output.logits.defined() && output.logits.dim() == 4, fn,
              ": output.logits must have shape [N, K, H, W], got ",
              output.logits.defined() ? detail::shape_string(output.logits) : std::string("an undefined tensor"));
  TORCH_CHECK(target.size(0) == output.logits.size(0) && target.size(1) == output.logits.size(2) &&
                  target.size(2) == output.logits.size(3),
              fn, ": target must have shape [", output.logits.size(0), ", ", output.logits.size(2), ", ",
              output.logits.size(3), "] (the logits' N, H, W), got ", detail::shape_string(target));
  detail::check_same_device(output.logits, target, fn, "output.logits", "target");
  const auto ce = torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore_index);
  auto total = torch::nn::functional::cross_entropy(output.logits, target, ce);
  if (output.aux_logits.defined()) {
    total = total + aux_weight * torch::nn::functional::cross_entropy(output.aux_logits, target, ce);
  }
  return total;
}

}  // namespace crossview
