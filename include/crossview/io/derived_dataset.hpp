#pragma once
/// \file
/// The derived VVD dataset layout of DESIGN.md on disk -- OUT/images/<id>.png, OUT/labels/<id>.png
/// (train ids, 255 ignore), OUT/pairs/<id>.json -- its writer and a torch::data reader yielding
/// (original image, original label, derived image, derived label, H) for evaluating segmentation
/// and cross-view consistency. OpenCV (PNG) and nlohmann-json backed.

#include "crossview/data/vvd_view.hpp"
#include "crossview/data/transforms.hpp"
#include "crossview/geometry/inscribed_rect.hpp"
#include "crossview/geometry/rotation.hpp"
#include "crossview/io/image_io.hpp"
#include "crossview/io/label_maps.hpp"

#include <Eigen/Core>
#include <Eigen/LU>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace crossview {

/// The JSON record of one derived pair (OUT/pairs/<id>.json).
struct DerivedPairRecord {
  std::string id;
  /// Source files; relative paths are relative to the derived dataset's root.
  std::filesystem::path source_image;
  std::filesystem::path source_label;
  LabelFormat source_label_format{LabelFormat::kTrainIds};  ///< "source_label_format"
  int64_t num_classes{kCityscapesNumClasses};               ///< "num_classes"
  Eigen::Matrix3d H{Eigen::Matrix3d::Identity()};           ///< source pixels -> derived pixels
  double yaw_deg{0}, pitch_deg{0}, roll_deg{0};
  double focal{0};  ///< pixels, principal point at the source image centre
  Rect crop;        ///< "crop": [x, y, w, h] in the full rotated view

  nlohmann::json to_json() const {
    nlohmann::json j;
    j["id"] = id;
    j["source_image"] = source_image.generic_string();
    j["source_label"] = source_label.generic_string();
    j["source_label_format"] = label_format_name(source_label_format);
    j["num_classes"] = num_classes;
    j["image"] = "images/" + id + ".png";
    j["label"] = "labels/" + id + ".png";
    j["H"] = {{H(0, 0), H(0, 1), H(0, 2)}, {H(1, 0), H(1, 1), H(1, 2)}, {H(2, 0), H(2, 1), H(2, 2)}};
    j["yaw_deg"] = yaw_deg;
    j["pitch_deg"] = pitch_deg;
    j["roll_deg"] = roll_deg;
    j["focal"] = focal;
    j["crop"] = {crop.x, crop.y, crop.width, crop.height};
    return j;
  }

  /// \throws DatasetError naming `path` when a field is missing or malformed.
  static DerivedPairRecord from_json(const nlohmann::json& j, const std::filesystem::path& path) {
    DerivedPairRecord r;
    try {
      r.id = j.at("id").get<std::string>();
      r.source_image = j.at("source_image").get<std::string>();
      r.source_label = j.at("source_label").get<std::string>();
      r.source_label_format = label_format_from_name(j.value("source_label_format", std::string("trainIds")));
      r.num_classes = j.value("num_classes", kCityscapesNumClasses);
      const auto& H = j.at("H");
      if (!H.is_array() || H.size() != 3) throw std::invalid_argument("H must be a 3x3 array");
      for (int row = 0; row < 3; ++row) {
        if (!H[row].is_array() || H[row].size() != 3) throw std::invalid_argument("H must be a 3x3 array");
        for (int col = 0; col < 3; ++col) {
          if (!H[row][col].is_number()) {
            throw std::invalid_argument("H[" + std::to_string(row) + "][" + std::to_string(col) +
                                        "] must be a finite number, got " + H[row][col].dump());
          }
          r.H(row, col) = H[row][col].get<double>();
        }
      }
      if (!r.H.allFinite()) throw std::invalid_argument("H must hold finite numbers");
      // Scale-free singularity test: |det H| against the cube of its largest entry.
      const double scale = r.H.cwiseAbs().maxCoeff();
      if (!(std::abs(r.H.determinant()) > 1e-12 * scale * scale * scale)) {
        throw std::invalid_argument("H must be invertible, got a singular matrix (det " +
                                    std::to_string(r.H.determinant()) + ")");
      }
      r.yaw_deg = j.at("yaw_deg").get<double>();
      r.pitch_deg = j.at("pitch_deg").get<double>();
      r.roll_deg = j.at("roll_deg").get<double>();
      r.focal = j.at("focal").get<double>();
      const auto& c = j.at("crop");
      if (!c.is_array() || c.size() != 4) throw std::invalid_argument("crop must be [x, y, w, h]");
      r.crop = Rect{c[0].get<int64_t>(), c[1].get<int64_t>(), c[2].get<int64_t>(), c[3].get<int64_t>()};
    } catch (const std::exception& e) {
      detail::throw_dataset_error("DerivedPairRecord", "malformed pair file '" + path.string() + "': " + e.what());
    }
    return r;
  }
};

/// Paths of pair `id` under a derived dataset root.
inline std::filesystem::path derived_image_path(const std::filesystem::path& root, const std::string& id) {
  return root / "images" / (id + ".png");
}
inline std::filesystem::path derived_label_path(const std::filesystem::path& root, const std::string& id) {
  return root / "labels" / (id + ".png");
}
inline std::filesystem::path derived_pair_path(const std::filesystem::path& root, const std::string& id) {
  return root / "pairs" / (id + ".json");
}

/// True when pair `id` is complete under `root` (its JSON, written last, and both PNGs exist).
inline bool derived_pair_exists(const std::filesystem::path& root, const std::string& id) {
  std::error_code ec;
  return std::filesystem::is_regular_file(derived_pair_path(root, id), ec) &&
         std::filesystem::is_regular_file(derived_image_path(root, id), ec) &&
         std::filesystem::is_regular_file(derived_label_path(root, id), ec);
}

