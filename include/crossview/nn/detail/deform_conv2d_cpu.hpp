#pragma once
/// \file
/// CPU kernels of the deformable convolution: fused bilinear sampling + GEMM over tiles of output
/// pixels, one image at a time.
///
/// Layout. The input image is read channels-last ([H*W, Cin]) so that the four bilinear corners
/// of a sample are four contiguous rows of Cin values: a sample of all channels of an offset
/// group is a short vectorisable loop. A tile of `T` output pixels is expanded into the column
/// matrix `col` [T, K*Cin] (K = kh*kw), row = pixel, column = (conv group g, tap k, channel c in
/// g), and multiplied with the weight permuted to [Cout, K*Cin/groups] (tap-major) by one GEMM
/// per convolution group, written straight into the output rows of the tile. Memory: one
/// channels-last image plus O(T*K*Cin) per thread, independent of the batch size.
///
/// Work is done in blocks of one tile per thread: the columns of a block are filled in parallel,
/// then multiplied by one (multi-threaded) GEMM per convolution group outside the parallel
/// region. Backward per block: grad_col = grad_out_block^T * W and grad_weight += grad_out_block *
/// col (GEMMs), then one parallel pass over the samples that scatters grad_col into a
/// channels-last input gradient (tile t of every block owns part t, so no two threads write the
/// same memory) and reduces grad_offset / grad_mask from the same corners. The parts are summed
/// in a fixed order: results are bitwise reproducible for a given thread count.

#include "crossview/nn/detail/bilinear.hpp"
#include "crossview/nn/detail/deform_conv2d_params.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <vector>

namespace crossview::detail {

/// Output pixels per tile: about 2^19 column entries (2 MiB in float), between 64 and 256 pixels
/// (wide enough for an efficient GEMM, which streams the whole weight once per tile), a multiple
/// of 16. Measured on Zen 4 with bench_deform_conv: 2^17 entries (64 pixels at Cin = 512) made
/// the Cin = 512 forward 15 % slower.
inline int64_t deform_conv2d_tile_pixels(int64_t column_width) {
  constexpr int64_t kTargetEntries = int64_t{1} << 19;
  const int64_t t = std::clamp<int64_t>(kTargetEntries / std::max<int64_t>(column_width, 1), 64, 256);
  return t / 16 * 16;
}

/// Non-owning row-major [rows, cols] matrix view with leading dimension `ld`, as a tensor for
/// ATen's GEMM (which honours the leading dimension without copying).
template <typename scalar_t>
inline torch::Tensor deform_matrix_view(scalar_t* data, int64_t rows, int64_t cols, int64_t ld) {
  return torch::from_blob(data, {rows, cols}, {ld, 1}, torch::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value));
}

/// Visits every (pixel, offset group, tap) sample of the tile [p0, p1) of image `n` with its
/// corners and mask value: fn(p - p0, og, k, corners, mask_value, y, x).
template <typename scalar_t, typename Fn>
inline void deform_for_each_sample(const DeformConv2dShape& s, const DeformConv2dParams& prm,
                                   const scalar_t* offset_n, const scalar_t* mask_n, int64_t p0, int64_t p1,
                                   Fn&& fn) {
  const int64_t K = s.kernel_h * s.kernel_w;
  const int64_t hw_out = s.out_h * s.out_w;
  BilinearCorners<scalar_t> corners;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t oy = p / s.out_w, ox = p % s.out_w;
    for (int64_t og = 0; og < prm.offset_groups; ++og) {
      // offset channel (og * K + k) * 2 holds dy, the next one dx; mask channel og * K + k.
      const scalar_t* off = offset_n + og * 2 * K * hw_out + p;
      const scalar_t* msk = prm.use_mask ? mask_n + og * K * hw_out + p : nullptr;
      for (int64_t i = 0; i < s.kernel_h; ++i) {
        for (int64_t j = 0; j < s.kernel_w; ++j) {
          const int64_t k = i * s.kernel_w + j;
          const scalar_t y =
              static_cast<scalar_t>(deform_base_coordinate(oy, prm.stride_h, prm.pad_h, i, prm.dilation_h)) +
              off[2 * k * hw_out];
          const scalar_t x =
              static_cast<scalar_t>(deform_base_coordinate(ox, prm.stride_w, prm.pad_w, j, prm.dilation_w)) +
              off[(2 * k + 1) * hw_out];
          const scalar_t m = msk ? msk[k * hw_out] : scalar_t(1);
          bilinear_corners(y, x, s.height, s.width, corners);
          fn(p - p0, og, k, corners, m);
        }
      }
    }
  }
}

