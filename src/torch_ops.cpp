// The one translation unit that registers crossview's torch ops (DESIGN.md: registration never
// lives in headers). Built as libcrossview_torch_ops.so; from Python:
//   torch.ops.load_library(path); torch.ops.crossview.deform_conv2d(...)
// a drop-in for torch.ops.torchvision.deform_conv2d (same schema, same argument order).
#include <crossview/nn/deform_conv2d.hpp>
#include <crossview/nn/detail/deform_conv2d_dispatch.hpp>
#include <crossview/nn/detail/deform_conv2d_params.hpp>

#include <torch/library.h>
#include <torch/torch.h>

namespace {

using crossview::detail::DeformConv2dParams;

DeformConv2dParams make_params(int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h,
                               int64_t dilation_w, int64_t groups, int64_t offset_groups, bool use_mask) {
  return DeformConv2dParams{stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups, use_mask};
}

/// Autograd key: the autograd function of crossview::deform_conv2d (or, for CUDA tensors
/// without the compiled kernels, the differentiable ATen path).
at::Tensor deform_conv2d_autograd(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
                                  const at::Tensor& mask, const at::Tensor& bias, int64_t stride_h, int64_t stride_w,
                                  int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                                  int64_t groups, int64_t offset_groups, bool use_mask) {
  return crossview::deform_conv2d(input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dilation_h,
                                  dilation_w, groups, offset_groups, use_mask);
}

/// Backend keys (below autograd): the same dispatch as crossview::deform_conv2d, without
/// recording the kernels for autograd.
at::Tensor deform_conv2d_forward(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
                                 const at::Tensor& mask, const at::Tensor& bias, int64_t stride_h, int64_t stride_w,
                                 int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w, int64_t groups,
                                 int64_t offset_groups, bool use_mask) {
  const auto p = make_params(stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, groups, offset_groups, use_mask);
  crossview::detail::check_deform_conv2d_arguments(input, weight, offset, mask, bias, p);
  return crossview::detail::deform_conv2d_dispatch(input, weight, offset, mask, bias, p,
                                                   crossview::detail::DeformConv2dAutograd::kNone);
}

}  // namespace

TORCH_LIBRARY(crossview, m) {
  m.def(
      "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, int stride_h, "
      "int stride_w, int pad_h, int pad_w, int dilation_h, int dilation_w, int groups, int offset_groups, "
      "bool use_mask) -> Tensor");
}

TORCH_LIBRARY_IMPL(crossview, CPU, m) { m.impl("deform_conv2d", &deform_conv2d_forward); }

TORCH_LIBRARY_IMPL(crossview, CUDA, m) { m.impl("deform_conv2d", &deform_conv2d_forward); }

TORCH_LIBRARY_IMPL(crossview, Autograd, m) { m.impl("deform_conv2d", &deform_conv2d_autograd); }
