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
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace crossview::train {

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

namespace detail {

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

}  // namespace detail

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
    std::vector<cv::Mat> row = {detail::captioned(detail::fit_height(image_to_bgr(s.image), tile_height), "VVD view"),
                                detail::captioned(detail::fit_height(colorize_labels(s.label), tile_height),
                                                  "ground truth")};
    for (size_t v = 0; v < variants.size(); ++v) {
      row.push_back(detail::captioned(detail::fit_height(colorize_labels(s.predictions[v]), tile_height), variants[v]));
    }
    rows.push_back(row);
  }
  if (!rows.empty()) cv::imwrite(path.string(), detail::grid(rows));
}

/// Fig. 5-like: rows = samples; columns = image, then per variant the inconsistency map with the
/// share of inconsistent pixels in its caption.
inline void write_inconsistency_figure(const std::filesystem::path& path, const std::vector<FigureSample>& samples,
                                       const std::vector<std::string>& variants, int tile_height = 160) {
  std::vector<std::vector<cv::Mat>> rows;
  for (const auto& s : samples) {
    std::vector<cv::Mat> row = {detail::captioned(detail::fit_height(image_to_bgr(s.image), tile_height), "VVD view")};
    for (size_t v = 0; v < variants.size(); ++v) {
      const double n_valid = s.valid[v].sum().item<double>();
      const double n_bad = (s.disagree[v] & s.valid[v]).sum().item<double>();
      char caption[96];
      std::snprintf(caption, sizeof caption, "%s: %.1f%%", variants[v].c_str(),
                    n_valid > 0 ? 100.0 * n_bad / n_valid : 0.0);
      row.push_back(
          detail::captioned(detail::fit_height(inconsistency_image(s.disagree[v], s.valid[v]), tile_height), caption));
    }
    rows.push_back(row);
  }
  if (!rows.empty()) cv::imwrite(path.string(), detail::grid(rows));
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

}  // namespace crossview::train
