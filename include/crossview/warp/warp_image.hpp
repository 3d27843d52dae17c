#pragma once
/// \file
/// Bilinear warping of images by a homography straight into an output crop (paper Sec. 3.1,
/// Eq. 2-4): the whole image is never warped and then cropped.

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/warp/size_hw.hpp"
#include "crossview/warp/detail/warp_common.hpp"
#include "crossview/warp/detail/warp_kernel_cpu.hpp"
#include "crossview/warp/homography_tensor.hpp"

#include <Eigen/Core>
#include <torch/torch.h>

namespace crossview {
namespace detail {

/// Checked image batch: the [N, C, H, W] view of `image` and whether it had a batch dimension.
struct ImageBatch {
  torch::Tensor images;
  bool batched;
};

inline ImageBatch check_warp_image_input(const torch::Tensor& image, const char* fn) {
  check_rank(image, {3, 4}, fn, "image", "[C, H, W] or [N, C, H, W]");
  TORCH_CHECK(image.scalar_type() == torch::kUInt8 || image.scalar_type() == torch::kFloat32 ||
                  image.scalar_type() == torch::kFloat64,
              fn, ": image must be uint8, float32 or float64, got ", image.scalar_type());
  TORCH_CHECK(image.size(-1) > 0 && image.size(-2) > 0 && image.size(-3) > 0, fn,
              ": image must not be empty, got ", shape_string(image));
  const bool batched = image.dim() == 4;
  return ImageBatch{batched ? image : image.unsqueeze(0), batched};
}

/// The device-agnostic path (any device, built from ATen ops): grid_sample with zero padding is
/// exactly bilinear sampling where taps outside the source read 0. Used for non-CPU tensors;
/// callable on the CPU for testing. `images` is [N, C, H, W].
inline Warped warp_image_aten(const torch::Tensor& images, const InverseHomographies& inv, SizeHW out_hw) {
  const int64_t N = images.size(0), H = images.size(2), W = images.size(3);
  const auto src = source_coordinates(inv, out_hw, images.device());
  const auto valid = src.front & (src.x >= 0) & (src.x <= double(W - 1)) & (src.y >= 0) & (src.y <= double(H - 1));
  // Samples with no tap inside go far outside, so the grid stays small in float.
  const auto near = src.front & (src.x > -1.0) & (src.x < double(W)) & (src.y > -1.0) & (src.y < double(H));
  const auto far = torch::full({}, -4.0, src.x.options());
  const auto sx = torch::where(near, src.x, far);
  const auto sy = torch::where(near, src.y, far);
  // grid_sample, align_corners=false: g = (2 s + 1) / size - 1.
  const auto compute_type = images.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto grid = torch::stack({(2.0 * sx + 1.0) / double(W) - 1.0, (2.0 * sy + 1.0) / double(H) - 1.0}, -1)
                  .to(compute_type)
                  .expand({N, out_hw[0], out_hw[1], 2});
  namespace F = torch::nn::functional;
  auto out = F::grid_sample(images.to(compute_type), grid,
                            F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(
                                false));
  if (images.scalar_type() == torch::kUInt8) out = out.round().clamp(0, 255).to(torch::kUInt8);
  return Warped{out, valid.expand({N, out_hw[0], out_hw[1]}).contiguous()};
}

inline Warped warp_image_impl(const torch::Tensor& image, const torch::Tensor& H_dst_src, SizeHW out_hw,
                              bool want_valid, bool force_aten = false) {
  constexpr const char* kFn = "warp_image";
  const auto in = check_warp_image_input(image, kFn);
  check_has_values(image, kFn, "image");  // no ATen path on meta (aten::where has no meta kernel)
  check_out_hw(out_hw, kFn);
  if (H_dst_src.defined()) check_has_values(H_dst_src, kFn, "H_dst_src");  // it is inverted on the CPU
  const auto inv = invert_homographies(H_dst_src, in.images.size(0), kFn);
  Warped result;
  if (force_aten || !in.images.device().is_cpu()) {
    result = warp_image_aten(in.images, inv, out_hw);
  } else {
    const auto images = in.images.contiguous();
    const int64_t N = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
    TORCH_CHECK(H < (int64_t(1) << 30) && W < (int64_t(1) << 30), kFn, ": image is too large, got ",
                shape_string(image));
    result.output = torch::empty({N, C, out_hw[0], out_hw[1]}, images.options());
    if (want_valid) result.valid = torch::empty({N, out_hw[0], out_hw[1]}, images.options().dtype(torch::kBool));
    bool* valid = want_valid ? result.valid.data_ptr<bool>() : nullptr;
    auto run = [&](auto tag) {
      using scalar_t = decltype(tag);
      warp_image_cpu_kernel<scalar_t>(images.data_ptr<scalar_t>(), N, C, H, W, inv,
                                      result.output.data_ptr<scalar_t>(), valid, out_hw[0], out_hw[1]);
    };
    switch (images.scalar_type()) {
      case torch::kUInt8: run(uint8_t{}); break;
      case torch::kFloat32: run(float{}); break;
      default: run(double{}); break;  // kFloat64; the dtype was checked above
    }
  }
  if (!in.batched) {
    result.output = result.output.squeeze(0);
    if (result.valid.defined()) result.valid = result.valid.squeeze(0);
  }
  if (!want_valid) result.valid = torch::Tensor();
  return result;
}

}  // namespace detail

/// Warps `image` by the homography H_dst_src into an output of size out_hw = {height, width}
/// (paper Eq. 2/4), with bilinear interpolation: destination pixel (x, y) takes the source at
/// (sx, sy) = H_dst_src^-1 * (x, y, 1) (pixel centres at integers, DESIGN.md).
///
/// - `image`: [C, H, W] or [N, C, H, W] (C, H, W > 0; N may be 0), uint8, float32 or float64, any
///   device that holds values (CPU, CUDA; not `meta`).
/// - `H_dst_src`: [3, 3] or [N, 3, 3] floating tensor (one shared, or one per image), any device
///   that holds values (not `meta`); it must be finite and invertible. It maps source pixels to
///   output pixels.
/// - returns [C, h, w] / [N, C, h, w] in the input's dtype and device. uint8 results are rounded
///   to nearest and saturated.
///
/// Fill and border: the four bilinear taps that lie outside the source read 0, exactly as OpenCV's
/// `warpPerspective(..., INTER_LINEAR, BORDER_CONSTANT, 0)` with `WARP_INVERSE_MAP` unset and the
/// same H; a source position behind the camera (w <= 0) gives 0 (never mirrored). A pixel is
/// *valid* (see warp_image_with_mask) when w > 0 and 0 <= sx <= W-1, 0 <= sy <= H-1: its value
/// needs no fill.
///
/// To warp into a crop whose top-left pixel is `origin` in the full destination view, pass
/// T(-origin) * H_dst_src (`translation_homography<double>(-origin) * H`, or Eq. 3's
/// `crop_homography(H, Vector2d::Zero(), origin)`).
///
/// CPU tensors run a multithreaded kernel (rows across at::parallel_for); other devices a
/// grid_sample-based path built from ATen ops.
/// \throws c10::Error naming the argument for wrong ranks, dtypes, sizes, an empty image, or a
/// singular or non-finite H.
inline torch::Tensor warp_image(const torch::Tensor& image, const torch::Tensor& H_dst_src, SizeHW out_hw) {
  return detail::warp_image_impl(image, H_dst_src, out_hw, /*want_valid=*/false).output;
}

/// warp_image with one Eigen 3x3 homography (any scalar type) shared by all images.
template <typename Derived>
torch::Tensor warp_image(const torch::Tensor& image, const Eigen::MatrixBase<Derived>& H_dst_src, SizeHW out_hw) {
  return warp_image(image, homography_to_tensor(H_dst_src), out_hw);
}

/// warp_image that also returns the validity mask: bool [h, w] / [N, h, w], true where
/// w > 0 and the source position lies in [0, W-1] x [0, H-1] (the output needed no fill).
inline Warped warp_image_with_mask(const torch::Tensor& image, const torch::Tensor& H_dst_src, SizeHW out_hw) {
  return detail::warp_image_impl(image, H_dst_src, out_hw, /*want_valid=*/true);
}

/// warp_image_with_mask with one Eigen 3x3 homography shared by all images.
template <typename Derived>
Warped warp_image_with_mask(const torch::Tensor& image, const Eigen::MatrixBase<Derived>& H_dst_src, SizeHW out_hw) {
  return warp_image_with_mask(image, homography_to_tensor(H_dst_src), out_hw);
}

}  // namespace crossview
