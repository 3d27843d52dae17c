#pragma once
/// \file
/// Table 1 in the paper's layout, with the paper's figures beside ours (Table 1 / 4 for PSPNet50,
/// Table 3 for DeepLabV3 and CCNet), and results.json (schema in DESIGN.md; percentages 0-100).

#include <crossview_programs/options.hpp>

#include <crossview/metrics/statistics.hpp>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace crossview_programs {

/// The evaluation of one trained variant. Percentages 0-100.
struct VariantResult {
  std::string name;
  double seg_miou_original{0};  ///< segmentation mIoU on the original (street-aligned) views
  double seg_miou_vvd{0};       ///< segmentation mIoU on the VVD (rotated) views
  double cvc_miou{0};           ///< cross-view consistency mIoU between corresponding predictions
  double cvc_pixacc{0};         ///< cross-view consistency pixel accuracy
  int64_t iterations{0};
  double train_seconds{0};
  std::vector<double> iou_original;  ///< per-class IoU (NaN: class absent from the split)
  std::vector<double> iou_vvd;
  /// The whole rotated view instead of its crop (SyntheticStreet only; NaN elsewhere).
  double seg_miou_vvd_whole{std::numeric_limits<double>::quiet_NaN()};
  double cvc_miou_whole{std::numeric_limits<double>::quiet_NaN()};
  double cvc_pixacc_whole{std::numeric_limits<double>::quiet_NaN()};
  /// Every evaluation scene's confusion matrices [K, K] int64 (rows: ground truth, or the original
  /// view's prediction for CVC), in scene order: the material of a bootstrap over scenes.
  std::vector<torch::Tensor> scene_original, scene_vvd, scene_cvc;
  /// Mean |offset| (pixels) of each GGDC layer over the last evaluated image, by layer name.
  std::vector<std::pair<std::string, double>> mean_abs_offsets;
};

/// A row of the paper's figures for a dataset: VVD mIoU, CVC mIoU, CVC pixAcc (NaN where the
/// paper gives none), mIoU on the original views.
struct PaperRow {
  double vvd_miou, cvc_miou, cvc_pixacc, seg_miou_original;
};

/// The paper's table for `dataset` and `model` and its caption; the paper quotes the baseline and
/// the full method only. Table 1: Cityscapes / PSPNet50; Table 4: CamVid / PSPNet50 pretrained on
/// Cityscapes, without pixel accuracy; Table 3: Cityscapes / DeepLabV3 and CCNet (ResNet-50),
/// without pixel accuracy. None for SyntheticStreet (its figures are not comparable) and for a
/// pair the paper did not run (DeepLabV3 or CCNet on CamVid).
struct PaperTable {
  std::string number;  ///< "Table 1", "Table 3", "Table 4"
  std::string caption;
  std::optional<PaperRow> baseline, full;
};

/// The paper's figures for `model` on Cityscapes: Table 1 (pspnet) or Table 3 (deeplabv3, ccnet);
/// none for another model.
inline std::optional<PaperTable> paper_cityscapes_table(const std::string& model) {
  constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  if (model == "pspnet") {
    return PaperTable{"Table 1", "the paper's Table 1, Cityscapes / PSPNet50", PaperRow{72.79, 82.75, 97.32, 76.57},
                      PaperRow{77.32, 87.62, 97.94, 77.50}};
  }
  if (model == "deeplabv3") {
    return PaperTable{"Table 3", "the paper's Table 3, Cityscapes / DeepLabV3 (ResNet-50)",
                      PaperRow{73.61, 82.89, kNone, 77.13}, PaperRow{76.88, 87.24, kNone, 77.58}};
  }
  if (model == "ccnet") {
    return PaperTable{"Table 3", "the paper's Table 3, Cityscapes / CCNet (ResNet-50)",
                      PaperRow{73.94, 81.47, kNone, 77.62}, PaperRow{76.95, 86.82, kNone, 77.80}};
  }
  return std::nullopt;
}

/// The paper's table for `dataset` and `model` (pspnet | deeplabv3 | ccnet), or none.
inline std::optional<PaperTable> paper_table(const std::string& dataset, const std::string& model = "pspnet") {
  constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  if (dataset == "cityscapes") return paper_cityscapes_table(model);
  if (dataset == "camvid" && model == "pspnet") {
    return PaperTable{"Table 4", "the paper's Table 4, CamVid / PSPNet50 from Cityscapes", PaperRow{74.08, 83.89, kNone, 77.32},
                      PaperRow{76.33, 86.88, kNone, 77.39}};
  }
  return std::nullopt;
}

