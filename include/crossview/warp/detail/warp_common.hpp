#pragma once
/// \file
/// Shared plumbing of warp_image and warp_labels: argument checks, the inverse homographies the
/// kernels sample with, and the device-agnostic source-coordinate computation of the ATen path.

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/warp/size_hw.hpp"
#include "crossview/warp/homography_tensor.hpp"

#include <Eigen/Core>
#include <Eigen/LU>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace crossview {

/// A warped map together with its validity mask.
struct Warped {
  /// The warped image ([C, h, w] / [N, C, h, w]) or label map ([h, w] / [N, h, w]).
  torch::Tensor output;
  /// bool, [h, w] or [N, h, w]: true where the destination pixel has a source without any fill
  /// (see warp_image / warp_labels for the exact definition of "inside").
  torch::Tensor valid;
};

namespace detail {

/// Round half to even of a double (|x| < 2^51), as OpenCV's cvRound / lrint in the default
/// rounding mode; needs no libm call and no particular instruction set.
inline double round_half_even(double x) {
#ifdef __FAST_MATH__
  return std::nearbyint(x);  // -ffast-math would fold the trick below into x
#else
  constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52: the sum's ulp is 1
  return (x + kMagic) - kMagic;
#endif
}

/// The batch of inverse homographies (H_src_dst = H_dst_src^-1, row-major, sign kept) that the
/// kernels sample with: one per image, or a single one shared by all images (stride 0).
struct InverseHomographies {
  std::vector<double> data;  ///< count * 9 doubles
  int64_t count{0};
  /// Offset (in doubles) between consecutive images' matrices: 9, or 0 when one H is shared.
  int64_t stride{0};
  const double* of(int64_t n) const { return data.data() + n * stride; }
};

/// Checks H_dst_src ([3, 3] or [N, 3, 3], finite, invertible) against a batch of `batch`
/// images and inverts it in double on the CPU.
inline InverseHomographies invert_homographies(const torch::Tensor& H_dst_src, int64_t batch, const char* fn) {
  check_rank(H_dst_src, {2, 3}, fn, "H_dst_src", "[N, 3, 3] or [3, 3]");
  TORCH_CHECK(H_dst_src.size(-1) == 3 && H_dst_src.size(-2) == 3, fn,
              ": H_dst_src must have shape [N, 3, 3] or [3, 3], got ", shape_string(H_dst_src));
  TORCH_CHECK(H_dst_src.is_floating_point(), fn, ": H_dst_src must be a floating-point tensor, got ",
              H_dst_src.scalar_type());
  const auto H = (H_dst_src.dim() == 2 ? H_dst_src.unsqueeze(0) : H_dst_src)
                     .to(torch::kCPU, torch::kFloat64)
                     .contiguous();
  const int64_t count = H.size(0);
  TORCH_CHECK(count == 1 || count == batch, fn, ": H_dst_src must hold 1 or N = ", batch,
              " homographies (one per image), got ", count);
  InverseHomographies inv;
  inv.count = count;
  inv.stride = count == 1 ? 0 : 9;
  inv.data.resize(size_t(count) * 9);
  const double* h = H.data_ptr<double>();
  for (int64_t n = 0; n < count; ++n) {
    const Eigen::Map<const Eigen::Matrix<double, 3, 3, Eigen::RowMajor>> M(h + 9 * n);
    TORCH_CHECK(M.allFinite(), fn, ": H_dst_src[", n, "] must have finite entries, got a NaN or infinity");
    const double scale = M.cwiseAbs().maxCoeff();
    const double det = M.determinant();
    TORCH_CHECK(scale > 0 && std::abs(det) > 64 * Eigen::NumTraits<double>::epsilon() * scale * scale * scale, fn,
                ": H_dst_src[", n, "] must be invertible, got determinant ", det);
    Eigen::Map<Eigen::Matrix<double, 3, 3, Eigen::RowMajor>> Minv(inv.data.data() + 9 * n);
    Minv = M.inverse();
  }
  return inv;
}

/// Checks out_hw (positive; the kernels index a row with int32).
inline void check_out_hw(SizeHW out_hw, const char* fn) {
  TORCH_CHECK(out_hw[0] > 0 && out_hw[1] > 0, fn, ": out_hw must be positive {height, width}, got {", out_hw[0],
              ", ", out_hw[1], "}");
  TORCH_CHECK(out_hw[1] < (int64_t(1) << 30), fn, ": out_hw width must be below 2^30, got ", out_hw[1]);
}

/// Source coordinates of every destination pixel, computed with tensor ops on `device`
/// (the device-agnostic path): for H_src_dst [count, 3, 3] float64, returns
/// (sx, sy, w) each [count, h, w] float64, with sx, sy = 0 where w <= 0.
struct SourceCoordinates {
  torch::Tensor x, y, front;
};

inline SourceCoordinates source_coordinates(const InverseHomographies& inv, SizeHW out_hw, torch::Device device) {
  auto Hinv = torch::from_blob(const_cast<double*>(inv.data.data()), {inv.count, 3, 3}, torch::kFloat64)
                  .to(device, /*non_blocking=*/false, /*copy=*/true);
  const auto opts = Hinv.options();
  const auto X = torch::arange(out_hw[1], opts).view({1, 1, -1});
  const auto Y = torch::arange(out_hw[0], opts).view({1, -1, 1});
  auto h = [&](int r, int c) { return Hinv.select(1, r).select(1, c).view({-1, 1, 1}); };
  const auto u = h(0, 0) * X + h(0, 1) * Y + h(0, 2);
  const auto v = h(1, 0) * X + h(1, 1) * Y + h(1, 2);
  const auto w = h(2, 0) * X + h(2, 1) * Y + h(2, 2);  // [count, h, w]
  const auto front = w > 0;
  const auto w_safe = torch::where(front, w, torch::ones_like(w));
  const auto zero = torch::zeros({}, opts);
  return SourceCoordinates{torch::where(front, u / w_safe, zero), torch::where(front, v / w_safe, zero), front};
}

}  // namespace detail
}  // namespace crossview
