#pragma once
/// \file
/// CPU kernels of warp_image (bilinear) and warp_labels (nearest). Rows of the output are split
/// across threads with at::parallel_for; each row computes its homogeneous source coordinates
/// incrementally from the row start (u, v, w affine in x), keeps per-row buffers of source offsets
/// and weights (O(width) memory, never a full-size grid), then resamples every channel from them.

#include "crossview/warp/detail/warp_common.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace crossview::detail {

/// Rows per at::parallel_for task: enough pixels per task to amortise its start.
inline int64_t warp_grain_rows(int64_t out_w) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(1, out_w)); }

/// Bilinear warp of `batch` images [C, H, W] (contiguous) into [C, out_h, out_w] each, sampling
/// destination pixel (x, y) at H_src_dst * (x, y, 1). Taps outside the source contribute 0
/// (OpenCV's BORDER_CONSTANT); w <= 0 gives 0. `valid` (may be null) receives, per destination
/// pixel, w > 0 && 0 <= sx <= W-1 && 0 <= sy <= H-1. uint8 results are rounded to nearest and
/// saturated; float and double are interpolated in their own precision (uint8 in float).
template <typename scalar_t>
void warp_image_cpu_kernel(const scalar_t* src, int64_t batch, int64_t channels, int64_t src_h, int64_t src_w,
                           const InverseHomographies& inv, scalar_t* dst, bool* valid, int64_t out_h, int64_t out_w) {
  using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  const int64_t src_plane = src_h * src_w;
  const int64_t dst_plane = out_h * out_w;
  const double max_x = double(src_w - 1), max_y = double(src_h - 1);
  at::parallel_for(0, batch * out_h, warp_grain_rows(out_w * channels), [&](int64_t begin, int64_t end) {
    // Per pixel: offset of tap (x0, y0) in the source plane, kind (0: fill, 1: all four taps
    // inside, 2: some taps outside), and the fractional weights.
    std::vector<int64_t> offset(static_cast<size_t>(out_w));
    std::vector<int32_t> x0s(static_cast<size_t>(out_w)), y0s(static_cast<size_t>(out_w));
    std::vector<uint8_t> kind(static_cast<size_t>(out_w));
    std::vector<acc_t> fxs(static_cast<size_t>(out_w)), fys(static_cast<size_t>(out_w));
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / out_h;
      const int64_t y = row % out_h;
      const double* M = inv.of(n);
      const double u0 = M[1] * double(y) + M[2];
      const double v0 = M[4] * double(y) + M[5];
      const double w0 = M[7] * double(y) + M[8];
      bool* valid_row = valid ? valid + n * dst_plane + y * out_w : nullptr;
      for (int64_t x = 0; x < out_w; ++x) {
        const double w = w0 + M[6] * double(x);
        const double sx = (u0 + M[0] * double(x)) / w;
        const double sy = (v0 + M[3] * double(x)) / w;
        // "Some tap inside" is -1 < s < size; the comparisons are false for NaN.
        const bool near = w > 0 && sx > -1.0 && sx < double(src_w) && sy > -1.0 && sy < double(src_h);
        if (valid_row) valid_row[x] = w > 0 && sx >= 0.0 && sx <= max_x && sy >= 0.0 && sy <= max_y;
        if (!near) {
          kind[size_t(x)] = 0;
          continue;
        }
        // s > -1, so truncation of s + 1 is floor(s) + 1.
        const int32_t x0 = int32_t(sx + 1.0) - 1;
        const int32_t y0 = int32_t(sy + 1.0) - 1;
        x0s[size_t(x)] = x0;
        y0s[size_t(x)] = y0;
        fxs[size_t(x)] = acc_t(sx - double(x0));
        fys[size_t(x)] = acc_t(sy - double(y0));
        offset[size_t(x)] = int64_t(y0) * src_w + x0;
        kind[size_t(x)] = (x0 >= 0 && y0 >= 0 && x0 + 1 < src_w && y0 + 1 < src_h) ? 1 : 2;
      }
      for (int64_t c = 0; c < channels; ++c) {
        const scalar_t* plane = src + (n * channels + c) * src_plane;
        scalar_t* out = dst + (n * channels + c) * dst_plane + y * out_w;
        for (int64_t x = 0; x < out_w; ++x) {
          const size_t i = size_t(x);
          acc_t value;
          if (kind[i] == 1) {
            const scalar_t* p = plane + offset[i];
            const acc_t a = acc_t(p[0]), b = acc_t(p[1]), cc = acc_t(p[src_w]), d = acc_t(p[src_w + 1]);
            const acc_t top = a + (b - a) * fxs[i];
            const acc_t bottom = cc + (d - cc) * fxs[i];
            value = top + (bottom - top) * fys[i];
          } else if (kind[i] == 2) {
            // Border: taps outside the source read the fill value 0.
            const int32_t x0 = x0s[i], y0 = y0s[i];
            auto tap = [&](int32_t xx, int32_t yy) {
              return (xx >= 0 && yy >= 0 && xx < src_w && yy < src_h) ? acc_t(plane[int64_t(yy) * src_w + xx])
                                                                       : acc_t(0);
            };
            const acc_t a = tap(x0, y0), b = tap(x0 + 1, y0), cc = tap(x0, y0 + 1), d = tap(x0 + 1, y0 + 1);
            const acc_t top = a + (b - a) * fxs[i];
            const acc_t bottom = cc + (d - cc) * fxs[i];
            value = top + (bottom - top) * fys[i];
          } else {
            value = acc_t(0);
          }
          if constexpr (std::is_same_v<scalar_t, uint8_t>) {
            // Round to nearest and saturate (values are >= 0 up to rounding error).
            const int32_t r = int32_t(value + acc_t(0.5));
            out[x] = uint8_t(std::min<int32_t>(std::max<int32_t>(r, 0), 255));
          } else {
            out[x] = scalar_t(value);
          }
        }
      }
    }
  });
}

