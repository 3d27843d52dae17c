#pragma once
/// \file
/// Moving homographies between Eigen (geometry) and tensors ([N, 3, 3], for batched work).

#include "crossview/detail/tensor_checks.hpp"

#include <Eigen/Core>
#include <torch/torch.h>

#include <vector>

namespace crossview {

/// A [1, 3, 3] float64 tensor (CPU) holding H, row-major as written.
template <typename Derived>
torch::Tensor homography_to_tensor(const Eigen::MatrixBase<Derived>& H) {
  static_assert(Derived::RowsAtCompileTime == 3 && Derived::ColsAtCompileTime == 3,
                "crossview::homography_to_tensor: H must be a 3x3 Eigen matrix");
  auto t = torch::empty({1, 3, 3}, torch::kFloat64);
  auto a = t.accessor<double, 3>();
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) a[0][r][c] = double(H(r, c));
  return t;
}

/// A [N, 3, 3] float64 tensor (CPU) stacking the given homographies.
inline torch::Tensor homographies_to_tensor(const std::vector<Eigen::Matrix3d>& Hs) {
  auto t = torch::empty({int64_t(Hs.size()), 3, 3}, torch::kFloat64);
  auto a = t.accessor<double, 3>();
  for (size_t n = 0; n < Hs.size(); ++n)
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) a[int64_t(n)][r][c] = Hs[n](r, c);
  return t;
}

/// Homography `index` of a [N, 3, 3] (or [3, 3]) tensor as an Eigen matrix (copied to the CPU).
/// \throws c10::Error for a wrong shape, an index outside [0, N) or a `meta` tensor (no values).
inline Eigen::Matrix3d homography_from_tensor(const torch::Tensor& H, int64_t index = 0) {
  detail::check_rank(H, {2, 3}, "homography_from_tensor", "H", "[N, 3, 3] or [3, 3]");
  detail::check_has_values(H, "homography_from_tensor", "H");
  TORCH_CHECK(H.dim() == 2 || (index >= 0 && index < H.size(0)), "homography_from_tensor: index must lie in [0, ",
              H.size(0), ") for H of shape ", detail::shape_string(H), ", got ", index);
  const auto Hn = (H.dim() == 2 ? H : H[index]).to(torch::kCPU, torch::kFloat64).contiguous();
  TORCH_CHECK(Hn.size(0) == 3 && Hn.size(1) == 3, "homography_from_tensor: H must have shape [N, 3, 3] or [3, 3], got ",
              detail::shape_string(H));
  auto a = Hn.accessor<double, 2>();
  Eigen::Matrix3d M;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) M(r, c) = a[r][c];
  return M;
}

}  // namespace crossview
