#pragma once
/// \file
/// The common core of file-based segmentation datasets (Cityscapes, CamVid): a list of image /
/// label file pairs read through OpenCV, checked (missing or unreadable files, size mismatches,
/// unexpected label values -- each error names the file), mapped to train ids and transformed.

#include "crossview/random.hpp"
#include "crossview/data/transforms.hpp"
#include "crossview/io/image_io.hpp"
#include "crossview/io/label_maps.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace crossview {

/// One image of a dataset with its label file.
struct SegmentationFile {
  std::string id;               ///< unique name within the split, e.g. "0001TP_006690" or "aachen_000000_000019"
  std::filesystem::path image;  ///< colour image file
  std::filesystem::path label;  ///< label image file
  LabelFormat format{LabelFormat::kTrainIds};
};

/// Reads a file pair: image uint8 [3, H, W] RGB, label int64 [H, W] train ids (255 ignore).
/// \throws DatasetError naming the file: missing or unreadable file, a label that is not a
/// single-channel 8/16-bit image, an image/label size mismatch, an unexpected label value.
inline ImageLabel read_segmentation_file(const SegmentationFile& file, int64_t num_classes) {
  auto image = read_image(file.image);
  auto raw = read_label(file.label);
  if (raw.size(0) != image.size(1) || raw.size(1) != image.size(2)) {
    detail::throw_dataset_error("read_segmentation_file",
                                "label '" + file.label.string() + "' is " + std::to_string(raw.size(1)) + "x" +
                                    std::to_string(raw.size(0)) + " (width x height) but image '" +
                                    file.image.string() + "' is " + std::to_string(image.size(2)) + "x" +
                                    std::to_string(image.size(1)));
  }
  return ImageLabel{image, map_label_values(raw, file.format, num_classes, file.label)};
}

/// torch::data dataset over a list of SegmentationFile: get(i) reads pair i and applies the
/// transform; its random draws depend on (seed, index, epoch) only. Example: data [3, h, w]
/// float32, target [h, w] int64 train ids.
template <typename Self>
class SegmentationFilesDataset : public torch::data::datasets::Dataset<Self> {
 public:
  SegmentationFilesDataset(std::vector<SegmentationFile> files, int64_t num_classes, SegmentationTransform transform,
                           std::uint64_t seed)
      : files_(std::move(files)), num_classes_(num_classes), transform_(std::move(transform)), seed_(seed) {}

  torch::data::Example<> get(std::size_t index) override {
    const auto raw = read(index);
    std::mt19937_64 rng(splitmix64(splitmix64(seed_ ^ splitmix64(epoch_)) + std::uint64_t(index)));
    auto sample = transform_(raw.image, raw.label, rng);
    return {sample.image, sample.label};
  }

  torch::optional<std::size_t> size() const override { return files_.size(); }

  /// Pair `index` untransformed: image uint8 [3, H, W] RGB, label int64 [H, W] train ids.
  ImageLabel read(std::size_t index) const {
    TORCH_CHECK(index < files_.size(), "SegmentationFilesDataset::read: index must be < ", files_.size(), ", got ",
                index);
    return read_segmentation_file(files_[index], num_classes_);
  }

  const std::vector<SegmentationFile>& files() const { return files_; }
  int64_t num_classes() const { return num_classes_; }
  const SegmentationTransform& transform() const { return transform_; }
  /// Redraws the random transforms for another epoch.
  void set_epoch(std::uint64_t epoch) { epoch_ = epoch; }

 private:
  std::vector<SegmentationFile> files_;
  int64_t num_classes_;
  SegmentationTransform transform_;
  std::uint64_t seed_;
  std::uint64_t epoch_{0};
};

}  // namespace crossview
