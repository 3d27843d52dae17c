#pragma once
/// \file
/// The control of the VVD evaluation (crossview-eval --vvd-control): each pair's VVD view replaced
/// by the original view cropped to a rectangle of the VVD crop's size, centred on what the VVD crop
/// looks at. Same crop size, no rotation: a network's VVD mIoU on the rotated crops minus its mIoU
/// on these controls is what the change of view direction costs; the rest of the gap to the
/// original views is the context a smaller image loses.

#include <crossview_programs/data.hpp>
#include <crossview_programs/report.hpp>

#include <crossview/geometry/homography.hpp>

#include <Eigen/Core>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace crossview_programs {

/// The control of `pair`: vvd = original[y0 : y0 + h, x0 : x0 + w] for the VVD view's h x w, where
/// (x0, y0) puts the rectangle's centre on the original pixel that the VVD view's centre sees
/// (H_vvd_orig^-1), rounded and moved inside the original where it would stick out;
/// H_vvd_orig = the translation by (-x0, -y0). A VVD view derived from a real image can be larger
/// than the original (the rotated image of the frame, magnified towards its edges, holds a larger
/// rectangle); its control is as large as the original allows (h = min(h, H), w = min(w, W)).
/// The whole-render protocol has no control (its tensors become undefined). Throws
/// std::invalid_argument when H_vvd_orig is not invertible (inverse_homography's test) or maps the
/// VVD view's centre behind the original camera.
inline EvalPair control_pair(EvalPair pair) {
  constexpr const char* kFn = "control_pair";
  const int64_t H = pair.original.image.size(1), W = pair.original.image.size(2);
  const int64_t vh = pair.vvd.image.size(1), vw = pair.vvd.image.size(2);
  const int64_t h = std::min(vh, H), w = std::min(vw, W);
  Eigen::Matrix3d H_orig_vvd;
  try {
    H_orig_vvd = crossview::inverse_homography(pair.H_vvd_orig);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(kFn) + ": pair.H_vvd_orig must be invertible (" + pair.id + "): " + e.what());
  }
  const auto centre =
      crossview::transform_point(H_orig_vvd, Eigen::Vector2d(0.5 * double(vw - 1), 0.5 * double(vh - 1)));
  if (!centre) {
    throw std::invalid_argument(std::string(kFn) + ": the VVD view's centre lies behind the original camera (" +
                                pair.id + ")");
  }
  const auto origin = [](double c, int64_t size, int64_t full) {
    return std::clamp<int64_t>(std::llround(c - 0.5 * double(size - 1)), 0, full - size);
  };
  const int64_t x0 = origin(centre->x(), w, W), y0 = origin(centre->y(), h, H);
  using torch::indexing::Slice;
  pair.vvd.image = pair.original.image.index({Slice(), Slice(y0, y0 + h), Slice(x0, x0 + w)});
  pair.vvd.label = pair.original.label.index({Slice(y0, y0 + h), Slice(x0, x0 + w)});
  pair.H_vvd_orig = crossview::translation_homography<double>(Eigen::Vector2d(-double(x0), -double(y0)));
  pair.vvd_whole = LabeledImage{};
  pair.H_whole_orig = Eigen::Matrix3d::Identity();
  return pair;
}

/// What the view direction costs one network, with its noise: `rotated` (its evaluation on the
/// rotated crops) minus `control` (on their controls, the same scenes) for VVD mIoU, CVC mIoU and
/// CVC pixel accuracy, each with the 95 % percentile interval of a paired bootstrap over the
/// scenes (crossview::bootstrap_difference, 2000 resamples; the evaluation set's sampling error,
/// not training noise). Printed as one line to `out`; returned as {metric: {"observed", "ci95"}},
/// in points. Throws std::invalid_argument when either result lacks per-scene matrices or they
/// cover different numbers of scenes.
inline nlohmann::json rotated_minus_control(std::FILE* out, const std::string& name, const VariantResult& rotated,
                                            const VariantResult& control) {
  nlohmann::json j;
  std::string line;
  for (const auto& m : kSceneMetrics) {
    if (m.scenes == &VariantResult::scene_original) continue;  // the same views in both evaluations
    const auto& a = rotated.*(m.scenes);
    const auto& b = control.*(m.scenes);
    if (a.empty() || a.size() != b.size()) {
      throw std::invalid_argument("rotated_minus_control: " + name + ": the per-scene matrices of " + m.key +
                                  " must cover the same scenes, got " + std::to_string(a.size()) + " rotated and " +
                                  std::to_string(b.size()) + " control scenes");
    }
    const auto d = crossview::bootstrap_difference(a, b, m.metric);
    j[m.key] = {{"observed", 100.0 * d.observed}, {"ci95", {100.0 * d.lo, 100.0 * d.hi}}};
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s%s %+.2f [%+.2f, %+.2f]", line.empty() ? "" : ", ", m.label, 100.0 * d.observed,
                  100.0 * d.lo, 100.0 * d.hi);
    line += buf;
  }
  std::fprintf(out, "%s: rotated - control, 95 %% paired bootstrap over the %zu scenes: %s\n", name.c_str(),
               rotated.scene_vvd.size(), line.c_str());
  return j;
}

}  // namespace crossview_programs