/// Prints the paper's table for the dataset and model (Table 1; Table 4 for CamVid; Table 3 for
/// DeepLabV3 and CCNet): one row per variant, ours and (in brackets) the paper's for the same
/// dataset and model, then the gains of the full method over the baseline when both were trained.
/// On synthetic data (and for a model the paper did not run on the dataset) the paper's Cityscapes
/// figures of the model are named below the table, not inside it. Datasets with a whole rotated
/// view get two more columns: VVD and CVC mIoU on the whole view (a second protocol). `model`:
/// pspnet | deeplabv3 | ccnet, or "" for checkpoints of several models (no paper figures).
/// The four table metrics as a bootstrap over scenes recomputes them from the per-scene confusion
/// matrices: results.json key, printed label, the matrices, the metric. One list for the table's
/// bootstrap line, the study's bootstrap and the view-direction control.
struct SceneMetric {
  const char* key;
  const char* label;
  std::vector<torch::Tensor> VariantResult::*scenes;
  crossview::SegmentationMetric metric;
};
inline constexpr SceneMetric kSceneMetrics[] = {
    {"seg_miou_vvd", "VVD mIoU", &VariantResult::scene_vvd, crossview::SegmentationMetric::kMeanIoU},
    {"cvc_miou", "CVC mIoU", &VariantResult::scene_cvc, crossview::SegmentationMetric::kMeanIoU},
    {"cvc_pixacc", "CVC pixAcc", &VariantResult::scene_cvc, crossview::SegmentationMetric::kPixelAccuracy},
    {"seg_miou_original", "original mIoU", &VariantResult::scene_original, crossview::SegmentationMetric::kMeanIoU}};

/// One line under a table: the 95 % percentile interval of `method` - `base` for the four table
/// metrics from a paired bootstrap over the evaluation scenes (2000 resamples of the per-scene
/// confusion matrices; crossview::bootstrap_difference). It measures the evaluation set's sampling
/// error only, not the training noise that a seed study (--seeds) measures. Nothing when the
/// results hold no per-scene matrices.
inline void print_scene_bootstrap(std::FILE* out, const VariantResult& method, const VariantResult& base) {
  std::string line;
  for (const auto& m : kSceneMetrics) {
    const auto& a = method.*(m.scenes);
    const auto& b = base.*(m.scenes);
    if (a.empty() || a.size() != b.size()) return;
    const auto d = crossview::bootstrap_difference(a, b, m.metric);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s%s [%+.2f, %+.2f]", line.empty() ? "" : ", ", m.label, 100.0 * d.lo,
                  100.0 * d.hi);
    line += buf;
  }
  std::fprintf(out, "95 %% bootstrap over the %zu evaluation scenes (their sampling error only, not seed noise): %s\n",
               method.scene_cvc.size(), line.c_str());
}

