#pragma once
/// \file
/// Layout and ray casting of SyntheticStreet's procedural street scenes. Eigen only.
///
/// Frame: the camera centre is the origin; camera axes of the street-aligned (identity) view:
/// x right, y down, z forward along the street. The road is the plane y = camera_height, the
/// sidewalks are kCurbHeight higher, building facades are the planes x = facade_left / x =
/// facade_right, split along z into segments (buildings or gaps with a wall or fence in front of
/// terrain, trees and a back building). Cars, persons, poles with signs and lights, and trees are
/// boxes, vertical cylinders and spheres. Everything a ray sees is a pure function of its
/// direction, which is what makes renders under any rotation exact views of one scene.

#include "crossview/data/detail/synthetic_noise.hpp"
#include "crossview/geometry/view_sampling.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace crossview::detail {

/// Cityscapes train ids used by the synthetic scenes.
enum StreetLabel : std::uint8_t {
  kLabelRoad = 0,
  kLabelSidewalk = 1,
  kLabelBuilding = 2,
  kLabelWall = 3,
  kLabelFence = 4,
  kLabelPole = 5,
  kLabelTrafficLight = 6,
  kLabelTrafficSign = 7,
  kLabelVegetation = 8,
  kLabelTerrain = 9,
  kLabelSky = 10,
  kLabelPerson = 11,
  kLabelCar = 13,
  kLabelTruck = 14,
  kLabelBus = 15,
};

/// Surface types: each has its own procedural texture.
enum class StreetMaterial : std::uint8_t {
  kSky,
  kRoad,
  kSidewalk,
  kCurb,
  kTerrain,
  kFacade,
  kWall,
  kFence,
  kPaint,
  kGlass,
  kTyre,
  kCloth,
  kSkin,
  kMetal,
  kSign,
  kLightHousing,
  kBark,
  kFoliage,
};

/// Height of the sidewalks above the road, metres.
inline constexpr double kCurbHeight = 0.15;

/// One primitive of an object. Boxes are axis-aligned [lo, hi]; cylinders are vertical with axis
/// (centre.x, centre.z), radius and y range [lo.y, hi.y]; spheres have centre and radius.
struct StreetPart {
  enum class Shape : std::uint8_t { kBox, kCylinder, kSphere };
  Shape shape{Shape::kBox};
  Eigen::Vector3d lo{Eigen::Vector3d::Zero()};
  Eigen::Vector3d hi{Eigen::Vector3d::Zero()};
  Eigen::Vector3d centre{Eigen::Vector3d::Zero()};
  double radius{0};
  std::uint8_t label{kLabelSky};
  StreetMaterial material{StreetMaterial::kPaint};
  Eigen::Vector3f colour{Eigen::Vector3f::Constant(0.5f)};
};

/// An object: its parts parts[first, first + count) inside the bounding box [lo, hi].
struct StreetObject {
  Eigen::Vector3d lo;
  Eigen::Vector3d hi;
  std::size_t first{0};
  std::size_t count{0};
};

/// A stretch [z0, z1) of one side of the street: a building facade, or a gap with a wall or fence.
struct StreetSegment {
  double z0{0}, z1{0};
  double height{10};  ///< building height, or back-building height for gaps (metres above the sidewalk)
  bool gap{false};
  std::uint8_t barrier_label{kLabelWall};  ///< wall or fence in front of a gap
  double barrier_height{1.2};
  double floor_height{3.2};    ///< window grid
  double window_spacing{2.5};
  Eigen::Vector3f colour{Eigen::Vector3f::Constant(0.6f)};
  std::uint64_t texture_seed{0};
};

/// A full scene layout, generated from a seed by make_street_scene().
struct StreetScene {
  std::uint64_t seed{0};
  double camera_height{1.5};
  double road_left{-5}, road_right{5};      ///< road band in x
  double facade_left{-8}, facade_right{8};  ///< facade planes
  double back_offset{14};                   ///< distance from a facade to the back buildings behind gaps
  double centre_line{0};                    ///< x of the dashed centre marking
  std::vector<StreetSegment> left, right;   ///< sorted by z
  std::vector<StreetPart> parts;
  std::vector<StreetObject> objects;
};

