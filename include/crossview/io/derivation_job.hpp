#pragma once
/// \file
/// Deriving a whole VVD evaluation dataset on disk (paper Sec. 4.2), as crossview-derive-vvd does:
/// for every source image a seeded random view, the warped image and label cropped to the largest
/// inscribed rectangle, written in the derived layout of DESIGN.md. Resumable (complete pairs are
/// skipped), deterministic for a seed, and careful not to write into folders of other content.

#include "crossview/data/vvd_view.hpp"
#include "crossview/random.hpp"
#include "crossview/data/synthetic_dataset.hpp"
#include "crossview/io/derived_dataset.hpp"
#include "crossview/io/segmentation_files.hpp"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace crossview {

/// Settings of a derivation.
struct DeriveVVDOptions {
  /// Seed of the random views: pair i draws its angles from mt19937_64(splitmix64(seed) + i).
  TORCH_ARG(std::uint64_t, seed) = 0;
  /// Focal length in pixels; 0 means the paper's 2262 px scaled to each image's width
  /// (2262 * width / 2048, exact for Cityscapes). Recorded in every pair file.
  TORCH_ARG(double, focal) = 0.0;
  /// Yaw / pitch / roll half-ranges in degrees (the paper's by default).
  TORCH_ARG(ViewRange, range) = ViewRange{};
  /// Derive at most this many pairs (the first ones); 0 means all.
  TORCH_ARG(int64_t, limit) = 0;
  /// Write even into a non-empty folder that is not a derived dataset of the same settings, and
  /// re-derive pairs that exist.
  TORCH_ARG(bool, force) = false;
  /// Free-form description of the source ("camvid test /path"), stored in the manifest.
  TORCH_ARG(std::string, source) = "";
};

/// What a derivation did.
struct DeriveVVDReport {
  int64_t written{0};
  int64_t skipped{0};  ///< complete pairs found and kept (resuming)
};

/// Called after each pair: (pairs done so far, total, whether this one was skipped).
using DeriveVVDProgress = std::function<void(int64_t, int64_t, bool)>;

/// Name of the manifest file at the top of a derived dataset.
inline constexpr const char* kDerivedManifestName = "crossview_vvd.json";

namespace detail {

inline nlohmann::json derive_manifest(const DeriveVVDOptions& options) {
  return nlohmann::json{{"format", "crossview-derived-vvd"},
                        {"version", 1},
                        {"source", options.source()},
                        {"seed", options.seed()},
                        {"focal", options.focal()},
                        {"range_deg", {options.range().yaw_deg, options.range().pitch_deg, options.range().roll_deg}}};
}

/// Makes `out` ready for writing: creates it, or accepts it when empty or holding a derived
/// dataset with the same manifest; anything else needs options.force. Writes the manifest.
inline void prepare_derived_output(const std::filesystem::path& out, const DeriveVVDOptions& options) {
  namespace fs = std::filesystem;
  constexpr const char* kFn = "derive_vvd_dataset";
  const auto manifest = derive_manifest(options);
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec)) {
    throw_dataset_error(kFn, "output '" + out.string() + "' exists and is not a folder");
  }
  if (fs::is_directory(out, ec) && !fs::is_empty(out, ec) && !options.force()) {
    const fs::path manifest_path = out / kDerivedManifestName;
    if (!fs::is_regular_file(manifest_path, ec)) {
      throw_dataset_error(kFn, "output folder '" + out.string() + "' is not empty and holds no " +
                                   kDerivedManifestName +
                                   ": refusing to write into a folder of other content (use --force / force(true))");
    }
    nlohmann::json existing;
    try {
      std::ifstream(manifest_path) >> existing;
    } catch (const std::exception& e) {
      throw_dataset_error(kFn, "cannot parse '" + manifest_path.string() + "': " + e.what());
    }
    if (existing != manifest) {
      throw_dataset_error(kFn, "output folder '" + out.string() + "' holds a derived dataset made with other settings (" +
                                   existing.dump() + "); refusing to mix them (use --force / force(true), or another folder)");
    }
  }
  fs::create_directories(out);
  std::ofstream(out / kDerivedManifestName) << manifest.dump(2) << '\n';
}

inline std::mt19937_64 derive_rng(std::uint64_t seed, std::size_t index) {
  return std::mt19937_64(splitmix64(seed) + std::uint64_t(index));
}

}  // namespace detail