inline void print_table(std::FILE* out, const std::string& dataset, const std::vector<VariantResult>& rows,
                        const std::string& model = "pspnet", const std::string& protocol = "") {
  // Another protocol than the paper's (crossview-eval --vvd-control) shows no paper figures.
  const auto paper = protocol.empty() ? paper_table(dataset, model) : std::nullopt;
  const auto cityscapes = protocol.empty() ? paper_cityscapes_table(model) : std::nullopt;
  const std::string number = paper ? paper->number : cityscapes ? cityscapes->number : "Table 1";
  const std::string heading = model.empty() ? "" : ", " + model_title(model);
  bool whole = false;
  for (const auto& r : rows) whole = whole || r.seg_miou_vvd_whole == r.seg_miou_vvd_whole;
  const std::string caption = paper                ? "in brackets: " + paper->caption
                              : protocol.empty() ? "VVD views cropped to what the original view sees, Sec. 4.2"
                                                 : protocol;
  std::fprintf(out, "\n%s on %s%s (%s)\n", number.c_str(), dataset.c_str(), heading.c_str(), caption.c_str());
  const int width = paper ? 17 : 8;
  std::fprintf(out, "%-16s | %-*s | %-*s | %-*s | %-*s", "method", width, "VVD mIoU", width, "CVC mIoU", width,
               "CVC pixAcc", width, "orig mIoU");
  if (whole) std::fprintf(out, " | %-14s | %-14s", "VVD mIoU whole", "CVC mIoU whole");
  std::fprintf(out, "\n");
  auto cell = [&](double ours, const std::optional<double>& theirs) {
    char buf[64];
    if (!paper) {
      std::snprintf(buf, sizeof buf, "%8.2f", ours);
    } else if (theirs && *theirs == *theirs) {
      std::snprintf(buf, sizeof buf, "%6.2f  (%6.2f)", ours, *theirs);
    } else {
      std::snprintf(buf, sizeof buf, "%6.2f  (   -  )", ours);
    }
    return std::string(buf);
  };
  for (const auto& r : rows) {
    std::optional<PaperRow> p;
    if (paper && r.name == "baseline") p = paper->baseline;
    if (paper && r.name == "vvd+ggdc+closs") p = paper->full;
    const auto field = [&](double PaperRow::*member) { return p ? std::optional<double>((*p).*member) : std::nullopt; };
    std::fprintf(out, "%-16s | %-*s | %-*s | %-*s | %-*s", r.name.c_str(), width,
                 cell(r.seg_miou_vvd, field(&PaperRow::vvd_miou)).c_str(), width,
                 cell(r.cvc_miou, field(&PaperRow::cvc_miou)).c_str(), width,
                 cell(r.cvc_pixacc, field(&PaperRow::cvc_pixacc)).c_str(), width,
                 cell(r.seg_miou_original, field(&PaperRow::seg_miou_original)).c_str());
    if (whole) std::fprintf(out, " | %14.2f | %14.2f", r.seg_miou_vvd_whole, r.cvc_miou_whole);
    std::fprintf(out, "\n");
  }
  const VariantResult* base = nullptr;
  const VariantResult* full = nullptr;
  for (const auto& r : rows) {
    if (r.name == "baseline") base = &r;
    if (r.name == "vvd+ggdc+closs") full = &r;
  }
  if (base != nullptr && full != nullptr) {
    std::fprintf(out, "full method - baseline: VVD mIoU %+.2f, CVC mIoU %+.2f, CVC pixAcc %+.2f, original mIoU %+.2f\n",
                 full->seg_miou_vvd - base->seg_miou_vvd, full->cvc_miou - base->cvc_miou,
                 full->cvc_pixacc - base->cvc_pixacc, full->seg_miou_original - base->seg_miou_original);
    print_scene_bootstrap(out, *full, *base);
  }
  if (!paper && cityscapes) {
    const std::string why = dataset == "synthetic" ? " and not comparable with synthetic data"
                                                   : "; the paper gives none on " + dataset;
    std::fprintf(out,
                 "The paper's figures are for Cityscapes and %s (ResNet-50)%s (%s: baseline VVD / CVC mIoU "
                 "%.2f / %.2f, full method %.2f / %.2f).\n",
                 model_title(model).c_str(), why.c_str(), cityscapes->number.c_str(), cityscapes->baseline->vvd_miou,
                 cityscapes->baseline->cvc_miou, cityscapes->full->vvd_miou, cityscapes->full->cvc_miou);
  } else if (paper && base != nullptr && full != nullptr && paper->baseline && paper->full) {
    std::fprintf(out, "the paper's full method - baseline: VVD mIoU %+.2f, CVC mIoU %+.2f, original mIoU %+.2f\n",
                 paper->full->vvd_miou - paper->baseline->vvd_miou, paper->full->cvc_miou - paper->baseline->cvc_miou,
                 paper->full->seg_miou_original - paper->baseline->seg_miou_original);
  }
  std::fflush(out);
}

/// A NaN-safe JSON number (JSON has no NaN: null).
inline nlohmann::json number_or_null(double v) { return v == v ? nlohmann::json(v) : nlohmann::json(nullptr); }

/// Per-class IoU; absent classes (NaN) become null.
inline nlohmann::json iou_to_json(const std::vector<double>& iou) {
  auto a = nlohmann::json::array();
  for (double v : iou) a.push_back(number_or_null(v));
  return a;
}

/// A [K, K] int64 confusion matrix as {"k": K, "index": [...], "count": [...]}: its non-zero
/// entries at flat index t * K + p (a scene's matrix is mostly zeros).
inline nlohmann::json sparse_matrix_json(const torch::Tensor& matrix) {
  const auto flat = matrix.to(torch::kInt64).contiguous().view(-1);
  const auto* counts = flat.data_ptr<int64_t>();
  std::vector<int64_t> index, count;
  for (int64_t i = 0; i < flat.numel(); ++i) {
    if (counts[i] != 0) {
      index.push_back(i);
      count.push_back(counts[i]);
    }
  }
  return {{"k", matrix.size(0)}, {"index", index}, {"count", count}};
}

/// Inverse of sparse_matrix_json. \throws std::invalid_argument for a malformed record.
inline torch::Tensor sparse_matrix_from_json(const nlohmann::json& j) {
  const auto k = j.at("k").get<int64_t>();
  const auto index = j.at("index").get<std::vector<int64_t>>();
  const auto count = j.at("count").get<std::vector<int64_t>>();
  if (k <= 0 || index.size() != count.size()) {
    throw std::invalid_argument("sparse_matrix_from_json: k must be positive and index, count of equal length");
  }
  auto matrix = torch::zeros({k * k}, torch::kInt64);
  auto* m = matrix.data_ptr<int64_t>();
  for (size_t i = 0; i < index.size(); ++i) {
    if (index[i] < 0 || index[i] >= k * k) throw std::invalid_argument("sparse_matrix_from_json: index out of range");
    m[index[i]] = count[i];
  }
  return matrix.view({k, k});
}

