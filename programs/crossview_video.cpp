// crossview-video: video consistency of trained checkpoints (paper Sec. 4.4, Fig. 7). For every
// pair of consecutive frames, the share of pixels whose predicted label equals the previous
// frame's prediction at the pixel the optical flow joins them to, occluded pixels left out
// (crossview::flow_consistency with a forward-backward check). Frames come from a folder of
// images, a video file (OpenCV's VideoCapture) or, by default, crossview::SyntheticVideo: a
// SyntheticStreet camera panning and tilting, whose exact flow checks DIS optical flow.
//
//   crossview-video --checkpoint crossview-out/baseline/model.pt --checkpoint crossview-out/vvd_ggdc_closs/model.pt
//   crossview-video --checkpoint model.pt --frames ../shared/data/camvid/test --match Seq05VD_ --out video-camvid
//   crossview-video --checkpoint model.pt --video drive.mp4 --max-frames 160 --width 512 --height 256
//
// Writes OUT/consistency.csv (one row per checkpoint, frame pair and flow), OUT/flow.csv (the
// flows' coverage and, on synthetic frames, DIS's end-point error), OUT/video.json (summaries),
// OUT/fig7_consistency.png (consistency per frame) and OUT/fig_video_strip.png (frames,
// predictions, inconsistency maps).

// evaluate.hpp uses crossview::normalize_imagenet without including its header (transforms.hpp).
#include <crossview/data/transforms.hpp>
#include <crossview_programs/evaluate.hpp>
#include <crossview_programs/progress.hpp>
#include <crossview_programs/threads.hpp>
#include <crossview_programs/trained_network.hpp>
#include <crossview_programs/video.hpp>

#include <crossview/data/classes.hpp>
#include <crossview/data/synthetic_video.hpp>
#include <crossview/metrics/confusion_matrix.hpp>
#include <crossview/metrics/flow_consistency.hpp>

#include <CLI/CLI.hpp>
#include <stdlib.h>
#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cp = crossview_programs;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kDefaultSyntheticFrames = 48;
constexpr int64_t kSyntheticHeight = 128, kSyntheticWidth = 256;  // the embedded default's evaluation size

struct Options {
  std::vector<std::string> checkpoints;
  std::string frames, video, match;
  int64_t synthetic{0};
  int64_t max_frames{0};
  int64_t height{0}, width{0};
  double focal{0};
  uint64_t seed{0};
  std::string flow;  // exact | dis; empty: exact on synthetic frames, dis otherwise
  std::string dis_preset{"medium"};
  double fb_alpha{0.01}, fb_beta{0.5};
  int64_t strip_frames{4};
  std::string out{"crossview-video-out"};
  std::string device{"cpu"};
  int threads{0};
  bool force{false}, quiet{false};
};

/// A loaded checkpoint and what is accumulated for it.
struct Model {
  std::string path, name;
  std::string model;  // the network: pspnet | deeplabv3 | ccnet
  cp::TrainedNetwork loaded;
  cp::LabelStyle style;
  std::string dataset;
  torch::Tensor previous;  // prediction of the previous frame
  // per flow ("exact", "dis"): per-pair consistency (%) and the pooled matrix
  std::map<std::string, std::vector<double>> per_pair;
  std::map<std::string, crossview::ConfusionMatrix> pooled;
};

/// The one-line message of an exception from libtorch (no backtrace).
std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::unique_ptr<cp::FrameSource> open_source(const Options& o) {
  const cv::Size size = o.width > 0 ? cv::Size(int(o.width), int(o.height)) : cv::Size();
  if (!o.frames.empty()) return std::make_unique<cp::FolderFrames>(o.frames, o.match, o.max_frames, size);
  if (!o.video.empty()) return std::make_unique<cp::VideoFileFrames>(o.video, o.max_frames, size);
  auto video = crossview::SyntheticVideoOptions()
                   .frames(o.synthetic)
                   .seed(o.seed)
                   .height(o.height > 0 ? o.height : kSyntheticHeight)
                   .width(o.width > 0 ? o.width : kSyntheticWidth)
                   .focal(o.focal);
  return std::make_unique<cp::SyntheticFrames>(video);
}

