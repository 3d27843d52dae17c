#pragma once
/// \file
/// CPU kernels of the GGDC gradient operators (gradient_ops.hpp): a separable 3x3 filter with
/// replicate padding, out_x = scale * [side, centre, side]^T (rows) x [-1, 0, 1] (columns) and
/// out_y its transpose, and its adjoint (the backward pass). One pass over each input plane per
/// direction instead of libtorch's padded depthwise convolution, whose CPU path (and its backward)
/// cost more than the 3x3 convolution GGDC replaces at the embedded default's shapes
/// (bench_pspnet, BM_GGDCParts).
///
/// The operator is linear, so its backward is the adjoint kernel and the adjoint's backward is the
/// forward kernel again: gradients of any order exist.

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace crossview::detail {

/// The filter's three numbers: x-kernel = scale * [side, centre, side]^T x [-1, 0, 1].
struct SeparableGradientWeights {
  double side;
  double centre;
  double scale;
};

/// Planes per parallel chunk: about 32k pixels of work each.
inline int64_t separable_gradient_grain(int64_t h, int64_t w) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, h * w)); }

/// out [N, 2C, H, W] (channel 2c: d/dx of x's channel c, 2c + 1: d/dy) from x [N, C, H, W]; both
/// contiguous.
template <typename T>
void separable_gradient_forward_cpu(const T* x, T* out, int64_t planes, int64_t h, int64_t w,
                                    SeparableGradientWeights k) {
  const T s = T(k.side * k.scale), c = T(k.centre * k.scale);
  at::parallel_for(0, planes, separable_gradient_grain(h, w), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* plane = x + p * h * w;
      T* gx = out + 2 * p * h * w;
      T* gy = gx + h * w;
      for (int64_t y = 0; y < h; ++y) {
        const T* rm = plane + std::max<int64_t>(y - 1, 0) * w;
        const T* r0 = plane + y * w;
        const T* rp = plane + std::min<int64_t>(y + 1, h - 1) * w;
        T* ox = gx + y * w;
        T* oy = gy + y * w;
        const auto pixel = [&](int64_t xm, int64_t xc, int64_t xp) {
          ox[xc] = s * (rm[xp] - rm[xm]) + c * (r0[xp] - r0[xm]) + s * (rp[xp] - rp[xm]);
          oy[xc] = s * (rp[xm] - rm[xm]) + c * (rp[xc] - rm[xc]) + s * (rp[xp] - rm[xp]);
        };
        pixel(0, 0, std::min<int64_t>(1, w - 1));
        for (int64_t i = 1; i < w - 1; ++i) {
          ox[i] = s * (rm[i + 1] - rm[i - 1]) + c * (r0[i + 1] - r0[i - 1]) + s * (rp[i + 1] - rp[i - 1]);
          oy[i] = s * (rp[i - 1] - rm[i - 1]) + c * (rp[i] - rm[i]) + s * (rp[i + 1] - rm[i + 1]);
        }
        if (w > 1) pixel(w - 2, w - 1, w - 1);
      }
    }
  });
}

