#pragma once
/// \file
/// The autograd function of the deformable convolution: device dispatch to the kernels (CPU
/// kernel here, CUDA kernels through the hook table), gradients for input, offset, mask, weight
/// and bias; double backward is refused.

#include "crossview/nn/detail/deform_conv2d_cpu.hpp"
#include "crossview/nn/detail/deform_conv2d_cuda_hook.hpp"
#include "crossview/nn/detail/deform_conv2d_params.hpp"

#include <torch/torch.h>

#include <array>

namespace crossview::detail {

/// Forward of the kernels (no autograd): [N, Cout, Hout, Wout], bias added when defined.
/// Tensors contiguous and checked; CPU (float, double) or CUDA with the kernels linked.
inline torch::Tensor deform_conv2d_forward_kernel(const torch::Tensor& input, const torch::Tensor& weight,
                                                  const torch::Tensor& offset, const torch::Tensor& mask,
                                                  const torch::Tensor& bias, const DeformConv2dParams& p) {
  const auto s = deform_conv2d_shape(input, weight, p);
  auto output = torch::empty({s.batch, s.out_channels, s.out_h, s.out_w}, input.options());
  if (input.is_cuda()) {
    TORCH_INTERNAL_ASSERT(deform_conv2d_has_cuda_kernels(), "deform_conv2d: CUDA kernels are not linked");
    deform_conv2d_cuda_kernels().forward(input, weight, offset, mask, p, output);
  } else {
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "deform_conv2d_forward_cpu", [&] {
      deform_conv2d_forward_cpu_kernel<scalar_t>(input, weight, offset, mask, p, output);
    });
  }
  if (bias.defined()) output.add_(bias.view({1, s.out_channels, 1, 1}));
  return output;
}

/// Gradients of the kernels' forward: {input, offset, mask (undefined unless use_mask), weight,
/// bias (undefined unless has_bias)}.
inline std::array<torch::Tensor, 5> deform_conv2d_backward_kernel(const torch::Tensor& grad_out,
                                                                  const torch::Tensor& input,
                                                                  const torch::Tensor& weight,
                                                                  const torch::Tensor& offset,
                                                                  const torch::Tensor& mask, bool has_bias,
                                                                  const DeformConv2dParams& p) {
  const auto go = grad_out.contiguous();
  auto grad_input = torch::zeros_like(input);
  auto grad_offset = torch::zeros_like(offset);
  auto grad_mask = p.use_mask ? torch::zeros_like(mask) : torch::Tensor();
  auto grad_weight = torch::zeros_like(weight);
  if (input.is_cuda()) {
    TORCH_INTERNAL_ASSERT(deform_conv2d_has_cuda_kernels(), "deform_conv2d: CUDA kernels are not linked");
    deform_conv2d_cuda_kernels().backward(go, input, weight, offset, mask, p, grad_input, grad_offset, grad_mask,
                                          grad_weight);
  } else {
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "deform_conv2d_backward_cpu", [&] {
      deform_conv2d_backward_cpu_kernel<scalar_t>(go, input, weight, offset, mask, p, grad_input, grad_offset,
                                                  grad_mask, grad_weight);
    });
  }
  auto grad_bias = has_bias ? go.sum({0, 2, 3}) : torch::Tensor();
  return {grad_input, grad_offset, grad_mask, grad_weight, grad_bias};
}

inline DeformConv2dParams deform_conv2d_params_from(torch::autograd::AutogradContext* ctx) {
  DeformConv2dParams p;
  p.stride_h = ctx->saved_data["stride_h"].toInt();
  p.stride_w = ctx->saved_data["stride_w"].toInt();
  p.pad_h = ctx->saved_data["pad_h"].toInt();
  p.pad_w = ctx->saved_data["pad_w"].toInt();
  p.dilation_h = ctx->saved_data["dilation_h"].toInt();
  p.dilation_w = ctx->saved_data["dilation_w"].toInt();
  p.groups = ctx->saved_data["groups"].toInt();
  p.offset_groups = ctx->saved_data["offset_groups"].toInt();
  p.use_mask = ctx->saved_data["use_mask"].toBool();
  return p;
}

inline void deform_conv2d_params_to(torch::autograd::AutogradContext* ctx, const DeformConv2dParams& p) {
  ctx->saved_data["stride_h"] = p.stride_h;
  ctx->saved_data["stride_w"] = p.stride_w;
  ctx->saved_data["pad_h"] = p.pad_h;
  ctx->saved_data["pad_w"] = p.pad_w;
  ctx->saved_data["dilation_h"] = p.dilation_h;
  ctx->saved_data["dilation_w"] = p.dilation_w;
  ctx->saved_data["groups"] = p.groups;
  ctx->saved_data["offset_groups"] = p.offset_groups;
  ctx->saved_data["use_mask"] = p.use_mask;
}

/// The backward as a function of its own, so that differentiating it (double backward) fails
/// with a message instead of silently returning wrong values.
class DeformConv2dBackwardFunction : public torch::autograd::Function<DeformConv2dBackwardFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& grad_out,
                                                const torch::Tensor& input, const torch::Tensor& weight,
                                                const torch::Tensor& offset, const torch::Tensor& mask,
                                                bool has_bias, DeformConv2dParams p) {
    (void)ctx;
    const auto g = deform_conv2d_backward_kernel(grad_out, input, weight, offset, mask, has_bias, p);
    // Autograd outputs must be defined: empty tensors stand for "no mask" / "no bias".
    const auto none = torch::empty({0}, input.options());
    return {g[0], g[1], g[2].defined() ? g[2] : none, g[3], g[4].defined() ? g[4] : none};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 const torch::autograd::variable_list&) {
    TORCH_CHECK(false,
                "deform_conv2d: double backward is not supported (the backward of crossview's deformable "
                "convolution is not differentiable)");
  }
};

/// Autograd function of the kernels: inputs (input, weight, offset, mask, bias, params); `mask`
/// (when !use_mask) and `bias` (when absent) are empty tensors.
class DeformConv2dFunction : public torch::autograd::Function<DeformConv2dFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                               const torch::Tensor& weight, const torch::Tensor& offset, const torch::Tensor& mask,
                               const torch::Tensor& bias, DeformConv2dParams p) {
    ctx->save_for_backward({input, weight, offset, mask});
    deform_conv2d_params_to(ctx, p);
    const bool has_bias = bias.numel() > 0;
    ctx->saved_data["has_bias"] = has_bias;
    return deform_conv2d_forward_kernel(input, weight, offset, mask, has_bias ? bias : torch::Tensor(), p);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto p = deform_conv2d_params_from(ctx);
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    auto g = DeformConv2dBackwardFunction::apply(grad_outputs[0], saved[0], saved[1], saved[2], saved[3], has_bias, p);
    // One gradient per forward input: input, weight, offset, mask, bias, params.
    return {g[0], g[3], g[1], p.use_mask ? g[2] : torch::Tensor(), has_bias ? g[4] : torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace crossview::detail
