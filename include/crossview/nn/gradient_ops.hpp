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
/// All three are 3x3 depthwise filters, normalised so that a linear ramp of slope 1 per pixel
/// gives exactly 1 away from the border; the input is padded by replicating its border pixels
/// (a constant image has zero gradient everywhere; at the border a ramp's gradient is halved).
/// Differentiable (plain convolutions); any floating dtype, any device; H and W must be > 0.

#include "crossview/detail/tensor_checks.hpp"

#include <torch/torch.h>

#include <array>

namespace crossview {

namespace detail {

/// Depthwise 3x3 filtering with the x-kernel `kx` (row-major, already normalised) and its
/// transpose for y, replicate padding; output channels interleaved (x, y) per input channel.
inline torch::Tensor depthwise_gradient(const torch::Tensor& x, const std::array<double, 9>& kx, const char* fn) {
  check_rank(x, {4}, fn, "x", "[N, C, H, W]");
  check_floating(x, fn, "x");
  // Replicate padding needs a pixel to replicate; an empty batch or channel set is fine.
  TORCH_CHECK(x.size(2) > 0 && x.size(3) > 0, fn, ": x must have non-empty H and W, got ", shape_string(x));
  const int64_t c = x.size(1);
  if (c == 0) return x.new_zeros({x.size(0), 0, x.size(2), x.size(3)});  // replicate padding refuses C = 0
  const auto k = torch::tensor(std::vector<double>(kx.begin(), kx.end()), torch::kFloat64).view({3, 3});
  const auto w = torch::stack({k, k.t()}).unsqueeze(1).repeat({c, 1, 1, 1}).to(x.options());  // [2C, 1, 3, 3]
  const auto padded = torch::nn::functional::pad(
      x, torch::nn::functional::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));
  return torch::nn::functional::conv2d(padded, w, torch::nn::functional::Conv2dFuncOptions().groups(c));
}

}  // namespace detail

/// Sobel operator (the paper's G): [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] / 8 and its transpose.
struct Sobel {
  static torch::Tensor apply(const torch::Tensor& x) {
    constexpr double k = 1.0 / 8;
    return detail::depthwise_gradient(x, {-k, 0, k, -2 * k, 0, 2 * k, -k, 0, k}, "Sobel");
  }
  static const char* name() { return "Sobel"; }
};

/// Scharr operator: [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]] / 32 and its transpose (better
/// rotational symmetry than Sobel).
struct Scharr {
  static torch::Tensor apply(const torch::Tensor& x) {
    constexpr double k = 1.0 / 32;
    return detail::depthwise_gradient(x, {-3 * k, 0, 3 * k, -10 * k, 0, 10 * k, -3 * k, 0, 3 * k}, "Scharr");
  }
  static const char* name() { return "Scharr"; }
};

/// Central difference: (x(p + 1) - x(p - 1)) / 2 along each axis, no smoothing.
struct CentralDifference {
  static torch::Tensor apply(const torch::Tensor& x) {
    return detail::depthwise_gradient(x, {0, 0, 0, -0.5, 0, 0.5, 0, 0, 0}, "CentralDifference");
  }
  static const char* name() { return "CentralDifference"; }
};

}  // namespace crossview
