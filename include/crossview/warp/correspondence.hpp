#pragma once
/// \file
/// Dense correspondences between the feature grids of two views related by a homography: what the
/// consistency loss (Eq. 9) and the CVC metric consume.

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/warp/size_hw.hpp"

#include <torch/torch.h>

#include <array>
#include <string>

namespace crossview {

/// Where each cell of grid a lands in grid b.
struct Correspondence {
  /// [N, h_a, w_a, 2] float32, (x, y) sub-cell position in grid b (cell centres at integers).
  torch::Tensor position_b;
  /// [N, h_a, w_a] bool: the mapped point has w > 0 and lies inside grid b,
  /// 0 <= x <= w_b - 1 and 0 <= y <= h_b - 1 (so bilinear sampling needs no padding).
  torch::Tensor valid;
};

namespace detail {

/// correspondence_grid; `check_values` false skips the finite test of H_b_a (for callers that
/// tested it already, before moving it to the device: the test copies it to the CPU).
inline Correspondence correspondence_grid_impl(const torch::Tensor& H_b_a, SizeHW grid_a_hw, SizeHW image_a_hw,
                                               SizeHW grid_b_hw, SizeHW image_b_hw, bool check_values) {
  constexpr const char* kFn = "correspondence_grid";
  detail::check_rank(H_b_a, {2, 3}, kFn, "H_b_a", "[N, 3, 3]");
  TORCH_CHECK(H_b_a.size(-1) == 3 && H_b_a.size(-2) == 3, kFn, ": H_b_a must have shape [N, 3, 3], got ",
              detail::shape_string(H_b_a));
  for (const auto* s : {&grid_a_hw, &image_a_hw, &grid_b_hw, &image_b_hw}) {
    TORCH_CHECK((*s)[0] > 0 && (*s)[1] > 0, kFn, ": sizes must be positive, got ", (*s)[0], "x", (*s)[1]);
  }
  // A NaN would make every cell silently invalid. (A meta H has no values: refused there.)
  if (check_values) detail::check_homographies(H_b_a, kFn, "H_b_a");
  const auto H = (H_b_a.dim() == 2 ? H_b_a.unsqueeze(0) : H_b_a).to(torch::kFloat64);
  const auto opts = H.options();
  const double sa_y = double(image_a_hw[0]) / double(grid_a_hw[0]);
  const double sa_x = double(image_a_hw[1]) / double(grid_a_hw[1]);
  const double sb_y = double(image_b_hw[0]) / double(grid_b_hw[0]);
  const double sb_x = double(image_b_hw[1]) / double(grid_b_hw[1]);
  // Image coordinates of grid-a cell centres.
  const auto xs = torch::arange(grid_a_hw[1], opts) * sa_x + (sa_x - 1.0) / 2.0;  // [w_a]
  const auto ys = torch::arange(grid_a_hw[0], opts) * sa_y + (sa_y - 1.0) / 2.0;  // [h_a]
  const auto X = xs.view({1, 1, -1});
  const auto Y = ys.view({1, -1, 1});
  auto h = [&](int r, int c) { return H.select(1, r).select(1, c).view({-1, 1, 1}); };
  const auto u = h(0, 0) * X + h(0, 1) * Y + h(0, 2);
  const auto v = h(1, 0) * X + h(1, 1) * Y + h(1, 2);
  const auto w = h(2, 0) * X + h(2, 1) * Y + h(2, 2);  // [N, h_a, w_a]
  const auto front = w > 0;
  const auto w_safe = torch::where(front, w, torch::ones_like(w));
  // Image coordinates in b, then grid-b cell coordinates.
  const auto qx = (u / w_safe - (sb_x - 1.0) / 2.0) / sb_x;
  const auto qy = (v / w_safe - (sb_y - 1.0) / 2.0) / sb_y;
  const auto valid = front & (qx >= 0) & (qx <= double(grid_b_hw[1] - 1)) & (qy >= 0) &
                     (qy <= double(grid_b_hw[0] - 1));
  return Correspondence{torch::stack({qx, qy}, -1).to(torch::kFloat32), valid};
}

}  // namespace detail

/// For every cell of feature grid a (size grid_a_hw, computed from an image patch of size
/// image_a_hw) its position in feature grid b (grid_b_hw from image_b_hw), given the pair
/// homography H_b_a [N, 3, 3] (or [3, 3]) in patch pixel coordinates (Eq. 3/4). Feature cell j of
/// a grid with stride s = image/grid sits at image coordinate s*j + (s-1)/2 (DESIGN.md). Computed
/// in float64 on H_b_a's device, one batched pass; no per-pair loops.
/// \throws c10::Error for wrong shapes, empty sizes or a non-finite H_b_a (checked on the CPU, a
/// copy of 9*N values; a `meta` H_b_a, which has none, is refused).
inline Correspondence correspondence_grid(const torch::Tensor& H_b_a, SizeHW grid_a_hw, SizeHW image_a_hw,
                                          SizeHW grid_b_hw, SizeHW image_b_hw) {
  return detail::correspondence_grid_impl(H_b_a, grid_a_hw, image_a_hw, grid_b_hw, image_b_hw, /*check_values=*/true);
}

/// Converts positions in a grid of size grid_hw (cell centres at integers) to grid_sample's
/// normalised coordinates with align_corners=False: g = (2p + 1) / size - 1. `position` is
/// floating [..., 2] (x, y); grid_hw {height, width} positive.
inline torch::Tensor to_grid_sample_coordinates(const torch::Tensor& position, SizeHW grid_hw) {
  constexpr const char* kFn = "to_grid_sample_coordinates";
  TORCH_CHECK(position.defined() && position.dim() >= 1 && position.size(-1) == 2, kFn,
              ": position must have shape [..., 2], got ",
              position.defined() ? detail::shape_string(position) : std::string("an undefined tensor"));
  detail::check_floating(position, kFn, "position");
  TORCH_CHECK(grid_hw[0] > 0 && grid_hw[1] > 0, kFn, ": grid_hw must be positive {height, width}, got {", grid_hw[0],
              ", ", grid_hw[1], "}");
  const auto scale = torch::tensor({2.0 / double(grid_hw[1]), 2.0 / double(grid_hw[0])}, position.options());
  return (position + 0.5) * scale - 1.0;
}

}  // namespace crossview
