#pragma once
/// \file
/// PNG figures drawn with OpenCV, like the paper's: Fig. 4 (segmentation of rotated views, one
/// column per variant), Fig. 5 (inconsistency maps: white where a pixel's prediction disagrees with
/// the prediction at its correspondence in the other view) and Fig. 6 (per-class IoU bars).

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace crossview_programs {

/// Cityscapes' colours for train ids 0-18 (BGR), then a deterministic hash colour for the rest.
inline cv::Vec3b class_colour(int64_t id) {
  static const unsigned char kRgb[19][3] = {
      {128, 64, 128}, {244, 35, 232}, {70, 70, 70},   {102, 102, 156}, {190, 153, 153}, {153, 153, 153}, {250, 170, 30},
      {220, 220, 0},  {107, 142, 35}, {152, 251, 152}, {70, 130, 180},  {220, 20, 60},   {255, 0, 0},     {0, 0, 142},
      {0, 0, 70},     {0, 60, 100},   {0, 80, 100},   {0, 0, 230},     {119, 11, 32}};
  if (id < 0 || id == 255) return {0, 0, 0};
  if (id < 19) return {kRgb[id][2], kRgb[id][1], kRgb[id][0]};
  const auto h = uint32_t(id) * 2654435761u;
  return {uchar(h >> 8), uchar(h >> 16), uchar(h >> 24)};
}

/// [H, W] integer labels -> BGR image (ignore = black).
inline cv::Mat colorize_labels(const torch::Tensor& labels) {
  const auto l = labels.to(torch::kCPU, torch::kInt64).contiguous();
  const int h = int(l.size(0)), w = int(l.size(1));
  cv::Mat out(h, w, CV_8UC3);
  const auto* p = l.data_ptr<int64_t>();
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) out.at<cv::Vec3b>(y, x) = class_colour(p[int64_t(y) * w + x]);
  return out;
}

/// [3, H, W] float RGB in [0, 1] -> BGR 8-bit.
inline cv::Mat image_to_bgr(const torch::Tensor& image) {
  const auto t = (image.to(torch::kCPU, torch::kFloat32).clamp(0, 1) * 255.0)
                     .round()
                     .to(torch::kUInt8)
                     .flip({0})
                     .permute({1, 2, 0})
                     .contiguous();
  return cv::Mat(int(t.size(0)), int(t.size(1)), CV_8UC3, t.data_ptr<uint8_t>()).clone();
}

/// Inconsistency map (Fig. 5): white where `disagree`, black where the correspondence agrees,
/// dark grey where the pixel has no correspondence (`valid` false). Both [H, W] bool.
inline cv::Mat inconsistency_image(const torch::Tensor& disagree, const torch::Tensor& valid) {
  const auto d = disagree.to(torch::kCPU, torch::kBool).contiguous();
  const auto v = valid.to(torch::kCPU, torch::kBool).contiguous();
  const int h = int(d.size(0)), w = int(d.size(1));
  cv::Mat out(h, w, CV_8UC3);
  const auto* pd = d.data_ptr<bool>();
  const auto* pv = v.data_ptr<bool>();
  for (int i = 0; i < h * w; ++i) {
    const uchar g = !pv[i] ? 64 : (pd[i] ? 255 : 0);
    out.at<cv::Vec3b>(i / w, i % w) = {g, g, g};
  }
  return out;
}

