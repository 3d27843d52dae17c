#pragma once
/// \file
/// PNG figures drawn with OpenCV, like the paper's: Fig. 4 (segmentation of rotated views, one
/// column per variant), Fig. 5 (inconsistency maps: white where a pixel's prediction disagrees with
/// the prediction at its correspondence in the other view) and Fig. 6 (per-class IoU bars), and the
/// multi-seed study's paired differences. Every figure carries a title that says what it shows
/// (dataset, protocol, networks) and a legend; labels are drawn in their dataset's own colours
/// (crossview::palette_for).

#include <crossview/data/classes.hpp>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace crossview_programs {

/// The colour (BGR, for OpenCV) of class `id` in `palette` (RGB, one per class id): black for
/// ignore (255) and negative ids, as the datasets' own "unlabelled" colour; a deterministic hash
/// colour for ids past the palette.
inline cv::Vec3b class_colour(int64_t id, const std::vector<crossview::Rgb>& palette) {
  if (id < 0 || id == 255) return {0, 0, 0};
  if (id < int64_t(palette.size())) {
    const auto& rgb = palette[size_t(id)];
    return {rgb[2], rgb[1], rgb[0]};
  }
  const auto h = uint32_t(id) * 2654435761u;
  return {uchar(h >> 8), uchar(h >> 16), uchar(h >> 24)};
}

/// [H, W] integer labels -> BGR image in `palette`'s colours (class_colour).
inline cv::Mat colorize_labels(const torch::Tensor& labels, const std::vector<crossview::Rgb>& palette) {
  const auto l = labels.to(torch::kCPU, torch::kInt64).contiguous();
  const int h = int(l.size(0)), w = int(l.size(1));
  cv::Mat out(h, w, CV_8UC3);
  const auto* p = l.data_ptr<int64_t>();
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) out.at<cv::Vec3b>(y, x) = class_colour(p[int64_t(y) * w + x], palette);
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

/// Grey levels of the inconsistency map (Fig. 5).
inline constexpr uchar kInconsistent = 255, kConsistent = 0, kNoCorrespondence = 96;

/// Inconsistency map (Fig. 5): white where `disagree`, black where the correspondence agrees,
/// grey where the pixel has no correspondence (`valid` false). Both [H, W] bool.
inline cv::Mat inconsistency_image(const torch::Tensor& disagree, const torch::Tensor& valid) {
  const auto d = disagree.to(torch::kCPU, torch::kBool).contiguous();
  const auto v = valid.to(torch::kCPU, torch::kBool).contiguous();
  const int h = int(d.size(0)), w = int(d.size(1));
  cv::Mat out(h, w, CV_8UC3);
  const auto* pd = d.data_ptr<bool>();
  const auto* pv = v.data_ptr<bool>();
  for (int i = 0; i < h * w; ++i) {
    const uchar g = !pv[i] ? kNoCorrespondence : (pd[i] ? kInconsistent : kConsistent);
    out.at<cv::Vec3b>(i / w, i % w) = {g, g, g};
  }
  return out;
}

/// The class ids in [0, num_classes) that occur in any of `labels` (each [H, W] integer), ascending.
inline std::vector<int64_t> classes_present(const std::vector<torch::Tensor>& labels, int64_t num_classes) {
  auto counts = torch::zeros({num_classes}, torch::kInt64);
  for (const auto& l : labels) {
    const auto v = l.to(torch::kCPU, torch::kInt64).flatten();
    const auto kept = v.masked_select((v >= 0) & (v < num_classes));
    if (kept.numel() > 0) counts += torch::bincount(kept, {}, num_classes);
  }
  std::vector<int64_t> ids;
  for (int64_t k = 0; k < num_classes; ++k) {
    if (counts[k].item<int64_t>() > 0) ids.push_back(k);
  }
  return ids;
}