/// What a ray hit: parameter t along the (unnormalised) ray direction, the hit point, the outward
/// normal, the train id and the material (with its colour and texture seed).
struct StreetHit {
  double t{std::numeric_limits<double>::infinity()};
  Eigen::Vector3d point{Eigen::Vector3d::Zero()};
  Eigen::Vector3d normal{Eigen::Vector3d::Zero()};
  std::uint8_t label{kLabelSky};
  StreetMaterial material{StreetMaterial::kSky};
  Eigen::Vector3f colour{Eigen::Vector3f::Zero()};
  const StreetSegment* segment{nullptr};
};

// ---- scene generation -------------------------------------------------------------------------

/// Uniform in [lo, hi) from a platform-independent draw.
inline double street_uniform(std::mt19937_64& rng, double lo, double hi) { return lo + (hi - lo) * uniform01(rng); }

inline Eigen::Vector3f street_colour(std::mt19937_64& rng, const Eigen::Vector3f& base, float spread) {
  Eigen::Vector3f c;
  for (int k = 0; k < 3; ++k) c[k] = std::clamp(base[k] + float(street_uniform(rng, -spread, spread)), 0.02f, 0.98f);
  return c;
}

inline void add_street_object(StreetScene& scene, const std::vector<StreetPart>& parts) {
  StreetObject object;
  object.first = scene.parts.size();
  object.count = parts.size();
  object.lo = Eigen::Vector3d::Constant(std::numeric_limits<double>::infinity());
  object.hi = -object.lo;
  for (const auto& p : parts) {
    Eigen::Vector3d lo = p.lo, hi = p.hi;
    if (p.shape == StreetPart::Shape::kSphere) {
      lo = p.centre - Eigen::Vector3d::Constant(p.radius);
      hi = p.centre + Eigen::Vector3d::Constant(p.radius);
    } else if (p.shape == StreetPart::Shape::kCylinder) {
      lo = Eigen::Vector3d(p.centre.x() - p.radius, p.lo.y(), p.centre.z() - p.radius);
      hi = Eigen::Vector3d(p.centre.x() + p.radius, p.hi.y(), p.centre.z() + p.radius);
    }
    object.lo = object.lo.cwiseMin(lo);
    object.hi = object.hi.cwiseMax(hi);
  }
  // Never place an object around the camera centre.
  const double margin = 0.3;
  if ((object.lo.array() - margin < 0.0).all() && (object.hi.array() + margin > 0.0).all()) return;
  // Keep a clear view down the street: nothing big in the camera's lane just ahead or behind.
  if (object.lo.x() < 1.2 && object.hi.x() > -1.2 && object.hi.z() > -10.0 && object.lo.z() < 14.0 &&
      object.hi.y() - object.lo.y() > 1.0 && parts.front().label != kLabelPerson) {
    return;
  }
  scene.parts.insert(scene.parts.end(), parts.begin(), parts.end());
  scene.objects.push_back(object);
}

inline StreetPart street_box(const Eigen::Vector3d& lo, const Eigen::Vector3d& hi, std::uint8_t label,
                             StreetMaterial material, const Eigen::Vector3f& colour) {
  StreetPart p;
  p.shape = StreetPart::Shape::kBox;
  p.lo = lo;
  p.hi = hi;
  p.label = label;
  p.material = material;
  p.colour = colour;
  return p;
}

inline StreetPart street_cylinder(double x, double z, double radius, double y_top, double y_bottom, std::uint8_t label,
                                  StreetMaterial material, const Eigen::Vector3f& colour) {
  StreetPart p;
  p.shape = StreetPart::Shape::kCylinder;
  p.centre = Eigen::Vector3d(x, 0.0, z);
  p.radius = radius;
  p.lo = Eigen::Vector3d(x - radius, y_top, z - radius);
  p.hi = Eigen::Vector3d(x + radius, y_bottom, z + radius);
  p.label = label;
  p.material = material;
  p.colour = colour;
  return p;
}

inline StreetPart street_sphere(const Eigen::Vector3d& centre, double radius, std::uint8_t label,
                                StreetMaterial material, const Eigen::Vector3f& colour) {
  StreetPart p;
  p.shape = StreetPart::Shape::kSphere;
  p.centre = centre;
  p.radius = radius;
  p.label = label;
  p.material = material;
  p.colour = colour;
  return p;
}

