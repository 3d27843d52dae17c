#pragma once
/// \file
/// Deriving a VVD evaluation view from an image and its label, as the paper does (Sec. 4.2): a
/// random rotation homography (Eq. 1-2), the image warped bilinearly and the label by nearest
/// neighbour straight into the largest rectangle inside the warped image (no fill pixels). And the
/// sample type that VVD evaluation datasets yield. No OpenCV: file IO lives in crossview/io/.

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/geometry/detail/checks.hpp"
#include "crossview/geometry/homography.hpp"
#include "crossview/geometry/inscribed_rect.hpp"
#include "crossview/geometry/intrinsics.hpp"
#include "crossview/geometry/rotation.hpp"
#include "crossview/geometry/view_sampling.hpp"
#include "crossview/warp/warp_image.hpp"
#include "crossview/warp/warp_labels.hpp"

#include <Eigen/Core>
#include <torch/torch.h>

#include <cstdint>
#include <sstream>

namespace crossview {

/// One pair of a VVD evaluation dataset: an original view, a view of the same scene in another
/// direction, and the homography between them. Images are float32 [3, H, W] in [0, 1] (not
/// normalised), labels int64 [H, W] train ids with 255 ignore, all on the CPU.
struct VVDSample {
  torch::Tensor image;          ///< original view [3, H, W]
  torch::Tensor label;          ///< original labels [H, W]
  torch::Tensor derived_image;  ///< derived view [3, h, w]
  torch::Tensor derived_label;  ///< derived labels [h, w]
  /// Maps original pixels to derived pixels: p_derived ~ H_derived_source * p_source (Eq. 3/4).
  Eigen::Matrix3d H_derived_source{Eigen::Matrix3d::Identity()};
};

/// A derived view and how it was made.
struct DerivedView {
  torch::Tensor image;  ///< [3, h, w], the input's dtype: the source warped (bilinear) into the crop
  torch::Tensor label;  ///< [h, w] int64: the source labels warped (nearest) into the crop
  /// Source pixels -> derived (cropped) pixels: T(-crop origin) * K R K^-1 (Eq. 2-3).
  Eigen::Matrix3d H_derived_source{Eigen::Matrix3d::Identity()};
  /// The crop in the full rotated view: the largest rectangle whose every pixel centre samples the
  /// source inside [0, W-1] x [0, H-1] (largest_inscribed_rect).
  Rect crop;
  EulerAngles<double> angles;  ///< radians
  double focal{0};             ///< pixels; principal point at the image centre
};

/// Derives the view of `image` ([3, H, W], uint8, float32 or float64, not empty) and `label` ([H, W]
/// integer, image's device) under the
/// rotation of `angles` for a camera of focal length `focal` pixels with its principal point at
/// the image centre (Sec. 4.2): H = K R K^-1, crop = largest_inscribed_rect(H, W, H), the image
/// warped bilinearly and the label by nearest neighbour with T(-origin) * H.
/// \throws std::invalid_argument for a bad focal or angles, or when no pixel of the rotated view
/// sees the source; c10::Error for bad tensors.
inline DerivedView derive_vvd_view(const torch::Tensor& image, const torch::Tensor& label, double focal,
                                   const EulerAngles<double>& angles) {
  constexpr const char* kFn = "derive_vvd_view";
  detail::check_rank(image, {3}, kFn, "image", "[3, H, W]");
  detail::check_rank(label, {2}, kFn, "label", "[H, W]");
  TORCH_CHECK(image.size(1) == label.size(0) && image.size(2) == label.size(1), kFn,
              ": image and label must have the same height and width, got image ", detail::shape_string(image),
              " and label ", detail::shape_string(label));
  const auto dtype = image.scalar_type();
  TORCH_CHECK(dtype == torch::kUInt8 || dtype == torch::kFloat32 || dtype == torch::kFloat64, kFn,
              ": image must be uint8, float32 or float64, got ", dtype);
  detail::check_integer(label, kFn, "label");
  detail::check_same_device(image, label, kFn, "image", "label");
  detail::check_has_values(image, kFn, "image");
  TORCH_CHECK(image.numel() > 0, kFn, ": image must not be empty, got ", detail::shape_string(image));
  const int64_t height = image.size(1), width = image.size(2);
  const auto K = Intrinsicsd::centered(focal, double(width), double(height));
  const Eigen::Matrix3d R = rotation_from_euler(angles);
  const Eigen::Matrix3d H = rotation_homography(K, R);
  const Rect crop = largest_inscribed_rect(H, width, height);
  if (crop.empty()) {
    std::ostringstream got;
    got << "leave no pixel of the rotated view inside the " << width << "x" << height << " source";
    detail::throw_invalid(kFn, "angles", got.str());
  }
  DerivedView out;
  out.H_derived_source = translation_homography<double>(Eigen::Vector2d(-double(crop.x), -double(crop.y))) * H;
  out.crop = crop;
  out.angles = angles;
  out.focal = focal;
  const SizeHW out_hw{crop.height, crop.width};
  out.image = warp_image(image, out.H_derived_source, out_hw);
  out.label = warp_labels(label.to(torch::kInt64), out.H_derived_source, out_hw);
  return out;
}

/// The paper's VVD evaluation protocol (Sec. 4.2) applied to a sample whose derived view is a whole
/// view of the scene in another direction (an exact rotated render, say): the derived image and
/// labels cropped to the largest rectangle of derived pixels whose every pixel centre sees the
/// original view (largest_inscribed_rect of H_derived_source over the derived image), and
/// H_derived_source composed with the crop's translation. Every pixel of the result has its
/// correspondence inside the original view; the pixels are the derived view's own (no
/// interpolation). `crop`, when given, receives the rectangle in the whole derived view.
/// \throws std::invalid_argument when no derived pixel sees the original view or H_derived_source is
/// not finite; c10::Error for bad tensors.
inline VVDSample crop_to_source_view(const VVDSample& sample, Rect* crop = nullptr) {
  constexpr const char* kFn = "crop_to_source_view";
  detail::check_rank(sample.image, {3}, kFn, "sample.image", "[3, H, W]");
  detail::check_rank(sample.derived_image, {3}, kFn, "sample.derived_image", "[3, h, w]");
  detail::check_rank(sample.derived_label, {2}, kFn, "sample.derived_label", "[h, w]");
  detail::check_integer(sample.derived_label, kFn, "sample.derived_label");
  TORCH_CHECK(sample.image.numel() > 0, kFn, ": sample.image must not be empty, got ",
              detail::shape_string(sample.image));
  if (!sample.H_derived_source.allFinite()) {
    detail::throw_invalid(kFn, "sample.H_derived_source", "must have finite entries, got a NaN or infinity");
  }
  TORCH_CHECK(sample.derived_image.size(1) == sample.derived_label.size(0) &&
                  sample.derived_image.size(2) == sample.derived_label.size(1),
              kFn, ": derived_image and derived_label must have the same height and width, got ",
              detail::shape_string(sample.derived_image), " and ", detail::shape_string(sample.derived_label));
  const int64_t h = sample.derived_image.size(1), w = sample.derived_image.size(2);
  const Rect rect = largest_inscribed_rect(sample.H_derived_source, sample.image.size(2), sample.image.size(1),
                                           Rect{0, 0, w, h});
  if (rect.empty()) detail::throw_invalid(kFn, "sample.H_derived_source", "leaves no derived pixel seeing the original view");
  using torch::indexing::Slice;
  VVDSample out = sample;
  out.derived_image = sample.derived_image.index({Slice(), Slice(rect.y, rect.y + rect.height), Slice(rect.x, rect.x + rect.width)});
  out.derived_label = sample.derived_label.index({Slice(rect.y, rect.y + rect.height), Slice(rect.x, rect.x + rect.width)});
  out.H_derived_source =
      translation_homography<double>(Eigen::Vector2d(-double(rect.x), -double(rect.y))) * sample.H_derived_source;
  if (crop != nullptr) *crop = rect;
  return out;
}

/// derive_vvd_view with yaw, pitch and roll drawn uniformly from `range` (the paper's ranges by
/// default) with `rng`.
template <typename URBG>
DerivedView derive_vvd_view(const torch::Tensor& image, const torch::Tensor& label, double focal,
                            const ViewRange& range, URBG& rng) {
  return derive_vvd_view(image, label, focal, sample_view<double>(range, rng));
}

}  // namespace crossview