/// A dataset's display name in titles: "CamVid", "Cityscapes", "SyntheticStreet"; others as given.
inline std::string dataset_title(const std::string& name) {
  if (name == "camvid") return "CamVid";
  if (name == "cityscapes") return "Cityscapes";
  if (name == "synthetic") return "SyntheticStreet";
  return name;
}

/// A results.json metric's caption in figures, as Table 1's header names it ("seg_miou_vvd" ->
/// "VVD mIoU (segmentation)"); other names as given.
inline std::string metric_title(const std::string& key) {
  if (key == "seg_miou_vvd") return "VVD mIoU (segmentation)";
  if (key == "cvc_miou") return "CVC mIoU (consistency)";
  if (key == "cvc_pixacc") return "CVC pixAcc (consistency)";
  if (key == "seg_miou_original") return "orig mIoU (original views)";
  return key;
}

namespace drawing {

inline constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
inline constexpr double kTitleScale = 0.55, kTextScale = 0.45, kSmallScale = 0.4;
inline constexpr int kGap = 4;  ///< white gutter between tiles
inline constexpr int kMargin = 8;
/// Narrowest figure: titles wrap to at least this width.
inline constexpr int kMinWidth = 560;

inline const cv::Scalar kWhite(255, 255, 255), kBlack(0, 0, 0), kGrey(190, 190, 190);

/// Width of `text` in pixels at `scale`.
inline int text_width(const std::string& text, double scale) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, 1, &baseline).width;
}

/// Height of one text line (ascent + descent + leading) at `scale`.
inline int line_height(double scale) { return int(std::lround(36.0 * scale)); }