/// A car (or, with `label` truck/bus, a bigger box vehicle) standing on the road at (x, z),
/// length along z.
inline void add_street_vehicle(StreetScene& scene, std::mt19937_64& rng, double x, double z, std::uint8_t label) {
  const double g = scene.camera_height;  // road level (y down)
  const Eigen::Vector3f paint = street_colour(
      rng, Eigen::Vector3f(float(street_uniform(rng, 0.1, 0.9)), float(street_uniform(rng, 0.1, 0.9)),
                           float(street_uniform(rng, 0.1, 0.9))),
      0.05f);
  const Eigen::Vector3f glass(0.12f, 0.16f, 0.2f), tyre(0.05f, 0.05f, 0.05f);
  std::vector<StreetPart> parts;
  if (label == kLabelCar) {
    const double half_w = street_uniform(rng, 0.8, 0.95), half_l = street_uniform(rng, 1.9, 2.4);
    const double body_top = g - street_uniform(rng, 0.95, 1.1), cabin_top = body_top - street_uniform(rng, 0.4, 0.55);
    parts.push_back(street_box({x - half_w, body_top, z - half_l}, {x + half_w, g - 0.28, z + half_l}, label,
                               StreetMaterial::kPaint, paint));
    const double shift = street_uniform(rng, -0.4, 0.2);
    parts.push_back(street_box({x - half_w + 0.1, cabin_top, z - 0.55 * half_l + shift},
                               {x + half_w - 0.1, body_top, z + 0.5 * half_l + shift}, label, StreetMaterial::kGlass,
                               glass));
    for (const double sx : {-1.0, 1.0}) {
      for (const double sz : {-1.0, 1.0}) {
        const double cz = z + sz * (half_l - 0.6), cx = x + sx * (half_w - 0.12);
        parts.push_back(street_box({cx - 0.12, g - 0.62, cz - 0.32}, {cx + 0.12, g, cz + 0.32}, label,
                                   StreetMaterial::kTyre, tyre));
      }
    }
  } else {
    const double half_w = 1.25, half_l = label == kLabelBus ? street_uniform(rng, 5.0, 6.0) : street_uniform(rng, 3.0, 4.0);
    const double top = g - (label == kLabelBus ? 3.1 : 3.4);
    parts.push_back(street_box({x - half_w, top, z - half_l}, {x + half_w, g - 0.4, z + half_l}, label,
                               label == kLabelBus ? StreetMaterial::kPaint : StreetMaterial::kMetal, paint));
    if (label == kLabelBus) {
      parts.push_back(street_box({x - half_w - 0.02, top + 0.4, z - half_l + 0.5},
                                 {x + half_w + 0.02, top + 1.4, z + half_l - 0.3}, label, StreetMaterial::kGlass,
                                 glass));
    }
    for (const double sz : {-1.0, 1.0}) {
      parts.push_back(street_box({x - half_w + 0.05, g - 0.9, z + sz * (half_l - 1.0) - 0.45},
                                 {x + half_w - 0.05, g, z + sz * (half_l - 1.0) + 0.45}, label, StreetMaterial::kTyre,
                                 tyre));
    }
  }
  add_street_object(scene, parts);
}

/// A standing person on level `ground_y` at (x, z).
inline void add_street_person(StreetScene& scene, std::mt19937_64& rng, double x, double z, double ground_y) {
  const double height = street_uniform(rng, 1.55, 1.9);
  const double half_w = street_uniform(rng, 0.2, 0.26), half_d = street_uniform(rng, 0.13, 0.18);
  const Eigen::Vector3f top_colour = street_colour(rng, Eigen::Vector3f(0.4f, 0.35f, 0.35f), 0.3f);
  const Eigen::Vector3f legs_colour = street_colour(rng, Eigen::Vector3f(0.2f, 0.22f, 0.3f), 0.15f);
  const Eigen::Vector3f skin = street_colour(rng, Eigen::Vector3f(0.72f, 0.56f, 0.45f), 0.12f);
  const double head_r = 0.11, hip = ground_y - 0.47 * height, shoulder = ground_y - height + 2.0 * head_r;
  std::vector<StreetPart> parts;
  parts.push_back(street_box({x - half_w * 0.8, hip, z - half_d}, {x + half_w * 0.8, ground_y, z + half_d},
                             kLabelPerson, StreetMaterial::kCloth, legs_colour));
  parts.push_back(street_box({x - half_w, shoulder, z - half_d}, {x + half_w, hip, z + half_d}, kLabelPerson,
                             StreetMaterial::kCloth, top_colour));
  parts.push_back(street_sphere({x, ground_y - height + head_r, z}, head_r * 1.05, kLabelPerson, StreetMaterial::kSkin,
                                skin));
  add_street_object(scene, parts);
}