namespace drawing {

/// Scales a tile to `height` rows (nearest for label-like images keeps class edges crisp).
inline cv::Mat fit_height(const cv::Mat& m, int height) {
  if (m.rows == height) return m;
  cv::Mat out;
  cv::resize(m, out, cv::Size(std::max(1, m.cols * height / std::max(1, m.rows)), height), 0, 0, cv::INTER_NEAREST);
  return out;
}

/// Pads a tile with a caption strip on top.
inline cv::Mat captioned(const cv::Mat& tile, const std::string& caption) {
  constexpr int kStrip = 22;
  cv::Mat out(tile.rows + kStrip, tile.cols, CV_8UC3, cv::Scalar(255, 255, 255));
  tile.copyTo(out(cv::Rect(0, kStrip, tile.cols, tile.rows)));
  cv::putText(out, caption, cv::Point(4, 16), cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  return out;
}

/// Grid of tiles (rows x cols) with a 4-px white gutter; tiles in a row share a height.
inline cv::Mat grid(const std::vector<std::vector<cv::Mat>>& rows) {
  constexpr int kGap = 4;
  std::vector<cv::Mat> lines;
  int width = 0;
  for (const auto& row : rows) {
    std::vector<cv::Mat> cells;
    for (size_t i = 0; i < row.size(); ++i) {
      cells.push_back(row[i]);
      if (i + 1 < row.size()) cells.emplace_back(row[i].rows, kGap, CV_8UC3, cv::Scalar(255, 255, 255));
    }
    cv::Mat line;
    cv::hconcat(cells, line);
    width = std::max(width, line.cols);
    lines.push_back(line);
  }
  std::vector<cv::Mat> padded;
  for (size_t i = 0; i < lines.size(); ++i) {
    cv::Mat l = lines[i];
    if (l.cols < width) cv::copyMakeBorder(l, l, 0, 0, 0, width - l.cols, cv::BORDER_CONSTANT, cv::Scalar(255, 255, 255));
    padded.push_back(l);
    if (i + 1 < lines.size()) padded.emplace_back(kGap, width, CV_8UC3, cv::Scalar(255, 255, 255));
  }
  cv::Mat out;
  cv::vconcat(padded, out);
  return out;
}

}  // namespace drawing

/// One evaluation sample shown in the figures: a rotated (VVD) view with its ground truth, and per
/// variant the prediction and the inconsistency map in that view.
struct FigureSample {
  torch::Tensor image;   ///< [3, H, W] float RGB in [0, 1]
  torch::Tensor label;   ///< [H, W] int64
  std::vector<torch::Tensor> predictions;  ///< per variant, [H, W] int64
  std::vector<torch::Tensor> disagree;     ///< per variant, [H, W] bool
  std::vector<torch::Tensor> valid;        ///< per variant, [H, W] bool (has a correspondence)
};

/// Fig. 4-like: rows = samples; columns = image, ground truth, one prediction per variant.
inline void write_segmentation_figure(const std::filesystem::path& path, const std::vector<FigureSample>& samples,
                                      const std::vector<std::string>& variants, int tile_height = 160) {
  std::vector<std::vector<cv::Mat>> rows;
  for (const auto& s : samples) {
    std::vector<cv::Mat> row = {drawing::captioned(drawing::fit_height(image_to_bgr(s.image), tile_height), "VVD view"),
                                drawing::captioned(drawing::fit_height(colorize_labels(s.label), tile_height),
                                                  "ground truth")};
    for (size_t v = 0; v < variants.size(); ++v) {
      row.push_back(drawing::captioned(drawing::fit_height(colorize_labels(s.predictions[v]), tile_height), variants[v]));
    }
    rows.push_back(row);
  }
  if (!rows.empty()) cv::imwrite(path.string(), drawing::grid(rows));
}

/// Fig. 5-like: rows = samples; columns = image, then per variant the inconsistency map with the
/// share of inconsistent pixels in its caption.
inline void write_inconsistency_figure(const std::filesystem::path& path, const std::vector<FigureSample>& samples,
                                       const std::vector<std::string>& variants, int tile_height = 160) {
  std::vector<std::vector<cv::Mat>> rows;
  for (const auto& s : samples) {
    std::vector<cv::Mat> row = {drawing::captioned(drawing::fit_height(image_to_bgr(s.image), tile_height), "VVD view")};
    for (size_t v = 0; v < variants.size(); ++v) {
      const double n_valid = s.valid[v].sum().item<double>();
      const double n_bad = (s.disagree[v] & s.valid[v]).sum().item<double>();
      char caption[96];
      std::snprintf(caption, sizeof caption, "%s: %.1f%%", variants[v].c_str(),
                    n_valid > 0 ? 100.0 * n_bad / n_valid : 0.0);
      row.push_back(
          drawing::captioned(drawing::fit_height(inconsistency_image(s.disagree[v], s.valid[v]), tile_height), caption));
    }
    rows.push_back(row);
  }
  if (!rows.empty()) cv::imwrite(path.string(), drawing::grid(rows));
}

/// Fig. 6-like: per-class IoU (0-100) bars, one colour per variant. NaN (class absent) draws no bar.
inline void write_class_iou_figure(const std::filesystem::path& path, const std::string& title,
                                   const std::vector<std::string>& class_names, const std::vector<std::string>& variants,
                                   const std::vector<std::vector<double>>& iou) {
  const int n_classes = int(class_names.size());
  const int n_variants = int(variants.size());
  if (n_classes == 0 || n_variants == 0) return;
  constexpr int kBar = 9, kPlotH = 300, kLeft = 50, kTop = 40, kBottom = 110;
  const int group = kBar * n_variants + 10;
  const int width = kLeft + group * n_classes + 20 + 170;
  const int height = kTop + kPlotH + kBottom;
  cv::Mat img(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const cv::Scalar black(0, 0, 0), grey(200, 200, 200);
  static const cv::Scalar kVariantColours[] = {{160, 160, 160}, {200, 150, 60}, {60, 160, 230}, {40, 40, 200},
                                               {120, 180, 60},  {180, 80, 180}};
  cv::putText(img, title, cv::Point(kLeft, 24), cv::FONT_HERSHEY_SIMPLEX, 0.55, black, 1, cv::LINE_AA);
  for (int t = 0; t <= 100; t += 20) {
    const int y = kTop + kPlotH - t * kPlotH / 100;
    cv::line(img, cv::Point(kLeft, y), cv::Point(kLeft + group * n_classes, y), grey, 1);
    cv::putText(img, std::to_string(t), cv::Point(12, y + 4), cv::FONT_HERSHEY_SIMPLEX, 0.4, black, 1, cv::LINE_AA);
  }
  for (int c = 0; c < n_classes; ++c) {
    const int x0 = kLeft + c * group + 5;
    for (int v = 0; v < n_variants; ++v) {
      const double value = c < int(iou[v].size()) ? iou[v][c] : std::nan("");
      if (!(value == value)) continue;
      const int h = int(std::lround(std::clamp(value, 0.0, 100.0) * kPlotH / 100.0));
      cv::rectangle(img, cv::Rect(x0 + v * kBar, kTop + kPlotH - h, kBar - 1, std::max(h, 1)),
                    kVariantColours[v % 6], cv::FILLED);
    }
    // Class name, written vertically under its group.
    cv::Mat text(14, kBottom - 8, CV_8UC3, cv::Scalar(255, 255, 255));
    cv::putText(text, class_names[c], cv::Point(2, 11), cv::FONT_HERSHEY_SIMPLEX, 0.38, black, 1, cv::LINE_AA);
    cv::Mat rotated;
    cv::rotate(text, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
    const int tx = x0 + (kBar * n_variants - rotated.cols) / 2;
    if (tx >= 0 && tx + rotated.cols <= width) {
      rotated.copyTo(img(cv::Rect(tx, kTop + kPlotH + 4, rotated.cols, rotated.rows)));
    }
  }
  cv::line(img, cv::Point(kLeft, kTop + kPlotH), cv::Point(kLeft + group * n_classes, kTop + kPlotH), black, 1);
  for (int v = 0; v < n_variants; ++v) {
    const int lx = kLeft + group * n_classes + 20, ly = kTop + 10 + 20 * v;
    cv::rectangle(img, cv::Rect(lx, ly - 9, 12, 12), kVariantColours[v % 6], cv::FILLED);
    cv::putText(img, variants[v], cv::Point(lx + 18, ly + 1), cv::FONT_HERSHEY_SIMPLEX, 0.42, black, 1, cv::LINE_AA);
  }
  cv::imwrite(path.string(), img);
}

/// One variant's paired differences to the baseline in the seed-difference figure.
struct SeedDifferences {
  std::string variant;
  std::vector<double> per_seed;  ///< method - baseline, one value per seed
  double mean{0}, lo{0}, hi{0};  ///< mean and 95 % t-interval
};

/// The multi-seed study at a glance: one panel per metric; in each, one row per variant with every
/// seed's paired difference to the baseline (dots), their mean (a bar) and 95 % t-interval
/// (whiskers), and a vertical line at zero. `panels` pairs a metric's caption with its rows.
inline void write_seed_difference_figure(const std::filesystem::path& path, const std::string& title,
                                         const std::vector<std::pair<std::string, std::vector<SeedDifferences>>>& panels) {
  if (panels.empty()) return;
  constexpr int kPanelW = 330, kRowH = 34, kLeft = 130, kTop = 56, kGap = 24, kAxis = 36;
  size_t rows = 0;
  for (const auto& p : panels) rows = std::max(rows, p.second.size());
  if (rows == 0) return;
  const int plot_h = int(rows) * kRowH;
  const int width = kLeft + int(panels.size()) * (kPanelW + kGap);
  const int height = kTop + plot_h + kAxis + 30;
  cv::Mat img(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const cv::Scalar black(0, 0, 0), grey(190, 190, 190), blue(180, 90, 20), red(40, 40, 210);
  cv::putText(img, title, cv::Point(10, 22), cv::FONT_HERSHEY_SIMPLEX, 0.55, black, 1, cv::LINE_AA);
  for (size_t r = 0; r < rows; ++r) {
    const auto& name = panels.front().second.size() > r ? panels.front().second[r].variant : std::string();
    cv::putText(img, name, cv::Point(8, kTop + int(r) * kRowH + kRowH / 2 + 5), cv::FONT_HERSHEY_SIMPLEX, 0.42, black,
                1, cv::LINE_AA);
  }
  for (size_t p = 0; p < panels.size(); ++p) {
    const int x0 = kLeft + int(p) * (kPanelW + kGap);
    double lo = 0, hi = 0;  // the axis always shows zero
    for (const auto& row : panels[p].second) {
      for (double v : row.per_seed) lo = std::min(lo, v), hi = std::max(hi, v);
      lo = std::min(lo, row.lo);
      hi = std::max(hi, row.hi);
    }
    const double pad = 0.08 * std::max(hi - lo, 1.0);
    lo -= pad;
    hi += pad;
    const auto px = [&](double v) { return x0 + int(std::lround((v - lo) / (hi - lo) * kPanelW)); };
    cv::putText(img, panels[p].first, cv::Point(x0, kTop - 12), cv::FONT_HERSHEY_SIMPLEX, 0.45, black, 1,
                cv::LINE_AA);
    cv::rectangle(img, cv::Rect(x0, kTop, kPanelW, plot_h), grey, 1);
    cv::line(img, cv::Point(px(0.0), kTop), cv::Point(px(0.0), kTop + plot_h), black, 1);
    // Axis ticks: the ends and zero, in metric points.
    for (double t : {lo, 0.0, hi}) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%+.1f", t);
      cv::putText(img, buf, cv::Point(std::min(px(t) - 14, x0 + kPanelW - 40), kTop + plot_h + 16),
                  cv::FONT_HERSHEY_SIMPLEX, 0.38, black, 1, cv::LINE_AA);
    }
    for (size_t r = 0; r < panels[p].second.size(); ++r) {
      const auto& row = panels[p].second[r];
      const int y = kTop + int(r) * kRowH + kRowH / 2;
      for (double v : row.per_seed) cv::circle(img, cv::Point(px(v), y - 6), 3, blue, cv::FILLED, cv::LINE_AA);
      cv::line(img, cv::Point(px(row.lo), y + 6), cv::Point(px(row.hi), y + 6), red, 2);
      cv::line(img, cv::Point(px(row.lo), y + 1), cv::Point(px(row.lo), y + 11), red, 2);
      cv::line(img, cv::Point(px(row.hi), y + 1), cv::Point(px(row.hi), y + 11), red, 2);
      cv::rectangle(img, cv::Rect(px(row.mean) - 2, y + 1, 5, 11), red, cv::FILLED);
    }
  }
  cv::putText(img, "dots: seeds (method - baseline, points); red: mean and 95% t-interval", cv::Point(10, height - 10),
              cv::FONT_HERSHEY_SIMPLEX, 0.4, black, 1, cv::LINE_AA);
  cv::imwrite(path.string(), img);
}

}  // namespace crossview_programs
