#pragma once
/// \file
/// crossview-video's support: frame sequences (a folder of images, a video file through OpenCV's
/// VideoCapture, or crossview::SyntheticVideo with its exact flow), DIS optical flow (OpenCV), the
/// per-pixel map behind crossview::flow_consistency for the figures, end-point errors, per-frame
/// summaries, and the Fig. 7-like plot of consistency per frame. OpenCV-backed: programs and tests
/// only.

#include <crossview_programs/figures.hpp>

#include <crossview/data/synthetic_video.hpp>
#include <crossview/metrics/confusion_matrix.hpp>
#include <crossview/metrics/flow_consistency.hpp>
#include <crossview/metrics/statistics.hpp>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>
#include <opencv2/videoio.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace crossview_programs {

// ---- frames --------------------------------------------------------------------------------------

/// One frame of a sequence.
struct VideoFrame {
  std::string name;     ///< file name, or "frame_000012" for video files and synthetic frames
  torch::Tensor image;  ///< [3, H, W] float32 RGB in [0, 1], CPU
  cv::Mat grey;         ///< H x W CV_8UC1, what the optical flow sees
};

/// A BGR 8-bit frame as a VideoFrame (resized to `size` {width, height} first unless it is empty).
inline VideoFrame frame_from_bgr(std::string name, const cv::Mat& bgr_in, const cv::Size& size = {}) {
  cv::Mat bgr = bgr_in;
  if (!size.empty() && bgr.size() != size) cv::resize(bgr_in, bgr, size, 0, 0, cv::INTER_AREA);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  VideoFrame f;
  f.name = std::move(name);
  f.image = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8)
                .permute({2, 0, 1})
                .to(torch::kFloat32)
                .div_(255.0)
                .contiguous();
  cv::cvtColor(bgr, f.grey, cv::COLOR_BGR2GRAY);
  return f;
}

/// A [3, H, W] float RGB image in [0, 1] as a VideoFrame (the grey image rounded to 8 bits).
inline VideoFrame frame_from_tensor(std::string name, const torch::Tensor& image) {
  VideoFrame f;
  f.name = std::move(name);
  f.image = image.to(torch::kCPU, torch::kFloat32).contiguous();
  cv::cvtColor(image_to_bgr(f.image), f.grey, cv::COLOR_BGR2GRAY);
  return f;
}

/// "frame_000012".
inline std::string frame_label(int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "frame_%06lld", (long long)index);
  return buf;
}

/// Extensions (lower case) read as frames by `list_frame_files`.
inline const std::set<std::string>& frame_extensions() {
  static const std::set<std::string> extensions = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".webp"};
  return extensions;
}

/// The image files in `dir` (extensions of frame_extensions(), any case) whose names start with
/// `prefix`, sorted by name: the frames of a sequence.
/// \throws std::runtime_error naming --frames and the folder when it does not exist, is not a
/// folder, or holds fewer than 2 such files.
inline std::vector<std::filesystem::path> list_frame_files(const std::filesystem::path& dir,
                                                           const std::string& prefix = "") {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw std::runtime_error("--frames " + dir.string() + ": no such folder");
  if (!fs::is_directory(dir, ec)) throw std::runtime_error("--frames " + dir.string() + ": not a folder");
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    auto ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    const auto name = entry.path().filename().string();
    if (frame_extensions().count(ext) && name.compare(0, prefix.size(), prefix) == 0) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.size() < 2) {
    throw std::runtime_error("--frames " + dir.string() + ": expected at least 2 image files (.png, .jpg, ...)" +
                             (prefix.empty() ? "" : " whose names start with '" + prefix + "' (--match)") + ", found " +
                             std::to_string(files.size()));
  }
  return files;
}

