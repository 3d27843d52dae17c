#pragma once
/// \file
/// Gradient operators G of the GGDC layer (paper Sec. 3.2, Eq. (5)-(7)): stateless policies that
/// turn features x [N, C, H, W] into per-channel image gradients [N, 2C, H, W], channel 2c =
/// d x_c / d x (rightwards), channel 2c + 1 = d x_c / d y (downwards).
///
/// These are the stateless form of the gradient-operator contract (ggdc_policies.hpp, trait
/// `is_stateless_gradient_operator_v`): a struct with
///   static torch::Tensor apply(const torch::Tensor& x);   // [N, C, H, W] -> [N, 2C, H, W]
///   static const char* name();
/// An operator with weights (e.g. a learned filter) is a module instead; see ggdc_policies.hpp.
///
/// All three are separable 3x3 depthwise filters, normalised so that a linear ramp of slope 1 per
/// pixel gives exactly 1 away from the border; the input is padded by replicating its border
/// pixels (a constant image has zero gradient everywhere; at the border a ramp's gradient is
/// halved). Differentiable to any order (fused CPU kernels for float/double, elementwise ATen ops
/// elsewhere); any floating dtype, any device; H and W must be > 0.

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/nn/detail/separable_gradient_cpu.hpp"

#include <torch/torch.h>

#include <array>

namespace crossview {

namespace detail {

/// The separable gradient filter in elementwise ATen ops on shifted views of the replicate-padded
/// input (any device and floating dtype; autograd differentiates it). `x` is checked by the caller.
inline torch::Tensor separable_gradient_aten(const torch::Tensor& x, double side, double centre, double scale) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const auto p = torch::nn::functional::pad(
      x, torch::nn::functional::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));  // [N, C, H+2, W+2]
  // d/dx: column differences, then smoothed along y (dim 2); d/dy: row differences smoothed along x.
  const auto smooth = [&](const torch::Tensor& d, int64_t dim, int64_t len) {
    auto out = d.narrow(dim, 1, len) * (centre * scale);
    if (side != 0.0) out = out.add_(d.narrow(dim, 0, len) + d.narrow(dim, 2, len), side * scale);
    return out;
  };
  const auto dx = p.narrow(3, 2, w) - p.narrow(3, 0, w);  // [N, C, H+2, W]
  const auto dy = p.narrow(2, 2, h) - p.narrow(2, 0, h);  // [N, C, H, W+2]
  return torch::stack({smooth(dx, 2, h), smooth(dy, 3, w)}, 2).view({n, 2 * c, h, w});
}

/// Separable 3x3 gradient filtering with replicate padding: the x-kernel is
/// scale * [side, centre, side]^T (rows) times [-1, 0, 1] (columns), the y-kernel its transpose;
/// output channels interleaved (x, y) per input channel. Not a depthwise convolution: libtorch's
/// CPU depthwise conv with C groups and its backward cost more than the 3x3 conv GGDC replaces
/// (bench_pspnet, BM_GGDCParts). Float and double CPU tensors take the fused kernels of
/// detail/separable_gradient_cpu.hpp; other devices and dtypes the elementwise ops above.
inline torch::Tensor separable_gradient(const torch::Tensor& x, double side, double centre, double scale,
                                        const char* fn) {
  check_rank(x, {4}, fn, "x", "[N, C, H, W]");
  check_floating(x, fn, "x");
  // Replicate padding needs a pixel to replicate; an empty batch or channel set is fine.
  TORCH_CHECK(x.size(2) > 0 && x.size(3) > 0, fn, ": x must have non-empty H and W, got ", shape_string(x));
  if (x.size(1) == 0) return x.new_zeros({x.size(0), 0, x.size(2), x.size(3)});  // replicate padding refuses C = 0
  if (x.device().is_cpu() && (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble)) {
    return SeparableGradientFunction::apply(x, side, centre, scale);
  }
  return separable_gradient_aten(x, side, centre, scale);
}

}  // namespace detail

/// Sobel operator (the paper's G): [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 8 and its transpose.
struct Sobel {
  static torch::Tensor apply(const torch::Tensor& x) {
    return detail::separable_gradient(x, 1.0, 2.0, 1.0 / 8, "Sobel");
  }
  static const char* name() { return "Sobel"; }
};

/// Scharr operator: [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]] / 32 and its transpose (better
/// rotational symmetry than Sobel).
struct Scharr {
  static torch::Tensor apply(const torch::Tensor& x) {
    return detail::separable_gradient(x, 3.0, 10.0, 1.0 / 32, "Scharr");
  }
  static const char* name() { return "Scharr"; }
};

/// Central difference: (x(p + 1) - x(p - 1)) / 2 along each axis, no smoothing.
struct CentralDifference {
  static torch::Tensor apply(const torch::Tensor& x) {
    return detail::separable_gradient(x, 0.0, 1.0, 0.5, "CentralDifference");
  }
  static const char* name() { return "CentralDifference"; }
};

}  // namespace crossview
