#pragma once
/// \file
/// Cityscapes in its official layout, as a torch::data dataset.

#include "crossview/io/segmentation_files.hpp"

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace crossview {

/// The image / label pairs of a Cityscapes split:
/// ROOT/leftImg8bit/SPLIT/CITY/NAME_leftImg8bit.png with ROOT/gtFine/SPLIT/CITY/NAME_gtFine_labelTrainIds.png
/// when present (values 0..18 and 255), else NAME_gtFine_labelIds.png (labelIds mapped with the
/// official table, kCityscapesLabelIdToTrainId). Sorted by id (NAME).
/// \throws DatasetError when the split folder is missing, holds no images, or an image has no label file.
inline std::vector<SegmentationFile> cityscapes_files(const std::filesystem::path& root, const std::string& split) {
  namespace fs = std::filesystem;
  constexpr const char* kFn = "cityscapes_files";
  const fs::path image_dir = root / "leftImg8bit" / split;
  std::error_code ec;
  if (!fs::is_directory(image_dir, ec)) {
    detail::throw_dataset_error(kFn, "no Cityscapes image folder '" + image_dir.string() +
                                         "' (expected ROOT/leftImg8bit/SPLIT/CITY/*_leftImg8bit.png)");
  }
  const std::string suffix = "_leftImg8bit.png";
  std::vector<SegmentationFile> files;
  for (const auto& entry : fs::recursive_directory_iterator(image_dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.size() <= suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string stem = name.substr(0, name.size() - suffix.size());
    const fs::path label_dir = root / "gtFine" / split / entry.path().parent_path().filename();
    SegmentationFile file;
    file.id = stem;
    file.image = entry.path();
    file.label = label_dir / (stem + "_gtFine_labelTrainIds.png");
    file.format = LabelFormat::kTrainIds;
    if (!fs::is_regular_file(file.label, ec)) {
      file.label = label_dir / (stem + "_gtFine_labelIds.png");
      file.format = LabelFormat::kCityscapesLabelIds;
      if (!fs::is_regular_file(file.label, ec)) {
        detail::throw_dataset_error(kFn, "no label for image '" + file.image.string() + "': expected '" +
                                             file.label.string() + "' or *_gtFine_labelTrainIds.png");
      }
    }
    files.push_back(file);
  }
  if (files.empty()) {
    detail::throw_dataset_error(kFn, "no *_leftImg8bit.png images under '" + image_dir.string() + "'");
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return files;
}

/// Cityscapes split (e.g. "train", "val") as a torch::data dataset with 19 classes; see
/// cityscapes_files() for the layout and SegmentationFilesDataset for the samples.
class CityscapesDataset : public SegmentationFilesDataset<CityscapesDataset> {
 public:
  CityscapesDataset(const std::filesystem::path& root, const std::string& split,
                    SegmentationTransform transform = SegmentationTransform::evaluation(), std::uint64_t seed = 0)
      : SegmentationFilesDataset(cityscapes_files(root, split), kCityscapesNumClasses, std::move(transform), seed) {}
};

}  // namespace crossview
