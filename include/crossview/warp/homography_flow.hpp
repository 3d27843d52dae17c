#pragma once
/// \file
/// The dense flow field of a homography: where every pixel of one image lands in another when the
/// two are related by H (e.g. consecutive frames of a rotating camera, Eq. 2) -- the exact
/// counterpart of an optical flow, in the layout `flow_consistency` takes.

#include "crossview/geometry/detail/checks.hpp"
#include "crossview/warp/size_hw.hpp"

#include <Eigen/Core>
#include <torch/torch.h>

#include <limits>
#include <string>
#include <utility>

namespace crossview {

/// A dense flow from the pixels of image b to positions in image a.
struct HomographyFlow {
  /// [2, H_b, W_b] float32, (dx, dy) in pixels: pixel p = (x, y) of b sits at p + flow(p) in a;
  /// NaN where the point lies behind camera a (w <= 0), which has no image there.
  torch::Tensor flow;
  /// [H_b, W_b] bool: w > 0 and p + flow(p) inside image a (0 <= x <= W_a - 1,
  /// 0 <= y <= H_a - 1; the rule of flow_consistency and cross_view_consistency). For a rotating
  /// camera (a shared centre) nothing is occluded, so this is exactly the set of pixels of b that
  /// a sees.
  torch::Tensor valid;
};

/// The flow of `H_a_b` (an Eigen 3x3, mapping image-b pixels to image-a pixels, p_a ~ H_a_b p_b)
/// over image b of size `b_hw` {height, width}, with validity in image a of size `a_hw`. Computed
/// in float64 on the CPU, returned as float32 (positions of images up to 2^14 px are exact to
/// about 1e-3 px).
/// \throws std::invalid_argument if H_a_b is not finite or a size is not positive.
template <typename Derived>
HomographyFlow homography_flow(const Eigen::MatrixBase<Derived>& H_a_b, SizeHW b_hw, SizeHW a_hw) {
  static_assert(Derived::RowsAtCompileTime == 3 && Derived::ColsAtCompileTime == 3,
                "crossview::homography_flow: H_a_b must be a 3x3 Eigen matrix");
  detail::check_finite(H_a_b, "homography_flow", "H_a_b");
  for (const auto& [hw, name] : {std::pair<SizeHW, const char*>{b_hw, "b_hw"}, {a_hw, "a_hw"}}) {
    if (hw[0] <= 0 || hw[1] <= 0) {
      detail::throw_invalid("homography_flow", name,
                            "must be positive {height, width}, got {" + std::to_string(hw[0]) + ", " +
                                std::to_string(hw[1]) + "}");
    }
  }
  const Eigen::Matrix3d H = H_a_b.template cast<double>();
  const auto real = torch::TensorOptions().dtype(torch::kFloat64);
  const auto x = torch::arange(b_hw[1], real).view({1, -1});
  const auto y = torch::arange(b_hw[0], real).view({-1, 1});
  const auto u = H(0, 0) * x + H(0, 1) * y + H(0, 2);
  const auto v = H(1, 0) * x + H(1, 1) * y + H(1, 2);
  const auto w = H(2, 0) * x + H(2, 1) * y + H(2, 2);  // [H_b, W_b]
  const auto front = w > 0;
  const auto nan = torch::full_like(w, std::numeric_limits<double>::quiet_NaN());
  const auto qx = torch::where(front, u / w, nan);
  const auto qy = torch::where(front, v / w, nan);
  const auto valid = front & (qx >= 0) & (qx <= double(a_hw[1] - 1)) & (qy >= 0) & (qy <= double(a_hw[0] - 1));
  return HomographyFlow{torch::stack({qx - x, qy - y}).to(torch::kFloat32), valid};
}

}  // namespace crossview
