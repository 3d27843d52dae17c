#pragma once
/// \file
/// CPU kernels of warp_image (bilinear) and warp_labels (nearest). Rows of the output are split
/// across threads with at::parallel_for; each row computes its homogeneous source coordinates
/// incrementally from the row start (u, v, w affine in x; O(width) memory, never a full-size
/// grid), then resamples every channel of its pixels. Rows run the AVX2 row functions
/// (warp_kernel_avx2.hpp) where the CPU has AVX2, else SSE2 or the portable per-pixel functions.

#include "crossview/warp/detail/warp_common.hpp"
#include "crossview/warp/detail/warp_kernel_avx2.hpp"
#include "crossview/warp/detail/warp_pixel.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace crossview::detail {

/// Rows per at::parallel_for task: enough pixels per task to amortise its start.
inline int64_t warp_grain_rows(int64_t out_w) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(1, out_w)); }

#if defined(__SSE2__)
/// One output row of uint8 or float32 images with SSE2: four pixels per step. A group whose
/// sixteen taps are all inside the source (the common case) is interpolated in vector registers,
/// with the same float operations as warp_pixel; other groups go through warp_pixel.
template <typename scalar_t>
void warp_row_sse2(const WarpRow<scalar_t>& r, const double* M, double y, int64_t out_w) {
  static_assert(std::is_same_v<scalar_t, uint8_t> || std::is_same_v<scalar_t, float>, "uint8 or float32 only");
  const __m128d zero = _mm_setzero_pd();
  const __m128d last_x = _mm_set1_pd(double(r.src_w - 1)), last_y = _mm_set1_pd(double(r.src_h - 1));
  // The coordinates of warp_row_coordinates, in registers (same operations, same order).
  const __m128d m0 = _mm_set1_pd(M[0]), m3 = _mm_set1_pd(M[3]), m6 = _mm_set1_pd(M[6]);
  const __m128d u0 = _mm_set1_pd(M[1] * y + M[2]), v0 = _mm_set1_pd(M[4] * y + M[5]);
  const __m128d w0 = _mm_set1_pd(M[7] * y + M[8]), one = _mm_set1_pd(1.0);
  const int64_t src_w = r.src_w;
  int64_t x = 0;
  __m128d xd01 = _mm_setr_pd(0.0, 1.0);
  const __m128d two = _mm_set1_pd(2.0);
  for (; x + 4 <= out_w; x += 4) {
    const __m128d xd23 = _mm_add_pd(xd01, two);
    const __m128d w01 = _mm_add_pd(w0, _mm_mul_pd(m6, xd01)), w23 = _mm_add_pd(w0, _mm_mul_pd(m6, xd23));
    const __m128d i01 = _mm_div_pd(one, w01), i23 = _mm_div_pd(one, w23);
    const __m128d x01 = _mm_mul_pd(_mm_add_pd(u0, _mm_mul_pd(m0, xd01)), i01);
    const __m128d x23 = _mm_mul_pd(_mm_add_pd(u0, _mm_mul_pd(m0, xd23)), i23);
    const __m128d y01 = _mm_mul_pd(_mm_add_pd(v0, _mm_mul_pd(m3, xd01)), i01);
    const __m128d y23 = _mm_mul_pd(_mm_add_pd(v0, _mm_mul_pd(m3, xd23)), i23);
    xd01 = _mm_add_pd(xd23, two);
    // All four taps inside: w > 0, 0 <= sx < W-1, 0 <= sy < H-1.
    auto inside = [&](__m128d px, __m128d py, __m128d w) {
      const __m128d in_x = _mm_and_pd(_mm_cmpge_pd(px, zero), _mm_cmplt_pd(px, last_x));
      const __m128d in_y = _mm_and_pd(_mm_cmpge_pd(py, zero), _mm_cmplt_pd(py, last_y));
      return _mm_movemask_pd(_mm_and_pd(_mm_cmpgt_pd(w, zero), _mm_and_pd(in_x, in_y)));
    };
    if ((inside(x01, y01, w01) & inside(x23, y23, w23)) != 3) {
      alignas(16) double px[4], py[4], pw[4];
      _mm_store_pd(px, x01);
      _mm_store_pd(px + 2, x23);
      _mm_store_pd(py, y01);
      _mm_store_pd(py + 2, y23);
      _mm_store_pd(pw, w01);
      _mm_store_pd(pw + 2, w23);
      for (int k = 0; k < 4; ++k) warp_pixel(r, x + k, px[k], py[k], pw[k] > 0);
      continue;
    }
    // s >= 0: truncation is floor.
    const __m128i ix01 = _mm_cvttpd_epi32(x01), ix23 = _mm_cvttpd_epi32(x23);
    const __m128i iy01 = _mm_cvttpd_epi32(y01), iy23 = _mm_cvttpd_epi32(y23);
    const __m128 wx = _mm_movelh_ps(_mm_cvtpd_ps(_mm_sub_pd(x01, _mm_cvtepi32_pd(ix01))),
                                    _mm_cvtpd_ps(_mm_sub_pd(x23, _mm_cvtepi32_pd(ix23))));
    const __m128 wy = _mm_movelh_ps(_mm_cvtpd_ps(_mm_sub_pd(y01, _mm_cvtepi32_pd(iy01))),
                                    _mm_cvtpd_ps(_mm_sub_pd(y23, _mm_cvtepi32_pd(iy23))));
    const __m128 one_f = _mm_set1_ps(1.0f);
    const __m128 rx = _mm_sub_ps(one_f, wx), ry = _mm_sub_ps(one_f, wy);
    const __m128 k00 = _mm_mul_ps(rx, ry), k01 = _mm_mul_ps(wx, ry);
    const __m128 k10 = _mm_mul_ps(rx, wy), k11 = _mm_mul_ps(wx, wy);
    alignas(16) int32_t xi[4], yi[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(xi), _mm_unpacklo_epi64(ix01, ix23));
    _mm_store_si128(reinterpret_cast<__m128i*>(yi), _mm_unpacklo_epi64(iy01, iy23));
    int64_t off[4];
    for (int k = 0; k < 4; ++k) off[k] = int64_t(yi[k]) * src_w + xi[k];
    for (int64_t c = 0; c < r.channels; ++c) {
      const scalar_t* plane = r.planes[c];
      __m128 a, b, cc, d;
      if constexpr (std::is_same_v<scalar_t, uint8_t>) {
        // (p[0], p[1]) of the four pixels in 16-bit lanes 0-3 and (p[W], p[W+1]) in lanes 4-7,
        // one 16-bit load each (x86 is little-endian: p[0] is the low byte).
        auto load16 = [](const uint8_t* q) {
          uint16_t v;
          std::memcpy(&v, q, 2);
          return int(v);
        };
        // Two independent insert chains (top and bottom rows), merged.
        __m128i top = _mm_cvtsi32_si128(load16(plane + off[0]));
        __m128i bottom = _mm_cvtsi32_si128(load16(plane + off[0] + src_w));
        top = _mm_insert_epi16(top, load16(plane + off[1]), 1);
        bottom = _mm_insert_epi16(bottom, load16(plane + off[1] + src_w), 1);
        top = _mm_insert_epi16(top, load16(plane + off[2]), 2);
        bottom = _mm_insert_epi16(bottom, load16(plane + off[2] + src_w), 2);
        top = _mm_insert_epi16(top, load16(plane + off[3]), 3);
        bottom = _mm_insert_epi16(bottom, load16(plane + off[3] + src_w), 3);
        const __m128i taps = _mm_unpacklo_epi64(top, bottom);
        const __m128i left = _mm_and_si128(taps, _mm_set1_epi16(0xFF));  // p[0] (lanes 0-3), p[W] (4-7)
        const __m128i right = _mm_srli_epi16(taps, 8);                    // p[1], p[W+1]
        const __m128i z = _mm_setzero_si128();
        a = _mm_cvtepi32_ps(_mm_unpacklo_epi16(left, z));
        cc = _mm_cvtepi32_ps(_mm_unpackhi_epi16(left, z));
        b = _mm_cvtepi32_ps(_mm_unpacklo_epi16(right, z));
        d = _mm_cvtepi32_ps(_mm_unpackhi_epi16(right, z));
      } else {
        // (p[0], p[1]) of two pixels in one register, then de-interleaved.
        auto pairs = [&](int k, int64_t shift) {
          const __m128 lo = _mm_loadl_pi(_mm_setzero_ps(), reinterpret_cast<const __m64*>(plane + off[k] + shift));
          return _mm_loadh_pi(lo, reinterpret_cast<const __m64*>(plane + off[k + 1] + shift));
        };
        const __m128 t01 = pairs(0, 0), t23 = pairs(2, 0), u01 = pairs(0, src_w), u23 = pairs(2, src_w);
        a = _mm_shuffle_ps(t01, t23, _MM_SHUFFLE(2, 0, 2, 0));
        b = _mm_shuffle_ps(t01, t23, _MM_SHUFFLE(3, 1, 3, 1));
        cc = _mm_shuffle_ps(u01, u23, _MM_SHUFFLE(2, 0, 2, 0));
        d = _mm_shuffle_ps(u01, u23, _MM_SHUFFLE(3, 1, 3, 1));
      }
      const __m128 value = _mm_add_ps(_mm_add_ps(_mm_mul_ps(a, k00), _mm_mul_ps(b, k01)),
                                      _mm_add_ps(_mm_mul_ps(cc, k10), _mm_mul_ps(d, k11)));
      scalar_t* out = r.outs[c] + x;
      if constexpr (std::is_same_v<scalar_t, uint8_t>) {
        // Round to nearest (value + 0.5, truncated; value >= 0) and saturate to 255.
        __m128i q = _mm_cvttps_epi32(_mm_add_ps(value, _mm_set1_ps(0.5f)));
        q = _mm_packs_epi32(q, q);
        q = _mm_packus_epi16(q, q);
        const int32_t packed = _mm_cvtsi128_si32(q);
        std::memcpy(out, &packed, 4);
      } else {
        _mm_storeu_ps(out, value);
      }
    }
  }
  const double su0 = M[1] * y + M[2], sv0 = M[4] * y + M[5], sw0 = M[7] * y + M[8];
  for (; x < out_w; ++x) {
    const double xd = double(int32_t(x));
    const double w = sw0 + M[6] * xd;
    const double inv = 1.0 / w;
    warp_pixel(r, x, (su0 + M[0] * xd) * inv, (sv0 + M[3] * xd) * inv, w > 0);
  }
}
#endif

