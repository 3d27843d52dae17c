#pragma once
/// \file
/// Procedural textures and shading of SyntheticStreet's surfaces: colour as a function of the hit
/// point (scene frame), so a surface looks the same from every view direction. Eigen only.

#include "crossview/data/detail/synthetic_noise.hpp"
#include "crossview/data/detail/synthetic_scene.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>

namespace crossview::detail {

/// 1 inside the band |v - centre| < half_width, 0 outside.
inline double street_band(double v, double centre, double half_width) {
  return std::abs(v - centre) < half_width ? 1.0 : 0.0;
}

/// Position in [0, period) of v.
inline double street_wrap(double v, double period) { return v - period * std::floor(v / period); }

/// Sky colour along d: horizon-to-zenith gradient with a cloud layer.
inline Eigen::Vector3f street_sky(const StreetScene& scene, const Eigen::Vector3d& d) {
  const double n = d.norm();
  const double up = -d.y() / n;  // elevation sine
  const Eigen::Vector3f horizon(0.78f, 0.83f, 0.88f), zenith(0.32f, 0.52f, 0.82f);
  const float k = float(std::sqrt(std::clamp(up, 0.0, 1.0)));
  Eigen::Vector3f c = horizon + (zenith - horizon) * k;
  if (up > 0.01) {
    // Clouds on a plane 800 m above the camera.
    const double s = 800.0 / (-d.y());
    const double cloud = fbm_noise(s * d.x() / 180.0, s * d.z() / 180.0, scene.seed ^ 0xc10dULL);
    const float amount = float(std::clamp((cloud - 0.5) * 3.0, 0.0, 1.0) * std::min(1.0, up * 8.0));
    c += (Eigen::Vector3f(0.95f, 0.95f, 0.96f) - c) * amount;
  }
  return c;
}

/// Albedo of a surface hit (before lighting).
inline Eigen::Vector3f street_albedo(const StreetScene& scene, const StreetHit& hit) {
  const Eigen::Vector3d& p = hit.point;
  const std::uint64_t seed = scene.seed;
  switch (hit.material) {
    case StreetMaterial::kRoad: {
      const double n = fbm_noise(p.x() * 1.7, p.z() * 1.7, seed ^ 0x20adULL);
      Eigen::Vector3f c = Eigen::Vector3f::Constant(float(0.27 + 0.1 * n));
      const double dash = street_wrap(p.z(), 9.0) < 3.0 ? 1.0 : 0.0;
      const double marking = std::max(dash * street_band(p.x(), scene.centre_line, 0.08),
                                      std::max(street_band(p.x(), scene.road_left + 0.35, 0.07),
                                               street_band(p.x(), scene.road_right - 0.35, 0.07)));
      return c + (Eigen::Vector3f(0.86f, 0.86f, 0.82f) - c) * float(marking);
    }
    case StreetMaterial::kSidewalk: {
      const double n = fbm_noise(p.x() * 3.0, p.z() * 3.0, seed ^ 0x51deULL);
      const double grout = (street_wrap(p.x(), 0.6) < 0.04 || street_wrap(p.z(), 0.6) < 0.04) ? 1.0 : 0.0;
      const float v = float(0.52 + 0.12 * n - 0.15 * grout);
      return Eigen::Vector3f(v * 1.03f, v, v * 0.94f);
    }
    case StreetMaterial::kCurb:
      return Eigen::Vector3f::Constant(float(0.6 + 0.1 * fbm_noise(p.z() * 4.0, p.y() * 4.0, seed ^ 0xc0bULL)));
    case StreetMaterial::kTerrain: {
      const double n = fbm_noise(p.x() * 0.9, p.z() * 0.9, seed ^ 0x7e77ULL);
      return Eigen::Vector3f(float(0.3 + 0.15 * n), float(0.38 + 0.12 * n), float(0.16 + 0.05 * n));
    }
    case StreetMaterial::kFacade: {
      const StreetSegment& s = *hit.segment;
      const double height = scene.camera_height - kCurbHeight - p.y();  // above the sidewalk
      const double n = fbm_noise(p.z() * 0.8, p.y() * 0.8, s.texture_seed);
      Eigen::Vector3f c = hit.colour * float(0.85 + 0.3 * n);
      // Window grid: floors of floor_height, columns of window_spacing; no windows on the ground floor
      // border strip, darker shop front below the first floor.
      const double u = street_wrap(p.z() - s.z0, s.window_spacing) / s.window_spacing;
      const double v = street_wrap(height, s.floor_height) / s.floor_height;
      if (height < s.floor_height) {
        if (u > 0.12 && u < 0.88 && v < 0.8) c *= 0.45f;
      } else if (u > 0.25 && u < 0.75 && v > 0.3 && v < 0.8) {
        const auto column = std::int64_t(std::floor((p.z() - s.z0) / s.window_spacing));
        const auto row = std::int64_t(std::floor(height / s.floor_height));
        const float lit = float(hash01(column, row, s.texture_seed));
        c = Eigen::Vector3f(0.12f, 0.16f, 0.22f) + Eigen::Vector3f(0.25f, 0.25f, 0.2f) * lit * lit;
      }
      return c;
    }
    case StreetMaterial::kWall: {
      const double n = fbm_noise(p.z() * 2.0, p.y() * 2.0, seed ^ 0x3a11ULL);
      return Eigen::Vector3f::Constant(float(0.55 + 0.15 * n));
    }
    case StreetMaterial::kFence: {
      const double slat = street_wrap(p.z(), 0.25) < 0.17 ? 1.0 : 0.55;
      return Eigen::Vector3f(0.45f, 0.34f, 0.22f) * float(slat);
    }
    case StreetMaterial::kFoliage: {
      const double n = fbm_noise(p.x() * 3.0 + p.z() * 1.3, p.y() * 3.0, seed ^ 0xf011ULL);
      return hit.colour * float(0.6 + 0.8 * n);
    }
    case StreetMaterial::kBark:
      return hit.colour * float(0.8 + 0.4 * value_noise(p.y() * 6.0, p.x() + p.z(), seed ^ 0xba4cULL));
    default:
      return hit.colour;
  }
}

/// Colour seen along d: albedo under a sun and sky light, fading into haze with distance.
inline Eigen::Vector3f shade_street(const StreetScene& scene, const Eigen::Vector3d& d, const StreetHit& hit) {
  if (hit.material == StreetMaterial::kSky) return street_sky(scene, d);
  const Eigen::Vector3d sun = Eigen::Vector3d(0.45, -0.75, 0.48).normalized();
  const double lambert = std::max(0.0, hit.normal.dot(sun));
  float light = float(0.5 + 0.6 * lambert);
  Eigen::Vector3f c = street_albedo(scene, hit) * light;
  if (hit.material == StreetMaterial::kGlass || hit.material == StreetMaterial::kPaint) {
    // A little specular-ish brightening towards the sky for shiny surfaces.
    c += Eigen::Vector3f::Constant(float(0.12 * std::max(0.0, -hit.normal.y())));
  }
  const double distance = hit.t * d.norm();
  const float haze = float(1.0 - std::exp(-distance / 350.0));
  const Eigen::Vector3f horizon(0.78f, 0.83f, 0.88f);
  c += (horizon - c) * haze;
  return c.cwiseMax(0.0f).cwiseMin(1.0f);
}

}  // namespace crossview::detail