/// `text` broken at spaces into lines no wider than `width` (a single word wider stays whole).
inline std::vector<std::string> wrap(const std::string& text, double scale, int width) {
  std::vector<std::string> lines;
  std::istringstream words(text);
  std::string word, line;
  while (words >> word) {
    const auto candidate = line.empty() ? word : line + " " + word;
    if (!line.empty() && text_width(candidate, scale) > width) {
      lines.push_back(line);
      line = word;
    } else {
      line = candidate;
    }
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

/// A white strip `width` wide holding `paragraphs` (the first at `first_scale`, the rest at
/// kTextScale), each wrapped to the width.
inline cv::Mat text_strip(const std::vector<std::string>& paragraphs, int width, double first_scale = kTitleScale) {
  std::vector<std::pair<std::string, double>> lines;
  for (size_t p = 0; p < paragraphs.size(); ++p) {
    const double scale = p == 0 ? first_scale : kTextScale;
    for (const auto& l : wrap(paragraphs[p], scale, width - 2 * kMargin)) lines.emplace_back(l, scale);
  }
  int height = kMargin;
  for (const auto& l : lines) height += line_height(l.second);
  cv::Mat out(height + kMargin / 2, width, CV_8UC3, kWhite);
  int y = kMargin;
  for (const auto& [text, scale] : lines) {
    y += line_height(scale);
    cv::putText(out, text, cv::Point(kMargin, y - int(std::lround(10.0 * scale))), kFont, scale, kBlack, 1,
                cv::LINE_AA);
  }
  return out;
}

/// Pads `m` with white on the right to `width` columns (no-op when it is as wide already).
inline cv::Mat pad_right(const cv::Mat& m, int width) {
  if (m.cols >= width) return m;
  cv::Mat out;
  cv::copyMakeBorder(m, out, 0, 0, 0, width - m.cols, cv::BORDER_CONSTANT, kWhite);
  return out;
}

/// Stacks `parts` top to bottom, each padded on the right to the widest.
inline cv::Mat stack(const std::vector<cv::Mat>& parts) {
  int width = 0;
  for (const auto& p : parts) width = std::max(width, p.cols);
  std::vector<cv::Mat> padded;
  for (const auto& p : parts) {
    if (!p.empty()) padded.push_back(pad_right(p, width));
  }
  cv::Mat out;
  cv::vconcat(padded, out);
  return out;
}

/// `body` under a title block (`title`'s '\n'-separated paragraphs, the first in bold size),
/// wrapped to the body's width or kMinWidth, whichever is wider.
inline cv::Mat titled(const cv::Mat& body, const std::string& title) {
  std::vector<std::string> paragraphs;
  std::istringstream in(title);
  for (std::string p; std::getline(in, p);) {
    if (!p.empty()) paragraphs.push_back(p);
  }
  const int width = std::max(body.cols + 2 * kMargin, kMinWidth);
  cv::Mat framed;
  cv::copyMakeBorder(body, framed, 0, kMargin, kMargin, kMargin, cv::BORDER_CONSTANT, kWhite);
  return stack({text_strip(paragraphs, width), framed});
}

/// Scales a tile to `height` rows: nearest for label-like images (keeps class edges crisp),
/// area averaging for photos (`smooth`).
inline cv::Mat fit_height(const cv::Mat& m, int height, bool smooth = false) {
  if (m.rows == height) return m;
  cv::Mat out;
  const int interpolation = smooth && height < m.rows ? cv::INTER_AREA : (smooth ? cv::INTER_LINEAR : cv::INTER_NEAREST);
  cv::resize(m, out, cv::Size(std::max(1, m.cols * height / std::max(1, m.rows)), height), 0, 0, interpolation);
  return out;
}

/// Pads a tile with a caption strip on top; the caption wraps to the tile's width, and the strip
/// holds at least `lines` lines (so that tiles of a row with shorter captions line up).
inline cv::Mat captioned(const cv::Mat& tile, const std::string& caption, size_t lines = 1) {
  const auto wrapped = wrap(caption, kTextScale, tile.cols - 4);
  const int strip = 6 + line_height(kTextScale) * int(std::max(lines, wrapped.size()));
  cv::Mat out(tile.rows + strip, tile.cols, CV_8UC3, kWhite);
  tile.copyTo(out(cv::Rect(0, strip, tile.cols, tile.rows)));
  for (size_t i = 0; i < wrapped.size(); ++i) {
    cv::putText(out, wrapped[i], cv::Point(2, line_height(kTextScale) * int(i + 1)), kFont, kTextScale, kBlack, 1,
                cv::LINE_AA);
  }
  return out;
}

/// A grid row: each tile under its caption, the caption strips of one height.
inline std::vector<cv::Mat> captioned_row(const std::vector<std::pair<cv::Mat, std::string>>& tiles) {
  size_t lines = 1;
  for (const auto& [tile, caption] : tiles) lines = std::max(lines, wrap(caption, kTextScale, tile.cols - 4).size());
  std::vector<cv::Mat> row;
  for (const auto& [tile, caption] : tiles) row.push_back(captioned(tile, caption, lines));
  return row;
}

/// Grid of tiles (rows x cols) with a kGap white gutter; tiles in a row are aligned at the bottom
/// (captions of different line counts), rows padded to the widest.
inline cv::Mat grid(const std::vector<std::vector<cv::Mat>>& rows) {
  std::vector<cv::Mat> lines;
  for (const auto& row : rows) {
    int height = 0;
    for (const auto& cell : row) height = std::max(height, cell.rows);
    std::vector<cv::Mat> cells;
    for (size_t i = 0; i < row.size(); ++i) {
      cv::Mat cell = row[i];
      if (cell.rows < height) cv::copyMakeBorder(cell, cell, height - cell.rows, 0, 0, 0, cv::BORDER_CONSTANT, kWhite);
      cells.push_back(cell);
      if (i + 1 < row.size()) cells.emplace_back(height, kGap, CV_8UC3, kWhite);
    }
    cv::Mat line;
    cv::hconcat(cells, line);
    if (!lines.empty()) lines.emplace_back(kGap, line.cols, CV_8UC3, kWhite);
    lines.push_back(line);
  }
  return stack(lines);
}

/// One legend entry: a swatch (with a thin grey frame, so that white and black read as swatches)
/// and its text.
struct LegendEntry {
  cv::Scalar colour;
  std::string text;
};

/// Legend entries flowing left to right in rows no wider than `width`, after a `heading`.
inline cv::Mat legend(const std::string& heading, const std::vector<LegendEntry>& entries, int width) {
  constexpr int kSwatch = 14, kRowH = 22, kSpacing = 18;
  std::vector<std::vector<size_t>> rows(1);
  int x = kMargin + text_width(heading, kTextScale) + kSpacing;
  for (size_t i = 0; i < entries.size(); ++i) {
    const int w = kSwatch + 6 + text_width(entries[i].text, kTextScale);
    if (x + w > width - kMargin && !rows.back().empty()) {
      rows.emplace_back();
      x = kMargin;
    }
    rows.back().push_back(i);
    x += w + kSpacing;
  }
  cv::Mat out(kMargin + kRowH * int(rows.size()) + kMargin / 2, width, CV_8UC3, kWhite);
  cv::putText(out, heading, cv::Point(kMargin, kMargin + 13), kFont, kTextScale, kBlack, 1, cv::LINE_AA);
  for (size_t r = 0; r < rows.size(); ++r) {
    x = r == 0 ? kMargin + text_width(heading, kTextScale) + kSpacing : kMargin;
    const int y = kMargin + kRowH * int(r);
    for (const size_t i : rows[r]) {
      cv::rectangle(out, cv::Rect(x, y, kSwatch, kSwatch), entries[i].colour, cv::FILLED);
      cv::rectangle(out, cv::Rect(x, y, kSwatch, kSwatch), cv::Scalar(128, 128, 128), 1);
      cv::putText(out, entries[i].text, cv::Point(x + kSwatch + 6, y + 12), kFont, kTextScale, kBlack, 1, cv::LINE_AA);
      x += kSwatch + 6 + text_width(entries[i].text, kTextScale) + kSpacing;
    }
  }
  return out;
}

/// Writes `figure`, throwing when OpenCV cannot.
inline void write_png(const std::filesystem::path& path, const cv::Mat& figure) {
  if (!cv::imwrite(path.string(), figure)) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace drawing

/// How a dataset's labels are drawn: its class names and colours (RGB), both by class id.
struct LabelStyle {
  std::vector<std::string> class_names;
  std::vector<crossview::Rgb> palette;
};

/// One evaluation sample shown in the figures: a rotated (VVD) view with its ground truth, and per
/// variant the prediction and the inconsistency map in that view.
struct FigureSample {
  std::string id;        ///< the pair's id (shown in the image's caption)
  torch::Tensor image;   ///< [3, H, W] float RGB in [0, 1]
  torch::Tensor label;   ///< [H, W] int64
  std::vector<torch::Tensor> predictions;  ///< per variant, [H, W] int64
  std::vector<torch::Tensor> disagree;     ///< per variant, [H, W] bool
  std::vector<torch::Tensor> valid;        ///< per variant, [H, W] bool (has a correspondence)
};

/// Fig. 4-like: `title` ('\n' between paragraphs) on top; rows = samples; columns = image, ground
/// truth, one prediction per variant, in `style`'s colours; under it a legend of the classes that
/// occur in the ground truth or the predictions shown.
inline void write_segmentation_figure(const std::filesystem::path& path, const std::string& title,
                                      const std::vector<FigureSample>& samples, const std::vector<std::string>& variants,
                                      const LabelStyle& style, int tile_height = 160) {
  std::vector<std::vector<cv::Mat>> rows;
  std::vector<torch::Tensor> shown;
  for (const auto& s : samples) {
    std::vector<std::pair<cv::Mat, std::string>> row = {
        {drawing::fit_height(image_to_bgr(s.image), tile_height, true), s.id.empty() ? "VVD view" : "VVD view " + s.id},
        {drawing::fit_height(colorize_labels(s.label, style.palette), tile_height), "ground truth"}};
    shown.push_back(s.label);
    for (size_t v = 0; v < variants.size(); ++v) {
      row.emplace_back(drawing::fit_height(colorize_labels(s.predictions[v], style.palette), tile_height), variants[v]);
      shown.push_back(s.predictions[v]);
    }
    rows.push_back(drawing::captioned_row(row));
  }
  if (rows.empty()) return;
  const auto body = drawing::grid(rows);
  std::vector<drawing::LegendEntry> entries;
  for (const int64_t id : classes_present(shown, int64_t(style.palette.size()))) {
    const auto c = class_colour(id, style.palette);
    entries.push_back({cv::Scalar(c[0], c[1], c[2]),
                       id < int64_t(style.class_names.size()) ? style.class_names[size_t(id)] : std::to_string(id)});
  }
  bool ignore = false;
  for (const auto& l : shown) ignore = ignore || (l == 255).any().item<bool>();
  if (ignore) entries.push_back({drawing::kBlack, "ignore / unlabelled"});
  const auto legend =
      drawing::legend("Classes shown:", entries, std::max(body.cols + 2 * drawing::kMargin, drawing::kMinWidth));
  drawing::write_png(path, drawing::stack({drawing::titled(body, title), legend}));
}

/// Fig. 5-like: `title` on top; rows = samples; columns = image, then per variant the
/// inconsistency map with the share of inconsistent pixels (of those with a correspondence) in its
/// caption; under it a legend of the map's shades.
inline void write_inconsistency_figure(const std::filesystem::path& path, const std::string& title,
                                       const std::vector<FigureSample>& samples,
                                       const std::vector<std::string>& variants, int tile_height = 160) {
  std::vector<std::vector<cv::Mat>> rows;
  bool any_without_correspondence = false;
  for (const auto& s : samples) {
    std::vector<std::pair<cv::Mat, std::string>> row = {
        {drawing::fit_height(image_to_bgr(s.image), tile_height, true), s.id.empty() ? "VVD view" : "VVD view " + s.id}};
    for (size_t v = 0; v < variants.size(); ++v) {
      const double n_valid = s.valid[v].sum().item<double>();
      const double n_bad = (s.disagree[v] & s.valid[v]).sum().item<double>();
      any_without_correspondence = any_without_correspondence || n_valid < double(s.valid[v].numel());
      char share[48];
      std::snprintf(share, sizeof share, ": %.1f%% inconsistent", n_valid > 0 ? 100.0 * n_bad / n_valid : 0.0);
      row.emplace_back(drawing::fit_height(inconsistency_image(s.disagree[v], s.valid[v]), tile_height),
                       variants[v] + share);
    }
    rows.push_back(drawing::captioned_row(row));
  }
  if (rows.empty()) return;
  const auto body = drawing::grid(rows);
  std::vector<drawing::LegendEntry> entries = {
      {cv::Scalar::all(kInconsistent), "prediction differs from the original view's at the corresponding pixel"},
      {cv::Scalar::all(kConsistent), "same prediction"}};
  if (any_without_correspondence) entries.push_back({cv::Scalar::all(kNoCorrespondence), "no correspondence"});
  const auto legend =
      drawing::legend("Shades:", entries, std::max(body.cols + 2 * drawing::kMargin, drawing::kMinWidth));
  drawing::write_png(path, drawing::stack({drawing::titled(body, title), legend}));
}

/// Fig. 6-like: per-class IoU (0-100) bars, one colour per variant, under `title`; the legend
/// gives each variant's mIoU (over the classes with an IoU). NaN (class absent from both ground
/// truth and predictions) draws no bar but "n/a".
inline void write_class_iou_figure(const std::filesystem::path& path, const std::string& title,
                                   const std::vector<std::string>& class_names, const std::vector<std::string>& variants,
                                   const std::vector<std::vector<double>>& iou) {
  const int n_classes = int(class_names.size());
  const int n_variants = int(variants.size());
  if (n_classes == 0 || n_variants == 0) return;
  using drawing::kBlack;
  constexpr int kBar = 9, kPlotH = 300, kLeft = 56, kTop = 14;
  int names_h = 0;  // height of the vertical class names under the axis
  for (const auto& name : class_names) names_h = std::max(names_h, drawing::text_width(name, 0.4));
  names_h = std::min(names_h, 160) + 14;
  const int group = std::max(kBar * n_variants + 10, 24);
  // The legend: each variant with its mIoU over the classes it has an IoU for.
  std::vector<std::string> entries;
  int legend_w = 0;
  for (int v = 0; v < n_variants; ++v) {
    double sum = 0;
    int n = 0;
    for (int c = 0; c < n_classes && c < int(iou[v].size()); ++c) {
      if (iou[v][c] == iou[v][c]) sum += iou[v][c], ++n;
    }
    char buf[48];
    std::snprintf(buf, sizeof buf, " (mIoU %.1f)", n > 0 ? sum / n : 0.0);
    entries.push_back(variants[v] + buf);
    legend_w = std::max(legend_w, 18 + drawing::text_width(entries.back(), drawing::kSmallScale + 0.02));
  }
  const int plot_w = group * n_classes;
  const int width = kLeft + plot_w + 20 + legend_w + drawing::kMargin;
  const int height = kTop + kPlotH + names_h + 4;
  cv::Mat img(height, width, CV_8UC3, drawing::kWhite);
  bool any_na = false;
  static const cv::Scalar kVariantColours[] = {{160, 160, 160}, {200, 150, 60}, {60, 160, 230}, {40, 40, 200},
                                               {120, 180, 60},  {180, 80, 180}};
  for (int t = 0; t <= 100; t += 20) {
    const int y = kTop + kPlotH - t * kPlotH / 100;
    cv::line(img, cv::Point(kLeft, y), cv::Point(kLeft + plot_w, y), drawing::kGrey, 1);
    const auto label = std::to_string(t);
    cv::putText(img, label, cv::Point(kLeft - 6 - drawing::text_width(label, 0.4), y + 4), drawing::kFont, 0.4, kBlack,
                1, cv::LINE_AA);
  }
  {  // Axis title, written vertically left of the ticks.
    const std::string axis = "IoU (%)";
    cv::Mat text(16, drawing::text_width(axis, 0.42) + 4, CV_8UC3, drawing::kWhite);
    cv::putText(text, axis, cv::Point(2, 12), drawing::kFont, 0.42, kBlack, 1, cv::LINE_AA);
    cv::Mat rotated;
    cv::rotate(text, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
    rotated.copyTo(img(cv::Rect(2, kTop + (kPlotH - rotated.rows) / 2, rotated.cols, rotated.rows)));
  }
  for (int c = 0; c < n_classes; ++c) {
    const int x0 = kLeft + c * group + (group - kBar * n_variants) / 2;
    bool any = false;
    for (int v = 0; v < n_variants; ++v) {
      const double value = c < int(iou[v].size()) ? iou[v][c] : std::nan("");
      if (!(value == value)) continue;
      any = true;
      const int h = int(std::lround(std::clamp(value, 0.0, 100.0) * kPlotH / 100.0));
      cv::rectangle(img, cv::Rect(x0 + v * kBar, kTop + kPlotH - h, kBar - 1, std::max(h, 1)),
                    kVariantColours[v % 6], cv::FILLED);
    }
    if (!any) {
      any_na = true;
      const int tx = kLeft + c * group + (group - drawing::text_width("n/a", 0.35)) / 2;
      cv::putText(img, "n/a", cv::Point(tx, kTop + kPlotH - 5), drawing::kFont, 0.35, cv::Scalar(110, 110, 110), 1,
                  cv::LINE_AA);
    }
    // Class name, written vertically under its group, ending at the axis.
    cv::Mat text(14, names_h - 8, CV_8UC3, drawing::kWhite);
    const int tw = std::min(drawing::text_width(class_names[c], 0.4), names_h - 10);
    cv::putText(text, class_names[c], cv::Point(names_h - 10 - tw, 11), drawing::kFont, 0.4, kBlack, 1, cv::LINE_AA);
    cv::Mat rotated;
    cv::rotate(text, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
    const int tx = kLeft + c * group + (group - rotated.cols) / 2;
    if (tx >= 0 && tx + rotated.cols <= width) {
      rotated.copyTo(img(cv::Rect(tx, kTop + kPlotH + 4, rotated.cols, rotated.rows)));
    }
  }
  cv::line(img, cv::Point(kLeft, kTop + kPlotH), cv::Point(kLeft + plot_w, kTop + kPlotH), kBlack, 1);
  for (int v = 0; v < n_variants; ++v) {
    const int lx = kLeft + plot_w + 20, ly = kTop + 10 + 20 * v;
    cv::rectangle(img, cv::Rect(lx, ly - 9, 12, 12), kVariantColours[v % 6], cv::FILLED);
    cv::putText(img, entries[size_t(v)], cv::Point(lx + 18, ly + 1), drawing::kFont, drawing::kSmallScale + 0.02,
                kBlack, 1, cv::LINE_AA);
  }
  if (any_na) {
    const int lx = kLeft + plot_w + 20, ly = kTop + 10 + 20 * n_variants + 10;
    const auto lines = drawing::wrap("n/a: class in neither the ground truth nor the predictions", drawing::kSmallScale,
                                     width - lx - drawing::kMargin);
    for (size_t i = 0; i < lines.size(); ++i) {
      cv::putText(img, lines[i], cv::Point(lx, ly + 16 * int(i)), drawing::kFont, drawing::kSmallScale,
                  cv::Scalar(110, 110, 110), 1, cv::LINE_AA);
    }
  }
  drawing::write_png(path, drawing::titled(img, title));
}

/// One variant's paired differences to the baseline in the seed-difference figure.
struct SeedDifferences {
  std::string variant;
  std::vector<double> per_seed;  ///< method - baseline, one value per seed
  double mean{0}, lo{0}, hi{0};  ///< mean and 95 % t-interval
};

/// The multi-seed study at a glance: one panel per metric; in each, one row per variant with every
/// seed's paired difference to the baseline (dots), their mean (a bar) and 95 % t-interval
/// (whiskers), and a vertical line at zero. `panels` pairs a metric (results.json's name, shown as
/// metric_title) with its rows; `title` ('\n' between paragraphs) goes on top.
inline void write_seed_difference_figure(const std::filesystem::path& path, const std::string& title,
                                         const std::vector<std::pair<std::string, std::vector<SeedDifferences>>>& panels) {
  if (panels.empty()) return;
  constexpr int kPanelW = 330, kRowH = 34, kTop = 30, kGap = 24, kAxis = 24;
  size_t rows = 0;
  for (const auto& p : panels) rows = std::max(rows, p.second.size());
  if (rows == 0) return;
  int left = 0;
  for (size_t r = 0; r < rows; ++r) {
    left = std::max(left, drawing::text_width(panels.front().second.size() > r ? panels.front().second[r].variant : "",
                                              drawing::kTextScale));
  }
  left += 2 * drawing::kMargin;
  const int plot_h = int(rows) * kRowH;
  const int width = left + int(panels.size()) * (kPanelW + kGap);
  const int height = kTop + plot_h + kAxis;
  cv::Mat img(height, width, CV_8UC3, drawing::kWhite);
  const cv::Scalar black(0, 0, 0), grey(190, 190, 190), blue(180, 90, 20), red(40, 40, 210);
  for (size_t r = 0; r < rows; ++r) {
    const auto& name = panels.front().second.size() > r ? panels.front().second[r].variant : std::string();
    cv::putText(img, name, cv::Point(drawing::kMargin, kTop + int(r) * kRowH + kRowH / 2 + 5), drawing::kFont,
                drawing::kTextScale, black, 1, cv::LINE_AA);
  }
  for (size_t p = 0; p < panels.size(); ++p) {
    const int x0 = left + int(p) * (kPanelW + kGap);
    double lo = 0, hi = 0;  // the axis always shows zero
    for (const auto& row : panels[p].second) {
      for (double v : row.per_seed) lo = std::min(lo, v), hi = std::max(hi, v);
      if (row.lo == row.lo) lo = std::min(lo, row.lo);
      if (row.hi == row.hi) hi = std::max(hi, row.hi);
    }
    const double pad = 0.08 * std::max(hi - lo, 1.0);
    lo -= pad;
    hi += pad;
    const auto px = [&](double v) { return x0 + int(std::lround((v - lo) / (hi - lo) * kPanelW)); };
    cv::putText(img, metric_title(panels[p].first), cv::Point(x0, kTop - 10), drawing::kFont, drawing::kTextScale, black, 1,
                cv::LINE_AA);
    cv::rectangle(img, cv::Rect(x0, kTop, kPanelW, plot_h), grey, 1);
    cv::line(img, cv::Point(px(0.0), kTop), cv::Point(px(0.0), kTop + plot_h), black, 1);
    // Axis ticks: the ends and zero, in metric points; zero's label is left out where it would
    // run into an end's.
    char end_lo[32], end_hi[32];
    std::snprintf(end_lo, sizeof end_lo, "%+.1f", lo);
    std::snprintf(end_hi, sizeof end_hi, "%+.1f", hi);
    const int y_tick = kTop + plot_h + 16;
    cv::putText(img, end_lo, cv::Point(x0, y_tick), drawing::kFont, 0.38, black, 1, cv::LINE_AA);
    cv::putText(img, end_hi, cv::Point(x0 + kPanelW - drawing::text_width(end_hi, 0.38), y_tick), drawing::kFont, 0.38,
                black, 1, cv::LINE_AA);
    const int zero_w = drawing::text_width("0", 0.38);
    if (px(0.0) - zero_w / 2 > x0 + drawing::text_width(end_lo, 0.38) + 6 &&
        px(0.0) + zero_w / 2 < x0 + kPanelW - drawing::text_width(end_hi, 0.38) - 6) {
      cv::putText(img, "0", cv::Point(px(0.0) - zero_w / 2, y_tick), drawing::kFont, 0.38, black, 1, cv::LINE_AA);
    }
    for (size_t r = 0; r < panels[p].second.size(); ++r) {
      const auto& row = panels[p].second[r];
      const int y = kTop + int(r) * kRowH + kRowH / 2;
      for (double v : row.per_seed) cv::circle(img, cv::Point(px(v), y - 6), 3, blue, cv::FILLED, cv::LINE_AA);
      if (row.lo == row.lo && row.hi == row.hi) {
        cv::line(img, cv::Point(px(row.lo), y + 6), cv::Point(px(row.hi), y + 6), red, 2);
        cv::line(img, cv::Point(px(row.lo), y + 1), cv::Point(px(row.lo), y + 11), red, 2);
        cv::line(img, cv::Point(px(row.hi), y + 1), cv::Point(px(row.hi), y + 11), red, 2);
      }
      cv::rectangle(img, cv::Rect(px(row.mean) - 2, y + 1, 5, 11), red, cv::FILLED);
    }
  }
  const auto legend = drawing::legend(
      "Per variant:",
      {{blue, "one seed's difference (method - baseline, metric points)"}, {red, "mean and 95% t-interval"}},
      std::max(width + 2 * drawing::kMargin, drawing::kMinWidth));
  drawing::write_png(path, drawing::stack({drawing::titled(img, title), legend}));
}

}  // namespace crossview_programs