/// A pole at (x, z) on level `ground_y`, optionally carrying a traffic sign or a traffic light
/// on the side facing the road centre (`towards_road` = +1 or -1 in x).
inline void add_street_pole(StreetScene& scene, std::mt19937_64& rng, double x, double z, double ground_y,
                            double towards_road) {
  const double height = street_uniform(rng, 3.5, 7.5);
  const double top = ground_y - height;
  const Eigen::Vector3f metal = street_colour(rng, Eigen::Vector3f(0.45f, 0.46f, 0.48f), 0.08f);
  std::vector<StreetPart> parts;
  parts.push_back(street_cylinder(x, z, street_uniform(rng, 0.06, 0.11), top, ground_y, kLabelPole,
                                  StreetMaterial::kMetal, metal));
  const double kind = uniform01(rng);
  if (kind < 0.35) {  // traffic sign: a thin plate facing the street, just below the top
    const double half = street_uniform(rng, 0.3, 0.45);
    const double cy = top + half + 0.05;
    const Eigen::Vector3f colours[] = {{0.8f, 0.1f, 0.1f}, {0.1f, 0.25f, 0.75f}, {0.95f, 0.85f, 0.1f},
                                       {0.9f, 0.9f, 0.9f}};
    const Eigen::Vector3f c = colours[std::min<int>(3, int(4.0 * uniform01(rng)))];
    const double cx = x + towards_road * 0.15;
    parts.push_back(street_box({cx - half, cy - half, z - 0.13}, {cx + half, cy + half, z - 0.08}, kLabelTrafficSign,
                               StreetMaterial::kSign, c));
  } else if (kind < 0.6) {  // traffic light: a housing on an arm towards the road
    const double arm = street_uniform(rng, 0.5, 2.5);
    const double ax = x + towards_road * arm;
    parts.push_back(street_box({std::min(x, ax) - 0.04, top + 0.1, z - 0.04}, {std::max(x, ax) + 0.04, top + 0.18, z + 0.04},
                               kLabelPole, StreetMaterial::kMetal, metal));
    parts.push_back(street_box({ax - 0.17, top + 0.18, z - 0.2}, {ax + 0.17, top + 1.1, z + 0.12},
                               kLabelTrafficLight, StreetMaterial::kLightHousing, Eigen::Vector3f(0.12f, 0.12f, 0.1f)));
  }
  add_street_object(scene, parts);
}

/// A tree: trunk (vegetation, as in Cityscapes) and one or two crown spheres.
inline void add_street_tree(StreetScene& scene, std::mt19937_64& rng, double x, double z, double ground_y) {
  const double trunk_h = street_uniform(rng, 2.0, 3.5), crown_r = street_uniform(rng, 1.2, 2.4);
  const Eigen::Vector3f leaf = street_colour(rng, Eigen::Vector3f(0.22f, 0.42f, 0.16f), 0.08f);
  std::vector<StreetPart> parts;
  parts.push_back(street_cylinder(x, z, street_uniform(rng, 0.12, 0.22), ground_y - trunk_h - crown_r, ground_y,
                                  kLabelVegetation, StreetMaterial::kBark, Eigen::Vector3f(0.3f, 0.22f, 0.15f)));
  parts.push_back(street_sphere({x, ground_y - trunk_h - crown_r, z}, crown_r, kLabelVegetation,
                                StreetMaterial::kFoliage, leaf));
  if (uniform01(rng) < 0.5) {
    parts.push_back(street_sphere({x + street_uniform(rng, -0.6, 0.6), ground_y - trunk_h - 1.6 * crown_r,
                                   z + street_uniform(rng, -0.6, 0.6)},
                                  0.7 * crown_r, kLabelVegetation, StreetMaterial::kFoliage, leaf));
  }
  add_street_object(scene, parts);
}

