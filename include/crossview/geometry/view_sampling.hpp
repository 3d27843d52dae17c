#pragma once
/// \file
/// Uniform sampling of view directions (yaw, pitch, roll) in symmetric ranges (paper Sec. 3.1).

#include "crossview/geometry/detail/checks.hpp"
#include "crossview/geometry/rotation.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <limits>
#include <type_traits>

namespace crossview {

/// Symmetric sampling ranges in degrees: yaw in [-yaw_deg, yaw_deg], and so on. The defaults are
/// the paper's: yaw +-30, pitch +-15, roll +-3 degrees.
struct ViewRange {
  double yaw_deg{30.0};
  double pitch_deg{15.0};
  double roll_deg{3.0};

  /// No rotation at all (every sample is the identity view).
  static ViewRange none() { return ViewRange{0.0, 0.0, 0.0}; }

  /// \throws std::invalid_argument naming `function` if a half-range is negative, not finite, or
  /// above 180 degrees.
  void validate(const char* function) const {
    const std::pair<double, const char*> fields[] = {
        {yaw_deg, "ViewRange::yaw_deg"}, {pitch_deg, "ViewRange::pitch_deg"}, {roll_deg, "ViewRange::roll_deg"}};
    for (const auto& [value, name] : fields) {
      detail::check_finite(value, function, name);
      if (value < 0.0 || value > 180.0) {
        detail::throw_invalid(function, name, "must lie in [0, 180] degrees, got " + std::to_string(value));
      }
    }
  }
};

namespace detail {

/// A double uniform in [0, 1) from the top 53 bits of a uniform random bit generator's output.
/// Unlike std::uniform_real_distribution its value is the same on every standard library, so
/// sampled views are reproducible from a seed across platforms.
template <typename URBG>
double uniform01(URBG& rng) {
  using Result = typename URBG::result_type;
  static_assert(std::is_unsigned_v<Result>, "crossview: the random engine must produce unsigned integers");
  static_assert(URBG::min() == 0, "crossview: the random engine's min() must be 0");
  constexpr auto kMax = URBG::max();
  // Collect at least 53 random bits from engines of any range that is a power of two minus one.
  static_assert((kMax & (kMax + 1)) == 0 || kMax == std::numeric_limits<Result>::max(),
                "crossview: the random engine's range must be a power of two (mt19937, mt19937_64, ...)");
  int bits_per_call = 0;
  for (auto m = kMax; m != 0; m >>= 1) ++bits_per_call;
  if (bits_per_call >= 53) {
    return double(std::uint64_t(rng()) >> (bits_per_call - 53)) * 0x1.0p-53;
  }
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

}  // namespace detail

/// Samples yaw, pitch and roll independently and uniformly in the symmetric ranges (in that order
/// of draws), returning radians. Reproducible from the engine's seed on every platform.
/// \throws std::invalid_argument if the range is invalid.
template <typename Scalar = double, typename URBG>
EulerAngles<Scalar> sample_view(const ViewRange& range, URBG& rng) {
  range.validate("sample_view");
  EulerAngles<Scalar> angles;
  angles.yaw = Scalar(deg2rad(detail::uniform_symmetric(rng, range.yaw_deg)));
  angles.pitch = Scalar(deg2rad(detail::uniform_symmetric(rng, range.pitch_deg)));
  angles.roll = Scalar(deg2rad(detail::uniform_symmetric(rng, range.roll_deg)));
  return angles;
}

}  // namespace crossview
