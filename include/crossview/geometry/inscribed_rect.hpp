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
#include <utility>
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

/// Largest side of a canvas the search accepts.
inline constexpr std::int64_t kMaxInscribedRectCanvasSide = 1 << 15;

namespace detail {

/// Tolerance, in source pixels, for a pixel centre mapping exactly onto the source border.
inline constexpr double kInsideTolerance = 1e-7;

/// The integer columns [first, last] of dst row y whose pixel centres map through H_src_dst to a
/// point with w > 0 inside [0, max_x] x [0, max_y] (within kInsideTolerance), clipped to
/// [lo_x, hi_x]. Along a row u, v and w are affine in x, and for w > 0 the conditions
/// 0 <= u/w <= max_x, 0 <= v/w <= max_y become u >= 0, max_x*w - u >= 0, ... -- five half-lines
/// whose intersection is one interval (the valid region is convex). Empty when first > last.
inline std::pair<std::int64_t, std::int64_t> valid_row_interval(const Eigen::Matrix3d& H_src_dst, double y,
                                                                double max_x, double max_y, std::int64_t lo_x,
                                                                std::int64_t hi_x) {
  const double t = kInsideTolerance;
  const double au = H_src_dst(0, 0), bu = H_src_dst(0, 1) * y + H_src_dst(0, 2);
  const double av = H_src_dst(1, 0), bv = H_src_dst(1, 1) * y + H_src_dst(1, 2);
  const double aw = H_src_dst(2, 0), bw = H_src_dst(2, 1) * y + H_src_dst(2, 2);
  double lo = double(lo_x), hi = double(hi_x);
  // Intersect [lo, hi] with {x : a*x + b >= 0} (strictly > 0 when `strict`).
  auto clip = [&](double a, double b, bool strict) {
    if (a == 0.0) {
      if (strict ? !(b > 0.0) : !(b >= 0.0)) hi = lo - 1.0;
      return;
    }
    const double root = -b / a;
    if (a > 0.0) {
      double bound = std::ceil(root);
      if (strict && bound == root) bound += 1.0;
      lo = std::max(lo, bound);
    } else {
      double bound = std::floor(root);
      if (strict && bound == root) bound -= 1.0;
      hi = std::min(hi, bound);
    }
  };
  clip(aw, bw, true);                                                  // w > 0
  clip(au + t * aw, bu + t * bw, false);                               // u / w >= -t
  clip((max_x + t) * aw - au, (max_x + t) * bw - bu, false);           // u / w <= max_x + t
  clip(av + t * aw, bv + t * bw, false);                               // v / w >= -t
  clip((max_y + t) * aw - av, (max_y + t) * bw - bv, false);           // v / w <= max_y + t
  if (!(lo <= hi)) return {1, 0};
  return {std::int64_t(lo), std::int64_t(hi)};
}

/// Exact maximal rectangle of valid pixels over the canvas. Every row's valid pixels form one
/// interval (valid_row_interval); a rectangle over rows y0..y1 can span at most the intersection
/// of their intervals, so trying every first row y0 and growing y1 while the intersection is not
/// empty finds the optimum. The search for y0 stops once the intersection's width times the rows
/// left cannot beat the best area. O(canvas height^2) interval steps at worst, far fewer in
/// practice; O(canvas height) memory.
inline Rect largest_valid_rect_on_canvas(const Eigen::Matrix3d& H_src_dst, double max_x, double max_y,
                                         const Rect& canvas) {
  const std::int64_t rows = canvas.height;
  std::vector<std::pair<std::int64_t, std::int64_t>> interval(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    interval[std::size_t(r)] = valid_row_interval(H_src_dst, double(canvas.y + r), max_x, max_y, canvas.x,
                                                  canvas.x + canvas.width - 1);
  }
  Rect best;
  for (std::int64_t y0 = 0; y0 < rows; ++y0) {
    std::int64_t first = interval[std::size_t(y0)].first, last = interval[std::size_t(y0)].second;
    for (std::int64_t y1 = y0; y1 < rows; ++y1) {
      first = std::max(first, interval[std::size_t(y1)].first);
      last = std::min(last, interval[std::size_t(y1)].second);
      const std::int64_t width = last - first + 1;
      if (width <= 0 || width * (rows - y0) <= best.area()) break;
      const std::int64_t height = y1 - y0 + 1;
      if (width * height > best.area()) best = Rect{first, canvas.y + y0, width, height};
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
/// Exact over all integer rectangles: the valid region is convex, so each row's valid pixels form
/// one interval, found in closed form from the five linear conditions along the row; the search
/// then tries every span of rows (see detail::largest_valid_rect_on_canvas). Ties keep the first
/// found (topmost, then tallest). Computed in double whatever the scalar type.
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