/// Derives pairs for `files` (num_classes train ids) into `out` (layout: images/, labels/,
/// pairs/, crossview_vvd.json). Pair ids are the files' ids. Source paths are recorded absolute.
/// \throws DatasetError for a foreign or mismatching output folder (unless options.force) and for
/// bad source files (naming them); std::invalid_argument for bad options.
inline DeriveVVDReport derive_vvd_dataset(const std::vector<SegmentationFile>& files, int64_t num_classes,
                                          const std::filesystem::path& out, const DeriveVVDOptions& options,
                                          const DeriveVVDProgress& progress = {}) {
  options.range().validate("derive_vvd_dataset");
  if (options.focal() < 0.0) {
    detail::throw_invalid("derive_vvd_dataset", "focal", "must be >= 0 (0: scaled Cityscapes focal), got " +
                                                             std::to_string(options.focal()));
  }
  detail::prepare_derived_output(out, options);
  const auto total = options.limit() > 0 ? std::min<int64_t>(options.limit(), int64_t(files.size()))
                                         : int64_t(files.size());
  DeriveVVDReport report;
  for (int64_t i = 0; i < total; ++i) {
    const auto& file = files[std::size_t(i)];
    const bool skip = !options.force() && derived_pair_exists(out, file.id);
    if (!skip) {
      const auto source = read_segmentation_file(file, num_classes);
      const double focal =
          options.focal() > 0.0 ? options.focal() : cityscapes_focal_for_width(double(source.image.size(2)));
      auto rng = detail::derive_rng(options.seed(), std::size_t(i));
      const auto view = derive_vvd_view(source.image, source.label, focal, options.range(), rng);
      const auto record = make_derived_record(file.id, std::filesystem::weakly_canonical(file.image),
                                              std::filesystem::weakly_canonical(file.label), file.format, num_classes,
                                              view);
      write_derived_pair(out, record, view.image, view.label);
      ++report.written;
    } else {
      ++report.skipped;
    }
    if (progress) progress(i + 1, total, skip);
  }
  return report;
}

/// Derives a VVD dataset from SyntheticStreet scenes (SyntheticVVDDataset's scenes and views):
/// the street-aligned renders are written as sources (OUT/sources/images, OUT/sources/labels, train
/// ids), the derived views are real renders in the sampled direction cropped to what the source
/// view sees, as the paper's protocol (and `scenes.vvd_crop()`, by default) asks, with
/// H = T(-crop origin) * rotation_homography(K, R); with vvd_crop false, whole renders and H = K R
/// K^-1. `count` pairs, ids "synthetic_000000", ...
inline DeriveVVDReport derive_synthetic_vvd_dataset(const SyntheticStreetOptions& scenes, int64_t count,
                                                    const std::filesystem::path& out, const DeriveVVDOptions& options,
                                                    const DeriveVVDProgress& progress = {}) {
  TORCH_CHECK(count > 0, "derive_synthetic_vvd_dataset: count must be positive, got ", count);
  detail::prepare_derived_output(out, options);
  auto settings = scenes;
  settings.size(count).seed(options.seed()).vvd_range(options.range()).vvd_crop(false);
  if (options.focal() > 0.0) settings.focal(options.focal());
  SyntheticVVDDataset dataset(settings);
  const auto total = options.limit() > 0 ? std::min(options.limit(), count) : count;
  DeriveVVDReport report;
  for (int64_t i = 0; i < total; ++i) {
    char id[32];
    std::snprintf(id, sizeof(id), "synthetic_%06lld", static_cast<long long>(i));
    const bool skip = !options.force() && derived_pair_exists(out, id);
    if (!skip) {
      const auto whole = dataset.get(std::size_t(i));
      Rect crop{0, 0, whole.derived_label.size(1), whole.derived_label.size(0)};
      const auto sample = scenes.vvd_crop() ? crop_to_source_view(whole, &crop) : whole;
      const std::filesystem::path source_image = std::filesystem::path("sources/images") / (std::string(id) + ".png");
      const std::filesystem::path source_label = std::filesystem::path("sources/labels") / (std::string(id) + ".png");
      std::filesystem::create_directories(out / "sources/images");
      std::filesystem::create_directories(out / "sources/labels");
      write_image(out / source_image, sample.image);
      write_label(out / source_label, sample.label);
      DerivedView view;
      view.H_derived_source = sample.H_derived_source;
      view.crop = crop;
      view.focal = settings.intrinsics().fx;
      // Recover the angles of the sampled rotation R = K^-1 H K (of the whole view).
      const auto K = settings.intrinsics();
      view.angles = euler_from_rotation(Eigen::Matrix3d(K.matrix_inverse() * whole.H_derived_source * K.matrix()));
      const auto record = make_derived_record(id, source_image, source_label, LabelFormat::kTrainIds,
                                              kCityscapesNumClasses, view);
      write_derived_pair(out, record, sample.derived_image, sample.derived_label);
      ++report.written;
    } else {
      ++report.skipped;
    }
    if (progress) progress(i + 1, total, skip);
  }
  return report;
}

}  // namespace crossview