/// Calls fn(g, c0, c1) for each convolution group g overlapping offset group og, with the
/// channel range [c0, c1) they share.
template <typename Fn>
inline void deform_for_each_segment(const DeformConv2dShape& s, const DeformConv2dParams& prm, int64_t og, Fn&& fn) {
  const int64_t cg = s.in_channels / prm.groups;
  const int64_t cog = s.in_channels / prm.offset_groups;
  const int64_t first = og * cog, last = (og + 1) * cog;
  for (int64_t g = first / cg; g * cg < last; ++g) {
    fn(g, std::max(first, g * cg), std::min(last, (g + 1) * cg));
  }
}

/// Fills the columns of one tile: col[t, g*K*Cg + k*Cg + (c - g*Cg)] = mask * x(sample of pixel t,
/// tap k, channel c). x_t is the channels-last image [H*W, Cin]; `zeros` holds Cin zeros (the
/// source of invalid corners, so that the inner loop has no branch).
template <typename scalar_t>
inline void deform_fill_columns(const DeformConv2dShape& s, const DeformConv2dParams& prm, const scalar_t* x_t,
                                const scalar_t* offset_n, const scalar_t* mask_n, int64_t p0, int64_t p1,
                                const scalar_t* zeros, scalar_t* col) {
  const int64_t K = s.kernel_h * s.kernel_w;
  const int64_t cin = s.in_channels;
  const int64_t cg = cin / prm.groups;
  const int64_t col_width = K * cin;
  deform_for_each_sample<scalar_t>(
      s, prm, offset_n, mask_n, p0, p1,
      [&](int64_t t, int64_t og, int64_t k, const BilinearCorners<scalar_t>& c, scalar_t m) {
        const scalar_t* src[4];
        scalar_t w[4];
        for (int q = 0; q < 4; ++q) {
          src[q] = c.index[q] >= 0 ? x_t + c.index[q] * cin : zeros;
          w[q] = c.weight[q] * m;
        }
        deform_for_each_segment(s, prm, og, [&](int64_t g, int64_t c0, int64_t c1) {
          scalar_t* __restrict__ dst = col + t * col_width + g * K * cg + k * cg + (c0 - g * cg);
          const scalar_t* __restrict__ a = src[0] + c0;
          const scalar_t* __restrict__ b = src[1] + c0;
          const scalar_t* __restrict__ cc = src[2] + c0;
          const scalar_t* __restrict__ d = src[3] + c0;
          const scalar_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
          const int64_t len = c1 - c0;
          for (int64_t q = 0; q < len; ++q) dst[q] = w0 * a[q] + w1 * b[q] + w2 * cc[q] + w3 * d[q];
        });
      });
}

/// Forward: output [N, Cout, Hout, Wout] (bias not added). All tensors contiguous, same dtype.
template <typename scalar_t>
inline void deform_conv2d_forward_cpu_kernel(const torch::Tensor& input, const torch::Tensor& weight,
                                             const torch::Tensor& offset, const torch::Tensor& mask,
                                             const DeformConv2dParams& prm, torch::Tensor& output) {
  const auto s = deform_conv2d_shape(input, weight, prm);
  const int64_t K = s.kernel_h * s.kernel_w;
  const int64_t cin = s.in_channels, cg = cin / prm.groups;
  const int64_t cout_g = s.out_channels / prm.groups;
  const int64_t col_width = K * cin;
  const int64_t hw_out = s.out_h * s.out_w;
  const int64_t tile = deform_conv2d_tile_pixels(col_width);
  // A block = one tile per thread: filled in parallel, then multiplied by one multi-threaded
  // GEMM per group outside the parallel region (BLAS called inside OpenMP regions made the
  // threads spin-wait on a loaded machine).
  const int64_t tiles_per_block = std::max(1, at::get_num_threads());
  const int64_t block = tile * tiles_per_block;
  // [Cout, kh, kw, Cg]: tap-major rows matching the column layout.
  const auto w_t = weight.permute({0, 2, 3, 1}).contiguous().view({s.out_channels, K * cg});
  auto col = torch::empty({std::min(block, hw_out), col_width}, input.options());
  scalar_t* col_p = col.data_ptr<scalar_t>();
  const std::vector<scalar_t> zeros(static_cast<size_t>(cin), scalar_t(0));
  scalar_t* out = output.data_ptr<scalar_t>();
  const scalar_t* offset_p = offset.data_ptr<scalar_t>();
  const scalar_t* mask_p = prm.use_mask ? mask.data_ptr<scalar_t>() : nullptr;
  for (int64_t n = 0; n < s.batch; ++n) {
    const auto x_t = input[n].permute({1, 2, 0}).contiguous();  // [H, W, Cin]
    const scalar_t* x_p = x_t.data_ptr<scalar_t>();
    const scalar_t* offset_n = offset_p + n * 2 * prm.offset_groups * K * hw_out;
    const scalar_t* mask_n = mask_p ? mask_p + n * prm.offset_groups * K * hw_out : nullptr;
    scalar_t* out_n = out + n * s.out_channels * hw_out;
    for (int64_t b0 = 0; b0 < hw_out; b0 += block) {
      const int64_t b1 = std::min(hw_out, b0 + block);
      const int64_t num_tiles = (b1 - b0 + tile - 1) / tile;
      at::parallel_for(0, num_tiles, 1, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          const int64_t p0 = b0 + t * tile, p1 = std::min(b1, p0 + tile);
          deform_fill_columns(s, prm, x_p, offset_n, mask_n, p0, p1, zeros.data(), col_p + (p0 - b0) * col_width);
        }
      });
      for (int64_t g = 0; g < prm.groups; ++g) {
        auto out_view = deform_matrix_view(out_n + g * cout_g * hw_out + b0, cout_g, b1 - b0, hw_out);
        auto col_view = deform_matrix_view(col_p + g * K * cg, b1 - b0, K * cg, col_width);
        at::mm_out(out_view, w_t.narrow(0, g * cout_g, cout_g), col_view.t());
      }
    }
  }
}

