#pragma once
/// \file
/// AVX2 row functions of the CPU warp kernels, compiled for AVX2 + FMA with GCC/Clang's target
/// attribute and chosen at run time (warp_isa()), so a portable build still uses them on CPUs that
/// have them. Eight destination pixels per step: their source coordinates in double (the same
/// homogeneous division as the portable path), then, when all their taps lie inside the source,
/// the taps are gathered with AVX2 gathers and interpolated in float; other groups fall back to
/// the portable per-pixel functions. Results agree with the portable path up to float rounding
/// (FMA contraction), checked by tests/warp.

#include "crossview/warp/detail/warp_common.hpp"
#include "crossview/warp/detail/warp_pixel.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define CROSSVIEW_WARP_AVX2 1
#define CROSSVIEW_TARGET_AVX2 __attribute__((target("avx2,fma")))
#include <immintrin.h>
#else
#define CROSSVIEW_WARP_AVX2 0
#endif

namespace crossview::detail {

/// Instruction sets the CPU warp kernels can use.
enum class WarpIsa { portable, avx2 };

/// The override set by set_warp_isa (-1: none).
inline std::atomic<int>& warp_isa_override() {
  static std::atomic<int> value{-1};
  return value;
}

/// What the running CPU supports (AVX2 and FMA), or the override. The environment variable
/// CROSSVIEW_WARP_ISA=portable disables the AVX2 path (for comparisons and debugging).
inline WarpIsa warp_isa() {
  const int forced = warp_isa_override().load(std::memory_order_relaxed);
  if (forced >= 0) return WarpIsa(forced);
#if CROSSVIEW_WARP_AVX2
  static const WarpIsa detected = [] {
    const char* env = std::getenv("CROSSVIEW_WARP_ISA");
    if (env && std::strcmp(env, "portable") == 0) return WarpIsa::portable;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? WarpIsa::avx2 : WarpIsa::portable;
  }();
  return detected;
#else
  return WarpIsa::portable;
#endif
}

/// Forces the kernels' instruction set (tests compare the paths); returns the previous override.
/// Asking for AVX2 on a CPU without it selects the portable path.
inline void set_warp_isa(WarpIsa isa) {
#if CROSSVIEW_WARP_AVX2
  if (isa == WarpIsa::avx2 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    isa = WarpIsa::portable;
  }
#endif
  warp_isa_override().store(int(isa), std::memory_order_relaxed);
}

/// Removes the override of set_warp_isa.
inline void reset_warp_isa() { warp_isa_override().store(-1, std::memory_order_relaxed); }

/// The affine parts of one output row's homogeneous source coordinates: (u, v, w) =
/// (u0, v0, w0) + x (m0, m3, m6).
struct RowAffine {
  double u0, v0, w0, m0, m3, m6;
  RowAffine(const double* M, double y)
      : u0(M[1] * y + M[2]), v0(M[4] * y + M[5]), w0(M[7] * y + M[8]), m0(M[0]), m3(M[3]), m6(M[6]) {}
  /// Source position (sx, sy) and w of destination pixel x, one pixel at a time (the rows' tails).
  void source(int64_t x, double& sx, double& sy, double& w) const {
    const double xd = double(x);
    w = w0 + m6 * xd;
    const double inv = 1.0 / w;
    sx = (u0 + m0 * xd) * inv;
    sy = (v0 + m3 * xd) * inv;
  }
};

#if CROSSVIEW_WARP_AVX2

namespace avx2 {

/// Source coordinates of four consecutive destination pixels xd (as doubles).
struct Coords4 {
  __m256d x, y, w;
};

CROSSVIEW_TARGET_AVX2 inline Coords4 coords4(const RowAffine& a, __m256d xd) {
  const __m256d w = _mm256_add_pd(_mm256_set1_pd(a.w0), _mm256_mul_pd(_mm256_set1_pd(a.m6), xd));
  const __m256d inv = _mm256_div_pd(_mm256_set1_pd(1.0), w);
  const __m256d u = _mm256_add_pd(_mm256_set1_pd(a.u0), _mm256_mul_pd(_mm256_set1_pd(a.m0), xd));
  const __m256d v = _mm256_add_pd(_mm256_set1_pd(a.v0), _mm256_mul_pd(_mm256_set1_pd(a.m3), xd));
  return Coords4{_mm256_mul_pd(u, inv), _mm256_mul_pd(v, inv), w};
}

/// Bit k set where lane k has w > 0 and lo_x <= x < hi_x and lo_y <= y < hi_y.
CROSSVIEW_TARGET_AVX2 inline int inside_mask(const Coords4& c, __m256d hi_x, __m256d hi_y) {
  const __m256d zero = _mm256_setzero_pd();
  const __m256d in_x = _mm256_and_pd(_mm256_cmp_pd(c.x, zero, _CMP_GE_OQ), _mm256_cmp_pd(c.x, hi_x, _CMP_LT_OQ));
  const __m256d in_y = _mm256_and_pd(_mm256_cmp_pd(c.y, zero, _CMP_GE_OQ), _mm256_cmp_pd(c.y, hi_y, _CMP_LT_OQ));
  return _mm256_movemask_pd(_mm256_and_pd(_mm256_cmp_pd(c.w, zero, _CMP_GT_OQ), _mm256_and_pd(in_x, in_y)));
}

/// floor of 8 non-negative coordinates (two halves) as int32, and their fractions in float.
CROSSVIEW_TARGET_AVX2 inline void floor_fraction(__m256d lo, __m256d hi, __m256i& index, __m256& fraction) {
  const __m128i i_lo = _mm256_cvttpd_epi32(lo), i_hi = _mm256_cvttpd_epi32(hi);
  index = _mm256_set_m128i(i_hi, i_lo);
  fraction = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_sub_pd(hi, _mm256_cvtepi32_pd(i_hi))),
                             _mm256_cvtpd_ps(_mm256_sub_pd(lo, _mm256_cvtepi32_pd(i_lo))));
}