/// Whether warp_image_cpu_kernel has a SIMD row function for this type.
#if defined(__SSE2__)
template <typename scalar_t>
inline constexpr bool kWarpSimd = std::is_same_v<scalar_t, uint8_t> || std::is_same_v<scalar_t, float>;
#else
template <typename scalar_t>
inline constexpr bool kWarpSimd = false;
#endif

/// Bilinear warp of `batch` images [C, H, W] (contiguous) into [C, out_h, out_w] each, sampling
/// destination pixel (x, y) at H_src_dst * (x, y, 1). Taps outside the source contribute 0
/// (OpenCV's BORDER_CONSTANT); w <= 0 gives 0. `valid` (may be null) receives, per destination
/// pixel, w > 0 && 0 <= sx <= W-1 && 0 <= sy <= H-1. uint8 results are rounded to nearest and
/// saturated; float and double are interpolated in their own precision (uint8 in float).
///
/// Per row: the source coordinates (vectorised), then every pixel resampled in all channels
/// (uint8 and float32 four pixels at a time with SSE2 where available).
template <typename scalar_t>
void warp_image_cpu_kernel(const scalar_t* src, int64_t batch, int64_t channels, int64_t src_h, int64_t src_w,
                           const InverseHomographies& inv, scalar_t* dst, bool* valid, int64_t out_h, int64_t out_w) {
  const int64_t src_plane = src_h * src_w;
  const int64_t dst_plane = out_h * out_w;
  const double max_x = double(src_w - 1), max_y = double(src_h - 1);
#if CROSSVIEW_WARP_AVX2
  constexpr bool kAvx2Type = std::is_same_v<scalar_t, uint8_t> || std::is_same_v<scalar_t, float>;
  const bool avx2 = kAvx2Type && warp_isa() == WarpIsa::avx2 && src_plane <= INT32_MAX;
#endif
  at::parallel_for(0, batch * out_h, warp_grain_rows(out_w * channels), [&](int64_t begin, int64_t end) {
    const auto n_w = static_cast<size_t>(out_w);
    std::vector<double> sxs(n_w), sys(n_w), wss(n_w);
    std::vector<const scalar_t*> planes(static_cast<size_t>(channels));
    std::vector<scalar_t*> outs(static_cast<size_t>(channels));
    const WarpRow<scalar_t> r{planes.data(), outs.data(), channels, src_h, src_w};
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / out_h;
      const int64_t y = row % out_h;
      for (int64_t c = 0; c < channels; ++c) {
        planes[size_t(c)] = src + (n * channels + c) * src_plane;
        outs[size_t(c)] = dst + (n * channels + c) * dst_plane + y * out_w;
      }
#if CROSSVIEW_WARP_AVX2
      if constexpr (kAvx2Type) {
        if (avx2) {
          avx2::warp_image_row(r, inv.of(n), double(y), out_w, valid ? valid + n * dst_plane + y * out_w : nullptr);
          continue;
        }
      }
#endif
      const bool simd = kWarpSimd<scalar_t>;
      if (valid || !simd) warp_row_coordinates(inv.of(n), double(y), out_w, sxs.data(), sys.data(), wss.data());
      if (valid) {
        bool* valid_row = valid + n * dst_plane + y * out_w;
        for (int64_t x = 0; x < out_w; ++x) {
          const size_t i = size_t(x);
          valid_row[x] = wss[i] > 0 && sxs[i] >= 0.0 && sxs[i] <= max_x && sys[i] >= 0.0 && sys[i] <= max_y;
        }
      }
#if defined(__SSE2__)
      if constexpr (kWarpSimd<scalar_t>) {
        warp_row_sse2(r, inv.of(n), double(y), out_w);
        continue;
      }
#endif
      for (int64_t x = 0; x < out_w; ++x) warp_pixel(r, x, sxs[size_t(x)], sys[size_t(x)], wss[size_t(x)] > 0);
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
#if CROSSVIEW_WARP_AVX2
  const bool avx2 = warp_isa() == WarpIsa::avx2 && src_plane <= INT32_MAX;
#endif
  at::parallel_for(0, batch * out_h, warp_grain_rows(out_w), [&](int64_t begin, int64_t end) {
    const auto n_w = static_cast<size_t>(out_w);
    std::vector<double> sxs(n_w), sys(n_w), wss(n_w);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / out_h;
      const int64_t y = row % out_h;
#if CROSSVIEW_WARP_AVX2
      if (avx2) {
        avx2::warp_labels_row(src + n * src_plane, src_h, src_w, inv.of(n), double(y), out_w,
                              dst + n * dst_plane + y * out_w, valid ? valid + n * dst_plane + y * out_w : nullptr,
                              ignore_index);
        continue;
      }
#endif
      warp_row_coordinates(inv.of(n), double(y), out_w, sxs.data(), sys.data(), wss.data());
      const label_t* plane = src + n * src_plane;
      label_t* out = dst + n * dst_plane + y * out_w;
      bool* valid_row = valid ? valid + n * dst_plane + y * out_w : nullptr;
      int64_t x = 0;
#if defined(__SSE2__) && !defined(__FAST_MATH__)
      // Two pixels per step: round half to even with the 1.5 * 2^52 trick (as round_half_even),
      // then the same inside test on the rounded position.
      const __m128d magic = _mm_set1_pd(6755399441055744.0), zero = _mm_setzero_pd();
      const __m128d last_x = _mm_set1_pd(double(src_w - 1)), last_y = _mm_set1_pd(double(src_h - 1));
      for (; x + 2 <= out_w; x += 2) {
        const __m128d rx = _mm_sub_pd(_mm_add_pd(_mm_loadu_pd(sxs.data() + x), magic), magic);
        const __m128d ry = _mm_sub_pd(_mm_add_pd(_mm_loadu_pd(sys.data() + x), magic), magic);
        const __m128d in_x = _mm_and_pd(_mm_cmpge_pd(rx, zero), _mm_cmple_pd(rx, last_x));
        const __m128d in_y = _mm_and_pd(_mm_cmpge_pd(ry, zero), _mm_cmple_pd(ry, last_y));
        const int mask =
            _mm_movemask_pd(_mm_and_pd(_mm_cmpgt_pd(_mm_loadu_pd(wss.data() + x), zero), _mm_and_pd(in_x, in_y)));
        const __m128i ix = _mm_cvttpd_epi32(rx), iy = _mm_cvttpd_epi32(ry);
        const int64_t ix0 = _mm_cvtsi128_si32(ix), ix1 = _mm_cvtsi128_si32(_mm_srli_si128(ix, 4));
        const int64_t iy0 = _mm_cvtsi128_si32(iy), iy1 = _mm_cvtsi128_si32(_mm_srli_si128(iy, 4));
        out[x] = (mask & 1) ? plane[iy0 * src_w + ix0] : ignore_index;
        out[x + 1] = (mask & 2) ? plane[iy1 * src_w + ix1] : ignore_index;
        if (valid_row) {
          valid_row[x] = (mask & 1) != 0;
          valid_row[x + 1] = (mask & 2) != 0;
        }
      }
#endif
      for (; x < out_w; ++x) {
        warp_label_pixel(plane, src_h, src_w, x, sxs[size_t(x)], sys[size_t(x)], wss[size_t(x)] > 0, out, valid_row,
                         ignore_index);
      }
    }
  });
}

}  // namespace crossview::detail