int run(Options o) {
  o.threads = cp::set_cpu_threads(o.threads);
  cv::setNumThreads(o.threads);
  if (o.device == "cuda" && !torch::cuda::is_available()) {
    throw std::runtime_error("--device cuda: no CUDA device is available");
  }
  const torch::Device device(o.device == "cuda" ? torch::kCUDA : torch::kCPU);
  const bool synthetic = o.frames.empty() && o.video.empty();
  if (synthetic && o.synthetic == 0) o.synthetic = kDefaultSyntheticFrames;
  if (o.flow.empty()) o.flow = synthetic ? "exact" : "dis";
  if (o.flow == "exact" && !synthetic) {
    throw std::runtime_error("--flow exact: only synthetic frames (--synthetic) have an exact flow; use --flow dis");
  }
  const int preset = cp::dis_preset(o.dis_preset);
  const fs::path out(o.out);
  if (fs::exists(out / "video.json") && !o.force) {
    throw std::runtime_error("--out " + o.out + " holds the results of an earlier run (video.json); give another --out "
                             "or --force to overwrite them");
  }

  std::vector<Model> models;
  for (const auto& path : o.checkpoints) {
    Model m;
    m.path = path;
    try {
      m.loaded = cp::load_trained_network(path, device);
    } catch (const c10::Error& e) {
      throw std::runtime_error("--checkpoint " + path + ": not a readable crossview-train checkpoint (" +
                               first_line(e.what_without_backtrace()) + ")");
    } catch (const std::exception& e) {
      throw std::runtime_error("--checkpoint " + path + ": " + first_line(e.what()));
    }
    m.loaded.network->eval();
    m.dataset = m.loaded.config.value("data", nlohmann::json::object()).value("dataset", std::string("synthetic"));
    m.style = {crossview::class_names_for(m.dataset), crossview::palette_for(m.dataset)};
    m.name = m.loaded.variant;
    m.model = m.loaded.config.value("model", nlohmann::json::object()).value("name", std::string("pspnet"));
    models.push_back(std::move(m));
  }
  // Checkpoints of several networks are named by network and variant ("CCNet baseline").
  const bool several_models = std::any_of(models.begin(), models.end(),
                                          [&](const Model& m) { return m.model != models.front().model; });
  if (several_models) {
    for (auto& m : models) m.name = cp::model_title(m.model) + " " + m.name;
  }
  for (size_t k = 0; k < models.size(); ++k) {  // names that are still the same get their number
    int same = 0;
    for (const auto& m : models) same += m.loaded.variant == models[k].loaded.variant && m.model == models[k].model;
    if (same > 1) models[k].name += " #" + std::to_string(k + 1);
  }

  auto source = open_source(o);
  if (auto* folder = dynamic_cast<cp::FolderFrames*>(source.get())) {
    const auto sequences = cp::sequence_names(folder->files());
    if (sequences.size() > 1) {
      std::string list;
      for (const auto& s : sequences) list += (list.empty() ? "" : ", ") + s;
      std::fprintf(stderr,
                   "crossview-video: warning: the frames come from %zu sequences by their names (%s); pairs across "
                   "a change of sequence compare different scenes. Pick one with --match PREFIX.\n",
                   sequences.size(), list.c_str());
    }
  }
  auto* synthetic_source = dynamic_cast<cp::SyntheticFrames*>(source.get());
  std::vector<std::string> flows = {o.flow};
  if (synthetic) flows = {o.flow, o.flow == "exact" ? "dis" : "exact"};
  for (auto& m : models) {
    for (const auto& f : flows) m.pooled.emplace(f, crossview::ConfusionMatrix(m.loaded.num_classes, 255));
  }
  const crossview::FlowConsistencyOptions fb_defaults = crossview::FlowConsistencyOptions().fb_alpha(o.fb_alpha).fb_beta(o.fb_beta);

  // Frames shown in the strip: strip_frames pair indices spread over the sequence.
  const int64_t expected = source->size();
  std::vector<int64_t> strip_at;
  if (o.strip_frames > 0 && expected >= 2) {
    const int64_t n = std::min(o.strip_frames, expected - 1);
    for (int64_t k = 0; k < n; ++k) {
      strip_at.push_back(1 + (n == 1 ? 0 : int64_t(std::llround(double(k) * double(expected - 2) / double(n - 1)))));
    }
  }

  fs::create_directories(out);
  std::ofstream csv(out / "consistency.csv"), flow_csv(out / "flow.csv");
  if (!csv || !flow_csv) throw std::runtime_error("--out " + o.out + ": cannot write consistency.csv / flow.csv there");
  csv << "checkpoint,name,frame,frame_a,frame_b,flow,consistency,counted_pixels,frame_pixels\n";
  flow_csv << "frame,frame_a,frame_b,flow,coverage,mean_magnitude,epe_mean,epe_median,epe_over_1px,gt_consistency\n";
  // Per flow: coverage, DIS's end-point error and (synthetic) the consistency of the ground-truth labels.
  std::map<std::string, std::vector<double>> coverage, epe_mean, epe_median, epe_over, gt_consistency;
  torch::Tensor previous_truth;

  cp::ProgressBar bar("frames", expected, 0, !o.quiet);
  bar.unit("frame");
  std::vector<cp::StripFrame> strip;
  std::optional<cp::VideoFrame> previous;
  int64_t index = 0, height = 0, width = 0;
  std::vector<int64_t> pair_index;
  while (auto frame = source->next()) {
    if (index == 0) {
      height = frame->image.size(1);
      width = frame->image.size(2);
    }
    std::vector<torch::Tensor> predictions;
    for (auto& m : models) predictions.push_back(cp::predict(m.loaded.network, frame->image, device));
    if (previous) {
      pair_index.push_back(index);
      // Flows from this frame (b) to the previous one (a).
      std::map<std::string, torch::Tensor> flow_b_a;
      std::map<std::string, crossview::FlowConsistencyOptions> options;
      torch::Tensor exact_valid;
      for (const auto& f : flows) {
        if (f == "exact") {
          const auto exact = synthetic_source->video().flow(index, index - 1);
          flow_b_a[f] = exact.flow;
          exact_valid = exact.valid;
          options[f] = crossview::FlowConsistencyOptions();  // no occlusion but the frame's edge
        } else {
          flow_b_a[f] = cp::dis_flow(frame->grey, previous->grey, preset);
          options[f] = fb_defaults;
          options[f].flow_a_b(cp::dis_flow(previous->grey, frame->grey, preset));
        }
      }
      for (const auto& f : flows) {
        const double cover = cp::flow_coverage(flow_b_a[f], options[f]);
        const auto& fl = flow_b_a[f];
        const double magnitude = (fl[0] * fl[0] + fl[1] * fl[1]).sqrt().nan_to_num(0).mean().item<double>();
        cp::EndPointError epe;
        if (f == "dis" && exact_valid.defined()) epe = cp::end_point_error(fl, flow_b_a["exact"], exact_valid);
        double truth = std::nan("");
        if (synthetic_source != nullptr) {
          crossview::ConfusionMatrix gt(crossview::kCityscapesNumClasses, 255);
          if (crossview::flow_consistency(previous_truth, synthetic_source->labels(), fl, gt, options[f]) > 0) {
            truth = 100.0 * gt.pixel_accuracy();
          }
        }
        gt_consistency[f].push_back(truth);
        coverage[f].push_back(cover);
        epe_mean[f].push_back(epe.mean);
        epe_median[f].push_back(epe.median);
        epe_over[f].push_back(epe.over_1px);
        flow_csv << index << "," << cp::csv_cell(previous->name) << "," << cp::csv_cell(frame->name) << "," << f << ","
                 << cp::csv_number(cover, 3) << "," << cp::csv_number(magnitude, 3) << "," << cp::csv_number(epe.mean)
                 << "," << cp::csv_number(epe.median) << "," << cp::csv_number(epe.over_1px, 3) << ","
                 << cp::csv_number(truth) << "\n";
      }
      const bool shown = std::find(strip_at.begin(), strip_at.end(), index) != strip_at.end();
      cp::StripFrame strip_frame{index, frame->name, frame->image, {}, {}, {}};
      for (size_t k = 0; k < models.size(); ++k) {
        auto& m = models[k];
        for (const auto& f : flows) {
          crossview::ConfusionMatrix pair(m.loaded.num_classes, 255);
          const int64_t counted = crossview::flow_consistency(m.previous, predictions[k], flow_b_a[f], pair, options[f]);
          const double consistency = counted > 0 ? 100.0 * pair.pixel_accuracy() : std::nan("");
          m.per_pair[f].push_back(consistency);
          m.pooled.at(f).merge(pair);
          csv << (k + 1) << "," << cp::csv_cell(m.name) << "," << index << "," << cp::csv_cell(previous->name) << ","
              << cp::csv_cell(frame->name) << "," << f << "," << cp::csv_number(consistency) << "," << counted << ","
              << height * width << "\n";
          if (shown && f == o.flow) {
            strip_frame.predicted.push_back(predictions[k]);
            strip_frame.carried.push_back(cp::carry_labels(m.previous, flow_b_a[f], options[f]));
            strip_frame.consistency.push_back(consistency);
          }
        }
      }
      if (shown) strip.push_back(strip_frame);
    }
    for (size_t k = 0; k < models.size(); ++k) models[k].previous = predictions[k];
    previous = std::move(frame);
    if (synthetic_source != nullptr) previous_truth = synthetic_source->labels();
    ++index;
    bar.update(index);
  }
  csv.flush();
  flow_csv.flush();
  if (index < 2) {
    throw std::runtime_error(std::string(o.video.empty() ? "the frame source" : "--video " + o.video) + " gave " +
                             std::to_string(index) + " frame(s); at least 2 are needed");
  }

  // ---- summaries: JSON, stdout table --------------------------------------------------------------
  nlohmann::json flow_json = {{"used", o.flow},
                              {"computed", flows},
                              {"dis_preset", o.dis_preset},
                              {"forward_backward", {{"fb_alpha", o.fb_alpha}, {"fb_beta", o.fb_beta}, {"applies_to", "dis"}}},
                              {"per_flow", nlohmann::json::object()}};
  for (const auto& f : flows) {
    nlohmann::json entry = {{"coverage", cp::to_json(cp::summarize(coverage[f]))}};
    if (synthetic) entry["ground_truth_consistency"] = cp::to_json(cp::summarize(gt_consistency[f]));
    if (f == "dis" && synthetic) {
      entry["epe_mean"] = cp::to_json(cp::summarize(epe_mean[f]));
      entry["epe_median"] = cp::to_json(cp::summarize(epe_median[f]));
      entry["epe_over_1px"] = cp::to_json(cp::summarize(epe_over[f]));
    }
    flow_json["per_flow"][f] = entry;
  }
  nlohmann::json checkpoints = nlohmann::json::array();
  std::printf("Video consistency (%%, per frame pair; flow %s) on %s, %lld frames of %lldx%lld\n", o.flow.c_str(),
              source->describe().at("kind").get<std::string>().c_str(), (long long)index, (long long)width,
              (long long)height);
  std::printf("%-24s | %7s | %6s | %7s | %7s", "checkpoint", "mean", "sd", "min", "pooled");
  if (synthetic) std::printf(" | %s mean | |dis-exact|", flows[1].c_str());
  std::printf("\n");
  for (const auto& m : models) {
    nlohmann::json entry = {{"path", m.path},
                            {"name", m.name},
                            {"variant", m.loaded.variant},
                            {"iterations", m.loaded.iterations},
                            {"dataset", m.dataset},
                            {"num_classes", m.loaded.num_classes}};
    for (const auto& f : flows) {
      auto s = cp::to_json(cp::summarize(m.per_pair.at(f)));
      s["pooled"] = cp::json_number(100.0 * m.pooled.at(f).pixel_accuracy());
      s["miou"] = cp::json_number(100.0 * m.pooled.at(f).mean_iou());
      entry["consistency"][f] = s;
    }
    const auto primary = cp::summarize(m.per_pair.at(o.flow));
    std::printf("%-24s | %7.2f | %6.2f | %7.2f | %7.2f", m.name.c_str(), primary.mean, primary.sd, primary.min,
                100.0 * m.pooled.at(o.flow).pixel_accuracy());
    if (synthetic) {
      std::vector<double> diff;
      const auto& dis = m.per_pair.at("dis");
      const auto& exact = m.per_pair.at("exact");
      for (size_t i = 0; i < dis.size(); ++i) diff.push_back(dis[i] - exact[i]);
      std::vector<double> abs_diff;
      for (const double d : diff) abs_diff.push_back(std::abs(d));
      const auto signed_summary = cp::summarize(diff), abs_summary = cp::summarize(abs_diff);
      entry["dis_minus_exact"] = {{"mean", cp::json_number(signed_summary.mean)},
                                  {"mean_abs", cp::json_number(abs_summary.mean)},
                                  {"max_abs", cp::json_number(abs_summary.max)}};
      std::printf(" | %8.2f | %10.2f", cp::summarize(m.per_pair.at(flows[1])).mean, abs_summary.mean);
    }
    std::printf("\n");
    checkpoints.push_back(entry);
  }
  if (synthetic) {
    std::printf("DIS (%s) against the exact flow: end-point error %.3f px mean, %.3f px median; %.2f %% of pixels "
                "off by more than 1 px\n",
                o.dis_preset.c_str(), cp::summarize(epe_mean["dis"]).mean, cp::summarize(epe_median["dis"]).mean,
                cp::summarize(epe_over["dis"]).mean);
    std::printf("Ground-truth labels under the same measure (its ceiling; class edges cost the nearest-pixel "
                "sampling a little): %.2f %% with the exact flow, %.2f %% with DIS\n",
                cp::summarize(gt_consistency["exact"]).mean, cp::summarize(gt_consistency["dis"]).mean);
  }
  if (std::find(flows.begin(), flows.end(), "dis") != flows.end()) {
    const auto c = cp::summarize(coverage["dis"]);
    std::printf("DIS flow covers %.1f %% of the pixels on average (min %.1f %%): the rest leave the frame or fail "
                "the forward-backward check\n",
                c.mean, c.min);
  }
  nlohmann::json summary = {{"program", "crossview-video"},
                            {"source", source->describe()},
                            {"frames", index},
                            {"pairs", index - 1},
                            {"height", height},
                            {"width", width},
                            {"flow", flow_json},
                            {"checkpoints", checkpoints},
                            {"metric", "per frame pair: % of frame b's compared pixels whose predicted label equals "
                                       "frame a's prediction at the nearest pixel to p + flow_b_a(p) "
                                       "(crossview::flow_consistency); mean/sd/min over pairs, pooled over pixels"}};
  {
    std::ofstream json(out / "video.json");
    json << summary.dump(2) << "\n";
    if (!json) throw std::runtime_error("--out " + o.out + ": cannot write video.json");
  }

  // ---- figures -------------------------------------------------------------------------------------
  const auto kind = source->describe().at("kind").get<std::string>();
  const std::string what = kind == "synthetic" ? "SyntheticStreet, panning camera"
                                               : (kind == "video" ? "video " + o.video : "frames of " + o.frames +
                                                                                              (o.match.empty() ? "" : " (" + o.match + "*)"));
  const std::string flow_words = o.flow == "exact" ? "exact flow (rotation homography)"
                                                   : "DIS optical flow (" + o.dis_preset +
                                                         ") with a forward-backward check";
  std::vector<cp::PlotSeries> series;
  for (size_t k = 0; k < models.size(); ++k) {
    for (size_t fi = 0; fi < flows.size(); ++fi) {
      const auto s = cp::summarize(models[k].per_pair.at(flows[fi]));
      char label[160];
      std::snprintf(label, sizeof label, "%s%s (mean %.1f%%)", models[k].name.c_str(),
                    flows.size() > 1 ? (", " + flows[fi]).c_str() : "", s.mean);
      std::vector<double> x(pair_index.begin(), pair_index.end());
      series.push_back({label, x, models[k].per_pair.at(flows[fi]), int(k), fi > 0});
    }
  }
  std::string sources;
  for (const auto& m : models) sources += (sources.empty() ? "" : ", ") + m.path;
  cp::write_consistency_plot(out / "fig7_consistency.png",
                             "Fig. 7 - Video consistency per frame, " + what + " (" + std::to_string(index) +
                                 " frames)\nEach point: share of a frame's pixels whose prediction equals the previous "
                                 "frame's at the pixel the " + flow_words +
                                 " joins them to" + (flows.size() > 1 ? " (solid; dashed: " + flows[1] + " flow)" : "") +
                                 ".\nCheckpoints: " + sources + ".",
                             series, "frame (pair with the previous frame)");
  std::vector<std::string> names;
  std::vector<cp::LabelStyle> styles;
  for (const auto& m : models) names.push_back(m.name), styles.push_back(m.style);
  cp::write_video_strip(out / "fig_video_strip.png",
                        "Video frames, predictions and inconsistency maps, " + what + "\nInconsistency against the "
                        "previous frame along the " + flow_words + "; the caption gives the pair's consistency.",
                        strip, names, styles);
  std::printf("wrote %s/consistency.csv, flow.csv, video.json, fig7_consistency.png, fig_video_strip.png\n",
              o.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // FFmpeg's own log lines ("moov atom not found") would come before our one-line error about an
  // unreadable --video; quiet unless the user asked for a level.
  ::setenv("OPENCV_FFMPEG_LOGLEVEL", "-8", /*overwrite=*/0);
  CLI::App app{
      "crossview-video: per-frame video consistency of trained crossview-train checkpoints (paper Sec. 4.4, Fig. 7).\n"
      "For each pair of consecutive frames: the share (%) of the pixels compared whose predicted label equals the\n"
      "previous frame's prediction at the pixel the optical flow joins them to; pixels that leave the frame or fail\n"
      "the forward-backward flow check are not compared. Frames: --frames DIR, --video FILE, or --synthetic N (the\n"
      "default: a SyntheticStreet camera panning and tilting, with exact flow; DIS is then measured against it).\n"
      "Writes OUT/consistency.csv, flow.csv, video.json, fig7_consistency.png and fig_video_strip.png."};
  Options o;
  app.add_option("--checkpoint", o.checkpoints, "model.pt or checkpoint.pt written by crossview-train (repeatable)")
      ->required()
      ->check(CLI::ExistingFile);
  auto* frames = app.add_option("--frames", o.frames, "folder of frame images (.png, .jpg, ...), taken in name order");
  auto* video = app.add_option("--video", o.video, "video file read with OpenCV's VideoCapture");
  auto* synthetic = app.add_option("--synthetic", o.synthetic,
                                   "number of synthetic frames (default when no --frames/--video: " +
                                       std::to_string(kDefaultSyntheticFrames) + ")")
                        ->check(CLI::Range(int64_t(2), int64_t(100000)));
  frames->excludes(video)->excludes(synthetic);
  video->excludes(synthetic);
  app.add_option("--match", o.match, "--frames: only files whose names start with this (e.g. Seq05VD_)")
      ->needs(frames);
  app.add_option("--max-frames", o.max_frames, "--frames/--video: use at most this many frames (0: all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--flow", o.flow, "exact (synthetic frames only; their default) | dis (DIS optical flow; default otherwise)")
      ->check(CLI::IsMember({"exact", "dis"}));
  app.add_option("--dis-preset", o.dis_preset, "DIS optical flow preset: ultrafast | fast | medium")
      ->check(CLI::IsMember({"ultrafast", "fast", "medium"}))
      ->capture_default_str();
  app.add_option("--fb-alpha", o.fb_alpha, "forward-backward check, relative term: |f+g|^2 > alpha(|f|^2+|g|^2) + beta drops a pixel")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--fb-beta", o.fb_beta, "forward-backward check, absolute term in px^2")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  auto* height = app.add_option("--height", o.height, "frame height: synthetic render size (default 128), or resize real frames")
                     ->check(CLI::PositiveNumber);
  auto* width = app.add_option("--width", o.width, "frame width: synthetic render size (default 256), or resize real frames")
                    ->check(CLI::PositiveNumber);
  height->needs(width);
  width->needs(height);
  app.add_option("--focal", o.focal, "synthetic: focal length in px (default 2262 * width / 2048)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", o.seed, "synthetic: scene seed")->capture_default_str();
  app.add_option("--strip-frames", o.strip_frames, "frames shown in fig_video_strip.png")
      ->check(CLI::Range(int64_t(0), int64_t(12)))
      ->capture_default_str();
  app.add_option("--out", o.out, "output folder")->capture_default_str();
  app.add_flag("--force", o.force, "overwrite the results of an earlier run in --out");
  app.add_option("--device", o.device, "cpu | cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads for libtorch and OpenCV (0: all cores)")->capture_default_str();
  app.add_flag("--quiet", o.quiet, "no progress bar");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run(o);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "crossview-video: error: %s\n", first_line(e.what_without_backtrace()).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crossview-video: error: %s\n", e.what());
    return 1;
  }
}
