#pragma once
/// \file
/// CUDA kernels of the deformable convolution (compiled only into crossview::cuda by nvcc). They
/// mirror the CPU kernel (nn/detail/deform_conv2d_cpu.hpp): per image, the sampled column matrix
/// [Cin*kh*kw, Hout*Wout] (channel-major, then tap) is built by `deform_im2col_kernel` and
/// multiplied with the weight by cuBLAS; the backward scatters the column gradient into the input
/// (`deform_col2im_kernel`, atomics: not bitwise deterministic, like torchvision's CUDA kernel)
/// and reduces offset and mask gradients per sample without atomics
/// (`deform_offset_mask_grad_kernel`). Per-sample math: nn/detail/bilinear.hpp.

#include "crossview/nn/detail/bilinear.hpp"
#include "crossview/nn/detail/deform_conv2d_params.hpp"

#include <ATen/cuda/Atomic.cuh>

#include <cstdint>

namespace crossview::cuda_detail {

using crossview::detail::BilinearCorners;
using crossview::detail::DeformConv2dParams;
using crossview::detail::DeformConv2dShape;

/// What one thread of the column kernels works on. Entry e of an image's column layout
/// [rows, K, L] (K = kh*kw taps, L = Hout*Wout pixels) is row = e / (K*L), tap k = (e / L) % K,
/// pixel p = e % L; a row is an input channel c (im2col, col2im) or an offset group og (offset
/// and mask gradients), and `rows_per_offset_group` (Cin/offset_groups, or 1) maps it to its
/// offset group. The sample is tap (i, j) = (k / kw, k % kw) of output pixel
/// (oy, ox) = (p / Wout, p % Wout), displaced by the offset channels (og*K + k)*2 (dy) and
/// (og*K + k)*2 + 1 (dx) and scaled by mask channel og*K + k.
template <typename acc_t>
struct DeformColumnSample {
  int64_t row;                     ///< c or og, see above
  int64_t offset_group;            ///< og
  int64_t tap;                     ///< k = i*kw + j
  int64_t pixel;                   ///< p = oy*Wout + ox
  BilinearCorners<acc_t> corners;  ///< the four input pixels around the sample
  acc_t mask;                      ///< the mask value, 1 without use_mask
};

/// The index math and the sample of column entry e of one image (offset_n, mask_n: the image's
/// [2*offset_groups*K, L] offsets and [offset_groups*K, L] mask). See DeformColumnSample.
template <typename scalar_t, typename acc_t>
__host__ __device__ inline DeformColumnSample<acc_t> deform_column_sample(int64_t e, int64_t rows_per_offset_group,
                                                                          const DeformConv2dShape& s,
                                                                          const DeformConv2dParams& prm,
                                                                          const scalar_t* offset_n,
                                                                          const scalar_t* mask_n) {
  const int64_t K = s.kernel_h * s.kernel_w;
  const int64_t L = s.out_h * s.out_w;
  DeformColumnSample<acc_t> t;
  t.pixel = e % L;
  t.tap = (e / L) % K;
  t.row = e / (L * K);
  t.offset_group = t.row / rows_per_offset_group;
  const int64_t i = t.tap / s.kernel_w, j = t.tap % s.kernel_w;
  const int64_t oy = t.pixel / s.out_w, ox = t.pixel % s.out_w;
  const scalar_t* off = offset_n + t.offset_group * 2 * K * L + t.pixel;
  const acc_t y =
      static_cast<acc_t>(crossview::detail::deform_base_coordinate(oy, prm.stride_h, prm.pad_h, i, prm.dilation_h)) +
      static_cast<acc_t>(off[2 * t.tap * L]);
  const acc_t x =
      static_cast<acc_t>(crossview::detail::deform_base_coordinate(ox, prm.stride_w, prm.pad_w, j, prm.dilation_w)) +
      static_cast<acc_t>(off[(2 * t.tap + 1) * L]);
  crossview::detail::bilinear_corners(y, x, s.height, s.width, t.corners);
  t.mask = prm.use_mask ? static_cast<acc_t>(mask_n[(t.offset_group * K + t.tap) * L + t.pixel]) : acc_t(1);
  return t;
}

/// col[(c*K + k) * L + p] = mask * x_c(sample of tap k at pixel p), one thread per entry.
template <typename scalar_t, typename acc_t>
__global__ void deform_im2col_kernel(DeformConv2dShape s, DeformConv2dParams prm, const scalar_t* __restrict__ x_n,
                                     const scalar_t* __restrict__ offset_n, const scalar_t* __restrict__ mask_n,
                                     scalar_t* __restrict__ col) {
  const int64_t K = s.kernel_h * s.kernel_w;
  const int64_t L = s.out_h * s.out_w;
  const int64_t total = s.in_channels * K * L;
  const int64_t cog = s.in_channels / prm.offset_groups;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total; e += int64_t{blockDim.x} * gridDim.x) {
    const auto t = deform_column_sample<scalar_t, acc_t>(e, cog, s, prm, offset_n, mask_n);
    const BilinearCorners<acc_t>& cr = t.corners;
    const scalar_t* xc = x_n + t.row * s.height * s.width;
    acc_t v = 0;
    for (int q = 0; q < 4; ++q) {
      if (cr.index[q] >= 0) v += cr.weight[q] * static_cast<acc_t>(xc[cr.index[q]]);
    }
    col[e] = static_cast<scalar_t>(t.mask * v);
  }
}