/// Facade segments of one side from z_begin to z_end.
inline std::vector<StreetSegment> make_street_segments(std::mt19937_64& rng, double z_begin, double z_end) {
  std::vector<StreetSegment> segments;
  double z = z_begin;
  while (z < z_end) {
    StreetSegment s;
    s.z0 = z;
    s.gap = uniform01(rng) < 0.18;
    s.z1 = z + (s.gap ? street_uniform(rng, 6.0, 14.0) : street_uniform(rng, 8.0, 26.0));
    s.height = s.gap ? street_uniform(rng, 10.0, 30.0) : street_uniform(rng, 6.0, 28.0);
    s.barrier_label = uniform01(rng) < 0.5 ? kLabelWall : kLabelFence;
    s.barrier_height = street_uniform(rng, 0.8, 2.2);
    s.floor_height = street_uniform(rng, 2.8, 3.6);
    s.window_spacing = street_uniform(rng, 1.8, 3.4);
    const Eigen::Vector3f bases[] = {{0.62f, 0.55f, 0.48f}, {0.7f, 0.68f, 0.64f}, {0.55f, 0.35f, 0.3f},
                                     {0.45f, 0.47f, 0.5f}, {0.78f, 0.72f, 0.58f}};
    s.colour = street_colour(rng, bases[std::min<int>(4, int(5.0 * uniform01(rng)))], 0.07f);
    s.texture_seed = rng();
    segments.push_back(s);
    z = s.z1;
  }
  return segments;
}

/// The scene of a seed: street width, camera height and lateral position, facades, vehicles,
/// persons, poles, signs, lights and trees. Deterministic on every platform.
inline StreetScene make_street_scene(std::uint64_t seed) {
  std::mt19937_64 rng(splitmix64(seed ^ 0x5eedc0ffee123457ULL));
  StreetScene scene;
  scene.seed = seed;
  scene.camera_height = street_uniform(rng, 1.3, 1.7);
  const double half_road = street_uniform(rng, 3.5, 7.0);
  const double camera_x = street_uniform(rng, -0.6, 0.6) * half_road;  // camera position across the road
  scene.road_left = -half_road - camera_x;
  scene.road_right = half_road - camera_x;
  scene.centre_line = -camera_x;
  scene.facade_left = scene.road_left - street_uniform(rng, 2.0, 5.0);
  scene.facade_right = scene.road_right + street_uniform(rng, 2.0, 5.0);
  scene.back_offset = street_uniform(rng, 10.0, 25.0);
  scene.left = make_street_segments(rng, -400.0, 600.0);
  scene.right = make_street_segments(rng, -400.0, 600.0);

  const double g = scene.camera_height, sidewalk_y = g - kCurbHeight;
  const double z_min = -40.0, z_max = 160.0;
  // Vehicles: parked along both curbs, driving in both lanes.
  for (const double side : {-1.0, 1.0}) {
    const double curb = side < 0 ? scene.road_left : scene.road_right;
    for (double z = z_min + street_uniform(rng, 0.0, 6.0); z < z_max; z += street_uniform(rng, 5.5, 12.0)) {
      if (uniform01(rng) < 0.55) add_street_vehicle(scene, rng, curb - side * street_uniform(rng, 1.05, 1.3), z, kLabelCar);
    }
    const double lane = 0.5 * (scene.centre_line + curb - side * 2.4);  // middle of the driving lane
    for (double z = z_min + street_uniform(rng, 0.0, 20.0); z < z_max; z += street_uniform(rng, 12.0, 40.0)) {
      const double kind = uniform01(rng);
      const std::uint8_t label = kind < 0.85 ? kLabelCar : (kind < 0.93 ? kLabelBus : kLabelTruck);
      add_street_vehicle(scene, rng, lane + street_uniform(rng, -0.3, 0.3), z, label);
    }
  }
  // Sidewalk furniture and pedestrians.
  for (const double side : {-1.0, 1.0}) {
    const double curb = side < 0 ? scene.road_left : scene.road_right;
    const double facade = side < 0 ? scene.facade_left : scene.facade_right;
    for (double z = z_min + street_uniform(rng, 0.0, 10.0); z < z_max; z += street_uniform(rng, 9.0, 20.0)) {
      add_street_pole(scene, rng, curb + side * street_uniform(rng, 0.3, 0.6), z, sidewalk_y, -side);
    }
    for (double z = z_min + street_uniform(rng, 0.0, 10.0); z < z_max; z += street_uniform(rng, 8.0, 25.0)) {
      if (uniform01(rng) < 0.6) add_street_tree(scene, rng, curb + side * street_uniform(rng, 0.8, 1.4), z, sidewalk_y);
    }
    for (double z = z_min + street_uniform(rng, 0.0, 4.0); z < z_max; z += street_uniform(rng, 2.5, 12.0)) {
      const double x = curb + street_uniform(rng, 0.4, 0.95) * (facade - curb);
      add_street_person(scene, rng, x, z, sidewalk_y);
    }
    // Trees behind the gaps' walls and fences.
    for (const auto& s : side < 0 ? scene.left : scene.right) {
      if (!s.gap || s.z1 < z_min || s.z0 > z_max) continue;
      for (double z = s.z0 + 2.0; z < s.z1 - 1.0; z += street_uniform(rng, 3.0, 6.0)) {
        add_street_tree(scene, rng, facade + side * street_uniform(rng, 2.5, 6.0), z, sidewalk_y);
      }
    }
  }
  // A few pedestrians crossing the road.
  for (double z = 8.0 + street_uniform(rng, 0.0, 20.0); z < z_max; z += street_uniform(rng, 20.0, 60.0)) {
    add_street_person(scene, rng, street_uniform(rng, scene.road_left + 0.5, scene.road_right - 0.5), z, g);
  }
  return scene;
}

