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
  /// Channels of the gradient maps G(x) that the gradient operator returns and the offset head
  /// takes; 0 = 2 * in_channels, the output of the built-in operators (Sobel, Scharr,
  /// CentralDifference). A user-written operator with another output width sets it.
  TORCH_ARG(int64_t, gradient_channels) = 0;
};

/// Channels of the gradient maps G(x) for a GGDC with `options`, i.e. the input width of its offset
/// head: `options.gradient_channels()`, or 2 * in_channels when that is 0.
inline int64_t offset_head_in_channels(const GGDCOptions& options) {
  return options.gradient_channels() > 0 ? options.gradient_channels() : 2 * options.in_channels();
}

namespace detail {

/// True when `a` and `b` describe the same convolution: channels, kernel, stride, padding,
/// dilation, groups and bias (what the GGDC's own options, e.g. offset_groups, may not change when
/// the layer replaces a given conv).
inline bool same_convolution(const GGDCOptions& a, const GGDCOptions& b) {
  return a.in_channels() == b.in_channels() && a.out_channels() == b.out_channels() &&
         *a.kernel_size() == *b.kernel_size() && *a.stride() == *b.stride() && *a.padding() == *b.padding() &&
         *a.dilation() == *b.dilation() && a.groups() == b.groups() && a.bias() == b.bias();
}

}  // namespace detail

}  // namespace crossview
