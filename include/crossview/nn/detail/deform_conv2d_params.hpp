#pragma once
/// \file
/// The hyper-parameters of one deformable convolution call, shared by the CPU kernel, the CUDA
/// kernel and the autograd function (no libtorch: nvcc includes it too).

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

}  // namespace crossview::detail
