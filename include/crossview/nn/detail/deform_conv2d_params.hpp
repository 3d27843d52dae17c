#pragma once
/// \file
/// The hyper-parameters of one deformable convolution call and the sizes they imply, shared by
/// the argument checks, the CPU kernel, the CUDA kernels and the autograd function. Only ATen's
/// TensorBase from libtorch (no torch/torch.h): nvcc includes it too.

#include <ATen/core/TensorBase.h>

#include <cstdint>

namespace crossview::detail {

/// torchvision's deform_conv2d arguments after the tensors. Sizes are (h, w) pairs.
struct DeformConv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;         ///< convolution groups: Cin and Cout are split into `groups` blocks
  int64_t offset_groups = 1;  ///< Cin is split into `offset_groups` blocks sharing one offset field
  bool use_mask = false;      ///< multiply each sample by the mask (DCNv2)
};

/// All sizes of one call: input [N, Cin, H, W], weight [Cout, Cin/groups, kh, kw],
/// output [N, Cout, Hout, Wout].
struct DeformConv2dShape {
  int64_t batch, in_channels, height, width;
  int64_t out_channels, kernel_h, kernel_w;
  int64_t out_h, out_w;
};

/// Output size of a convolution along one axis, conv arithmetic as in torch::conv2d:
/// (in + 2*pad - dilation*(kernel - 1) - 1) / stride + 1. Meaningful only when the dilated kernel
/// fits, in + 2*pad >= dilation*(kernel - 1) + 1 (the division truncates towards zero).
constexpr int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  return (in + 2 * pad - (dilation * (kernel - 1) + 1)) / stride + 1;
}

/// Sizes of a call from its (already checked) input [N, Cin, H, W] and weight
/// [Cout, Cin/groups, kh, kw]; Hout and Wout by conv_output_size.
inline DeformConv2dShape deform_conv2d_shape(const at::TensorBase& input, const at::TensorBase& weight,
                                             const DeformConv2dParams& p) {
  DeformConv2dShape s{};
  s.batch = input.size(0);
  s.in_channels = input.size(1);
  s.height = input.size(2);
  s.width = input.size(3);
  s.out_channels = weight.size(0);
  s.kernel_h = weight.size(2);
  s.kernel_w = weight.size(3);
  s.out_h = conv_output_size(s.height, s.kernel_h, p.stride_h, p.pad_h, p.dilation_h);
  s.out_w = conv_output_size(s.width, s.kernel_w, p.stride_w, p.pad_w, p.dilation_w);
  return s;
}

}  // namespace crossview::detail
