#pragma once
/// \file
/// Largest axis-aligned integer rectangle inside the image of a source image under a homography
/// (the "maximum inscribed rectangle" of the paper's VVD dataset derivation, Sec. 4.2).

#include "crossview/geometry/detail/checks.hpp"
#include "crossview/geometry/homography.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <vector>

namespace crossview {

/// An axis-aligned rectangle of whole pixels: columns x .. x+width-1, rows y .. y+height-1.
struct Rect {
  std::int64_t x{0};
  std::int64_t y{0};
  std::int64_t width{0};
  std::int64_t height{0};

  std::int64_t area() const { return width * height; }
  /// True when the rectangle holds no pixel (no rectangle of at least 1x1 exists).
  bool empty() const { return width <= 0 || height <= 0; }
  friend bool operator==(const Rect& a, const Rect& b) {
    return a.x == b.x && a.y == b.y && a.width == b.width && a.height == b.height;
  }
  friend bool operator!=(const Rect& a, const Rect& b) { return !(a == b); }
};

/// Largest side of a canvas the search will scan (the search is O(width * height)).
inline constexpr std::int64_t kMaxInscribedRectCanvasSide = 1 << 15;

namespace detail {

/// Tolerance, in source pixels, for a pixel centre mapping exactly onto the source border.
inline constexpr double kInsideTolerance = 1e-7;

/// True when dst pixel (x, y) maps through H_src_dst (double) to a point with w > 0 inside
/// [0, src_width - 1] x [0, src_height - 1], i.e. where bilinear sampling needs no fill.
inline bool maps_inside(const Eigen::Matrix3d& H_src_dst, double x, double y, double max_x, double max_y) {
  const double w = H_src_dst(2, 0) * x + H_src_dst(2, 1) * y + H_src_dst(2, 2);
  if (!(w > 0.0)) return false;
  const double u = (H_src_dst(0, 0) * x + H_src_dst(0, 1) * y + H_src_dst(0, 2)) / w;
  const double v = (H_src_dst(1, 0) * x + H_src_dst(1, 1) * y + H_src_dst(1, 2)) / w;
  return u >= -kInsideTolerance && u <= max_x + kInsideTolerance && v >= -kInsideTolerance &&
         v <= max_y + kInsideTolerance;
}

/// Exact maximal rectangle of valid pixels over the canvas, scanning rows with the classic
/// histogram-and-stack method (O(width) memory, O(width * height) time).
inline Rect largest_valid_rect_on_canvas(const Eigen::Matrix3d& H_src_dst, double max_x, double max_y,
                                         const Rect& canvas) {
  const std::int64_t W = canvas.width;
  std::vector<std::int64_t> heights(static_cast<std::size_t>(W) + 1, 0);  // sentinel 0 at the end
  std::vector<std::int64_t> stack;
  stack.reserve(static_cast<std::size_t>(W) + 1);
  Rect best;
  for (std::int64_t row = 0; row < canvas.height; ++row) {
    const double y = double(canvas.y + row);
    for (std::int64_t col = 0; col < W; ++col) {
      const bool inside = maps_inside(H_src_dst, double(canvas.x + col), y, max_x, max_y);
      heights[std::size_t(col)] = inside ? heights[std::size_t(col)] + 1 : 0;
    }
    // Largest rectangle under the histogram `heights` whose bottom edge is this row.
    stack.clear();
    for (std::int64_t col = 0; col <= W; ++col) {
      const std::int64_t h = heights[std::size_t(col)];
      while (!stack.empty() && heights[std::size_t(stack.back())] >= h) {
        const std::int64_t top = heights[std::size_t(stack.back())];
        stack.pop_back();
        const std::int64_t left = stack.empty() ? 0 : stack.back() + 1;
        const std::int64_t width = col - left;
        if (top * width > best.area()) {
          best = Rect{canvas.x + left, canvas.y + row - top + 1, width, top};
        }
      }
      stack.push_back(col);
    }
  }
  return best;
}

inline void check_canvas(const Rect& canvas, const char* function) {
  if (canvas.width <= 0 || canvas.height <= 0) {
    std::ostringstream got;
    got << "must have a positive size, got " << canvas.width << "x" << canvas.height;
    throw_invalid(function, "canvas", got.str());
  }
  if (canvas.width > kMaxInscribedRectCanvasSide || canvas.height > kMaxInscribedRectCanvasSide) {
    std::ostringstream got;
    got << "must be at most " << kMaxInscribedRectCanvasSide << " pixels on a side, got " << canvas.width << "x"
        << canvas.height;
    throw_invalid(function, "canvas", got.str());
  }
}

}  // namespace detail

/// The largest-area axis-aligned rectangle of dst pixels inside `canvas` (dst pixel coordinates)
/// whose every pixel centre maps back through H_dst_src^-1 to a point with w > 0 inside the
/// source image, [0, src_width - 1] x [0, src_height - 1] (so bilinear sampling needs no fill).
///
/// Exact: the valid pixels of every row are found by testing each pixel centre, and the maximal
/// rectangle of the resulting binary mask is found by the histogram-and-stack method, which is
/// optimal over all integer rectangles. Ties keep the first found (lowest bottom row, then leftmost).
/// Cost O(canvas area); computed in double whatever the scalar type.
/// \returns an empty Rect (width = height = 0) when not even one pixel is valid.
/// \throws std::invalid_argument for a singular or non-finite H, empty source sizes or a bad canvas.
template <typename Derived>
Rect largest_inscribed_rect(const Eigen::MatrixBase<Derived>& H_dst_src, std::int64_t src_width,
                            std::int64_t src_height, const Rect& canvas) {
  constexpr const char* kFn = "largest_inscribed_rect";
  detail::check_invertible_3x3(H_dst_src, kFn, "H_dst_src");
  if (src_width <= 0 || src_height <= 0) {
    std::ostringstream got;
    got << "must be positive, got " << src_width << "x" << src_height;
    detail::throw_invalid(kFn, "src_width x src_height", got.str());
  }
  detail::check_canvas(canvas, kFn);
  const Eigen::Matrix3d H_src_dst = H_dst_src.template cast<double>().inverse();
  return detail::largest_valid_rect_on_canvas(H_src_dst, double(src_width - 1), double(src_height - 1), canvas);
}

/// As above, with the canvas the bounding box of the source image's image in dst. The valid
/// region is bounded only when every source corner maps with w > 0; otherwise the source image
/// crosses the horizon of H_dst_src, its image is unbounded, and this overload throws (use the
/// canvas overload).
/// \throws std::invalid_argument as above, or when the image of the source is unbounded or its
/// bounding box exceeds kMaxInscribedRectCanvasSide.
template <typename Derived>
Rect largest_inscribed_rect(const Eigen::MatrixBase<Derived>& H_dst_src, std::int64_t src_width,
                            std::int64_t src_height) {
  constexpr const char* kFn = "largest_inscribed_rect";
  detail::check_invertible_3x3(H_dst_src, kFn, "H_dst_src");
  if (src_width <= 0 || src_height <= 0) {
    std::ostringstream got;
    got << "must be positive, got " << src_width << "x" << src_height;
    detail::throw_invalid(kFn, "src_width x src_height", got.str());
  }
  const Eigen::Matrix3d H = H_dst_src.template cast<double>();
  double min_x = std::numeric_limits<double>::infinity(), min_y = min_x;
  double max_x = -min_x, max_y = -min_x;
  for (const double cx : {0.0, double(src_width - 1)}) {
    for (const double cy : {0.0, double(src_height - 1)}) {
      const auto p = transform_point(H, Eigen::Vector2d(cx, cy));
      if (!p) {
        detail::throw_invalid(kFn, "H_dst_src",
                              "maps a source corner behind the camera (w <= 0): the image of the source is "
                              "unbounded; pass a dst canvas");
      }
      min_x = std::min(min_x, (*p)(0));
      min_y = std::min(min_y, (*p)(1));
      max_x = std::max(max_x, (*p)(0));
      max_y = std::max(max_y, (*p)(1));
    }
  }
  if (max_x - min_x > double(kMaxInscribedRectCanvasSide) || max_y - min_y > double(kMaxInscribedRectCanvasSide) ||
      std::abs(min_x) > 1e15 || std::abs(min_y) > 1e15) {
    std::ostringstream got;
    got << "maps the source to a region of " << (max_x - min_x) << "x" << (max_y - min_y)
        << " pixels, more than " << kMaxInscribedRectCanvasSide << " on a side; pass a dst canvas";
    detail::throw_invalid(kFn, "H_dst_src", got.str());
  }
  // w is affine in the source pixel, so w > 0 at the corners means w > 0 on the whole image and
  // the valid region is the convex quadrilateral with these corners.
  const auto lo_x = std::int64_t(std::ceil(min_x - detail::kInsideTolerance));
  const auto lo_y = std::int64_t(std::ceil(min_y - detail::kInsideTolerance));
  const auto hi_x = std::int64_t(std::floor(max_x + detail::kInsideTolerance));
  const auto hi_y = std::int64_t(std::floor(max_y + detail::kInsideTolerance));
  if (hi_x < lo_x || hi_y < lo_y) return Rect{};
  const Rect canvas{lo_x, lo_y, hi_x - lo_x + 1, hi_y - lo_y + 1};
  return largest_inscribed_rect(H, src_width, src_height, canvas);
}

}  // namespace crossview