inline nlohmann::json to_json(const VariantResult& r) {
  auto scenes = [](const std::vector<torch::Tensor>& matrices) {
    auto a = nlohmann::json::array();
    for (const auto& m : matrices) a.push_back(sparse_matrix_json(m));
    return a;
  };
  auto offsets = nlohmann::json::object();
  for (const auto& [name, value] : r.mean_abs_offsets) offsets[name] = value;
  return {{"name", r.name},
          {"seg_miou_original", r.seg_miou_original},
          {"seg_miou_vvd", r.seg_miou_vvd},
          {"cvc_miou", r.cvc_miou},
          {"cvc_pixacc", r.cvc_pixacc},
          {"seg_miou_vvd_whole", number_or_null(r.seg_miou_vvd_whole)},
          {"cvc_miou_whole", number_or_null(r.cvc_miou_whole)},
          {"cvc_pixacc_whole", number_or_null(r.cvc_pixacc_whole)},
          {"iterations", r.iterations},
          {"train_seconds", r.train_seconds},
          {"per_class_iou_original", iou_to_json(r.iou_original)},
          {"per_class_iou_vvd", iou_to_json(r.iou_vvd)},
          {"mean_abs_offset", offsets},
          {"per_scene_confusion", {{"original", scenes(r.scene_original)}, {"vvd", scenes(r.scene_vvd)},
                                   {"cvc", scenes(r.scene_cvc)}}}};
}

/// Inverse of to_json(VariantResult) (null numbers become NaN).
/// \throws nlohmann::json::exception for a record that lacks a field to_json writes.
inline VariantResult variant_result_from_json(const nlohmann::json& j) {
  const auto number = [](const nlohmann::json& v) {
    return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
  };
  const auto numbers = [&](const nlohmann::json& a) {
    std::vector<double> out;
    for (const auto& v : a) out.push_back(number(v));
    return out;
  };
  const auto scenes = [](const nlohmann::json& a) {
    std::vector<torch::Tensor> out;
    for (const auto& m : a) out.push_back(sparse_matrix_from_json(m));
    return out;
  };
  VariantResult r;
  r.name = j.at("name").get<std::string>();
  r.seg_miou_original = j.at("seg_miou_original").get<double>();
  r.seg_miou_vvd = j.at("seg_miou_vvd").get<double>();
  r.cvc_miou = j.at("cvc_miou").get<double>();
  r.cvc_pixacc = j.at("cvc_pixacc").get<double>();
  r.seg_miou_vvd_whole = number(j.at("seg_miou_vvd_whole"));
  r.cvc_miou_whole = number(j.at("cvc_miou_whole"));
  r.cvc_pixacc_whole = number(j.at("cvc_pixacc_whole"));
  r.iterations = j.at("iterations").get<int64_t>();
  r.train_seconds = j.at("train_seconds").get<double>();
  r.iou_original = numbers(j.at("per_class_iou_original"));
  r.iou_vvd = numbers(j.at("per_class_iou_vvd"));
  for (const auto& [name, value] : j.at("mean_abs_offset").items()) r.mean_abs_offsets.emplace_back(name, value.get<double>());
  const auto& per_scene = j.at("per_scene_confusion");
  r.scene_original = scenes(per_scene.at("original"));
  r.scene_vvd = scenes(per_scene.at("vvd"));
  r.scene_cvc = scenes(per_scene.at("cvc"));
  return r;
}

/// Writes `j` to `path` atomically (a temporary file renamed over it).
inline void write_json_atomically(const std::filesystem::path& path, const nlohmann::json& j) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream f(tmp);
    f << j.dump(2) << "\n";
    if (!f) throw std::runtime_error("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, path);
}

/// Writes results.json: {"dataset", "variants": [...]} plus `extra` keys (configuration, class
/// names), atomically.
inline void write_results_json(const std::filesystem::path& path, const std::string& dataset,
                               const std::vector<VariantResult>& rows, const nlohmann::json& extra) {
  nlohmann::json j = extra;
  j["dataset"] = dataset;
  j["variants"] = nlohmann::json::array();
  for (const auto& r : rows) j["variants"].push_back(to_json(r));
  write_json_atomically(path, j);
}

}  // namespace crossview_programs