/// Writes the derived image (8-bit RGB PNG), label (8-bit PNG of train ids) and then the JSON
/// record (via a temporary file and a rename, so a present JSON means a complete pair).
/// \throws DatasetError when a file cannot be written.
inline void write_derived_pair(const std::filesystem::path& root, const DerivedPairRecord& record,
                               const torch::Tensor& derived_image, const torch::Tensor& derived_label) {
  namespace fs = std::filesystem;
  for (const char* sub : {"images", "labels", "pairs"}) fs::create_directories(root / sub);
  write_image(derived_image_path(root, record.id), derived_image);
  write_label(derived_label_path(root, record.id), derived_label);
  const fs::path json_path = derived_pair_path(root, record.id);
  const fs::path tmp = json_path.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << record.to_json().dump(2) << '\n';
    if (!out) detail::throw_dataset_error("write_derived_pair", "cannot write '" + tmp.string() + "'");
  }
  fs::rename(tmp, json_path);
}

/// The record of a DerivedView of a source pair, angles in degrees.
inline DerivedPairRecord make_derived_record(const std::string& id, const std::filesystem::path& source_image,
                                             const std::filesystem::path& source_label, LabelFormat format,
                                             int64_t num_classes, const DerivedView& view) {
  DerivedPairRecord r;
  r.id = id;
  r.source_image = source_image;
  r.source_label = source_label;
  r.source_label_format = format;
  r.num_classes = num_classes;
  r.H = view.H_derived_source;
  r.yaw_deg = rad2deg(view.angles.yaw);
  r.pitch_deg = rad2deg(view.angles.pitch);
  r.roll_deg = rad2deg(view.angles.roll);
  r.focal = view.focal;
  r.crop = view.crop;
  return r;
}

/// A derived VVD dataset read back: pairs sorted by id; sample i is
/// VVDSample{source image, source label (train ids), derived image, derived label, H}, images
/// float32 in [0, 1] (not normalised).
/// \throws DatasetError when ROOT/pairs is missing or empty, and (from get) naming the file when a
/// file is missing or unreadable, sizes disagree with the record, or a label value is unexpected.
class DerivedVVDDataset : public torch::data::datasets::Dataset<DerivedVVDDataset, VVDSample> {
 public:
  explicit DerivedVVDDataset(std::filesystem::path root) : root_(std::move(root)) {
    namespace fs = std::filesystem;
    const fs::path pairs = root_ / "pairs";
    std::error_code ec;
    if (!fs::is_directory(pairs, ec)) {
      detail::throw_dataset_error("DerivedVVDDataset", "no folder '" + pairs.string() + "' (not a derived VVD dataset)");
    }
    for (const auto& entry : fs::directory_iterator(pairs)) {
      if (entry.is_regular_file() && entry.path().extension() == ".json") ids_.push_back(entry.path().stem().string());
    }
    if (ids_.empty()) detail::throw_dataset_error("DerivedVVDDataset", "no pair files in '" + pairs.string() + "'");
    std::sort(ids_.begin(), ids_.end());
  }

  /// The JSON record of pair `index`.
  DerivedPairRecord record(std::size_t index) const {
    TORCH_CHECK(index < ids_.size(), "DerivedVVDDataset::record: index must be < ", ids_.size(), ", got ", index);
    const auto path = derived_pair_path(root_, ids_[index]);
    std::ifstream in(path);
    if (!in) detail::throw_dataset_error("DerivedVVDDataset", "cannot open '" + path.string() + "'");
    nlohmann::json j;
    try {
      in >> j;
    } catch (const std::exception& e) {
      detail::throw_dataset_error("DerivedVVDDataset", "malformed pair file '" + path.string() + "': " + e.what());
    }
    return DerivedPairRecord::from_json(j, path);
  }

  VVDSample get(std::size_t index) override {
    const auto r = record(index);
    const auto resolve = [&](const std::filesystem::path& p) { return p.is_absolute() ? p : root_ / p; };
    const auto source_image_path = resolve(r.source_image), source_label_path = resolve(r.source_label);
    const auto image_path = derived_image_path(root_, r.id), label_path = derived_label_path(root_, r.id);
    VVDSample s;
    s.image = read_image(source_image_path);
    s.label = map_label_values(read_label(source_label_path), r.source_label_format, r.num_classes, source_label_path);
    s.derived_image = read_image(image_path);
    s.derived_label = map_label_values(read_label(label_path), LabelFormat::kTrainIds, r.num_classes, label_path);
    const auto check_size = [&](const torch::Tensor& t, int64_t h, int64_t w, const std::filesystem::path& p) {
      if (t.size(-2) != h || t.size(-1) != w) {
        detail::throw_dataset_error("DerivedVVDDataset", "'" + p.string() + "' is " + std::to_string(t.size(-1)) +
                                                             "x" + std::to_string(t.size(-2)) + " but expected " +
                                                             std::to_string(w) + "x" + std::to_string(h));
      }
    };
    check_size(s.label, s.image.size(1), s.image.size(2), source_label_path);
    check_size(s.derived_image, r.crop.height, r.crop.width, image_path);
    check_size(s.derived_label, r.crop.height, r.crop.width, label_path);
    s.image = image_to_float(s.image);
    s.derived_image = image_to_float(s.derived_image);
    s.H_derived_source = r.H;
    return s;
  }

  torch::optional<std::size_t> size() const override { return ids_.size(); }
  const std::vector<std::string>& ids() const { return ids_; }
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
  std::vector<std::string> ids_;
};

}  // namespace crossview
