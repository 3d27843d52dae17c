#pragma once
/// \file
/// Reproducible random helpers shared by the whole library and its programs: SplitMix64 seed
/// mixing and uniform draws computed from an engine's raw bits. Unlike the std:: distributions,
/// whose algorithms each standard library chooses, every value here is the same on every
/// platform, so a seed names the same views, scenes and batches wherever it is used.
/// Plain C++ (no Eigen, no libtorch).

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace crossview {

/// SplitMix64's finaliser (Steele, Lea, Flood 2014): a bijective mix of 64 bits, so distinct
/// inputs give distinct, well-scattered outputs.
inline constexpr std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// A well-mixed seed for item `index` of stream `stream` of a run seeded with `seed`:
/// splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ index). Makes per-item randomness a pure
/// function of (seed, stream, index), independent of the order in which items are drawn.
inline constexpr std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  return splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ index);
}

/// A double uniform in [0, 1) from the top 53 bits of a uniform random bit generator's output
/// (engines of any power-of-two range: mt19937, mt19937_64, ...).
template <typename URBG>
double uniform01(URBG& rng) {
  using Result = typename URBG::result_type;
  static_assert(std::is_unsigned_v<Result>, "crossview::uniform01: the random engine must produce unsigned integers");
  static_assert(URBG::min() == 0, "crossview::uniform01: the random engine's min() must be 0");
  constexpr auto kMax = URBG::max();
  static_assert((kMax & (kMax + 1)) == 0 || kMax == std::numeric_limits<Result>::max(),
                "crossview::uniform01: the random engine's range must be a power of two (mt19937, mt19937_64, ...)");
  int bits_per_call = 0;
  for (auto m = kMax; m != 0; m >>= 1) ++bits_per_call;
  if (bits_per_call >= 53) {
    return double(std::uint64_t(rng()) >> (bits_per_call - 53)) * 0x1.0p-53;
  }
  // Collect at least 53 random bits from narrower engines.
  std::uint64_t bits = 0;
  int have = 0;
  while (have < 53) {
    bits = (bits << bits_per_call) | std::uint64_t(rng());
    have += bits_per_call;
  }
  bits >>= (have - 53);
  bits &= (std::uint64_t(1) << 53) - 1;
  return double(bits) * 0x1.0p-53;
}

/// Uniform in [-half, half].
template <typename URBG>
double uniform_symmetric(URBG& rng, double half) {
  return half * (2.0 * uniform01(rng) - 1.0);
}

/// Uniform integer in [0, n), the same on every standard library.
/// \throws std::invalid_argument if n <= 0.
template <typename URBG>
std::int64_t uniform_index(URBG& rng, std::int64_t n) {
  if (n <= 0) throw std::invalid_argument("uniform_index: n must be positive, got " + std::to_string(n));
  return std::int64_t(uniform01(rng) * double(n)) % n;
}

}  // namespace crossview
