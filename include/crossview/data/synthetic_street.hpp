#pragma once
/// \file
/// SyntheticStreet: procedural street scenes rendered by ray casting from a fixed camera centre
/// under any camera rotation -- crossview's embedded default dataset, with exact ground truth for
/// rotated views (DESIGN.md, "Data").

#include "crossview/data/detail/synthetic_scene.hpp"
#include "crossview/data/detail/synthetic_shading.hpp"
#include "crossview/geometry/intrinsics.hpp"

#include <Eigen/Core>
#include <Eigen/LU>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace crossview {

/// One rendered view.
struct StreetView {
  /// [3, H, W] float32 RGB in [0, 1], CPU.
  torch::Tensor image;
  /// [H, W] int64 Cityscapes train ids (0 road, 1 sidewalk, 2 building, 3 wall, 4 fence, 5 pole,
  /// 6 traffic light, 7 traffic sign, 8 vegetation, 9 terrain, 10 sky, 11 person, 13 car,
  /// 14 truck, 15 bus), CPU.
  torch::Tensor label;
};

/// A procedural street scene, fixed by its seed: a road with lane markings, curbs and sidewalks,
/// building facades with windows on both sides (with gaps behind walls and fences showing terrain,
/// trees and back buildings), parked and driving cars, buses and trucks, pedestrians, poles with
/// traffic signs and lights, trees, and a sky with clouds; textured, lit by a sun, hazy in the
/// distance. The camera stands on the road (height 1.3-1.7 m) looking along the street with the
/// identity rotation.
///
/// render(K, R, ...) ray-casts every pixel from the fixed camera centre: pixel p shows the scene
/// along d = R^T K^-1 p (identity-camera frame), so that render(K, R) is exactly render(K, I)
/// seen through rotation_homography(K, R) = K R K^-1 (Eq. 2): the rotated camera sees R d where
/// the identity camera sees d. Labels come from the ray through the pixel centre (exact); the
/// image blends the centre ray with the four corner rays of the
/// pixel (anti-aliasing, two rays per pixel as corners are shared).
class SyntheticStreet {
 public:
  /// The scene of `seed` (the same scene on every platform).
  explicit SyntheticStreet(std::uint64_t seed)
      : scene_(std::make_shared<const detail::StreetScene>(detail::make_street_scene(seed))) {}

  std::uint64_t seed() const { return scene_->seed; }
  /// Height of the camera above the road, metres.
  double camera_height() const { return scene_->camera_height; }

  /// Renders the view of a camera with intrinsics K and rotation R (camera-from-street, DESIGN.md
  /// convention) at `height` x `width` pixels. Parallel over rows (at::parallel_for).
  /// \returns StreetView{image [3, height, width] float32 in [0, 1], label [height, width] int64}.
  /// \throws std::invalid_argument for bad intrinsics, a non-finite R or non-positive sizes.
  template <typename Scalar, typename Derived>
  StreetView render(const Intrinsics<Scalar>& K, const Eigen::MatrixBase<Derived>& R, std::int64_t height,
                    std::int64_t width) const {
    static_assert(Derived::RowsAtCompileTime == 3 && Derived::ColsAtCompileTime == 3,
                  "crossview::SyntheticStreet::render: R must be a 3x3 Eigen matrix");
    K.validate("SyntheticStreet::render");
    detail::check_finite(R, "SyntheticStreet::render", "R");
    if (height <= 0 || width <= 0) {
      detail::throw_invalid("SyntheticStreet::render", "height x width",
                            "must be positive, got " + std::to_string(height) + "x" + std::to_string(width));
    }
    // Pixel (x, y) -> ray in the street frame.
    const Eigen::Matrix3d M = R.template cast<double>().transpose() * K.template cast<double>().matrix_inverse();
    auto image = torch::empty({3, height, width}, torch::kFloat32);
    auto label = torch::empty({height, width}, torch::kInt64);
    float* const img = image.data_ptr<float>();
    std::int64_t* const lab = label.data_ptr<std::int64_t>();
    const detail::StreetScene& scene = *scene_;
    const std::int64_t plane = height * width;
    // Objects are culled per ray by their pixel bounding boxes (conservative, so exact).
    const auto footprints = detail::street_footprints(scene, M.inverse());
    constexpr double kMargin = 1.0;  // pixels
    // Candidate objects for rays at row coordinate py.
    auto row_candidates = [&](double py, std::vector<std::uint32_t>& out) {
      out.clear();
      for (std::uint32_t k = 0; k < footprints.size(); ++k) {
        if (footprints[k].y0 - kMargin <= py && footprints[k].y1 + kMargin >= py) out.push_back(k);
      }
    };
    // The hit along the ray of pixel position (px, py), testing the row's candidates near px.
    auto trace = [&](double px, double py, const std::vector<std::uint32_t>& row, std::vector<std::uint32_t>& ids,
                     Eigen::Vector3d& d) {
      ids.clear();
      for (const auto k : row) {
        if (footprints[k].x0 - kMargin <= px && footprints[k].x1 + kMargin >= px) ids.push_back(k);
      }
      d = M * Eigen::Vector3d(px, py, 1.0);
      return detail::trace_street(scene, d, ids.data(), ids.size());
    };
    // Anti-aliasing: each pixel's colour is 1/2 its centre ray plus 1/8 of each of its four corner
    // rays (x +- 1/2, y +- 1/2), which neighbouring pixels share: two rays per pixel. The label is
    // the centre ray's, so labels stay exact.
    at::parallel_for(0, height, 1, [&](std::int64_t begin, std::int64_t end) {
      std::vector<std::uint32_t> row, ids;
      std::vector<Eigen::Vector3f> upper(std::size_t(width + 1)), lower(std::size_t(width + 1));
      Eigen::Vector3d d;
      auto corner_row = [&](double py, std::vector<Eigen::Vector3f>& out) {
        row_candidates(py, row);
        for (std::int64_t x = 0; x <= width; ++x) {
          const auto hit = trace(double(x) - 0.5, py, row, ids, d);
          out[std::size_t(x)] = detail::shade_street(scene, d, hit);
        }
      };
      corner_row(double(begin) - 0.5, upper);
      for (std::int64_t y = begin; y < end; ++y) {
        corner_row(double(y) + 0.5, lower);
        row_candidates(double(y), row);
        for (std::int64_t x = 0; x < width; ++x) {
          const auto hit = trace(double(x), double(y), row, ids, d);
          lab[y * width + x] = hit.label;
          const auto i = std::size_t(x);
          const Eigen::Vector3f colour = 0.5f * detail::shade_street(scene, d, hit) +
                                         0.125f * (upper[i] + upper[i + 1] + lower[i] + lower[i + 1]);
          for (int c = 0; c < 3; ++c) img[c * plane + y * width + x] = colour[c];
        }
        std::swap(upper, lower);
      }
    });
    return StreetView{image, label};
  }

 private:
  std::shared_ptr<const detail::StreetScene> scene_;
};

}  // namespace crossview
