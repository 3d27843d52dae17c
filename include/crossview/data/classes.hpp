#pragma once
/// \file
/// The label sets crossview knows: Cityscapes' 19 evaluation classes (train ids 0..18, also the
/// ids SyntheticStreet renders) and CamVid's 11 SegNet classes (0..10). 255 is ignore in both.
/// Plain C++ (no libtorch).

#include <cstdint>
#include <string>
#include <vector>

namespace crossview {

/// Number of Cityscapes evaluation classes (train ids 0..18).
inline constexpr int64_t kCityscapesNumClasses = 19;
/// Number of CamVid (SegNet) classes (0..10).
inline constexpr int64_t kCamVidNumClasses = 11;

/// Cityscapes' class names in train-id order (cityscapesScripts' labels.py).
inline const std::vector<std::string>& cityscapes_class_names() {
  static const std::vector<std::string> kNames = {
      "road",    "sidewalk", "building", "wall",  "fence", "pole",  "traffic light", "traffic sign", "vegetation",
      "terrain", "sky",      "person",   "rider", "car",   "truck", "bus",           "train",        "motorcycle",
      "bicycle"};
  return kNames;
}

/// CamVid's class names in SegNet's label order (11 = Unlabelled is read as 255).
inline const std::vector<std::string>& camvid_class_names() {
  static const std::vector<std::string> kNames = {"sky",  "building", "pole", "road",       "pavement", "tree",
                                                  "sign", "fence",    "car",  "pedestrian", "bicyclist"};
  return kNames;
}

}  // namespace crossview