/// Gradients of the CPU forward (bias excluded), written into the preallocated, zero-filled
/// grad_input [N, Cin, H, W], grad_offset, grad_mask (when use_mask) and grad_weight.
template <typename scalar_t>
inline void deform_conv2d_backward_cpu_kernel(const torch::Tensor& grad_out, const torch::Tensor& input,
                                              const torch::Tensor& weight, const torch::Tensor& offset,
                                              const torch::Tensor& mask, const DeformConv2dParams& prm,
                                              torch::Tensor& grad_input, torch::Tensor& grad_offset,
                                              torch::Tensor& grad_mask, torch::Tensor& grad_weight) {
  const auto s = deform_conv2d_shape(input, weight, prm);
  const int64_t K = s.kernel_h * s.kernel_w;
  const int64_t cin = s.in_channels, cg = cin / prm.groups;
  const int64_t cout_g = s.out_channels / prm.groups;
  const int64_t col_width = K * cin;
  const int64_t hw_in = s.height * s.width;
  const int64_t hw_out = s.out_h * s.out_w;
  const int64_t tile = deform_conv2d_tile_pixels(col_width);
  const int64_t tiles_per_block = std::max(1, at::get_num_threads());
  const int64_t block = tile * tiles_per_block;
  const int64_t rows = std::min(block, hw_out);
  const auto w_t = weight.permute({0, 2, 3, 1}).contiguous().view({s.out_channels, K * cg});
  auto grad_w_t = torch::zeros_like(w_t);  // tap-major like w_t
  auto col = torch::empty({rows, col_width}, input.options());
  auto grad_col = torch::empty({rows, col_width}, input.options());
  // Tile t of every block scatters into input-gradient part t (channels-last): no two threads
  // share a part, and each part sums its tiles in a fixed order.
  const int64_t num_parts = std::min(tiles_per_block, (hw_out + tile - 1) / tile);
  auto grad_x_parts = torch::empty({num_parts, hw_in, cin}, input.options());
  scalar_t* col_p = col.data_ptr<scalar_t>();
  scalar_t* grad_col_p = grad_col.data_ptr<scalar_t>();
  const std::vector<scalar_t> zeros(static_cast<size_t>(cin), scalar_t(0));
  const scalar_t* go_p = grad_out.data_ptr<scalar_t>();
  const scalar_t* offset_p = offset.data_ptr<scalar_t>();
  const scalar_t* mask_p = prm.use_mask ? mask.data_ptr<scalar_t>() : nullptr;
  scalar_t* goff_p = grad_offset.data_ptr<scalar_t>();
  scalar_t* gmask_p = prm.use_mask ? grad_mask.data_ptr<scalar_t>() : nullptr;
  scalar_t* gx_parts_p = grad_x_parts.data_ptr<scalar_t>();
  for (int64_t n = 0; n < s.batch; ++n) {
    const auto x_t = input[n].permute({1, 2, 0}).contiguous();
    const scalar_t* x_p = x_t.data_ptr<scalar_t>();
    const scalar_t* offset_n = offset_p + n * 2 * prm.offset_groups * K * hw_out;
    const scalar_t* mask_n = mask_p ? mask_p + n * prm.offset_groups * K * hw_out : nullptr;
    scalar_t* goff_n = goff_p + n * 2 * prm.offset_groups * K * hw_out;
    scalar_t* gmask_n = gmask_p ? gmask_p + n * prm.offset_groups * K * hw_out : nullptr;
    const scalar_t* go_n = go_p + n * s.out_channels * hw_out;
    grad_x_parts.zero_();
    for (int64_t b0 = 0; b0 < hw_out; b0 += block) {
      const int64_t b1 = std::min(hw_out, b0 + block), bp = b1 - b0;
      const int64_t num_tiles = (bp + tile - 1) / tile;
      at::parallel_for(0, num_tiles, 1, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          const int64_t p0 = b0 + t * tile, p1 = std::min(b1, p0 + tile);
          deform_fill_columns(s, prm, x_p, offset_n, mask_n, p0, p1, zeros.data(), col_p + (p0 - b0) * col_width);
        }
      });
      for (int64_t g = 0; g < prm.groups; ++g) {
        const auto go_view =
            deform_matrix_view(const_cast<scalar_t*>(go_n) + g * cout_g * hw_out + b0, cout_g, bp, hw_out);
        auto col_view = deform_matrix_view(col_p + g * K * cg, bp, K * cg, col_width);
        auto grad_col_view = deform_matrix_view(grad_col_p + g * K * cg, bp, K * cg, col_width);
        at::mm_out(grad_col_view, go_view.t(), w_t.narrow(0, g * cout_g, cout_g));  // [block, K*Cg]
        grad_w_t.narrow(0, g * cout_g, cout_g).addmm_(go_view, col_view);
      }
      at::parallel_for(0, num_tiles, 1, [&](int64_t begin, int64_t end) {
        std::vector<scalar_t> sink(static_cast<size_t>(cin));  // written by invalid corners, never read
        for (int64_t t = begin; t < end; ++t) {
          const int64_t p0 = b0 + t * tile, p1 = std::min(b1, p0 + tile);
          scalar_t* gx = gx_parts_p + t * hw_in * cin;
          const scalar_t* gcol_tile = grad_col_p + (p0 - b0) * col_width;
          deform_for_each_sample<scalar_t>(
              s, prm, offset_n, mask_n, p0, p1,
              [&](int64_t r, int64_t og, int64_t k, const BilinearCorners<scalar_t>& c, scalar_t m) {
                const scalar_t* src[4];
                scalar_t* dst[4];
                scalar_t mw[4];
                for (int q = 0; q < 4; ++q) {
                  const bool valid = c.index[q] >= 0;
                  src[q] = valid ? x_p + c.index[q] * cin : zeros.data();
                  dst[q] = valid ? gx + c.index[q] * cin : sink.data();
                  mw[q] = c.weight[q] * m;
                }
                // dot[q] = sum_c grad_col * x(corner q): d out / d (corner weight q).
                scalar_t dot[4] = {0, 0, 0, 0};
                deform_for_each_segment(s, prm, og, [&](int64_t g, int64_t c0, int64_t c1) {
                  const scalar_t* __restrict__ gc = gcol_tile + r * col_width + g * K * cg + k * cg + (c0 - g * cg);
                  const int64_t len = c1 - c0;
                  for (int q = 0; q < 4; ++q) {
                    const scalar_t* __restrict__ a = src[q] + c0;
                    scalar_t* __restrict__ ga = dst[q] + c0;
                    const scalar_t wq = mw[q];
                    // Four partial sums so the reduction vectorises without -ffast-math.
                    scalar_t acc[4] = {0, 0, 0, 0};
                    int64_t i = 0;
                    for (; i + 4 <= len; i += 4) {
                      for (int l = 0; l < 4; ++l) {
                        acc[l] += gc[i + l] * a[i + l];
                        ga[i + l] += wq * gc[i + l];
                      }
                    }
                    for (; i < len; ++i) {
                      acc[0] += gc[i] * a[i];
                      ga[i] += wq * gc[i];
                    }
                    dot[q] += (acc[0] + acc[1]) + (acc[2] + acc[3]);
                  }
                });
                scalar_t value = 0, dy = 0, dx = 0;
                for (int q = 0; q < 4; ++q) {
                  value += c.weight[q] * dot[q];
                  dy += c.dweight_dy[q] * dot[q];
                  dx += c.dweight_dx[q] * dot[q];
                }
                const int64_t p = p0 + r;
                goff_n[(og * 2 * K + 2 * k) * hw_out + p] = m * dy;
                goff_n[(og * 2 * K + 2 * k + 1) * hw_out + p] = m * dx;
                if (gmask_n) gmask_n[(og * K + k) * hw_out + p] = value;
              });
        }
      });
    }
    // Fixed-order reduction of the parts' input gradients, back to [Cin, H, W].
    auto gx_sum = num_parts == 1 ? grad_x_parts[0] : grad_x_parts.sum(0);
    grad_input[n].copy_(gx_sum.view({s.height, s.width, cin}).permute({2, 0, 1}));
  }
  // [Cout, kh, kw, Cg] -> [Cout, Cg, kh, kw]
  grad_weight.copy_(grad_w_t.view({s.out_channels, s.kernel_h, s.kernel_w, cg}).permute({0, 3, 1, 2}));
}

}  // namespace crossview::detail