/// The sequence names of frame files named "<sequence>_<number>.<ext>" (CamVid: "0001TP_008550.png",
/// "Seq05VD_f00000.png"), in order of first appearance; a name without '_' is its own stem.
inline std::vector<std::string> sequence_names(const std::vector<std::filesystem::path>& files) {
  std::vector<std::string> names;
  for (const auto& f : files) {
    const auto stem = f.stem().string();
    const auto cut = stem.rfind('_');
    const auto name = cut == std::string::npos ? std::string() : stem.substr(0, cut);
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

/// Where frames come from, read one after the other.
class FrameSource {
 public:
  virtual ~FrameSource() = default;
  /// Number of frames (for video files: what the container says, which may be approximate).
  virtual int64_t size() const = 0;
  /// The next frame, or nothing at the end.
  virtual std::optional<VideoFrame> next() = 0;
  /// What the source is, for results files: {"kind", ...}.
  virtual nlohmann::json describe() const = 0;
};

/// A folder of images, in name order; every frame must have the first one's size (unless `size`
/// {width, height} resizes them all).
class FolderFrames : public FrameSource {
 public:
  FolderFrames(std::filesystem::path dir, std::string prefix, int64_t max_frames, cv::Size size)
      : dir_(std::move(dir)), prefix_(std::move(prefix)), files_(list_frame_files(dir_, prefix_)), size_(size) {
    if (max_frames > 0 && int64_t(files_.size()) > max_frames) files_.resize(size_t(max_frames));
  }
  int64_t size() const override { return int64_t(files_.size()); }
  const std::vector<std::filesystem::path>& files() const { return files_; }
  std::optional<VideoFrame> next() override {
    if (index_ >= files_.size()) return std::nullopt;
    const auto& path = files_[index_++];
    const cv::Mat bgr = cv::imread(path.string(), cv::IMREAD_COLOR);
    if (bgr.empty()) throw std::runtime_error("--frames: " + path.string() + " is not a readable image");
    if (first_size_.empty()) {
      first_size_ = bgr.size();
      first_ = path.filename().string();
    } else if (bgr.size() != first_size_ && size_.empty()) {
      throw std::runtime_error("--frames: " + path.string() + " is " + std::to_string(bgr.cols) + "x" +
                               std::to_string(bgr.rows) + " (width x height), the first frame " + first_ + " is " +
                               std::to_string(first_size_.width) + "x" + std::to_string(first_size_.height) +
                               "; give frames of one size (or --width and --height to resize all)");
    }
    return frame_from_bgr(path.filename().string(), bgr, size_);
  }
  nlohmann::json describe() const override {
    return {{"kind", "frames"},
            {"path", dir_.string()},
            {"match", prefix_},
            {"first", files_.front().filename().string()},
            {"last", files_.back().filename().string()}};
  }

 private:
  std::filesystem::path dir_;
  std::string prefix_;
  std::vector<std::filesystem::path> files_;
  cv::Size size_, first_size_;
  std::string first_;
  size_t index_{0};
};

/// A video file read through cv::VideoCapture (any container and codec OpenCV's backends read).
class VideoFileFrames : public FrameSource {
 public:
  /// \throws std::runtime_error naming --video and the file when it is missing or OpenCV cannot
  /// open it as a video.
  VideoFileFrames(std::filesystem::path path, int64_t max_frames, cv::Size size)
      : path_(std::move(path)), max_frames_(max_frames), size_(size) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path_, ec)) throw std::runtime_error("--video " + path_.string() + ": no such file");
    // The backends OpenCV tries in turn log their own failures (GStreamer's "pipeline have not been
    // created", ...); the error below says what matters, so they are silenced while opening.
    const auto level = cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
    const bool opened = capture_.open(path_.string()) && capture_.isOpened();
    cv::utils::logging::setLogLevel(level);
    if (!opened) {
      throw std::runtime_error("--video " + path_.string() + ": OpenCV cannot open it as a video");
    }
    count_ = std::max<int64_t>(0, int64_t(std::llround(capture_.get(cv::CAP_PROP_FRAME_COUNT))));
    if (max_frames_ > 0 && (count_ == 0 || count_ > max_frames_)) count_ = max_frames_;
    fps_ = capture_.get(cv::CAP_PROP_FPS);
  }
  int64_t size() const override { return count_; }
  std::optional<VideoFrame> next() override {
    if (max_frames_ > 0 && index_ >= max_frames_) return std::nullopt;
    cv::Mat bgr;
    if (!capture_.read(bgr) || bgr.empty()) return std::nullopt;
    if (bgr.channels() == 1) cv::cvtColor(bgr, bgr, cv::COLOR_GRAY2BGR);
    if (first_size_.empty()) first_size_ = bgr.size();
    if (bgr.size() != first_size_ && size_.empty()) {
      throw std::runtime_error("--video " + path_.string() + ": frame " + std::to_string(index_) + " changes size");
    }
    return frame_from_bgr(frame_label(index_++), bgr, size_);
  }
  nlohmann::json describe() const override {
    return {{"kind", "video"}, {"path", path_.string()}, {"fps", fps_}, {"frames_read", index_}};
  }

 private:
  std::filesystem::path path_;
  int64_t max_frames_;
  cv::Size size_, first_size_;
  cv::VideoCapture capture_;
  int64_t count_{0}, index_{0};
  double fps_{0};
};

