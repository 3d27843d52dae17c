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

/// Corners of the sample of tap k (in offset group og) for output pixel p of one image.
template <typename scalar_t, typename acc_t>
__device__ inline acc_t deform_sample_corners(const DeformConv2dShape& s, const DeformConv2dParams& prm,
                                              const scalar_t* offset_n, const scalar_t* mask_n, int64_t og,
                                              int64_t k, int64_t p, BilinearCorners<acc_t>& c) {
  const int64_t K = s.kernel_h * s.kernel_w;
  const int64_t hw_out = s.out_h * s.out_w;
  const int64_t i = k / s.kernel_w, j = k % s.kernel_w;
  const int64_t oy = p / s.out_w, ox = p % s.out_w;
  const scalar_t* off = offset_n + og * 2 * K * hw_out + p;
  const acc_t y = static_cast<acc_t>(crossview::detail::deform_base_coordinate(oy, prm.stride_h, prm.pad_h, i, prm.dilation_h)) +
                  static_cast<acc_t>(off[2 * k * hw_out]);
  const acc_t x = static_cast<acc_t>(crossview::detail::deform_base_coordinate(ox, prm.stride_w, prm.pad_w, j, prm.dilation_w)) +
                  static_cast<acc_t>(off[(2 * k + 1) * hw_out]);
  crossview::detail::bilinear_corners(y, x, s.height, s.width, c);
  return prm.use_mask ? static_cast<acc_t>(mask_n[(og * K + k) * hw_out + p]) : acc_t(1);
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
    const int64_t p = e % L;
    const int64_t k = (e / L) % K;
    const int64_t c = e / (L * K);
    BilinearCorners<acc_t> cr;
    const acc_t m = deform_sample_corners<scalar_t, acc_t>(s, prm, offset_n, mask_n, c / cog, k, p, cr);
    const scalar_t* xc = x_n + c * s.height * s.width;
    acc_t v = 0;
    for (int q = 0; q < 4; ++q) {
      if (cr.index[q] >= 0) v += cr.weight[q] * static_cast<acc_t>(xc[cr.index[q]]);
    }
    col[e] = static_cast<scalar_t>(m * v);
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
    const int64_t p = e % L;
    const int64_t k = (e / L) % K;
    const int64_t c = e / (L * K);
    BilinearCorners<acc_t> cr;
    const acc_t m = deform_sample_corners<scalar_t, acc_t>(s, prm, offset_n, mask_n, c / cog, k, p, cr);
    const acc_t g = m * static_cast<acc_t>(grad_col[e]);
    scalar_t* gx = grad_x_n + c * s.height * s.width;
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
    const int64_t p = e % L;
    const int64_t k = (e / L) % K;
    const int64_t og = e / (L * K);
    BilinearCorners<acc_t> cr;
    const acc_t m = deform_sample_corners<scalar_t, acc_t>(s, prm, offset_n, mask_n, og, k, p, cr);
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