// ---- ray casting ------------------------------------------------------------------------------

/// Slab test of the ray t*d (t > 0) against the box [lo, hi]; returns the entry t (or exit t
/// when inside) and the axis of the entry face.
inline bool street_ray_box(const Eigen::Vector3d& d, const Eigen::Vector3d& inv_d, const Eigen::Vector3d& lo,
                           const Eigen::Vector3d& hi, double& t_hit, int& axis) {
  double t_near = -std::numeric_limits<double>::infinity(), t_far = std::numeric_limits<double>::infinity();
  axis = -1;
  for (int k = 0; k < 3; ++k) {
    if (d[k] == 0.0) {
      if (lo[k] > 0.0 || hi[k] < 0.0) return false;
      continue;
    }
    double t0 = lo[k] * inv_d[k], t1 = hi[k] * inv_d[k];
    if (t0 > t1) std::swap(t0, t1);
    if (t0 > t_near) {
      t_near = t0;
      axis = k;
    }
    t_far = std::min(t_far, t1);
  }
  if (t_near > t_far || t_far <= 0.0 || t_near <= 0.0 || axis < 0) return false;
  t_hit = t_near;
  return true;
}

inline void street_intersect_part(const StreetPart& p, const Eigen::Vector3d& d, const Eigen::Vector3d& inv_d,
                                  StreetHit& best) {
  double t = 0;
  Eigen::Vector3d normal;
  switch (p.shape) {
    case StreetPart::Shape::kBox: {
      int axis = 0;
      if (!street_ray_box(d, inv_d, p.lo, p.hi, t, axis) || t >= best.t) return;
      normal = Eigen::Vector3d::Zero();
      normal[axis] = d[axis] > 0 ? -1.0 : 1.0;
      break;
    }
    case StreetPart::Shape::kSphere: {
      const double a = d.squaredNorm(), b = d.dot(p.centre), c = p.centre.squaredNorm() - p.radius * p.radius;
      const double disc = b * b - a * c;
      if (disc < 0.0) return;
      t = (b - std::sqrt(disc)) / a;
      if (t <= 0.0 || t >= best.t) return;
      normal = (t * d - p.centre) / p.radius;
      break;
    }
    case StreetPart::Shape::kCylinder: {
      // Side: (t dx - cx)^2 + (t dz - cz)^2 = r^2, with y = t dy inside [lo.y, hi.y]; top cap at lo.y.
      const double cx = p.centre.x(), cz = p.centre.z();
      const double a = d.x() * d.x() + d.z() * d.z(), b = d.x() * cx + d.z() * cz;
      const double c = cx * cx + cz * cz - p.radius * p.radius;
      bool found = false;
      if (a > 0.0) {
        const double disc = b * b - a * c;
        if (disc >= 0.0) {
          const double ts = (b - std::sqrt(disc)) / a;
          const double y = ts * d.y();
          if (ts > 0.0 && y >= p.lo.y() && y <= p.hi.y()) {
            t = ts;
            normal = Eigen::Vector3d((ts * d.x() - cx) / p.radius, 0.0, (ts * d.z() - cz) / p.radius);
            found = true;
          }
        }
      }
      if (!found && d.y() != 0.0) {
        const double tc = p.lo.y() / d.y();
        const double dx = tc * d.x() - cx, dz = tc * d.z() - cz;
        if (tc > 0.0 && dx * dx + dz * dz <= p.radius * p.radius) {
          t = tc;
          normal = Eigen::Vector3d(0.0, -1.0, 0.0);
          found = true;
        }
      }
      if (!found || t >= best.t) return;
      break;
    }
  }
  best.t = t;
  best.normal = normal;
  best.label = p.label;
  best.material = p.material;
  best.colour = p.colour;
  best.segment = nullptr;
}