/// crossview::SyntheticVideo's frames; exact flow through video().
class SyntheticFrames : public FrameSource {
 public:
  explicit SyntheticFrames(crossview::SyntheticVideoOptions options) : video_(std::move(options)) {}
  int64_t size() const override { return video_.size(); }
  std::optional<VideoFrame> next() override {
    if (index_ >= video_.size()) return std::nullopt;
    const auto view = video_.frame(index_);
    labels_ = view.label;
    return frame_from_tensor(frame_label(index_++), view.image);
  }
  /// The ground-truth labels of the frame next() returned last, [H, W] int64.
  const torch::Tensor& labels() const { return labels_; }
  const crossview::SyntheticVideo& video() const { return video_; }
  nlohmann::json describe() const override {
    const auto& o = video_.options();
    return {{"kind", "synthetic"}, {"frames", o.frames()},       {"seed", o.seed()},
            {"height", o.height()}, {"width", o.width()},         {"focal", video_.intrinsics().fx},
            {"yaw_deg", o.yaw_deg()}, {"pitch_deg", o.pitch_deg()}, {"roll_deg", o.roll_deg()},
            {"period", o.period()}};
  }

 private:
  crossview::SyntheticVideo video_;
  int64_t index_{0};
  torch::Tensor labels_;
};

// ---- flow --------------------------------------------------------------------------------------------

/// A CV_32FC2 flow (OpenCV's layout) as a [2, H, W] float32 tensor (dx, dy).
inline torch::Tensor flow_to_tensor(const cv::Mat& flow) {
  CV_Assert(flow.type() == CV_32FC2 && flow.isContinuous());
  return torch::from_blob(flow.data, {flow.rows, flow.cols, 2}, torch::kFloat32).permute({2, 0, 1}).contiguous();
}

/// DIS optical flow (Kroeger et al., ECCV 2016; OpenCV's cv::DISOpticalFlow) from grey frame b to
/// grey frame a: pixel p of b sits at p + flow(p) in a, [2, H, W] float32 -- the `flow_b_a` of
/// crossview::flow_consistency. `preset`: cv::DISOpticalFlow::PRESET_ULTRAFAST, _FAST or _MEDIUM.
inline torch::Tensor dis_flow(const cv::Mat& grey_b, const cv::Mat& grey_a,
                              int preset = cv::DISOpticalFlow::PRESET_MEDIUM) {
  if (grey_b.size() != grey_a.size() || grey_b.type() != CV_8UC1 || grey_a.type() != CV_8UC1) {
    throw std::invalid_argument("dis_flow: frames must be 8-bit grey images of one size, got " +
                                std::to_string(grey_b.cols) + "x" + std::to_string(grey_b.rows) + " and " +
                                std::to_string(grey_a.cols) + "x" + std::to_string(grey_a.rows));
  }
  auto dis = cv::DISOpticalFlow::create(preset);
  cv::Mat flow;
  dis->calc(grey_b, grey_a, flow);  // calc(I0, I1): I0(p) ~ I1(p + flow(p))
  return flow_to_tensor(flow);
}

/// The name of a DIS preset on the command line -> its OpenCV constant.
/// \throws std::invalid_argument for other names.
inline int dis_preset(const std::string& name) {
  if (name == "ultrafast") return cv::DISOpticalFlow::PRESET_ULTRAFAST;
  if (name == "fast") return cv::DISOpticalFlow::PRESET_FAST;
  if (name == "medium") return cv::DISOpticalFlow::PRESET_MEDIUM;
  throw std::invalid_argument("--dis-preset must be ultrafast, fast or medium, got '" + name + "'");
}

