#pragma once
/// \file
/// CPU kernels of the deformable convolution: fused bilinear sampling + GEMM over tiles of output
/// pixels.
///
/// Layout. The input image is read channels-last ([H*W, Cin]) so that the four bilinear corners
/// of a sample are four contiguous rows of Cin values: a sample of all channels of an offset
/// group is a short vectorisable loop. A tile of `T` output pixels is expanded into the column
/// matrix `col` [T, K*Cin] (K = kh*kw), row = pixel, column = (conv group g, tap k, channel c in
/// g), and multiplied with the weight permuted to [Cout, K*Cin/groups] (tap-major) by one GEMM
/// per convolution group and block of one tile per thread, written straight into the output
/// rows of the block.
///
/// Work is done in passes (DeformConv2dPlan): the columns of a pass are filled in one parallel
/// region, then multiplied by the blocks' (multi-threaded) GEMMs outside it. A pass is several
/// whole images when their buffers fit in 2^19 entries per thread (small maps: one tile per image
/// would leave the other threads idle), else one block of one image; memory is bounded by that,
/// not by the batch size. Backward per pass: grad_col = grad_out_block^T * W and grad_weight +=
/// grad_out_block * col (GEMMs, block by block), then one parallel region over (image, part)
/// that scatters grad_col into a channels-last input gradient (tile t of every block of an image
/// belongs to its part t, so no two threads write the same memory) and reduces grad_offset /
/// grad_mask from the same corners. GEMM shapes and summation orders do not depend on the pass:
/// results are bitwise reproducible for a given thread count, whatever the batch size.

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

/// How a call walks the batch. Every GEMM covers one block (one tile per thread) of one image,
/// whatever the pass: the results' bits depend on the GEMMs' shapes, so they do not depend on
/// the batch size. A pass is what one parallel region fills (and, in the backward, scatters):
/// several whole images when an image's buffers are small — at the small maps of a network's
/// later stages one image is one tile, and a pass per image would leave all threads but one idle
/// — or else one block of one image.
struct DeformConv2dPlan {
  int64_t tile;             ///< output pixels per tile (a thread's share of a fill or scatter)
  int64_t block;            ///< output pixels per GEMM: one tile per thread
  int64_t images_per_pass;  ///< whole images per pass; 0: one block of one image per pass
};

/// Plan for `entries_per_image` buffer entries per image (columns, and in the backward their
/// gradient and the input-gradient parts): whole images per pass while a pass stays within 2^19
/// entries (2 MiB in float, about a core's L2) per thread, so that the GEMMs find the columns
/// still in cache.
inline DeformConv2dPlan deform_conv2d_plan(int64_t batch, int64_t col_width, int64_t entries_per_image) {
  const int64_t threads = std::max(1, at::get_num_threads());
  const int64_t pass_entries = (int64_t{1} << 19) * threads;
  DeformConv2dPlan plan{};
  plan.tile = deform_conv2d_tile_pixels(col_width);
  plan.block = plan.tile * threads;
  const int64_t per_image = std::max<int64_t>(entries_per_image, 1);
  plan.images_per_pass = per_image <= pass_entries ? std::min(batch, pass_entries / per_image) : 0;
  return plan;
}

/// Calls pass(n0, n1, q0, q1) for the passes of the plan in order: output pixels [q0, q1) of
/// images [n0, n1); q0 and q1 lie on block boundaries (or q1 = hw_out).
template <typename Fn>
inline void deform_for_each_pass(const DeformConv2dPlan& plan, int64_t batch, int64_t hw_out, Fn&& pass) {
  for (int64_t n0 = 0; n0 < batch;) {
    if (plan.images_per_pass > 0) {
      const int64_t n1 = std::min(batch, n0 + plan.images_per_pass);
      pass(n0, n1, int64_t{0}, hw_out);
      n0 = n1;
    } else {
      for (int64_t b0 = 0; b0 < hw_out; b0 += plan.block) pass(n0, n0 + 1, b0, std::min(hw_out, b0 + plan.block));
      ++n0;
    }
  }
}

