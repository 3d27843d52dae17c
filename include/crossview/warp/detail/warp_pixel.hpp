#pragma once
/// \file
/// The portable per-pixel functions of the CPU warp kernels: one row's source coordinates, the
/// bilinear sample of one image pixel in all channels and the nearest sample of one label pixel.
/// The SIMD row functions (warp_kernel_cpu.hpp, warp_kernel_avx2.hpp) fall back to them where a
/// group of pixels has taps outside the source, and they are the reference the SIMD paths follow.

#include "crossview/warp/detail/warp_common.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace crossview::detail {

/// Source coordinates of one output row, computed from the row's homogeneous start (u0, v0, w0)
/// with per-pixel steps (M[0], M[3], M[6]); one division per pixel. Writes sx, sy and w (the
/// point is behind the camera where w <= 0). Branch-free with an int32 counter, so the compiler
/// vectorises it (SSE2 has no int64 -> double conversion).
inline void warp_row_coordinates(const double* M, double y, int64_t out_w, double* __restrict sx,
                                 double* __restrict sy, double* __restrict ws) {
  const double m0 = M[0], m3 = M[3], m6 = M[6];
  const double u0 = M[1] * y + M[2];
  const double v0 = M[4] * y + M[5];
  const double w0 = M[7] * y + M[8];
  const int32_t n = int32_t(out_w);
  for (int32_t x = 0; x < n; ++x) {
    const double xd = double(x);
    const double w = w0 + m6 * xd;
    const double inv = 1.0 / w;
    sx[x] = (u0 + m0 * xd) * inv;
    sy[x] = (v0 + m3 * xd) * inv;
    ws[x] = w;
  }
}

/// uint8 results: round to nearest; interpolated uint8 values lie in [0, 255] up to rounding
/// error (-tiny + 0.5 truncates to 0; 255.5 is clamped).
template <typename scalar_t, typename acc_t>
inline scalar_t warp_store(acc_t value) {
  if constexpr (std::is_same_v<scalar_t, uint8_t>) {
    return uint8_t(std::min<int32_t>(int32_t(value + acc_t(0.5)), 255));
  } else {
    return scalar_t(value);
  }
}

/// The planes of one image and one output row, shared by the per-pixel functions.
template <typename scalar_t>
struct WarpRow {
  const scalar_t* const* planes;  ///< [channels] source planes (H x W, contiguous)
  scalar_t* const* outs;          ///< [channels] output rows
  int64_t channels, src_h, src_w;
};

/// Bilinear sample of output pixel x at source (sx, sy) (w > 0 given by `front`), all channels:
/// (a w00 + b w01) + (c w10 + d w11) with w00 = (1-fx)(1-fy), w01 = fx(1-fy), w10 = (1-fx)fy,
/// w11 = fx fy. Taps outside the source read 0 (BORDER_CONSTANT). Reference for the SIMD path: it
/// performs the same float operations in the same order, so both give bit-identical results.
template <typename scalar_t>
inline void warp_pixel(const WarpRow<scalar_t>& r, int64_t x, double sx, double sy, bool front) {
  using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  // "Some tap inside" is -1 < s < size; the comparisons are false for NaN.
  if (!(front && sx > -1.0 && sx < double(r.src_w) && sy > -1.0 && sy < double(r.src_h))) {
    for (int64_t c = 0; c < r.channels; ++c) r.outs[c][x] = scalar_t(0);
    return;
  }
  // s > -1, so truncation of s + 1 is floor(s) + 1.
  const int32_t x0 = int32_t(sx + 1.0) - 1;
  const int32_t y0 = int32_t(sy + 1.0) - 1;
  const acc_t fx = acc_t(sx - double(x0));
  const acc_t fy = acc_t(sy - double(y0));
  // The four bilinear weights, shared by the channels (w00 = 1 exactly at integer positions).
  const acc_t w00 = (acc_t(1) - fx) * (acc_t(1) - fy), w01 = fx * (acc_t(1) - fy);
  const acc_t w10 = (acc_t(1) - fx) * fy, w11 = fx * fy;
  const bool interior = x0 >= 0 && y0 >= 0 && x0 + 1 < r.src_w && y0 + 1 < r.src_h;
  for (int64_t c = 0; c < r.channels; ++c) {
    const scalar_t* plane = r.planes[c];
    auto tap = [&](int32_t xx, int32_t yy) {
      return (interior || (xx >= 0 && yy >= 0 && xx < r.src_w && yy < r.src_h))
                 ? acc_t(plane[int64_t(yy) * r.src_w + xx])
                 : acc_t(0);
    };
    const acc_t a = tap(x0, y0), b = tap(x0 + 1, y0), cc = tap(x0, y0 + 1), d = tap(x0 + 1, y0 + 1);
    r.outs[c][x] = warp_store<scalar_t>((a * w00 + b * w01) + (cc * w10 + d * w11));
  }
}

/// Nearest sample of label pixel x at source (sx, sy) (w > 0 given by `front`): the source
/// pixel (round(sx), round(sy)) (round half to even, as OpenCV's INTER_NEAREST) when it exists,
/// else `ignore_index`; `valid_row` (may be null) receives whether it existed.
template <typename label_t>
inline void warp_label_pixel(const label_t* plane, int64_t src_h, int64_t src_w, int64_t x, double sx, double sy,
                             bool front, label_t* out, bool* valid_row, label_t ignore_index) {
  // The comparisons are false for NaN; the bounds keep the rounded value within int64.
  bool inside = front && sx > -1.0 && sx < double(src_w) && sy > -1.0 && sy < double(src_h);
  int64_t ix = 0, iy = 0;
  if (inside) {
    ix = int64_t(round_half_even(sx));
    iy = int64_t(round_half_even(sy));
    inside = ix >= 0 && iy >= 0 && ix < src_w && iy < src_h;
  }
  out[x] = inside ? plane[iy * src_w + ix] : ignore_index;
  if (valid_row) valid_row[x] = inside;
}

}  // namespace crossview::detail