/// Share (%) of frame b's pixels that crossview::flow_consistency counts under `flow_b_a` (and the
/// forward-backward check of `options`): those whose flow lands inside frame a and passes the check.
inline double flow_coverage(const torch::Tensor& flow_b_a, const crossview::FlowConsistencyOptions& options = {}) {
  const auto hw = std::vector<int64_t>{flow_b_a.size(-2), flow_b_a.size(-1)};
  const auto zeros = torch::zeros(hw, torch::kInt64);
  crossview::ConfusionMatrix one_class(1, 255);
  const auto counted = crossview::flow_consistency(zeros, zeros, flow_b_a, one_class, options);
  return 100.0 * double(counted) / double(std::max<int64_t>(1, zeros.numel()));
}

/// Labels of frame a carried to frame b along `flow_b_a` by the rule of crossview::flow_consistency
/// (nearest pixel to p + flow; left out, i.e. 255, where the position leaves frame a or fails the
/// forward-backward check with `options.flow_a_b()`), [H_b, W_b] int64. Used to draw inconsistency
/// maps; the numbers come from flow_consistency itself (a test checks the two agree).
inline torch::Tensor carry_labels(const torch::Tensor& labels_a, const torch::Tensor& flow_b_a,
                                  const crossview::FlowConsistencyOptions& options = {}) {
  const int64_t ha = labels_a.size(0), wa = labels_a.size(1);
  const int64_t hb = flow_b_a.size(1), wb = flow_b_a.size(2);
  const auto f = flow_b_a.to(torch::kCPU, torch::kFloat64);
  const auto real = f.options();
  const auto qx = torch::arange(wb, real).view({1, wb}) + f[0];
  const auto qy = torch::arange(hb, real).view({hb, 1}) + f[1];
  auto valid = (qx >= 0) & (qx <= double(wa - 1)) & (qy >= 0) & (qy <= double(ha - 1));
  const auto sx = torch::where(valid, qx, torch::zeros_like(qx)), sy = torch::where(valid, qy, torch::zeros_like(qy));
  if (options.flow_a_b().defined()) {
    // g = flow_a_b at (sx, sy), bilinear (grid_sample, align_corners=True: -1 and 1 are the centres
    // of the first and last pixels).
    const auto g_field = options.flow_a_b().to(torch::kCPU, torch::kFloat64).unsqueeze(0);
    const auto gx_n = wa > 1 ? sx * (2.0 / double(wa - 1)) - 1.0 : torch::zeros_like(sx);
    const auto gy_n = ha > 1 ? sy * (2.0 / double(ha - 1)) - 1.0 : torch::zeros_like(sy);
    const auto grid = torch::stack({gx_n, gy_n}, -1).unsqueeze(0);
    namespace F = torch::nn::functional;
    const auto g = F::grid_sample(g_field, grid,
                                  F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kBorder).align_corners(true))
                       .squeeze(0);
    const auto ex = f[0] + g[0], ey = f[1] + g[1];
    const auto bound = options.fb_alpha() * (f[0] * f[0] + f[1] * f[1] + g[0] * g[0] + g[1] * g[1]) + options.fb_beta();
    valid = valid & (ex * ex + ey * ey <= bound);
  }
  const auto index = (torch::floor(sy + 0.5) * double(wa) + torch::floor(sx + 0.5)).to(torch::kInt64);
  const auto sampled = labels_a.to(torch::kCPU, torch::kInt64).reshape({-1}).index({index.reshape({-1})}).view({hb, wb});
  return torch::where(valid, sampled, torch::full_like(sampled, 255));
}

/// End-point error of a flow against the exact one over the `valid` pixels.
struct EndPointError {
  double mean{std::numeric_limits<double>::quiet_NaN()};
  double median{std::numeric_limits<double>::quiet_NaN()};
  double over_1px{std::numeric_limits<double>::quiet_NaN()};  ///< share (%) of pixels with an error above 1 px
  int64_t pixels{0};
};

/// |flow - exact| (Euclidean, px) over the pixels where `valid` ([H, W] bool) holds; both flows
/// [2, H, W].
inline EndPointError end_point_error(const torch::Tensor& flow, const torch::Tensor& exact, const torch::Tensor& valid) {
  const auto d = (flow.to(torch::kFloat64) - exact.to(torch::kFloat64));
  const auto epe = (d[0] * d[0] + d[1] * d[1]).sqrt().masked_select(valid.to(torch::kBool));
  EndPointError e;
  e.pixels = epe.numel();
  if (e.pixels == 0) return e;
  e.mean = epe.mean().item<double>();
  e.median = epe.median().item<double>();
  e.over_1px = 100.0 * (epe > 1.0).to(torch::kFloat64).mean().item<double>();
  return e;
}

