#pragma once
/// \file
/// The one choice of implementation for a checked deformable convolution call, shared by the
/// C++ entry crossview::deform_conv2d and the torch op library (src/torch_ops.cpp): the kernels
/// (CPU kernel, or the CUDA kernels when `crossview::cuda` is linked) or the ATen fallback.

#include "crossview/nn/detail/deform_conv2d_aten.hpp"
#include "crossview/nn/detail/deform_conv2d_autograd.hpp"
#include "crossview/nn/detail/deform_conv2d_cuda_hook.hpp"
#include "crossview/nn/detail/deform_conv2d_params.hpp"

#include <torch/torch.h>

namespace crossview::detail {

/// How a call on the kernels is run.
enum class DeformConv2dAutograd {
  kRecord,  ///< through DeformConv2dFunction, so that autograd differentiates it (the C++ entry)
  kNone,    ///< the bare forward kernel (the torch op's CPU/CUDA keys, below its Autograd key)
};

/// True when the kernels serve tensors like `input`: CPU tensors, and CUDA tensors while the
/// compiled `crossview::cuda` kernels are linked. Any other tensor takes the ATen path.
inline bool deform_conv2d_has_kernels_for(const torch::Tensor& input) {
  return input.is_cpu() || (input.is_cuda() && deform_conv2d_has_cuda_kernels());
}

/// Runs a call whose arguments check_deform_conv2d_arguments accepted (same meaning as
/// crossview::deform_conv2d; `mask` is ignored unless p.use_mask, `bias` may be undefined) and
/// returns [N, Cout, Hout, Wout]. The kernels get contiguous tensors; the ATen path
/// (deform_conv2d_aten) is made of differentiable ops, so autograd records it whatever `autograd`
/// says.
inline torch::Tensor deform_conv2d_dispatch(const torch::Tensor& input, const torch::Tensor& weight,
                                            const torch::Tensor& offset, const torch::Tensor& mask,
                                            const torch::Tensor& bias, const DeformConv2dParams& p,
                                            DeformConv2dAutograd autograd) {
  // The ATen path views the mask as [N, og, 1, K*L] and the kernels read it raw: contiguous for both.
  const auto m = p.use_mask ? mask.contiguous() : torch::Tensor();
  if (!deform_conv2d_has_kernels_for(input)) return deform_conv2d_aten(input, weight, offset, m, bias, p);
  const auto b = bias.defined() ? bias.contiguous() : torch::Tensor();
  if (autograd == DeformConv2dAutograd::kNone) {
    return deform_conv2d_forward_kernel(input.contiguous(), weight.contiguous(), offset.contiguous(), m, b, p);
  }
  // Autograd functions take defined tensors only: an empty tensor stands for "no mask/bias".
  const auto none = torch::empty({0}, input.options());
  return DeformConv2dFunction::apply(input.contiguous(), weight.contiguous(), offset.contiguous(),
                                     m.defined() ? m : none, b.defined() ? b : none, p);
}

}  // namespace crossview::detail