/// Fills the columns of the pass [n0, n1) x [q0, q1) (deform_for_each_pass) in one parallel
/// region over all its tiles: output pixel p of image n0 + ni goes to row ni * (q1 - q0) + p - q0
/// of col. x_p holds the pass's images channels-last ([n1 - n0, H, W, Cin]).
template <typename scalar_t>
inline void deform_fill_pass(const DeformConv2dShape& s, const DeformConv2dParams& prm, int64_t tile,
                             const scalar_t* x_p, const scalar_t* offset_p, const scalar_t* mask_p, int64_t n0,
                             int64_t n1, int64_t q0, int64_t q1, const scalar_t* zeros, scalar_t* col_p) {
  const int64_t K = s.kernel_h * s.kernel_w;
  const int64_t hw_out = s.out_h * s.out_w, image = s.height * s.width * s.in_channels;
  const int64_t col_width = K * s.in_channels;
  const int64_t rows = q1 - q0, tiles = (rows + tile - 1) / tile;
  at::parallel_for(0, (n1 - n0) * tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t ni = i / tiles, p0 = q0 + (i % tiles) * tile, p1 = std::min(q1, p0 + tile);
      const int64_t n = n0 + ni;
      deform_fill_columns(s, prm, x_p + ni * image, offset_p + n * 2 * prm.offset_groups * K * hw_out,
                          mask_p ? mask_p + n * prm.offset_groups * K * hw_out : nullptr, p0, p1, zeros,
                          col_p + (ni * rows + p0 - q0) * col_width);
    }
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
  const auto plan = deform_conv2d_plan(s.batch, col_width, hw_out * col_width);
  // [Cout, kh, kw, Cg]: tap-major rows matching the column layout.
  const auto w_t = weight.permute({0, 2, 3, 1}).contiguous().view({s.out_channels, K * cg});
  const int64_t col_rows = plan.images_per_pass > 0 ? plan.images_per_pass * hw_out : std::min(plan.block, hw_out);
  auto col = torch::empty({col_rows, col_width}, input.options());
  scalar_t* col_p = col.data_ptr<scalar_t>();
  const std::vector<scalar_t> zeros(static_cast<size_t>(cin), scalar_t(0));
  scalar_t* out = output.data_ptr<scalar_t>();
  const scalar_t* offset_p = offset.data_ptr<scalar_t>();
  const scalar_t* mask_p = prm.use_mask ? mask.data_ptr<scalar_t>() : nullptr;
  torch::Tensor x_t;  // [images of the pass, H, W, Cin]
  deform_for_each_pass(plan, s.batch, hw_out, [&](int64_t n0, int64_t n1, int64_t q0, int64_t q1) {
    if (q0 == 0) x_t = input.narrow(0, n0, n1 - n0).permute({0, 2, 3, 1}).contiguous();
    const scalar_t* x_p = x_t.data_ptr<scalar_t>();
    const int64_t rows = q1 - q0;
    // The GEMMs follow outside the fill's parallel region (BLAS called inside OpenMP regions made
    // the threads spin-wait on a loaded machine).
    deform_fill_pass(s, prm, plan.tile, x_p, offset_p, mask_p, n0, n1, q0, q1, zeros.data(), col_p);
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t b0 = q0; b0 < q1; b0 += plan.block) {
        const int64_t b1 = std::min(q1, b0 + plan.block);
        scalar_t* col_b = col_p + ((n - n0) * rows + b0 - q0) * col_width;
        for (int64_t g = 0; g < prm.groups; ++g) {
          auto out_view = deform_matrix_view(out + (n * s.out_channels + g * cout_g) * hw_out + b0, cout_g, b1 - b0,
                                             hw_out);
          auto col_view = deform_matrix_view(col_b + g * K * cg, b1 - b0, K * cg, col_width);
          at::mm_out(out_view, w_t.narrow(0, g * cout_g, cout_g), col_view.t());
        }
      }
    }
  });
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
  // Tile t of every block scatters into input-gradient part t of its image (channels-last): no
  // two threads share a part, and each part sums its tiles in a fixed order (block by block).
  const int64_t num_parts = std::min<int64_t>(std::max(1, at::get_num_threads()), (hw_out + tile - 1) / tile);
  const auto plan = deform_conv2d_plan(s.batch, col_width, 2 * hw_out * col_width + num_parts * hw_in * cin);
  const int64_t images = std::max<int64_t>(plan.images_per_pass, 1);
  const int64_t col_rows = plan.images_per_pass > 0 ? plan.images_per_pass * hw_out : std::min(plan.block, hw_out);
  const auto w_t = weight.permute({0, 2, 3, 1}).contiguous().view({s.out_channels, K * cg});
  auto grad_w_t = torch::zeros_like(w_t);  // tap-major like w_t
  auto col = torch::empty({col_rows, col_width}, input.options());
  auto grad_col = torch::empty({col_rows, col_width}, input.options());
  auto grad_x_parts = torch::empty({images, num_parts, hw_in, cin}, input.options());
  scalar_t* col_p = col.data_ptr<scalar_t>();
  scalar_t* grad_col_p = grad_col.data_ptr<scalar_t>();
  const std::vector<scalar_t> zeros(static_cast<size_t>(cin), scalar_t(0));
  const scalar_t* go_p = grad_out.data_ptr<scalar_t>();
  const scalar_t* offset_p = offset.data_ptr<scalar_t>();
  const scalar_t* mask_p = prm.use_mask ? mask.data_ptr<scalar_t>() : nullptr;
  scalar_t* goff_p = grad_offset.data_ptr<scalar_t>();
  scalar_t* gmask_p = prm.use_mask ? grad_mask.data_ptr<scalar_t>() : nullptr;
  scalar_t* gx_parts_p = grad_x_parts.data_ptr<scalar_t>();
  const int64_t offset_stride = 2 * prm.offset_groups * K * hw_out, mask_stride = prm.offset_groups * K * hw_out;
  torch::Tensor x_t;  // [images of the pass, H, W, Cin]
  deform_for_each_pass(plan, s.batch, hw_out, [&](int64_t n0, int64_t n1, int64_t q0, int64_t q1) {
    if (q0 == 0) {
      x_t = input.narrow(0, n0, n1 - n0).permute({0, 2, 3, 1}).contiguous();
      grad_x_parts.zero_();
    }
    const scalar_t* x_p = x_t.data_ptr<scalar_t>();
    const int64_t rows = q1 - q0;
    deform_fill_pass(s, prm, tile, x_p, offset_p, mask_p, n0, n1, q0, q1, zeros.data(), col_p);
    for (int64_t n = n0; n < n1; ++n) {
      const scalar_t* go_n = go_p + n * s.out_channels * hw_out;
      for (int64_t b0 = q0; b0 < q1; b0 += plan.block) {
        const int64_t bp = std::min(q1, b0 + plan.block) - b0;
        const int64_t row0 = ((n - n0) * rows + b0 - q0) * col_width;
        for (int64_t g = 0; g < prm.groups; ++g) {
          const auto go_view =
              deform_matrix_view(const_cast<scalar_t*>(go_n) + g * cout_g * hw_out + b0, cout_g, bp, hw_out);
          auto col_view = deform_matrix_view(col_p + row0 + g * K * cg, bp, K * cg, col_width);
          auto grad_col_view = deform_matrix_view(grad_col_p + row0 + g * K * cg, bp, K * cg, col_width);
          at::mm_out(grad_col_view, go_view.t(), w_t.narrow(0, g * cout_g, cout_g));  // [block, K*Cg]
          grad_w_t.narrow(0, g * cout_g, cout_g).addmm_(go_view, col_view);
        }
      }
    }
    // One item per (image, part): part t takes tile t of each block of the pass, in block order.
    at::parallel_for(0, (n1 - n0) * num_parts, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> sink(static_cast<size_t>(cin));  // written by invalid corners, never read
      for (int64_t i = begin; i < end; ++i) {
        const int64_t ni = i / num_parts, t = i % num_parts, n = n0 + ni;
        const scalar_t* x_n = x_p + ni * hw_in * cin;
        const scalar_t* offset_n = offset_p + n * offset_stride;
        const scalar_t* mask_n = mask_p ? mask_p + n * mask_stride : nullptr;
        scalar_t* goff_n = goff_p + n * offset_stride;
        scalar_t* gmask_n = gmask_p ? gmask_p + n * mask_stride : nullptr;
        scalar_t* gx = gx_parts_p + (ni * num_parts + t) * hw_in * cin;
        for (int64_t b0 = q0; b0 < q1; b0 += plan.block) {
          const int64_t p0 = b0 + t * tile, p1 = std::min({q1, b0 + plan.block, p0 + tile});
          if (p0 >= p1) continue;
          const scalar_t* gcol_tile = grad_col_p + (ni * rows + p0 - q0) * col_width;
          deform_for_each_sample<scalar_t>(
              s, prm, offset_n, mask_n, p0, p1,
              [&](int64_t r, int64_t og, int64_t k, const BilinearCorners<scalar_t>& c, scalar_t m) {
                const scalar_t* src[4];
                scalar_t* dst[4];
                scalar_t mw[4];
                for (int q = 0; q < 4; ++q) {
                  const bool valid = c.index[q] >= 0;
                  src[q] = valid ? x_n + c.index[q] * cin : zeros.data();
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
                    int64_t j = 0;
                    for (; j + 4 <= len; j += 4) {
                      for (int l = 0; l < 4; ++l) {
                        acc[l] += gc[j + l] * a[j + l];
                        ga[j + l] += wq * gc[j + l];
                      }
                    }
                    for (; j < len; ++j) {
                      acc[0] += gc[j] * a[j];
                      ga[j] += wq * gc[j];
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
      }
    });
    if (q1 == hw_out) {
      // Fixed-order reduction of each image's parts, back to [Cin, H, W].
      for (int64_t n = n0; n < n1; ++n) {
        const auto parts = grad_x_parts[n - n0];
        auto gx_sum = num_parts == 1 ? parts[0] : parts.sum(0);
        grad_input[n].copy_(gx_sum.view({s.height, s.width, cin}).permute({2, 0, 1}));
      }
    }
  });
  // [Cout, kh, kw, Cg] -> [Cout, Cg, kh, kw]
  grad_weight.copy_(grad_w_t.view({s.out_channels, s.kernel_h, s.kernel_w, cg}).permute({0, 3, 1, 2}));
}

}  // namespace crossview::detail