// ---- summaries ------------------------------------------------------------------------------------------

/// Per-frame values of one series summarised: mean, sample sd (n - 1), min, max over the finite
/// values (a pair with no counted pixel has none), and how many there were.
struct SeriesSummary {
  double mean{std::numeric_limits<double>::quiet_NaN()};
  double sd{std::numeric_limits<double>::quiet_NaN()};
  double min{std::numeric_limits<double>::quiet_NaN()};
  double max{std::numeric_limits<double>::quiet_NaN()};
  int64_t n{0};
};

inline SeriesSummary summarize(const std::vector<double>& values) {
  std::vector<double> finite;
  for (const double v : values) {
    if (std::isfinite(v)) finite.push_back(v);
  }
  SeriesSummary s;
  s.n = int64_t(finite.size());
  if (finite.empty()) return s;
  s.min = *std::min_element(finite.begin(), finite.end());
  s.max = *std::max_element(finite.begin(), finite.end());
  if (finite.size() == 1) {
    s.mean = finite.front();
    return s;
  }
  const auto t = crossview::t_interval(finite);
  s.mean = t.mean;
  s.sd = t.sd;
  return s;
}

/// A JSON number, or null for NaN / infinity (JSON has neither).
inline nlohmann::json json_number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

inline nlohmann::json to_json(const SeriesSummary& s) {
  return {{"mean", json_number(s.mean)}, {"sd", json_number(s.sd)}, {"min", json_number(s.min)},
          {"max", json_number(s.max)},   {"pairs", s.n}};
}