/// The segment of `segments` (sorted, contiguous) holding z, or nullptr.
inline const StreetSegment* street_segment_at(const std::vector<StreetSegment>& segments, double z) {
  auto it = std::upper_bound(segments.begin(), segments.end(), z,
                             [](double value, const StreetSegment& s) { return value < s.z0; });
  if (it == segments.begin()) return nullptr;
  --it;
  return z < it->z1 ? &*it : nullptr;
}

inline void street_set_hit(StreetHit& best, double t, const Eigen::Vector3d& normal, std::uint8_t label,
                           StreetMaterial material, const Eigen::Vector3f& colour, const StreetSegment* segment) {
  best.t = t;
  best.normal = normal;
  best.label = label;
  best.material = material;
  best.colour = colour;
  best.segment = segment;
}

/// The first surface along the ray t*d, t > 0, from the camera centre (d in the street-aligned
/// camera frame, any length). Sky when nothing is hit. Only the objects scene.objects[ids[k]],
/// k < num_ids, are tested (a conservative cull list: it must hold every object the ray may hit).
inline StreetHit trace_street(const StreetScene& scene, const Eigen::Vector3d& d, const std::uint32_t* ids,
                              std::size_t num_ids) {
  StreetHit best;
  const double g = scene.camera_height, sidewalk_y = g - kCurbHeight;
  const Eigen::Vector3f none = Eigen::Vector3f::Zero();
  // Ground: the road band at y = g, everything else at the sidewalk level; curb faces between.
  if (d.y() > 0.0) {
    const double t_road = g / d.y();
    const double x = t_road * d.x();
    if (x >= scene.road_left && x <= scene.road_right) {
      street_set_hit(best, t_road, {0, -1, 0}, kLabelRoad, StreetMaterial::kRoad, none, nullptr);
    } else {
      const double t_side = sidewalk_y / d.y();
      const double xs = t_side * d.x();
      if (xs < scene.road_left || xs > scene.road_right) {
        const bool beyond = xs < scene.facade_left || xs > scene.facade_right;
        street_set_hit(best, t_side, {0, -1, 0}, beyond ? kLabelTerrain : kLabelSidewalk,
                       beyond ? StreetMaterial::kTerrain : StreetMaterial::kSidewalk, none, nullptr);
      }
      // Between the two levels the ray meets a curb face.
      const double edge = x < scene.road_left ? scene.road_left : scene.road_right;
      if (d.x() != 0.0) {
        const double tc = edge / d.x();
        const double y = tc * d.y();
        if (tc > 0.0 && tc < best.t && y >= sidewalk_y && y <= g) {
          street_set_hit(best, tc, {edge < 0 ? 1.0 : -1.0, 0, 0}, kLabelSidewalk, StreetMaterial::kCurb, none, nullptr);
        }
      }
    }
  }
  // Facades (or gaps with a wall / fence and a back building).
  if (d.x() != 0.0) {
    const bool right = d.x() > 0.0;
    const double facade = right ? scene.facade_right : scene.facade_left;
    const auto& segments = right ? scene.right : scene.left;
    const Eigen::Vector3d normal(right ? -1.0 : 1.0, 0.0, 0.0);
    const double t = facade / d.x();
    if (t < best.t) {
      const double y = t * d.y(), z = t * d.z();
      const StreetSegment* s = street_segment_at(segments, z);
      if (s && !s->gap && y <= sidewalk_y && y >= sidewalk_y - s->height) {
        street_set_hit(best, t, normal, kLabelBuilding, StreetMaterial::kFacade, s->colour, s);
      } else if (s && s->gap && y <= sidewalk_y && y >= sidewalk_y - s->barrier_height) {
        const bool wall = s->barrier_label == kLabelWall;
        street_set_hit(best, t, normal, s->barrier_label, wall ? StreetMaterial::kWall : StreetMaterial::kFence,
                       s->colour, s);
      } else {
        const double back = facade + (right ? scene.back_offset : -scene.back_offset);
        const double tb = back / d.x();
        const double yb = tb * d.y(), zb = tb * d.z();
        const StreetSegment* sb = street_segment_at(segments, zb);
        if (tb < best.t && sb && yb <= sidewalk_y && yb >= sidewalk_y - std::max(sb->height, 12.0)) {
          street_set_hit(best, tb, normal, kLabelBuilding, StreetMaterial::kFacade, sb->colour * 0.85f, sb);
        }
      }
    }
  }
  // Objects, culled by their bounding boxes.
  const Eigen::Vector3d inv_d(d.x() != 0.0 ? 1.0 / d.x() : 0.0, d.y() != 0.0 ? 1.0 / d.y() : 0.0,
                              d.z() != 0.0 ? 1.0 / d.z() : 0.0);
  for (std::size_t i = 0; i < num_ids; ++i) {
    const StreetObject& object = scene.objects[ids[i]];
    double t = 0;
    int axis = 0;
    if (!street_ray_box(d, inv_d, object.lo, object.hi, t, axis) || t >= best.t) continue;
    for (std::size_t k = object.first; k < object.first + object.count; ++k) {
      street_intersect_part(scene.parts[k], d, inv_d, best);
    }
  }
  if (std::isfinite(best.t)) best.point = best.t * d;
  return best;
}

