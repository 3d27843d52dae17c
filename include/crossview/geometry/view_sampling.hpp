#pragma once
/// \file
/// Uniform sampling of view directions (yaw, pitch, roll) in symmetric ranges (paper Sec. 3.1).

#include "crossview/geometry/detail/checks.hpp"
#include "crossview/geometry/rotation.hpp"
#include "crossview/random.hpp"

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


/// Samples yaw, pitch and roll independently and uniformly in the symmetric ranges (in that order
/// of draws), returning radians. Reproducible from the engine's seed on every platform.
/// \throws std::invalid_argument if the range is invalid.
template <typename Scalar = double, typename URBG>
EulerAngles<Scalar> sample_view(const ViewRange& range, URBG& rng) {
  range.validate("sample_view");
  EulerAngles<Scalar> angles;
  angles.yaw = Scalar(deg2rad(uniform_symmetric(rng, range.yaw_deg)));
  angles.pitch = Scalar(deg2rad(uniform_symmetric(rng, range.pitch_deg)));
  angles.roll = Scalar(deg2rad(uniform_symmetric(rng, range.roll_deg)));
  return angles;
}

}  // namespace crossview