/// grad_x_c[corner] += mask * weight * grad_col[(c*K + k) * L + p], one thread per column entry.
template <typename scalar_t, typename acc_t>
__global__ void deform_col2im_kernel(DeformConv2dShape s, DeformConv2dParams prm, const scalar_t* __restrict__ grad_col,
                                     const scalar_t* __restrict__ offset_n, const scalar_t* __restrict__ mask_n,
                                     scalar_t* __restrict__ grad_x_n) {
  const int64_t K = s.kernel_h * s.kernel_w;
  const int64_t L = s.out_h * s.out_w;
  const int64_t total = s.in_channels * K * L;
  const int64_t cog = s.in_channels / prm.offset_groups;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total; e += int64_t{blockDim.x} * gridDim.x) {
    const auto t = deform_column_sample<scalar_t, acc_t>(e, cog, s, prm, offset_n, mask_n);
    const BilinearCorners<acc_t>& cr = t.corners;
    const acc_t g = t.mask * static_cast<acc_t>(grad_col[e]);
    scalar_t* gx = grad_x_n + t.row * s.height * s.width;
    for (int q = 0; q < 4; ++q) {
      if (cr.index[q] >= 0) gpuAtomicAdd(gx + cr.index[q], static_cast<scalar_t>(cr.weight[q] * g));
    }
  }
}

/// Offset and mask gradients of one image, one thread per (offset group, tap, pixel): the
/// channel sum of grad_col times the derivative of the sample. No atomics.
template <typename scalar_t, typename acc_t>
__global__ void deform_offset_mask_grad_kernel(DeformConv2dShape s, DeformConv2dParams prm,
                                               const scalar_t* __restrict__ grad_col,
                                               const scalar_t* __restrict__ x_n,
                                               const scalar_t* __restrict__ offset_n,
                                               const scalar_t* __restrict__ mask_n,
                                               scalar_t* __restrict__ grad_offset_n, scalar_t* __restrict__ grad_mask_n) {
  const int64_t K = s.kernel_h * s.kernel_w;
  const int64_t L = s.out_h * s.out_w;
  const int64_t total = prm.offset_groups * K * L;
  const int64_t cog = s.in_channels / prm.offset_groups;
  const int64_t hw = s.height * s.width;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total; e += int64_t{blockDim.x} * gridDim.x) {
    const auto t = deform_column_sample<scalar_t, acc_t>(e, 1, s, prm, offset_n, mask_n);
    const BilinearCorners<acc_t>& cr = t.corners;
    const int64_t og = t.offset_group, k = t.tap, p = t.pixel;
    const acc_t m = t.mask;
    acc_t dot[4] = {0, 0, 0, 0};
    for (int64_t c = og * cog; c < (og + 1) * cog; ++c) {
      const acc_t g = static_cast<acc_t>(grad_col[(c * K + k) * L + p]);
      const scalar_t* xc = x_n + c * hw;
      for (int q = 0; q < 4; ++q) {
        if (cr.index[q] >= 0) dot[q] += g * static_cast<acc_t>(xc[cr.index[q]]);
      }
    }
    acc_t value = 0, dy = 0, dx = 0;
    for (int q = 0; q < 4; ++q) {
      value += cr.weight[q] * dot[q];
      dy += cr.dweight_dy[q] * dot[q];
      dx += cr.dweight_dx[q] * dot[q];
    }
    grad_offset_n[(og * 2 * K + 2 * k) * L + p] = static_cast<scalar_t>(m * dy);
    grad_offset_n[(og * 2 * K + 2 * k + 1) * L + p] = static_cast<scalar_t>(m * dx);
    if (prm.use_mask) grad_mask_n[(og * K + k) * L + p] = static_cast<scalar_t>(value);
  }
}

}  // namespace crossview::cuda_detail