/// Conservative pixel bounding boxes of the scene's objects in a view: pixel (x, y) of the view
/// shows the street-frame ray M * (x, y, 1); P = M^-1 projects street points to pixels.
struct StreetObjectFootprint {
  double x0, y0, x1, y1;  ///< pixel box; everywhere when the object reaches behind the camera
};

inline std::vector<StreetObjectFootprint> street_footprints(const StreetScene& scene, const Eigen::Matrix3d& P) {
  std::vector<StreetObjectFootprint> boxes;
  boxes.reserve(scene.objects.size());
  const double inf = std::numeric_limits<double>::infinity();
  for (const auto& object : scene.objects) {
    StreetObjectFootprint box{inf, inf, -inf, -inf};
    bool behind = false;
    for (int corner = 0; corner < 8; ++corner) {
      const Eigen::Vector3d X((corner & 1) ? object.hi.x() : object.lo.x(), (corner & 2) ? object.hi.y() : object.lo.y(),
                              (corner & 4) ? object.hi.z() : object.lo.z());
      const Eigen::Vector3d q = P * X;
      if (!(q.z() > 1e-9)) {
        behind = true;
        break;
      }
      box.x0 = std::min(box.x0, q.x() / q.z());
      box.x1 = std::max(box.x1, q.x() / q.z());
      box.y0 = std::min(box.y0, q.y() / q.z());
      box.y1 = std::max(box.y1, q.y() / q.z());
    }
    // The box of the corners' projections holds the object's image when all corners are in front.
    boxes.push_back(behind ? StreetObjectFootprint{-inf, -inf, inf, inf} : box);
  }
  return boxes;
}

}  // namespace crossview::detail