/// A CSV cell: as is, or quoted (RFC 4180) when it holds a comma, a quote or a line break.
inline std::string csv_cell(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

/// A number for CSV: empty for NaN, else with `digits` decimals.
inline std::string csv_number(double v, int digits = 4) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// ---- figures -----------------------------------------------------------------------------------------

/// One line of the consistency plot.
struct PlotSeries {
  std::string label;          ///< legend text (name and mean)
  std::vector<double> x, y;   ///< frame index and consistency (%); NaN leaves a gap
  int colour{0};              ///< index into the plot's colours
  bool dashed{false};
};

/// The plot's line colours (BGR), one per checkpoint in order.
inline const std::vector<cv::Scalar>& plot_colours() {
  static const std::vector<cv::Scalar> colours = {{60, 60, 60},   {200, 120, 30}, {40, 40, 210},
                                                  {60, 160, 60},  {170, 70, 170}, {30, 160, 220}};
  return colours;
}

/// Fig. 7-like: consistency (%) against frame index, one line per series (dashed ones drawn in
/// short strokes), a legend beside the plot, `title` on top ('\n' between paragraphs). The y axis
/// spans [lowest value rounded down to 10, 100].
inline void write_consistency_plot(const std::filesystem::path& path, const std::string& title,
                                   const std::vector<PlotSeries>& series, const std::string& x_label = "frame") {
  using namespace drawing;
  constexpr int kPlotW = 640, kPlotH = 300, kLeft = 58, kTop = 14, kBottom = 42;
  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min, y_min = 100.0;
  for (const auto& s : series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x_min = std::min(x_min, s.x[i]);
      x_max = std::max(x_max, s.x[i]);
      y_min = std::min(y_min, s.y[i]);
    }
  }
  if (!std::isfinite(x_min)) x_min = 0, x_max = 1;
  if (x_max <= x_min) x_max = x_min + 1;
  const double y_lo = std::clamp(std::floor(y_min / 10.0) * 10.0, 0.0, 90.0), y_hi = 100.0;
  int legend_w = 0;
  for (const auto& s : series) legend_w = std::max(legend_w, 40 + text_width(s.label, kTextScale));
  const int width = kLeft + kPlotW + 16 + legend_w + kMargin;
  cv::Mat img(kTop + kPlotH + kBottom, width, CV_8UC3, kWhite);
  const auto px = [&](double x) { return kLeft + int(std::lround((x - x_min) / (x_max - x_min) * kPlotW)); };
  const auto py = [&](double y) { return kTop + int(std::lround((y_hi - y) / (y_hi - y_lo) * kPlotH)); };
  const double y_step = y_hi - y_lo > 50 ? 20.0 : (y_hi - y_lo > 20 ? 10.0 : 5.0);
  for (double t = y_lo; t <= y_hi + 1e-9; t += y_step) {
    cv::line(img, {kLeft, py(t)}, {kLeft + kPlotW, py(t)}, kGrey, 1);
    const auto label = std::to_string(int(std::lround(t)));
    cv::putText(img, label, {kLeft - 6 - text_width(label, 0.4), py(t) + 4}, kFont, 0.4, kBlack, 1, cv::LINE_AA);
  }
  // x ticks at "nice" frame steps.
  const double span = x_max - x_min;
  double x_step = 1;
  for (const double s : {1.0, 2.0, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0, 200.0, 250.0, 500.0, 1000.0}) {
    x_step = s;
    if (span / s <= 10) break;
  }
  for (double t = std::ceil(x_min / x_step) * x_step; t <= x_max + 1e-9; t += x_step) {
    cv::line(img, {px(t), kTop + kPlotH}, {px(t), kTop + kPlotH + 4}, kBlack, 1);
    const auto label = std::to_string(int64_t(std::lround(t)));
    cv::putText(img, label, {px(t) - text_width(label, 0.4) / 2, kTop + kPlotH + 18}, kFont, 0.4, kBlack, 1,
                cv::LINE_AA);
  }
  cv::putText(img, x_label, {kLeft + kPlotW / 2 - text_width(x_label, kTextScale) / 2, kTop + kPlotH + 36}, kFont,
              kTextScale, kBlack, 1, cv::LINE_AA);
  {  // y axis title, vertical
    const std::string axis = "consistency (%)";
    cv::Mat text(16, text_width(axis, 0.42) + 4, CV_8UC3, kWhite);
    cv::putText(text, axis, {2, 12}, kFont, 0.42, kBlack, 1, cv::LINE_AA);
    cv::Mat rotated;
    cv::rotate(text, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
    rotated.copyTo(img(cv::Rect(2, kTop + std::max(0, (kPlotH - rotated.rows) / 2), rotated.cols,
                                std::min(rotated.rows, kPlotH))));
  }
  cv::rectangle(img, cv::Rect(kLeft, kTop, kPlotW, kPlotH), kBlack, 1);
  const auto draw_segment = [&](cv::Point a, cv::Point b, const cv::Scalar& colour, bool dashed) {
    if (!dashed) {
      cv::line(img, a, b, colour, 2, cv::LINE_AA);
      return;
    }
    const double length = std::hypot(double(b.x - a.x), double(b.y - a.y));
    const int pieces = std::max(1, int(length / 6.0));
    for (int k = 0; k < pieces; k += 2) {
      const double t0 = double(k) / pieces, t1 = std::min(1.0, double(k + 1) / pieces);
      cv::line(img, {int(a.x + t0 * (b.x - a.x)), int(a.y + t0 * (b.y - a.y))},
               {int(a.x + t1 * (b.x - a.x)), int(a.y + t1 * (b.y - a.y))}, colour, 2, cv::LINE_AA);
    }
  };
  for (const auto& s : series) {
    const auto& colour = plot_colours()[size_t(s.colour) % plot_colours().size()];
    for (size_t i = 0; i + 1 < s.x.size(); ++i) {
      if (std::isfinite(s.y[i]) && std::isfinite(s.y[i + 1])) {
        draw_segment({px(s.x[i]), py(s.y[i])}, {px(s.x[i + 1]), py(s.y[i + 1])}, colour, s.dashed);
      }
    }
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (std::isfinite(s.y[i]) && s.x.size() <= 80) cv::circle(img, {px(s.x[i]), py(s.y[i])}, 2, colour, cv::FILLED);
    }
  }
  for (size_t k = 0; k < series.size(); ++k) {
    const int lx = kLeft + kPlotW + 16, ly = kTop + 12 + 22 * int(k);
    const auto& colour = plot_colours()[size_t(series[k].colour) % plot_colours().size()];
    draw_segment({lx, ly - 4}, {lx + 30, ly - 4}, colour, series[k].dashed);
    cv::putText(img, series[k].label, {lx + 36, ly}, kFont, kTextScale, kBlack, 1, cv::LINE_AA);
  }
  write_png(path, titled(img, title));
}

