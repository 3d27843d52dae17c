#pragma once
/// \file
/// Table 1 in the paper's layout (with the paper's Cityscapes / PSPNet50 figures beside ours) and
/// results.json (schema in DESIGN.md; percentages 0-100).

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace crossview::train {

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
};

/// The paper's Table 1 figures (Cityscapes, PSPNet50): VVD mIoU, CVC mIoU, CVC pixAcc, Cityscapes
/// mIoU. DESIGN.md quotes the baseline and the full method only; the other rows print "-".
struct PaperRow {
  double vvd_miou, cvc_miou, cvc_pixacc, seg_miou_original;
};
inline std::optional<PaperRow> paper_row(const std::string& variant) {
  if (variant == "baseline") return PaperRow{72.79, 82.75, 97.32, 76.57};
  if (variant == "vvd+ggdc+closs") return PaperRow{77.32, 87.62, 97.94, 77.50};
  return std::nullopt;
}

/// Prints Table 1: one row per variant, ours and (in brackets) the paper's, then the gains of the
/// full method over the baseline when both were trained.
inline void print_table(std::FILE* out, const std::string& dataset, const std::vector<VariantResult>& rows) {
  std::fprintf(out, "\nTable 1 (%s; in brackets: the paper's Cityscapes / PSPNet50 figures)\n", dataset.c_str());
  std::fprintf(out, "%-16s | %-17s | %-17s | %-17s | %-17s\n", "method", "VVD mIoU", "CVC mIoU", "CVC pixAcc",
               "original mIoU");
  std::fprintf(out, "-----------------+-------------------+-------------------+-------------------+------------------\n");
  auto cell = [](double ours, std::optional<double> paper) {
    char buf[64];
    if (paper) {
      std::snprintf(buf, sizeof buf, "%6.2f  (%6.2f)", ours, *paper);
    } else {
      std::snprintf(buf, sizeof buf, "%6.2f  (   -  )", ours);
    }
    return std::string(buf);
  };
  for (const auto& r : rows) {
    const auto p = paper_row(r.name);
    std::fprintf(out, "%-16s | %-17s | %-17s | %-17s | %-17s\n", r.name.c_str(),
                 cell(r.seg_miou_vvd, p ? std::optional<double>(p->vvd_miou) : std::nullopt).c_str(),
                 cell(r.cvc_miou, p ? std::optional<double>(p->cvc_miou) : std::nullopt).c_str(),
                 cell(r.cvc_pixacc, p ? std::optional<double>(p->cvc_pixacc) : std::nullopt).c_str(),
                 cell(r.seg_miou_original, p ? std::optional<double>(p->seg_miou_original) : std::nullopt).c_str());
  }
  const VariantResult* base = nullptr;
  const VariantResult* full = nullptr;
  for (const auto& r : rows) {
    if (r.name == "baseline") base = &r;
    if (r.name == "vvd+ggdc+closs") full = &r;
  }
  if (base != nullptr && full != nullptr) {
    std::fprintf(out,
                 "full method - baseline: VVD mIoU %+.2f (paper %+.2f), CVC mIoU %+.2f (paper %+.2f), "
                 "CVC pixAcc %+.2f (paper %+.2f), original mIoU %+.2f (paper %+.2f)\n",
                 full->seg_miou_vvd - base->seg_miou_vvd, 77.32 - 72.79, full->cvc_miou - base->cvc_miou,
                 87.62 - 82.75, full->cvc_pixacc - base->cvc_pixacc, 97.94 - 97.32,
                 full->seg_miou_original - base->seg_miou_original, 77.50 - 76.57);
  }
  std::fflush(out);
}

/// JSON has no NaN: absent classes become null.
inline nlohmann::json iou_to_json(const std::vector<double>& iou) {
  auto a = nlohmann::json::array();
  for (double v : iou) a.push_back(v == v ? nlohmann::json(v) : nlohmann::json(nullptr));
  return a;
}

inline nlohmann::json to_json(const VariantResult& r) {
  return {{"name", r.name},
          {"seg_miou_original", r.seg_miou_original},
          {"seg_miou_vvd", r.seg_miou_vvd},
          {"cvc_miou", r.cvc_miou},
          {"cvc_pixacc", r.cvc_pixacc},
          {"iterations", r.iterations},
          {"train_seconds", r.train_seconds},
          {"per_class_iou_original", iou_to_json(r.iou_original)},
          {"per_class_iou_vvd", iou_to_json(r.iou_vvd)}};
}

/// Writes results.json: {"dataset", "variants": [...]} plus `extra` keys (configuration, class
/// names), atomically.
inline void write_results_json(const std::filesystem::path& path, const std::string& dataset,
                               const std::vector<VariantResult>& rows, const nlohmann::json& extra) {
  nlohmann::json j = extra;
  j["dataset"] = dataset;
  j["variants"] = nlohmann::json::array();
  for (const auto& r : rows) j["variants"].push_back(to_json(r));
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream f(tmp);
    f << j.dump(2) << "\n";
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace crossview::train
