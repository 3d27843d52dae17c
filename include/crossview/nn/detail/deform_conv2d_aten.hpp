#pragma once
/// \file
/// Device-agnostic deformable convolution made of differentiable ATen ops (gather + matmul). It
/// is what CUDA (or any other) tensors use when the compiled `crossview::cuda` kernels are not
/// linked; autograd differentiates it (double backward included). It materialises the full
/// column tensor [N, Cin*kh*kw, Hout*Wout], so it is a fallback, not the fast path.

#include "crossview/nn/detail/deform_conv2d_params.hpp"

#include <torch/torch.h>

namespace crossview::detail {

/// Same semantics and argument meaning as crossview::deform_conv2d (arguments already checked;
/// `mask` is ignored unless p.use_mask, `bias` may be undefined).
inline torch::Tensor deform_conv2d_aten(const torch::Tensor& input, const torch::Tensor& weight,
                                        const torch::Tensor& offset, const torch::Tensor& mask,
                                        const torch::Tensor& bias, const DeformConv2dParams& p) {
  const int64_t N = input.size(0), cin = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t cout = weight.size(0), kh = weight.size(2), kw = weight.size(3), K = kh * kw;
  const int64_t out_h = offset.size(2), out_w = offset.size(3), L = out_h * out_w;
  const int64_t og = p.offset_groups, cog = cin / og, G = p.groups, cg = cin / G;
  const auto opts = input.options();
  // Sample positions before the offsets: [K, L], tap-major like the offset channels.
  const auto oy = torch::arange(out_h, opts) * static_cast<double>(p.stride_h) - static_cast<double>(p.pad_h);
  const auto ox = torch::arange(out_w, opts) * static_cast<double>(p.stride_w) - static_cast<double>(p.pad_w);
  const auto ty = torch::arange(kh, opts) * static_cast<double>(p.dilation_h);
  const auto tx = torch::arange(kw, opts) * static_cast<double>(p.dilation_w);
  const auto base_y = (ty.view({kh, 1, 1, 1}) + oy.view({1, 1, out_h, 1})).expand({kh, kw, out_h, out_w}).reshape({K, L});
  const auto base_x = (tx.view({1, kw, 1, 1}) + ox.view({1, 1, 1, out_w})).expand({kh, kw, out_h, out_w}).reshape({K, L});
  const auto off = offset.view({N, og, K, 2, L});
  const auto y = base_y + off.select(3, 0);  // [N, og, K, L]
  const auto x = base_x + off.select(3, 1);
  const auto inside = (y > -1) & (y < static_cast<double>(H)) & (x > -1) & (x < static_cast<double>(W));
  const auto y0 = y.detach().floor();
  const auto x0 = x.detach().floor();
  const auto ly = y - y0, lx = x - x0;  // differentiable distances to the top-left corner
  const auto image = input.reshape({N, og, cog, H * W});
  torch::Tensor sampled;  // [N, og, cog, K*L]
  for (int cy = 0; cy < 2; ++cy) {
    for (int cx = 0; cx < 2; ++cx) {
      const auto yc = y0 + cy, xc = x0 + cx;
      const auto valid = inside & (yc >= 0) & (yc <= H - 1) & (xc >= 0) & (xc <= W - 1);
      const auto index = (yc.clamp(0, H - 1) * W + xc.clamp(0, W - 1)).to(torch::kLong).view({N, og, 1, K * L});
      const auto weight_c = ((cy ? ly : 1 - ly) * (cx ? lx : 1 - lx) * valid).view({N, og, 1, K * L});
      const auto term = image.gather(3, index.expand({N, og, cog, K * L})) * weight_c;
      sampled = sampled.defined() ? sampled + term : term;
    }
  }
  if (p.use_mask) sampled = sampled * mask.view({N, og, 1, K * L});
  const auto columns = sampled.reshape({N, G, cg * K, L});  // channel-major, then tap
  auto out = torch::matmul(weight.reshape({1, G, cout / G, cg * K}), columns).reshape({N, cout, out_h, out_w});
  if (bias.defined()) out = out + bias.view({1, cout, 1, 1});
  return out;
}

}  // namespace crossview::detail
