#pragma once
/// \file
/// The deformable convolution op (DCNv1/DCNv2) with torchvision's semantics: the sum of Eq. (8)
/// of the paper, y(p) = sum_k w_k * m_k(p) * x(p * stride - pad + k * dilation + offset_k(p)).

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/nn/detail/deform_conv2d_dispatch.hpp"
#include "crossview/nn/detail/deform_conv2d_params.hpp"

#include <torch/torch.h>

namespace crossview {

namespace detail {

/// Checks every argument of deform_conv2d once; messages name the argument, the expected and the
/// actual value.
inline void check_deform_conv2d_arguments(const torch::Tensor& input, const torch::Tensor& weight,
                                          const torch::Tensor& offset, const torch::Tensor& mask,
                                          const torch::Tensor& bias, const DeformConv2dParams& p) {
  constexpr const char* kFn = "deform_conv2d";
  check_rank(input, {4}, kFn, "input", "[N, Cin, H, W]");
  check_rank(weight, {4}, kFn, "weight", "[Cout, Cin/groups, kh, kw]");
  check_rank(offset, {4}, kFn, "offset", "[N, 2*offset_groups*kh*kw, Hout, Wout]");
  if (p.use_mask) check_rank(mask, {4}, kFn, "mask", "[N, offset_groups*kh*kw, Hout, Wout]");
  if (bias.defined()) check_rank(bias, {1}, kFn, "bias", "[Cout]");
  const auto dtype = input.scalar_type();
  const bool cuda_dtype = input.is_cuda() && (dtype == torch::kHalf || dtype == torch::kBFloat16);
  TORCH_CHECK(dtype == torch::kFloat || dtype == torch::kDouble || cuda_dtype, kFn,
              ": input must be float32 or float64 (or float16/bfloat16 on CUDA), got ", dtype, " on ",
              input.device());
  const auto same = [&](const torch::Tensor& t, const char* name) {
    check_same_device(input, t, kFn, "input", name);
    TORCH_CHECK(t.scalar_type() == dtype, kFn, ": ", name, " must have the dtype of input (", dtype, "), got ",
                t.scalar_type());
  };
  same(weight, "weight");
  same(offset, "offset");
  if (p.use_mask) same(mask, "mask");
  if (bias.defined()) same(bias, "bias");
  TORCH_CHECK(p.stride_h > 0 && p.stride_w > 0, kFn, ": stride must be positive, got (", p.stride_h, ", ", p.stride_w,
              ")");
  TORCH_CHECK(p.pad_h >= 0 && p.pad_w >= 0, kFn, ": padding must be non-negative, got (", p.pad_h, ", ", p.pad_w, ")");
  TORCH_CHECK(p.dilation_h > 0 && p.dilation_w > 0, kFn, ": dilation must be positive, got (", p.dilation_h, ", ",
              p.dilation_w, ")");
  const int64_t n = input.size(0), cin = input.size(1), h = input.size(2), w = input.size(3);
  const int64_t cout = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  TORCH_CHECK(p.groups > 0, kFn, ": groups must be positive, got ", p.groups);
  TORCH_CHECK(p.offset_groups > 0, kFn, ": offset_groups must be positive, got ", p.offset_groups);
  TORCH_CHECK(cin % p.groups == 0, kFn, ": input channels (", cin, ") must be divisible by groups (", p.groups, ")");
  TORCH_CHECK(cout % p.groups == 0, kFn, ": weight's output channels (", cout, ") must be divisible by groups (",
              p.groups, ")");
  TORCH_CHECK(cin % p.offset_groups == 0, kFn, ": input channels (", cin, ") must be divisible by offset_groups (",
              p.offset_groups, ")");
  TORCH_CHECK(weight.size(1) * p.groups == cin, kFn, ": weight must have Cin/groups = ", cin / p.groups,
              " input channels, got ", weight.size(1));
  TORCH_CHECK(kh > 0 && kw > 0, kFn, ": weight must have a non-empty kernel, got ", kh, "x", kw);
  const int64_t out_h = conv_output_size(h, kh, p.stride_h, p.pad_h, p.dilation_h);
  const int64_t out_w = conv_output_size(w, kw, p.stride_w, p.pad_w, p.dilation_w);
  TORCH_CHECK(h + 2 * p.pad_h >= p.dilation_h * (kh - 1) + 1 && w + 2 * p.pad_w >= p.dilation_w * (kw - 1) + 1 &&
                  out_h > 0 && out_w > 0,
              kFn, ": the output would be empty: input ", h, "x", w, " with padding (", p.pad_h, ", ", p.pad_w,
              ") is smaller than the dilated kernel ", p.dilation_h * (kh - 1) + 1, "x", p.dilation_w * (kw - 1) + 1);
  const int64_t taps = p.offset_groups * kh * kw;
  TORCH_CHECK(offset.size(1) == 2 * taps, kFn, ": offset must have 2*offset_groups*kh*kw = ", 2 * taps,
              " channels, got ", offset.size(1));
  TORCH_CHECK(offset.size(0) == n && offset.size(2) == out_h && offset.size(3) == out_w, kFn,
              ": offset must have shape [", n, ", ", 2 * taps, ", ", out_h, ", ", out_w, "] (batch, channels, Hout, Wout), got ",
              shape_string(offset));
  if (p.use_mask) {
    TORCH_CHECK(mask.size(1) == taps, kFn, ": mask must have offset_groups*kh*kw = ", taps, " channels, got ",
                mask.size(1));
    TORCH_CHECK(mask.size(0) == n && mask.size(2) == out_h && mask.size(3) == out_w, kFn, ": mask must have shape [",
                n, ", ", taps, ", ", out_h, ", ", out_w, "], got ", shape_string(mask));
  }
  if (bias.defined()) {
    TORCH_CHECK(bias.size(0) == cout, kFn, ": bias must have Cout = ", cout, " elements, got ", bias.size(0));
  }
}

}  // namespace detail

/// Deformable 2-D convolution, exactly torchvision.ops.deform_conv2d (same argument order as
/// the op `torchvision::deform_conv2d`).
///
/// - `input`  [N, Cin, H, W]
/// - `weight` [Cout, Cin/groups, kh, kw]
/// - `offset` [N, 2*offset_groups*kh*kw, Hout, Wout]: for offset group g and tap k = i*kw + j,
///   channel (g*kh*kw + k)*2 is dy and the next one dx
/// - `mask`   [N, offset_groups*kh*kw, Hout, Wout], multiplies each sample when `use_mask`
///   (DCNv2); ignored (may be undefined) otherwise
/// - `bias`   [Cout] or undefined
///
/// Tap (i, j) of output pixel (oy, ox) samples the input at (oy*stride_h - pad_h + i*dilation_h +
/// dy, ox*stride_w - pad_w + j*dilation_w + dx) (integer = pixel centre) bilinearly; a sample
/// outside the open box (-1, H) x (-1, W) is 0 and each corner outside the image contributes 0.
/// Channels of input are split into `groups` convolution groups and, independently, into
/// `offset_groups` groups that share one offset field.
///
/// Returns [N, Cout, Hout, Wout] with Hout = (H + 2*pad_h - dilation_h*(kh-1) - 1)/stride_h + 1.
/// dtypes: float32/float64 (and float16/bfloat16 on CUDA), all tensors alike, on one device.
/// Differentiable in input, weight, offset, mask and bias; double backward is refused. CPU
/// tensors use the fused tiled CPU kernel; CUDA tensors use the `crossview::cuda` kernels when
/// that library is linked, else a slower ATen path (detail::deform_conv2d_aten).
/// \throws c10::Error naming the argument for any wrong shape, dtype, device or parameter.
inline torch::Tensor deform_conv2d(const torch::Tensor& input, const torch::Tensor& weight,
                                   const torch::Tensor& offset, const torch::Tensor& mask = {},
                                   const torch::Tensor& bias = {}, int64_t stride_h = 1, int64_t stride_w = 1,
                                   int64_t pad_h = 0, int64_t pad_w = 0, int64_t dilation_h = 1,
                                   int64_t dilation_w = 1, int64_t groups = 1, int64_t offset_groups = 1,
                                   bool use_mask = false) {
  const detail::DeformConv2dParams p{stride_h,   stride_w, pad_h,         pad_w,   dilation_h,
                                     dilation_w, groups,   offset_groups, use_mask};
  detail::check_deform_conv2d_arguments(input, weight, offset, mask, bias, p);
  return detail::deform_conv2d_dispatch(input, weight, offset, mask, bias, p, detail::DeformConv2dAutograd::kRecord);
}

/// Options of the functional form of deform_conv2d, after libtorch's Conv2dFuncOptions
/// (`F::conv2d(x, w, F::Conv2dFuncOptions().stride(2))`): everything but input, weight and
/// offset, with torchvision.ops.deform_conv2d's defaults. Sizes are ExpandingArray<2>: `.stride(2)`
/// or `.stride({2, 1})` (h, w).
///
///   crossview::deform_conv2d(x, w, offset, crossview::DeformConv2dFuncOptions().padding(1).mask(m).bias(b))
struct DeformConv2dFuncOptions {
  /// [N, offset_groups*kh*kw, Hout, Wout], the modulation of DCNv2; undefined (the default) for
  /// DCNv1. Defined means use_mask.
  TORCH_ARG(torch::Tensor, mask);
  /// [Cout], added to every output pixel; undefined (the default) for none.
  TORCH_ARG(torch::Tensor, bias);
  /// Step between output pixels, in input pixels (stride_h, stride_w).
  TORCH_ARG(torch::ExpandingArray<2>, stride) = 1;
  /// Implicit zero padding on both sides (pad_h, pad_w).
  TORCH_ARG(torch::ExpandingArray<2>, padding) = 0;
  /// Spacing between kernel taps (dilation_h, dilation_w).
  TORCH_ARG(torch::ExpandingArray<2>, dilation) = 1;
  /// Convolution groups: Cin and Cout are split into `groups` blocks.
  TORCH_ARG(int64_t, groups) = 1;
  /// Cin is split into `offset_groups` blocks, each with its own offset field (and mask).
  TORCH_ARG(int64_t, offset_groups) = 1;
};

/// Deformable 2-D convolution with its hyper-parameters, mask and bias in `options`; the same
/// call as the torchvision-order deform_conv2d above (same shapes, dtypes, devices, checks and
/// gradients), with use_mask = options.mask().defined().
///
/// - `input`  [N, Cin, H, W]
/// - `weight` [Cout, Cin/groups, kh, kw]
/// - `offset` [N, 2*offset_groups*kh*kw, Hout, Wout] (dy, dx per tap, as above)
///
/// Returns [N, Cout, Hout, Wout]. dtypes: float32/float64 (and float16/bfloat16 on CUDA), all
/// tensors alike, on one device. No default for `options`: `deform_conv2d(x, w, offset)` is the
/// torchvision-order call with all its defaults, which is the same (and a fourth argument `{}`
/// is ambiguous: write `torch::Tensor()` or `DeformConv2dFuncOptions()`).
/// \throws c10::Error naming the argument for any wrong shape, dtype, device or parameter.
inline torch::Tensor deform_conv2d(const torch::Tensor& input, const torch::Tensor& weight,
                                   const torch::Tensor& offset, const DeformConv2dFuncOptions& options) {
  const auto& s = *options.stride();
  const auto& p = *options.padding();
  const auto& d = *options.dilation();
  return deform_conv2d(input, weight, offset, options.mask(), options.bias(), s[0], s[1], p[0], p[1], d[0], d[1],
                       options.groups(), options.offset_groups(), options.mask().defined());
}

}  // namespace crossview