/// Nearest-neighbour warp of `batch` label maps [H, W] (contiguous) into [out_h, out_w] each:
/// destination pixel (x, y) takes the source pixel (round(sx), round(sy)) (round half to even, as
/// OpenCV's INTER_NEAREST) when w > 0 and that pixel exists, else `ignore_index`. `valid` (may be
/// null) receives whether the destination pixel took a source label.
template <typename label_t>
void warp_labels_cpu_kernel(const label_t* src, int64_t batch, int64_t src_h, int64_t src_w,
                            const InverseHomographies& inv, label_t* dst, bool* valid, int64_t out_h, int64_t out_w,
                            label_t ignore_index) {
  const int64_t src_plane = src_h * src_w;
  const int64_t dst_plane = out_h * out_w;
  at::parallel_for(0, batch * out_h, warp_grain_rows(out_w), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / out_h;
      const int64_t y = row % out_h;
      const double* M = inv.of(n);
      const double u0 = M[1] * double(y) + M[2];
      const double v0 = M[4] * double(y) + M[5];
      const double w0 = M[7] * double(y) + M[8];
      const label_t* plane = src + n * src_plane;
      label_t* out = dst + n * dst_plane + y * out_w;
      bool* valid_row = valid ? valid + n * dst_plane + y * out_w : nullptr;
      for (int64_t x = 0; x < out_w; ++x) {
        const double w = w0 + M[6] * double(x);
        const double sx = (u0 + M[0] * double(x)) / w;
        const double sy = (v0 + M[3] * double(x)) / w;
        bool inside = w > 0 && sx > -1.0 && sx < double(src_w) && sy > -1.0 && sy < double(src_h);
        int64_t ix = 0, iy = 0;
        if (inside) {
          ix = int64_t(round_half_even(sx));
          iy = int64_t(round_half_even(sy));
          inside = ix >= 0 && iy >= 0 && ix < src_w && iy < src_h;
        }
        out[x] = inside ? plane[iy * src_w + ix] : ignore_index;
        if (valid_row) valid_row[x] = inside;
      }
    }
  });
}

}  // namespace crossview::detail