/// Two bytes from any address, as the low 16 bits of an int.
inline int load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return int(v);
}

/// (p[a], p[a+1], p[b], p[b+1]) with two 64-bit loads.
CROSSVIEW_TARGET_AVX2 inline __m128 load_pairs(const float* p, int32_t a, int32_t b) {
  const __m128 lo = _mm_loadl_pi(_mm_setzero_ps(), reinterpret_cast<const __m64*>(p + a));
  return _mm_loadh_pi(lo, reinterpret_cast<const __m64*>(p + b));
}

/// One output row of a uint8 or float32 image: eight pixels per step, all channels. `valid_row`
/// (may be null) receives w > 0 && 0 <= sx <= W-1 && 0 <= sy <= H-1 per pixel. Needs
/// src_h * src_w < 2^31 (int32 offsets).
template <typename scalar_t>
CROSSVIEW_TARGET_AVX2 void warp_image_row(const WarpRow<scalar_t>& r, const double* M, double y, int64_t out_w,
                                          bool* valid_row) {
  static_assert(std::is_same_v<scalar_t, uint8_t> || std::is_same_v<scalar_t, float>, "uint8 or float32 only");
  const RowAffine a(M, y);
  const int64_t src_w = r.src_w;
  const double max_x = double(src_w - 1), max_y = double(r.src_h - 1);
  // Fast groups: every tap inside (x0 + 1 <= W-1 and y0 + 1 <= H-1).
  const __m256d hi_x = _mm256_set1_pd(max_x), hi_y = _mm256_set1_pd(max_y);
  const __m256i stride = _mm256_set1_epi32(int32_t(src_w));
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256d xd = _mm256_setr_pd(0.0, 1.0, 2.0, 3.0);
  const __m256d four = _mm256_set1_pd(4.0);
  int64_t x = 0;
  for (; x + 8 <= out_w; x += 8) {
    const Coords4 lo = coords4(a, xd);
    xd = _mm256_add_pd(xd, four);
    const Coords4 hi = coords4(a, xd);
    xd = _mm256_add_pd(xd, four);
    if ((inside_mask(lo, hi_x, hi_y) & inside_mask(hi, hi_x, hi_y)) != 0xF) {
      alignas(32) double px[8], py[8], pw[8];
      _mm256_store_pd(px, lo.x);
      _mm256_store_pd(px + 4, hi.x);
      _mm256_store_pd(py, lo.y);
      _mm256_store_pd(py + 4, hi.y);
      _mm256_store_pd(pw, lo.w);
      _mm256_store_pd(pw + 4, hi.w);
      for (int k = 0; k < 8; ++k) {
        warp_pixel(r, x + k, px[k], py[k], pw[k] > 0);
        if (valid_row) {
          valid_row[x + k] = pw[k] > 0 && px[k] >= 0.0 && px[k] <= max_x && py[k] >= 0.0 && py[k] <= max_y;
        }
      }
      continue;
    }
    if (valid_row) std::memset(valid_row + x, 1, 8);
    __m256i ix, iy;
    __m256 fx, fy;
    floor_fraction(lo.x, hi.x, ix, fx);
    floor_fraction(lo.y, hi.y, iy, fy);
    const __m256i offset = _mm256_add_epi32(_mm256_mullo_epi32(iy, stride), ix);
    alignas(32) int32_t off[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(off), offset);
    // The four bilinear weights, shared by the channels, as in warp_pixel.
    const __m256 rx = _mm256_sub_ps(one, fx), ry = _mm256_sub_ps(one, fy);
    const __m256 k00 = _mm256_mul_ps(rx, ry), k01 = _mm256_mul_ps(fx, ry);
    const __m256 k10 = _mm256_mul_ps(rx, fy), k11 = _mm256_mul_ps(fx, fy);
    for (int64_t c = 0; c < r.channels; ++c) {
      const scalar_t* plane = r.planes[c];
      __m256 t00, t01, t10, t11;
      if constexpr (std::is_same_v<scalar_t, uint8_t>) {
        // Bytes (p[0], p[1]) of the top and bottom rows as one 16-bit load each (x86 is
        // little-endian: p[0] is the low byte), inserted into two registers of eight 16-bit lanes.
        const uint8_t* bottom_plane = plane + src_w;
        __m128i top = _mm_cvtsi32_si128(load_u16(plane + off[0]));
        __m128i bottom = _mm_cvtsi32_si128(load_u16(bottom_plane + off[0]));
        top = _mm_insert_epi16(top, load_u16(plane + off[1]), 1);
        bottom = _mm_insert_epi16(bottom, load_u16(bottom_plane + off[1]), 1);
        top = _mm_insert_epi16(top, load_u16(plane + off[2]), 2);
        bottom = _mm_insert_epi16(bottom, load_u16(bottom_plane + off[2]), 2);
        top = _mm_insert_epi16(top, load_u16(plane + off[3]), 3);
        bottom = _mm_insert_epi16(bottom, load_u16(bottom_plane + off[3]), 3);
        top = _mm_insert_epi16(top, load_u16(plane + off[4]), 4);
        bottom = _mm_insert_epi16(bottom, load_u16(bottom_plane + off[4]), 4);
        top = _mm_insert_epi16(top, load_u16(plane + off[5]), 5);
        bottom = _mm_insert_epi16(bottom, load_u16(bottom_plane + off[5]), 5);
        top = _mm_insert_epi16(top, load_u16(plane + off[6]), 6);
        bottom = _mm_insert_epi16(bottom, load_u16(bottom_plane + off[6]), 6);
        top = _mm_insert_epi16(top, load_u16(plane + off[7]), 7);
        bottom = _mm_insert_epi16(bottom, load_u16(bottom_plane + off[7]), 7);
        const __m128i byte = _mm_set1_epi16(0xFF);
        t00 = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_and_si128(top, byte)));
        t01 = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_srli_epi16(top, 8)));
        t10 = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_and_si128(bottom, byte)));
        t11 = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_srli_epi16(bottom, 8)));
      } else {
        // (p[0], p[1]) of two pixels per 128-bit register (one 64-bit load each), de-interleaved
        // into the left and right taps.
        const float* bottom_plane = plane + src_w;
        const __m128 t01_ = load_pairs(plane, off[0], off[1]), t23 = load_pairs(plane, off[2], off[3]);
        const __m128 t45 = load_pairs(plane, off[4], off[5]), t67 = load_pairs(plane, off[6], off[7]);
        const __m128 b01 = load_pairs(bottom_plane, off[0], off[1]), b23 = load_pairs(bottom_plane, off[2], off[3]);
        const __m128 b45 = load_pairs(bottom_plane, off[4], off[5]), b67 = load_pairs(bottom_plane, off[6], off[7]);
        const __m256 top_03 = _mm256_set_m128(t23, t01_), top_47 = _mm256_set_m128(t67, t45);
        const __m256 bot_03 = _mm256_set_m128(b23, b01), bot_47 = _mm256_set_m128(b67, b45);
        // Lanes (p0 q0 | r0 t0) of each half: shuffle within 128-bit halves, then restore order.
        const __m256 top_left = _mm256_shuffle_ps(top_03, top_47, _MM_SHUFFLE(2, 0, 2, 0));
        const __m256 top_right = _mm256_shuffle_ps(top_03, top_47, _MM_SHUFFLE(3, 1, 3, 1));
        const __m256 bot_left = _mm256_shuffle_ps(bot_03, bot_47, _MM_SHUFFLE(2, 0, 2, 0));
        const __m256 bot_right = _mm256_shuffle_ps(bot_03, bot_47, _MM_SHUFFLE(3, 1, 3, 1));
        // shuffle_ps gives pixels (0 1 4 5 | 2 3 6 7); permute to (0 .. 7).
        const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
        t00 = _mm256_permutevar8x32_ps(top_left, order);
        t01 = _mm256_permutevar8x32_ps(top_right, order);
        t10 = _mm256_permutevar8x32_ps(bot_left, order);
        t11 = _mm256_permutevar8x32_ps(bot_right, order);
      }
      const __m256 value = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(t00, k00), _mm256_mul_ps(t01, k01)),
                                         _mm256_add_ps(_mm256_mul_ps(t10, k10), _mm256_mul_ps(t11, k11)));
      scalar_t* out = r.outs[c] + x;
      if constexpr (std::is_same_v<scalar_t, uint8_t>) {
        // Round to nearest (value >= 0: + 0.5, truncate) and saturate to 255.
        const __m256i q = _mm256_cvttps_epi32(_mm256_add_ps(value, _mm256_set1_ps(0.5f)));
        const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(q16, q16));
      } else {
        _mm256_storeu_ps(out, value);
      }
    }
  }
  for (; x < out_w; ++x) {
    double sx, sy, w;
    a.source(x, sx, sy, w);
    warp_pixel(r, x, sx, sy, w > 0);
    if (valid_row) valid_row[x] = w > 0 && sx >= 0.0 && sx <= max_x && sy >= 0.0 && sy <= max_y;
  }
}