/// One frame shown in the strip: the frame, and per checkpoint its prediction and the previous
/// frame's prediction carried along the flow (255 where not compared).
struct StripFrame {
  int64_t index{0};
  std::string name;
  torch::Tensor image;                   ///< [3, H, W] float RGB in [0, 1]
  std::vector<torch::Tensor> predicted;  ///< per checkpoint, [H, W] int64
  std::vector<torch::Tensor> carried;    ///< per checkpoint, [H, W] int64 (carry_labels)
  std::vector<double> consistency;       ///< per checkpoint, flow_consistency's value (%) for the pair
};

/// The strip: one column per frame; rows: the frame, then per checkpoint its prediction (in
/// `styles[k]`'s colours) and its inconsistency map against the previous frame (white: differs
/// from the previous frame's prediction carried along the flow; black: same; grey: not compared);
/// `title` on top, legends of the classes shown and of the shades below.
inline void write_video_strip(const std::filesystem::path& path, const std::string& title,
                              const std::vector<StripFrame>& frames, const std::vector<std::string>& names,
                              const std::vector<LabelStyle>& styles, int tile_height = 128) {
  if (frames.empty()) return;
  std::vector<std::vector<cv::Mat>> rows;
  {
    std::vector<std::pair<cv::Mat, std::string>> row;
    for (const auto& f : frames) {
      row.emplace_back(drawing::fit_height(image_to_bgr(f.image), tile_height, true),
                       "frame " + std::to_string(f.index) + " (" + f.name + ")");
    }
    rows.push_back(drawing::captioned_row(row));
  }
  bool any_not_compared = false;
  for (size_t k = 0; k < names.size(); ++k) {
    std::vector<std::pair<cv::Mat, std::string>> predictions, maps;
    for (const auto& f : frames) {
      predictions.emplace_back(drawing::fit_height(colorize_labels(f.predicted[k], styles[k].palette), tile_height),
                               names[k] + ": prediction");
      const auto valid = f.carried[k] != 255;
      any_not_compared = any_not_compared || !valid.all().item<bool>();
      char caption[64];
      std::snprintf(caption, sizeof caption, ": %.1f%% consistent", f.consistency[k]);
      maps.emplace_back(drawing::fit_height(inconsistency_image((f.carried[k] != f.predicted[k]) & valid, valid),
                                            tile_height),
                        names[k] + caption);
    }
    rows.push_back(drawing::captioned_row(predictions));
    rows.push_back(drawing::captioned_row(maps));
  }
  const auto body = drawing::grid(rows);
  const int width = std::max(body.cols + 2 * drawing::kMargin, drawing::kMinWidth);
  std::vector<cv::Mat> parts = {drawing::titled(body, title)};
  // One legend of classes per distinct label style (checkpoints of one dataset share it).
  std::vector<std::string> seen;
  for (size_t k = 0; k < names.size(); ++k) {
    const auto key = styles[k].class_names.empty() ? std::string() : styles[k].class_names.front() + "/" +
                                                                         std::to_string(styles[k].class_names.size());
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    std::vector<torch::Tensor> shown;
    for (size_t j = k; j < names.size(); ++j) {
      if (styles[j].class_names == styles[k].class_names) {
        for (const auto& f : frames) shown.push_back(f.predicted[j]);
      }
    }
    std::vector<drawing::LegendEntry> entries;
    for (const int64_t id : classes_present(shown, int64_t(styles[k].palette.size()))) {
      const auto c = class_colour(id, styles[k].palette);
      entries.push_back({cv::Scalar(c[0], c[1], c[2]), id < int64_t(styles[k].class_names.size())
                                                           ? styles[k].class_names[size_t(id)]
                                                           : std::to_string(id)});
    }
    parts.push_back(drawing::legend("Classes predicted:", entries, width));
  }
  std::vector<drawing::LegendEntry> shades = {
      {cv::Scalar::all(kInconsistent), "differs from the previous frame's prediction carried along the flow"},
      {cv::Scalar::all(kConsistent), "same label"}};
  if (any_not_compared) {
    shades.push_back({cv::Scalar::all(kNoCorrespondence), "not compared (left the frame or failed the flow check)"});
  }
  parts.push_back(drawing::legend("Shades:", shades, width));
  drawing::write_png(path, drawing::stack(parts));
}

}  // namespace crossview_programs
