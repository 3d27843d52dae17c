#pragma once
/// \file
/// torch::data datasets over SyntheticStreet, crossview's embedded default: training views biased
/// to the street direction as in Cityscapes, and a VVD evaluation split of real renders in view
/// directions from the paper's ranges with the exact homography to the street-aligned view.

#include "crossview/data/vvd_view.hpp"
#include "crossview/random.hpp"
#include "crossview/data/synthetic_street.hpp"
#include "crossview/data/transforms.hpp"
#include "crossview/geometry/homography.hpp"
#include "crossview/geometry/intrinsics.hpp"
#include "crossview/geometry/rotation.hpp"
#include "crossview/geometry/view_sampling.hpp"

#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <random>

namespace crossview {

/// Options of the synthetic datasets.
struct SyntheticStreetOptions {
  /// Number of scenes (samples) in the split.
  TORCH_ARG(int64_t, size) = 500;
  /// Seed of the whole split: scene i of a split is SyntheticStreet(scene_seed(i)).
  TORCH_ARG(std::uint64_t, seed) = 0;
  TORCH_ARG(int64_t, height) = 128;
  TORCH_ARG(int64_t, width) = 256;
  /// Focal length in pixels; 0 means the paper's 2262 px scaled to the width (2262 * width / 2048).
  TORCH_ARG(double, focal) = 0.0;
  /// Training views: small jitter around the street direction (yaw, pitch, roll half-ranges in
  /// degrees), the Cityscapes-like bias of the paper's training data.
  TORCH_ARG(ViewRange, jitter) = (ViewRange{2.0, 1.0, 0.5});
  /// Evaluation views of the VVD split: the paper's ranges (+-30, +-15, +-3 degrees).
  TORCH_ARG(ViewRange, vvd_range) = ViewRange{};
  /// VVD split: crop the rotated render to the largest rectangle whose every pixel the original
  /// view sees (crop_to_source_view; the paper's protocol, Sec. 4.2, and the default). false: the
  /// whole rotated render, about half of whose pixels look where the original view does not.
  TORCH_ARG(bool, vvd_crop) = true;
  /// Applied to training samples (default: ImageNet normalisation only).
  TORCH_ARG(SegmentationTransform, transform) = SegmentationTransform::evaluation();

 public:
  /// The camera of every view: focal() (or the scaled Cityscapes focal), principal point at the
  /// image centre.
  Intrinsicsd intrinsics() const {
    const double f = focal_ > 0.0 ? focal_ : cityscapes_focal_for_width(double(width_));
    return Intrinsicsd::centered(f, double(width_), double(height_));
  }
  /// Seed of scene `index` of the split with salt `salt` (training and VVD splits use different
  /// salts, so they never share scenes).
  std::uint64_t scene_seed(std::size_t index, std::uint64_t salt) const {
    return splitmix64(splitmix64(seed_ ^ salt) + std::uint64_t(index));
  }
  void validate(const char* fn) const {
    TORCH_CHECK(size_ > 0, fn, ": options.size must be positive, got ", size_);
    TORCH_CHECK(height_ > 0 && width_ > 0, fn, ": options height x width must be positive, got ", height_, "x",
                width_);
    TORCH_CHECK(focal_ >= 0.0, fn, ": options.focal must be >= 0 (0: scaled Cityscapes focal), got ", focal_);
    jitter_.validate(fn);
    vvd_range_.validate(fn);
  }
};

namespace detail {
inline constexpr std::uint64_t kSyntheticTrainSalt = 0x7261696e5f73706cULL;
inline constexpr std::uint64_t kSyntheticVVDSalt = 0x7676645f73706c74ULL;
}  // namespace detail

/// Training split: sample i renders scene i at a view jittered around the street direction
/// (options.jitter), then applies options.transform. The jitter and the transform's random draws
/// depend on (seed, index, epoch) only, so a sample is reproducible; call set_epoch() to redraw.
/// Example: data [3, H, W] float32 (normalised unless the transform says otherwise), target
/// [H, W] int64 train ids.
class SyntheticStreetDataset : public torch::data::datasets::Dataset<SyntheticStreetDataset> {
 public:
  explicit SyntheticStreetDataset(SyntheticStreetOptions options = {}) : options_(std::move(options)) {
    options_.validate("SyntheticStreetDataset");
  }

  torch::data::Example<> get(std::size_t index) override {
    TORCH_CHECK(index < std::size_t(options_.size()), "SyntheticStreetDataset::get: index must be < ",
                options_.size(), ", got ", index);
    std::mt19937_64 rng(splitmix64(options_.scene_seed(index, detail::kSyntheticTrainSalt) ^ splitmix64(epoch_)));
    const Eigen::Matrix3d R = rotation_from_euler(sample_view<double>(options_.jitter(), rng));
    const SyntheticStreet street(options_.scene_seed(index, detail::kSyntheticTrainSalt));
    const auto view = street.render(options_.intrinsics(), R, options_.height(), options_.width());
    auto sample = options_.transform()(view.image, view.label, rng);
    return {sample.image, sample.label};
  }

  torch::optional<std::size_t> size() const override { return std::size_t(options_.size()); }

  /// Redraws views and transforms for another epoch.
  void set_epoch(std::uint64_t epoch) { epoch_ = epoch; }
  const SyntheticStreetOptions& options() const { return options_; }

 private:
  SyntheticStreetOptions options_;
  std::uint64_t epoch_{0};
};

/// VVD evaluation split: sample i renders scene i (scenes distinct from the training split's) in
/// the street direction (identity rotation) and again in a direction drawn from
/// options.vvd_range; H_derived_source = rotation_homography(K, R) maps the first view to the
/// second exactly, and both label maps are exact ground truth. With options.vvd_crop (the
/// default, the paper's protocol) the rotated render is cropped to the largest rectangle the
/// original view sees (crop_to_source_view) and H_derived_source includes the crop. Images
/// float32 [3, H, W] in [0, 1] (not normalised), labels int64 [H, W]. Deterministic from
/// (seed, index).
class SyntheticVVDDataset : public torch::data::datasets::Dataset<SyntheticVVDDataset, VVDSample> {
 public:
  explicit SyntheticVVDDataset(SyntheticStreetOptions options = {}) : options_(std::move(options)) {
    options_.validate("SyntheticVVDDataset");
  }

  VVDSample get(std::size_t index) override {
    TORCH_CHECK(index < std::size_t(options_.size()), "SyntheticVVDDataset::get: index must be < ", options_.size(),
                ", got ", index);
    const std::uint64_t scene = options_.scene_seed(index, detail::kSyntheticVVDSalt);
    std::mt19937_64 rng(splitmix64(scene));
    const Eigen::Matrix3d R = rotation_from_euler(sample_view<double>(options_.vvd_range(), rng));
    const SyntheticStreet street(scene);
    const auto K = options_.intrinsics();
    const auto original = street.render(K, Eigen::Matrix3d::Identity(), options_.height(), options_.width());
    const auto derived = street.render(K, R, options_.height(), options_.width());
    VVDSample sample;
    sample.image = original.image;
    sample.label = original.label;
    sample.derived_image = derived.image;
    sample.derived_label = derived.label;
    sample.H_derived_source = rotation_homography(K, R);
    return options_.vvd_crop() ? crop_to_source_view(sample) : sample;
  }

  torch::optional<std::size_t> size() const override { return std::size_t(options_.size()); }
  const SyntheticStreetOptions& options() const { return options_; }

 private:
  SyntheticStreetOptions options_;
};

}  // namespace crossview
