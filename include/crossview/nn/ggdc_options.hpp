#pragma once
/// \file
/// Options of the GGDC layer (and of its offset head).

#include <torch/torch.h>

#include <cstdint>

namespace crossview {

/// Options of crossview::GGDC, with libtorch-style chained setters:
/// `GGDCOptions(64, 64, 3).stride(1).padding(2).dilation(2).modulated(true)`.
struct GGDCOptions {
  GGDCOptions(int64_t in_channels, int64_t out_channels, torch::ExpandingArray<2> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}

  /// Input channels Cin.
  TORCH_ARG(int64_t, in_channels);
  /// Output channels Cout.
  TORCH_ARG(int64_t, out_channels);
  /// Kernel size (kh, kw).
  TORCH_ARG(torch::ExpandingArray<2>, kernel_size);
  /// Stride (h, w).
  TORCH_ARG(torch::ExpandingArray<2>, stride) = 1;
  /// Zero padding (h, w).
  TORCH_ARG(torch::ExpandingArray<2>, padding) = 0;
  /// Dilation (h, w).
  TORCH_ARG(torch::ExpandingArray<2>, dilation) = 1;
  /// Convolution groups.
  TORCH_ARG(int64_t, groups) = 1;
  /// Channel groups that share one offset field (deform_conv2d's offset_groups).
  TORCH_ARG(int64_t, offset_groups) = 1;
  /// Learnable bias.
  TORCH_ARG(bool, bias) = true;
  /// DCNv2 modulation: the offset head also predicts a mask in (0, 2), 2*sigmoid(logit), which is
  /// 1 at initialisation.
  TORCH_ARG(bool, modulated) = false;
  /// Hidden channels of ConvOffsetHead's 3x3 conv + ReLU before its output conv; 0 = the output
  /// conv alone.
  TORCH_ARG(int64_t, head_channels) = 0;
};

}  // namespace crossview