/// grad_x [N, C, H, W] = the adjoint of the forward filter applied to grad_out [N, 2C, H, W]; both
/// contiguous. Per plane: the transposed filter scatters every gradient row into a zero-padded
/// (H + 2) x (W + 2) buffer (twelve row-long multiply-adds, vectorisable), then the replicate
/// padding's adjoint folds the border rows and columns back onto the plane's edge.
template <typename T>
void separable_gradient_adjoint_cpu(const T* grad_out, T* grad_x, int64_t planes, int64_t h, int64_t w,
                                    SeparableGradientWeights k) {
  const T s = T(k.side * k.scale), c = T(k.centre * k.scale);
  const T wt[3] = {s, c, s};  // weight of row (column) offset -1, 0, +1 in the smoothing direction
  const int64_t pw = w + 2;
  at::parallel_for(0, planes, separable_gradient_grain(h, w), [&](int64_t p0, int64_t p1) {
    std::vector<T> buffer(size_t((h + 2) * pw));
    for (int64_t p = p0; p < p1; ++p) {
      const T* gx = grad_out + 2 * p * h * w;
      const T* gy = gx + h * w;
      std::fill(buffer.begin(), buffer.end(), T(0));
      // Output (y, x) read padded pixel (y + 1 + dy, x + 1 + dx) with coefficient wt[dy] * dx
      // (out_x) and wt[dx] * dy (out_y).
      for (int64_t y = 0; y < h; ++y) {
        const T* rx = gx + y * w;
        const T* ry = gy + y * w;
        for (int64_t dy = -1; dy <= 1; ++dy) {
          T* dst = buffer.data() + (y + 1 + dy) * pw + 1;
          for (int64_t dx = -1; dx <= 1; ++dx) {
            const T cx = wt[dy + 1] * T(dx), cy = wt[dx + 1] * T(dy);
            if (cx == T(0) && cy == T(0)) continue;
            T* d = dst + dx;
            for (int64_t i = 0; i < w; ++i) d[i] += cx * rx[i] + cy * ry[i];
          }
        }
      }
      // Replicate padding's adjoint: border rows onto the first / last row, then border columns
      // (corners included) onto the first / last column.
      T* top = buffer.data();
      T* bottom = buffer.data() + (h + 1) * pw;
      for (int64_t i = 0; i < pw; ++i) {
        top[pw + i] += top[i];
        bottom[-pw + i] += bottom[i];
      }
      T* g = grad_x + p * h * w;
      for (int64_t y = 0; y < h; ++y) {
        const T* row = buffer.data() + (y + 1) * pw;
        T* out = g + y * w;
        for (int64_t i = 0; i < w; ++i) out[i] = row[i + 1];
        out[0] += row[0];
        out[w - 1] += row[w + 1];
      }
    }
  });
}

struct SeparableGradientFunction;

/// The adjoint as an autograd node (the forward filter's backward); its own backward is the
/// forward filter.
struct SeparableGradientAdjointFunction : torch::autograd::Function<SeparableGradientAdjointFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& grad_out, double side,
                               double centre, double scale);
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads);
};

/// The forward filter as an autograd node; x must be a contiguous float or double CPU tensor.
struct SeparableGradientFunction : torch::autograd::Function<SeparableGradientFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double side,
                               double centre, double scale) {
    ctx->saved_data["side"] = side;
    ctx->saved_data["centre"] = centre;
    ctx->saved_data["scale"] = scale;
    const auto xc = x.contiguous();
    const int64_t n = xc.size(0), c = xc.size(1), h = xc.size(2), w = xc.size(3);
    auto out = torch::empty({n, 2 * c, h, w}, xc.options());
    AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "separable_gradient_forward_cpu", [&] {
      separable_gradient_forward_cpu<scalar_t>(xc.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), n * c,
                                               h, w, {side, centre, scale});
    });
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    return {SeparableGradientAdjointFunction::apply(grads[0], ctx->saved_data["side"].toDouble(),
                                                    ctx->saved_data["centre"].toDouble(),
                                                    ctx->saved_data["scale"].toDouble()),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

inline torch::Tensor SeparableGradientAdjointFunction::forward(torch::autograd::AutogradContext* ctx,
                                                                const torch::Tensor& grad_out, double side,
                                                                double centre, double scale) {
  ctx->saved_data["side"] = side;
  ctx->saved_data["centre"] = centre;
  ctx->saved_data["scale"] = scale;
  const auto gc = grad_out.contiguous();
  const int64_t n = gc.size(0), c2 = gc.size(1), h = gc.size(2), w = gc.size(3);
  auto grad_x = torch::empty({n, c2 / 2, h, w}, gc.options());
  AT_DISPATCH_FLOATING_TYPES(gc.scalar_type(), "separable_gradient_adjoint_cpu", [&] {
    separable_gradient_adjoint_cpu<scalar_t>(gc.const_data_ptr<scalar_t>(), grad_x.mutable_data_ptr<scalar_t>(),
                                             n * (c2 / 2), h, w, {side, centre, scale});
  });
  return grad_x;
}

inline torch::autograd::variable_list SeparableGradientAdjointFunction::backward(
    torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
  return {SeparableGradientFunction::apply(grads[0], ctx->saved_data["side"].toDouble(),
                                           ctx->saved_data["centre"].toDouble(), ctx->saved_data["scale"].toDouble()),
          torch::Tensor(), torch::Tensor(), torch::Tensor()};
}

}  // namespace crossview::detail
