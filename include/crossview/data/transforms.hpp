#pragma once
/// \file
/// Segmentation data transforms on tensors (no OpenCV): ImageNet normalisation, random scaling,
/// cropping with ignore padding, horizontal flips, and the usual training and evaluation
/// pipelines built from them.

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/geometry/view_sampling.hpp"
#include "crossview/random.hpp"
#include "crossview/warp/size_hw.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace crossview {

/// ImageNet channel means (RGB) used to normalise network inputs.
inline constexpr std::array<double, 3> kImageNetMean{0.485, 0.456, 0.406};
/// ImageNet channel standard deviations (RGB).
inline constexpr std::array<double, 3> kImageNetStd{0.229, 0.224, 0.225};

/// An image and its label map.
struct ImageLabel {
  torch::Tensor image;  ///< [3, H, W] float32
  torch::Tensor label;  ///< [H, W] int64 train ids, 255 ignore
};

namespace detail {

/// image [3, H, W] and label [H, W] (integer) of the same size, on one device.
inline void check_image_label(const torch::Tensor& image, const torch::Tensor& label, const char* fn) {
  check_rank(image, {3}, fn, "image", "[3, H, W]");
  check_rank(label, {2}, fn, "label", "[H, W]");
  TORCH_CHECK(image.size(0) == 3, fn, ": image must have 3 channels [3, H, W], got ", shape_string(image));
  TORCH_CHECK(image.size(1) == label.size(0) && image.size(2) == label.size(1), fn,
              ": image and label must have the same height and width, got image ", shape_string(image),
              " and label ", shape_string(label));
  check_integer(label, fn, "label");
  check_same_device(image, label, fn, "image", "label");
}

/// [3] tensor of per-channel constants shaped to broadcast over [..., 3, H, W].
inline torch::Tensor channel_constants(const std::array<double, 3>& values, const torch::Tensor& like) {
  return torch::tensor({values[0], values[1], values[2]}, like.options()).view({3, 1, 1});
}

}  // namespace detail

/// ImageNet normalisation (x - mean) / std per RGB channel of a float image in [0, 1],
/// [3, H, W] or [N, 3, H, W]; returns a new tensor of the same shape and dtype.
inline torch::Tensor normalize_imagenet(const torch::Tensor& image) {
  detail::check_rank(image, {3, 4}, "normalize_imagenet", "image", "[3, H, W] or [N, 3, H, W]");
  detail::check_floating(image, "normalize_imagenet", "image");
  TORCH_CHECK(image.size(-3) == 3, "normalize_imagenet: image must have 3 channels, got ",
              detail::shape_string(image));
  return (image - detail::channel_constants(kImageNetMean, image)) / detail::channel_constants(kImageNetStd, image);
}

/// Inverse of normalize_imagenet: x * std + mean.
inline torch::Tensor denormalize_imagenet(const torch::Tensor& image) {
  detail::check_rank(image, {3, 4}, "denormalize_imagenet", "image", "[3, H, W] or [N, 3, H, W]");
  detail::check_floating(image, "denormalize_imagenet", "image");
  TORCH_CHECK(image.size(-3) == 3, "denormalize_imagenet: image must have 3 channels, got ",
              detail::shape_string(image));
  return image * detail::channel_constants(kImageNetStd, image) + detail::channel_constants(kImageNetMean, image);
}

/// A uint8 image [3, H, W] (0..255) as float32 in [0, 1]; float images are returned as float32.
inline torch::Tensor image_to_float(const torch::Tensor& image) {
  TORCH_CHECK(image.defined(), "image_to_float: image must be a defined tensor, got an undefined tensor");
  if (image.scalar_type() == torch::kUInt8) return image.to(torch::kFloat32).div_(255.0);
  TORCH_CHECK(image.is_floating_point(), "image_to_float: image must be a uint8 or floating-point tensor, got ",
              image.scalar_type());
  return image.to(torch::kFloat32);
}

/// Resizes image (bilinear, align_corners=False) and label (nearest) to out_hw = {height, width}.
inline ImageLabel resize_image_label(const torch::Tensor& image, const torch::Tensor& label,
                                     std::array<int64_t, 2> out_hw) {
  detail::check_image_label(image, label, "resize_image_label");
  detail::check_nonempty_hw(image, "resize_image_label", "image");
  TORCH_CHECK(out_hw[0] > 0 && out_hw[1] > 0, "resize_image_label: out_hw must be positive, got ", out_hw[0], "x",
              out_hw[1]);
  namespace F = torch::nn::functional;
  const std::vector<int64_t> size{out_hw[0], out_hw[1]};
  auto img = F::interpolate(image.unsqueeze(0).to(torch::kFloat32),
                            F::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(false))
                 .squeeze(0);
  // Nearest with pixel-centre alignment: out pixel i takes in pixel floor((i + 0.5) * in / out).
  const auto rows = ((torch::arange(out_hw[0], torch::kFloat64) + 0.5) * (double(label.size(0)) / double(out_hw[0])))
                        .floor()
                        .clamp_max(double(label.size(0) - 1))
                        .to(torch::kLong);
  const auto cols = ((torch::arange(out_hw[1], torch::kFloat64) + 0.5) * (double(label.size(1)) / double(out_hw[1])))
                        .floor()
                        .clamp_max(double(label.size(1) - 1))
                        .to(torch::kLong);
  auto lab = label.index_select(0, rows).index_select(1, cols);
  return ImageLabel{img, lab};
}

