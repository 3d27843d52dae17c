#pragma once
/// \file
/// Maps from the label values stored in dataset files to crossview's train ids (Cityscapes' 19
/// classes or CamVid's 11, 255 ignore), with the value checks that make bad files fail loudly.

#include "crossview/data/classes.hpp"
#include "crossview/io/image_io.hpp"

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

namespace crossview {

/// How the values of a label file are turned into train ids.
enum class LabelFormat {
  kTrainIds,            ///< values are train ids already: 0..num_classes-1 or 255
  kCityscapesLabelIds,  ///< Cityscapes labelIds 0..33 (cityscapesScripts' labels.py table)
  kCamVid,              ///< CamVid SegNet classes 0..10, 11 (Unlabelled) -> 255
};

/// The name stored in derived-dataset JSON files: "trainIds", "cityscapes_labelIds", "camvid".
inline const char* label_format_name(LabelFormat format) {
  switch (format) {
    case LabelFormat::kCityscapesLabelIds: return "cityscapes_labelIds";
    case LabelFormat::kCamVid: return "camvid";
    default: return "trainIds";
  }
}

/// Inverse of label_format_name. \throws std::invalid_argument for an unknown name.
inline LabelFormat label_format_from_name(const std::string& name) {
  if (name == "trainIds") return LabelFormat::kTrainIds;
  if (name == "cityscapes_labelIds") return LabelFormat::kCityscapesLabelIds;
  if (name == "camvid") return LabelFormat::kCamVid;
  throw std::invalid_argument("label_format_from_name: name must be trainIds, cityscapes_labelIds or camvid, got '" +
                              name + "'");
}

/// Cityscapes labelId -> trainId for labelIds 0..33 (cityscapesScripts, helpers/labels.py); 255
/// for the classes not evaluated.
inline constexpr std::array<std::uint8_t, 34> kCityscapesLabelIdToTrainId{
    255, 255, 255, 255, 255, 255, 255,  // unlabeled, ego vehicle, rectification border, out of roi, static, dynamic, ground
    0,   1,                             // road, sidewalk
    255, 255,                           // parking, rail track
    2,   3,   4,                        // building, wall, fence
    255, 255, 255,                      // guard rail, bridge, tunnel
    5,   255,                           // pole, polegroup
    6,   7,   8,   9,   10,             // traffic light, traffic sign, vegetation, terrain, sky
    11,  12,  13,  14,  15,             // person, rider, car, truck, bus
    255, 255,                           // caravan, trailer
    16,  17,  18};                      // train, motorcycle, bicycle

/// Lookup table value -> train id (-1: the value must not occur) for a label format, over the
/// values 0..255. kTrainIds accepts 0..num_classes-1 and 255.
inline std::array<std::int16_t, 256> label_lookup_table(LabelFormat format, int64_t num_classes) {
  std::array<std::int16_t, 256> lut;
  lut.fill(-1);
  switch (format) {
    case LabelFormat::kCityscapesLabelIds:
      for (std::size_t v = 0; v < kCityscapesLabelIdToTrainId.size(); ++v) lut[v] = kCityscapesLabelIdToTrainId[v];
      break;
    case LabelFormat::kCamVid:
      for (int v = 0; v < kCamVidNumClasses; ++v) lut[std::size_t(v)] = std::int16_t(v);
      lut[11] = 255;
      break;
    case LabelFormat::kTrainIds:
      for (int64_t v = 0; v < num_classes && v < 255; ++v) lut[std::size_t(v)] = std::int16_t(v);
      lut[255] = 255;
      break;
  }
  return lut;
}

/// Maps the stored values of `raw` ([H, W] integer, as read_label returns) to train ids through
/// the format's table.
/// \throws DatasetError naming `path` and the first unexpected value.
inline torch::Tensor map_label_values(const torch::Tensor& raw, LabelFormat format, int64_t num_classes,
                                      const std::filesystem::path& path) {
  const auto lut = label_lookup_table(format, num_classes);
  auto values = raw.to(torch::kInt64).contiguous();
  auto out = torch::empty_like(values);
  const int64_t* in = values.data_ptr<int64_t>();
  int64_t* dst = out.data_ptr<int64_t>();
  const int64_t n = values.numel();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = in[i];
    const std::int16_t mapped = (v >= 0 && v < 256) ? lut[std::size_t(v)] : std::int16_t(-1);
    if (mapped < 0) {
      detail::throw_dataset_error("map_label_values",
                                  "unexpected label value " + std::to_string(v) + " in '" + path.string() + "' (" +
                                      label_format_name(format) + " labels, pixel " + std::to_string(i % raw.size(1)) +
                                      "," + std::to_string(i / raw.size(1)) + ")");
    }
    dst[i] = mapped;
  }
  return out;
}

}  // namespace crossview