/// One output row of a label map (nearest, round half to even): eight pixels per step; the
/// labels themselves are read with scalar loads from the computed offsets. Needs
/// src_h * src_w < 2^31.
template <typename label_t>
CROSSVIEW_TARGET_AVX2 void warp_labels_row(const label_t* plane, int64_t src_h, int64_t src_w, const double* M,
                                           double y, int64_t out_w, label_t* out, bool* valid_row,
                                           label_t ignore_index) {
  const RowAffine a(M, y);
  const __m256d zero = _mm256_setzero_pd();
  const __m256d last_x = _mm256_set1_pd(double(src_w - 1)), last_y = _mm256_set1_pd(double(src_h - 1));
  const __m128i stride = _mm_set1_epi32(int32_t(src_w));
  __m256d xd = _mm256_setr_pd(0.0, 1.0, 2.0, 3.0);
  const __m256d four = _mm256_set1_pd(4.0);
  int64_t x = 0;
  for (; x + 4 <= out_w; x += 4) {
    const Coords4 c = coords4(a, xd);
    xd = _mm256_add_pd(xd, four);
    // Round half to even (the default rounding mode), as round_half_even and OpenCV.
    const __m256d rx = _mm256_round_pd(c.x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256d ry = _mm256_round_pd(c.y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256d in_x = _mm256_and_pd(_mm256_cmp_pd(rx, zero, _CMP_GE_OQ), _mm256_cmp_pd(rx, last_x, _CMP_LE_OQ));
    const __m256d in_y = _mm256_and_pd(_mm256_cmp_pd(ry, zero, _CMP_GE_OQ), _mm256_cmp_pd(ry, last_y, _CMP_LE_OQ));
    const int mask = _mm256_movemask_pd(_mm256_and_pd(_mm256_cmp_pd(c.w, zero, _CMP_GT_OQ), _mm256_and_pd(in_x, in_y)));
    // Lanes outside may hold anything (even NaN -> INT_MIN); they are never read.
    const __m128i offset = _mm_add_epi32(_mm_mullo_epi32(_mm256_cvttpd_epi32(ry), stride), _mm256_cvttpd_epi32(rx));
    alignas(16) int32_t off[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(off), offset);
    for (int k = 0; k < 4; ++k) out[x + k] = (mask >> k) & 1 ? plane[off[k]] : ignore_index;
    if (valid_row) {
      for (int k = 0; k < 4; ++k) valid_row[x + k] = (mask >> k) & 1;
    }
  }
  for (; x < out_w; ++x) {
    double sx, sy, w;
    a.source(x, sx, sy, w);
    warp_label_pixel(plane, src_h, src_w, x, sx, sy, w > 0, out, valid_row, ignore_index);
  }
}

}  // namespace avx2

#endif  // CROSSVIEW_WARP_AVX2

}  // namespace crossview::detail