/// The window of size crop_hw = {height, width} whose top-left pixel is `origin` = {x, y} (pixel
/// coordinates, as everywhere in crossview; it may lie partly outside the image, even at negative
/// coordinates): image pixels outside read `image_fill`, label pixels outside read `ignore_index`.
inline ImageLabel pad_crop(const torch::Tensor& image, const torch::Tensor& label, std::array<int64_t, 2> origin,
                           std::array<int64_t, 2> crop_hw, double image_fill = 0.0, int64_t ignore_index = 255) {
  detail::check_image_label(image, label, "pad_crop");
  TORCH_CHECK(crop_hw[0] > 0 && crop_hw[1] > 0, "pad_crop: crop_hw must be positive, got ", crop_hw[0], "x",
              crop_hw[1]);
  const int64_t H = image.size(1), W = image.size(2);
  auto img = torch::full({3, crop_hw[0], crop_hw[1]}, image_fill, image.options());
  auto lab = torch::full({crop_hw[0], crop_hw[1]}, ignore_index, label.options());
  // Overlap of [origin, origin + crop) with [0, size), in image and crop coordinates.
  const int64_t ox = origin[0], oy = origin[1];
  const int64_t y0 = std::max<int64_t>(0, oy), y1 = std::min(H, oy + crop_hw[0]);
  const int64_t x0 = std::max<int64_t>(0, ox), x1 = std::min(W, ox + crop_hw[1]);
  if (y1 > y0 && x1 > x0) {
    using torch::indexing::Slice;
    img.index({Slice(), Slice(y0 - oy, y1 - oy), Slice(x0 - ox, x1 - ox)})
        .copy_(image.index({Slice(), Slice(y0, y1), Slice(x0, x1)}));
    lab.index({Slice(y0 - oy, y1 - oy), Slice(x0 - ox, x1 - ox)}).copy_(label.index({Slice(y0, y1), Slice(x0, x1)}));
  }
  return ImageLabel{img, lab};
}

/// Mirrors image [3, H, W] and label [H, W] left-right.
inline ImageLabel hflip_image_label(const torch::Tensor& image, const torch::Tensor& label) {
  detail::check_image_label(image, label, "hflip_image_label");
  return ImageLabel{image.flip({2}), label.flip({1})};
}

/// The training / evaluation pipeline of a segmentation dataset, applied to an image (uint8 or
/// float in [0, 1], [3, H, W]) and its label [H, W]:
///   1. (train) resize by a random factor uniform in [scale_min, scale_max];
///   2. (normalize) ImageNet normalisation;
///   3. (train, crop_hw set) a random crop of crop_hw; where the image is smaller than the crop the
///      image is padded with 0 (the ImageNet mean once normalised) and the label with ignore_index;
///   4. (train, flip) a horizontal flip with probability 1/2.
/// evaluation() does only step 2. Random draws come from the caller's engine (reproducible on every
/// platform for a given seed).
struct SegmentationTransform {
  /// Whether steps 1-3 run.
  TORCH_ARG(bool, train) = false;
  /// Crop size {height, width}; {0, 0} keeps the (scaled) image whole.
  TORCH_ARG(SizeHW, crop_hw) = SizeHW{0, 0};
  TORCH_ARG(double, scale_min) = 0.5;
  TORCH_ARG(double, scale_max) = 2.0;
  TORCH_ARG(bool, flip) = true;
  TORCH_ARG(bool, normalize) = true;
  TORCH_ARG(int64_t, ignore_index) = 255;

 public:
  /// The usual training pipeline with crops of crop_hw = {height, width}.
  static SegmentationTransform training(std::array<int64_t, 2> crop_hw) {
    return SegmentationTransform().train(true).crop_hw(crop_hw);
  }
  /// Evaluation: normalisation only.
  static SegmentationTransform evaluation() { return SegmentationTransform(); }

  /// Applies the pipeline. \returns {image [3, h, w] float32, label [h, w] int64}.
  template <typename URBG>
  ImageLabel operator()(const torch::Tensor& image, const torch::Tensor& label, URBG& rng) const {
    constexpr const char* kFn = "SegmentationTransform";
    detail::check_image_label(image, label, kFn);
    detail::check_nonempty_hw(image, kFn, "image");
    TORCH_CHECK(scale_min_ > 0 && scale_max_ >= scale_min_, kFn,
                ": scale range must satisfy 0 < scale_min <= scale_max, got [", scale_min_, ", ", scale_max_, "]");
    ImageLabel out{image_to_float(image), label.to(torch::kInt64)};
    if (train_) {
      const double s = scale_min_ + (scale_max_ - scale_min_) * uniform01(rng);
      const auto h = std::max<int64_t>(1, int64_t(std::lround(double(image.size(1)) * s)));
      const auto w = std::max<int64_t>(1, int64_t(std::lround(double(image.size(2)) * s)));
      if (h != image.size(1) || w != image.size(2)) out = resize_image_label(out.image, out.label, {h, w});
    }
    if (normalize_) out.image = normalize_imagenet(out.image);
    if (train_) {
      const int64_t h = out.image.size(1), w = out.image.size(2);
      if (crop_hw_[0] > 0 && crop_hw_[1] > 0) {
        // Origins over every placement; a crop larger than the image sits at a random offset
        // with padding around.
        const int64_t span_y = h - crop_hw_[0], span_x = w - crop_hw_[1];
        const auto pick = [&](int64_t span) {
          const auto n = std::abs(span) + 1;
          const auto k = std::min<int64_t>(n - 1, int64_t(uniform01(rng) * double(n)));
          return span >= 0 ? k : -k;
        };
        const int64_t oy = pick(span_y), ox = pick(span_x);
        out = pad_crop(out.image, out.label, {ox, oy}, crop_hw_, 0.0, ignore_index_);
      }
      if (flip_ && uniform01(rng) < 0.5) out = hflip_image_label(out.image, out.label);
    }
    return ImageLabel{out.image.contiguous(), out.label.contiguous()};
  }
};

}  // namespace crossview
