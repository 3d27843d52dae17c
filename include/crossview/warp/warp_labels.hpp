#pragma once
/// \file
/// Nearest-neighbour warping of label maps by a homography straight into an output crop (paper
/// Sec. 3.1); pixels without a source label get the ignore index.

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/warp/size_hw.hpp"
#include "crossview/warp/detail/warp_common.hpp"
#include "crossview/warp/detail/warp_kernel_cpu.hpp"
#include "crossview/warp/homography_tensor.hpp"

#include <Eigen/Core>
#include <torch/torch.h>

#include <limits>

namespace crossview {
namespace detail {

/// The device-agnostic path (ATen ops, any device): rounds the source coordinates half to even
/// (as the CPU kernel and OpenCV) and gathers. `labels` is [N, H, W].
inline Warped warp_labels_aten(const torch::Tensor& labels, const InverseHomographies& inv, SizeHW out_hw,
                               int64_t ignore_index) {
  const int64_t N = labels.size(0), H = labels.size(1), W = labels.size(2);
  const auto src = source_coordinates(inv, out_hw, labels.device());
  const auto near = src.front & (src.x > -1.0) & (src.x < double(W)) & (src.y > -1.0) & (src.y < double(H));
  const auto zero = torch::zeros({}, src.x.options());
  const auto ix = torch::where(near, src.x, zero).round().to(torch::kInt64);  // torch::round: half to even
  const auto iy = torch::where(near, src.y, zero).round().to(torch::kInt64);
  const auto valid = (near & (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)).expand({N, out_hw[0], out_hw[1]});
  const auto index = (iy.clamp(0, H - 1) * W + ix.clamp(0, W - 1)).expand({N, out_hw[0], out_hw[1]}).reshape({N, -1});
  const auto gathered = labels.reshape({N, H * W}).gather(1, index).view({N, out_hw[0], out_hw[1]});
  const auto out = torch::where(valid, gathered, torch::full({}, ignore_index, labels.options()));
  return Warped{out, valid.contiguous()};
}

inline Warped warp_labels_impl(const torch::Tensor& labels, const torch::Tensor& H_dst_src, SizeHW out_hw,
                               int64_t ignore_index, bool want_valid, bool force_aten = false) {
  constexpr const char* kFn = "warp_labels";
  check_rank(labels, {2, 3}, kFn, "labels", "[H, W] or [N, H, W]");
  const auto type = labels.scalar_type();
  TORCH_CHECK(type == torch::kUInt8 || type == torch::kInt16 || type == torch::kInt32 || type == torch::kInt64, kFn,
              ": labels must be an integer tensor (uint8, int16, int32 or int64), got ", type);
  TORCH_CHECK(labels.size(-1) > 0 && labels.size(-2) > 0, kFn, ": labels must not be empty, got ",
              shape_string(labels));
  const int64_t lowest = type == torch::kUInt8   ? 0
                         : type == torch::kInt16 ? std::numeric_limits<int16_t>::min()
                         : type == torch::kInt32 ? std::numeric_limits<int32_t>::min()
                                                 : std::numeric_limits<int64_t>::min();
  const int64_t highest = type == torch::kUInt8   ? 255
                          : type == torch::kInt16 ? std::numeric_limits<int16_t>::max()
                          : type == torch::kInt32 ? std::numeric_limits<int32_t>::max()
                                                  : std::numeric_limits<int64_t>::max();
  TORCH_CHECK(ignore_index >= lowest && ignore_index <= highest, kFn,
              ": ignore_index must be representable in the labels' dtype ", type, ", got ", ignore_index);
  check_has_values(labels, kFn, "labels");  // no ATen path on meta (aten::where has no meta kernel)
  check_out_hw(out_hw, kFn);
  const bool batched = labels.dim() == 3;
  const auto maps = batched ? labels : labels.unsqueeze(0);
  if (H_dst_src.defined()) check_has_values(H_dst_src, kFn, "H_dst_src");  // it is inverted on the CPU
  const auto inv = invert_homographies(H_dst_src, maps.size(0), kFn);
  Warped result;
  if (force_aten || !maps.device().is_cpu()) {
    result = warp_labels_aten(maps, inv, out_hw, ignore_index);
  } else {
    const auto src = maps.contiguous();
    const int64_t N = src.size(0), H = src.size(1), W = src.size(2);
    result.output = torch::empty({N, out_hw[0], out_hw[1]}, src.options());
    if (want_valid) result.valid = torch::empty({N, out_hw[0], out_hw[1]}, src.options().dtype(torch::kBool));
    bool* valid = want_valid ? result.valid.data_ptr<bool>() : nullptr;
    auto run = [&](auto tag) {
      using label_t = decltype(tag);
      warp_labels_cpu_kernel<label_t>(src.data_ptr<label_t>(), N, H, W, inv, result.output.data_ptr<label_t>(),
                                      valid, out_hw[0], out_hw[1], label_t(ignore_index));
    };
    switch (type) {
      case torch::kUInt8: run(uint8_t{}); break;
      case torch::kInt16: run(int16_t{}); break;
      case torch::kInt32: run(int32_t{}); break;
      default: run(int64_t{}); break;  // kInt64; the dtype was checked above
    }
  }
  if (!batched) {
    result.output = result.output.squeeze(0);
    if (result.valid.defined()) result.valid = result.valid.squeeze(0);
  }
  if (!want_valid) result.valid = torch::Tensor();
  return result;
}

}  // namespace detail

/// Warps a label map by the homography H_dst_src into an output of size out_hw = {height, width}
/// with nearest-neighbour sampling: destination pixel (x, y) takes the label of source pixel
/// (round(sx), round(sy)), (sx, sy) = H_dst_src^-1 * (x, y, 1), rounding half to even. Where w <= 0
/// (behind the camera) or that pixel does not exist, it gets `ignore_index`. This is OpenCV's
/// `warpPerspective(..., INTER_NEAREST, BORDER_CONSTANT, ignore_index)` with the same H.
///
/// - `labels`: [H, W] or [N, H, W] (H, W > 0; N may be 0), uint8 / int16 / int32 / int64 (train ids),
///   any device that holds values (not `meta`).
/// - `H_dst_src`: [3, 3] or [N, 3, 3] floating tensor (one shared, or one per map), not on `meta`;
///   finite and invertible.
/// - returns [h, w] / [N, h, w] in the input's dtype and device.
///
/// To warp into a crop with top-left pixel `origin`, pass T(-origin) * H_dst_src (see warp_image).
/// \throws c10::Error naming the argument for wrong ranks, dtypes, sizes, a singular H or an
/// ignore_index the dtype cannot hold.
inline torch::Tensor warp_labels(const torch::Tensor& labels, const torch::Tensor& H_dst_src, SizeHW out_hw,
                                 int64_t ignore_index = 255) {
  return detail::warp_labels_impl(labels, H_dst_src, out_hw, ignore_index, /*want_valid=*/false).output;
}

/// warp_labels with one Eigen 3x3 homography (any scalar type) shared by all maps.
template <typename Derived>
torch::Tensor warp_labels(const torch::Tensor& labels, const Eigen::MatrixBase<Derived>& H_dst_src, SizeHW out_hw,
                          int64_t ignore_index = 255) {
  return warp_labels(labels, homography_to_tensor(H_dst_src), out_hw, ignore_index);
}

/// warp_labels that also returns the mask of pixels that took a source label (bool [h, w] /
/// [N, h, w]). Note it is half a pixel wider than warp_image's validity (nearest needs the source
/// position within [-0.5, W-0.5), bilinear without fill within [0, W-1]).
inline Warped warp_labels_with_mask(const torch::Tensor& labels, const torch::Tensor& H_dst_src, SizeHW out_hw,
                                    int64_t ignore_index = 255) {
  return detail::warp_labels_impl(labels, H_dst_src, out_hw, ignore_index, /*want_valid=*/true);
}

/// warp_labels_with_mask with one Eigen 3x3 homography shared by all maps.
template <typename Derived>
Warped warp_labels_with_mask(const torch::Tensor& labels, const Eigen::MatrixBase<Derived>& H_dst_src, SizeHW out_hw,
                             int64_t ignore_index = 255) {
  return warp_labels_with_mask(labels, homography_to_tensor(H_dst_src), out_hw, ignore_index);
}

}  // namespace crossview
