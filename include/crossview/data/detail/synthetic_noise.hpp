#pragma once
/// \file
/// Deterministic hash-based value noise for SyntheticStreet's procedural textures. Everything is a
/// pure function of its arguments and the scene seed, identical on every platform (no std::
/// distributions), so a scene renders the same wherever it is rendered.

#include "crossview/random.hpp"

#include <cmath>
#include <cstdint>

namespace crossview::detail {

/// A value in [0, 1) hashed from an integer lattice point and a seed.
inline double hash01(std::int64_t i, std::int64_t j, std::uint64_t seed) {
  const std::uint64_t h =
      splitmix64(seed + std::uint64_t(i) * 0x632be59bd9b4e019ULL + std::uint64_t(j) * 0xd6e8feb86659fd93ULL);
  return double(h >> 11) * 0x1.0p-53;
}

/// Smooth value noise in [0, 1): lattice values at integer points, smoothstep-interpolated.
inline double value_noise(double x, double y, std::uint64_t seed) {
  const double fx = std::floor(x), fy = std::floor(y);
  const auto ix = std::int64_t(fx), iy = std::int64_t(fy);
  double tx = x - fx, ty = y - fy;
  tx = tx * tx * (3.0 - 2.0 * tx);
  ty = ty * ty * (3.0 - 2.0 * ty);
  const double a = hash01(ix, iy, seed), b = hash01(ix + 1, iy, seed);
  const double c = hash01(ix, iy + 1, seed), d = hash01(ix + 1, iy + 1, seed);
  return (a + (b - a) * tx) + ((c + (d - c) * tx) - (a + (b - a) * tx)) * ty;
}

/// Three octaves of value noise (fractal sum), in [0, 1).
inline double fbm_noise(double x, double y, std::uint64_t seed) {
  return (4.0 * value_noise(x, y, seed) + 2.0 * value_noise(2.03 * x + 17.1, 2.03 * y - 9.2, seed + 1) +
          value_noise(4.11 * x - 3.7, 4.11 * y + 21.3, seed + 2)) /
         7.0;
}

}  // namespace crossview::detail
