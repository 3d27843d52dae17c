#pragma once
/// \file
/// Command-line options of crossview-train and crossview-eval (CLI11).
///
/// Two sets of defaults: the paper's recipe for real data (Cityscapes / CamVid: SGD momentum 0.9,
/// weight decay 1e-4, lr 0.01 with poly decay 0.9, batch 8, crop 776, 90K iterations, consistency
/// loss on all stage outputs with alpha = 1 after half of the iterations, dilated ResNet-50), and
/// the embedded default for the procedural SyntheticStreet data (a small backbone that trains all
/// four variants on a 2-core CPU within about 15 minutes). A flag given on the command line always
/// wins over both.

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace crossview::train {

/// The rows of the paper's Table 1, in its order.
inline const std::vector<std::string>& all_variants() {
  static const std::vector<std::string> kVariants = {"baseline", "vvd", "vvd+closs", "vvd+ggdc+closs"};
  return kVariants;
}

/// What a variant switches on.
struct VariantSpec {
  std::string name;
  bool vvd_pairs{false};  ///< train on online VVD pairs (cross-entropy on both views)
  bool ggdc{false};       ///< GGDC replaces the 3x3 convolutions chosen by --ggdc-blocks
  bool closs{false};      ///< consistency loss (Eq. 10) on the stage outputs
};

/// \throws std::invalid_argument for a name that is not a row of Table 1.
inline VariantSpec variant_spec(const std::string& name) {
  if (name == "baseline") return {name, false, false, false};
  if (name == "vvd") return {name, true, false, false};
  if (name == "vvd+closs") return {name, true, false, true};
  if (name == "vvd+ggdc+closs") return {name, true, true, true};
  throw std::invalid_argument("variant_spec: variant must be one of baseline, vvd, vvd+closs, vvd+ggdc+closs, got '" +
                              name + "'");
}

/// A file-system friendly name: "vvd+ggdc+closs" -> "vvd_ggdc_closs".
inline std::string variant_slug(std::string name) {
  std::replace(name.begin(), name.end(), '+', '_');
  return name;
}

/// Everything that shapes a model (stored in checkpoints so crossview-eval can rebuild it).
struct ModelOptions {
  int depth{50};                 ///< ResNet depth: 18, 34, 50, 101
  double width{1.0};             ///< width multiplier of the backbone (and the PSP head)
  bool deep_stem{true};          ///< three 3x3 convs instead of the 7x7 stem (ResNetV1c)
  std::string ggdc_blocks{"every"};  ///< where GGDC goes when a variant uses it: every | last
  int64_t num_classes{19};
  std::string pretrained;        ///< torchvision ResNet weights exported from Python (optional)
};

/// The options of one crossview-train run.
struct TrainOptions {
  // data
  std::string dataset{"synthetic"};  ///< synthetic | camvid | cityscapes
  std::string root;                  ///< dataset root for camvid / cityscapes
  std::string vvd_root;              ///< derived VVD evaluation set (crossview-derive-vvd); optional
  double focal{0.0};                 ///< focal length in pixels (0: dataset's own / paper's 2262 * w / 2048)
  double yaw_deg{30.0}, pitch_deg{15.0}, roll_deg{3.0};  ///< VVD sampling ranges (paper Sec. 3.1)
  int64_t synthetic_train_images{0};  ///< synthetic: size of the rendered training pool
  int64_t eval_images{0};             ///< evaluation images (0: the whole split)
  int64_t eval_height{0}, eval_width{0};  ///< synthetic: evaluation image size
  // model
  ModelOptions model;
  // optimisation (paper recipe by default)
  int64_t iterations{90000};
  int64_t batch{8};
  int64_t crop{776};
  double scale_min{0.5}, scale_max{2.0};  ///< random rescaling of training images (PSPNet's)
  double lr{0.01};
  double poly_power{0.9};
  double momentum{0.9};
  double weight_decay{1e-4};
  double aux_weight{0.4};
  double closs_alpha{1.0};
  double closs_start{0.5};  ///< fraction of the iterations after which the consistency loss is on
  std::string closs_layers{"all"};  ///< all | last: stage outputs the consistency loss compares
  // run
  std::vector<std::string> variants{all_variants()};
  uint64_t seed{1};
  std::string device{"cpu"};
  int threads{0};
  std::string out{"crossview-out"};
  int64_t checkpoint_every{1000};
  bool resume{false};
  int64_t stop_after{0};  ///< hidden: exit abruptly after this many iterations (tests the resume path)
  int64_t figure_samples{4};
  bool quiet{false};
};

namespace detail {

/// Applies `value` to an option unless the user gave it on the command line.
struct PresetEntry {
  const char* flag;
  std::function<void(TrainOptions&)> apply;
};

/// The embedded default: SyntheticStreet, a small backbone, CPU-sized.
inline std::vector<PresetEntry> synthetic_preset() {
  return {
      {"--iterations", [](TrainOptions& o) { o.iterations = 1000; }},
      {"--batch", [](TrainOptions& o) { o.batch = 8; }},
      {"--crop", [](TrainOptions& o) { o.crop = 96; }},
      {"--lr", [](TrainOptions& o) { o.lr = 0.02; }},
      {"--scale-min", [](TrainOptions& o) { o.scale_min = 1.0; }},
      {"--scale-max", [](TrainOptions& o) { o.scale_max = 1.0; }},
      {"--depth", [](TrainOptions& o) { o.model.depth = 18; }},
      {"--width", [](TrainOptions& o) { o.model.width = 0.25; }},
      {"--deep-stem", [](TrainOptions& o) { o.model.deep_stem = false; }},
      {"--checkpoint-every", [](TrainOptions& o) { o.checkpoint_every = 100; }},
      {"--train-images", [](TrainOptions& o) { o.synthetic_train_images = 160; }},
      {"--eval-images", [](TrainOptions& o) { o.eval_images = 48; }},
      {"--eval-height", [](TrainOptions& o) { o.eval_height = 128; }},
      {"--eval-width", [](TrainOptions& o) { o.eval_width = 256; }},
  };
}

}  // namespace detail

/// Registers the dataset flags (shared by crossview-train and crossview-eval), bound to `o`.
inline void add_data_options(CLI::App& app, TrainOptions& o) {
  app.add_option("--dataset", o.dataset, "synthetic (embedded default, no download) | camvid | cityscapes")
      ->check(CLI::IsMember({"synthetic", "camvid", "cityscapes"}))
      ->capture_default_str();
  app.add_option("--root", o.root, "dataset root (camvid: SegNet layout; cityscapes: official layout)");
  app.add_option("--vvd-root", o.vvd_root,
                 "derived VVD evaluation set written by crossview-derive-vvd (default: derive in memory)");
  app.add_option("--focal", o.focal,
                 "focal length in pixels of the training images (0: 2262 * width / 2048, the paper's Cityscapes "
                 "value; CamVid ships none)")
      ->capture_default_str();
  app.add_option("--yaw", o.yaw_deg, "VVD yaw half-range, degrees")->capture_default_str();
  app.add_option("--pitch", o.pitch_deg, "VVD pitch half-range, degrees")->capture_default_str();
  app.add_option("--roll", o.roll_deg, "VVD roll half-range, degrees")->capture_default_str();
  app.add_option("--train-images", o.synthetic_train_images, "synthetic: rendered training images (default 160)");
  app.add_option("--eval-images", o.eval_images, "evaluation images, 0 = the whole split (synthetic default 48)");
  app.add_option("--eval-height", o.eval_height, "synthetic: evaluation image height (default 128)");
  app.add_option("--eval-width", o.eval_width, "synthetic: evaluation image width (default 256)");
}

/// Registers the model and training flags, bound to `o`.
inline void add_train_options(CLI::App& app, TrainOptions& o) {
  app.add_option("--depth", o.model.depth, "ResNet depth (paper 50; synthetic default 18)")
      ->check(CLI::IsMember({18, 34, 50, 101}))
      ->capture_default_str();
  app.add_option("--width", o.model.width, "backbone width multiplier (paper 1; synthetic default 0.25)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--deep-stem", o.model.deep_stem, "deep 3x3 stem (paper true; synthetic default false)")
      ->capture_default_str();
  app.add_option("--ggdc-blocks", o.model.ggdc_blocks,
                 "where GGDC replaces the 3x3 conv in the +ggdc variant: every (the paper: every residual block) "
                 "| last (last block of each stage)")
      ->check(CLI::IsMember({"every", "last"}))
      ->capture_default_str();
  app.add_option("--pretrained", o.model.pretrained, "torchvision ResNet weights exported from Python");

  app.add_option("--iterations", o.iterations, "training iterations (paper 90000; synthetic default 1000)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--batch", o.batch,
                 "images per iteration (paper 8; VVD variants use batch/2 pairs, so every variant sees the same "
                 "number of images)")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--crop", o.crop, "square training crop (paper 776; synthetic default 96)")
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 16))
      ->capture_default_str();
  app.add_option("--scale-min", o.scale_min, "random rescaling of training images, lower end (synthetic default 1)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--scale-max", o.scale_max, "random rescaling of training images, upper end (synthetic default 1)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--lr", o.lr, "base learning rate (paper 0.01; synthetic default 0.02)")->capture_default_str();
  app.add_option("--poly-power", o.poly_power, "poly decay power")->capture_default_str();
  app.add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay, "SGD weight decay")->capture_default_str();
  app.add_option("--aux-weight", o.aux_weight, "auxiliary FCN head loss weight")->capture_default_str();
  app.add_option("--closs-alpha", o.closs_alpha, "consistency loss weight alpha (Eq. 11)")->capture_default_str();
  app.add_option("--closs-start", o.closs_start,
                 "fraction of the iterations after which the consistency loss is switched on (paper 0.5)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--closs-layers", o.closs_layers, "stage outputs the consistency loss compares: all | last")
      ->check(CLI::IsMember({"all", "last"}))
      ->capture_default_str();

  app.add_option("--variants", o.variants, "Table 1 rows to train: baseline vvd vvd+closs vvd+ggdc+closs")
      ->check(CLI::IsMember(all_variants()))
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of every variant (data order, initialisation)")->capture_default_str();
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "iterations between checkpoints (paper-scale default 1000; synthetic default 100)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--resume", o.resume, "continue from the checkpoints in --out (finished variants are not retrained)");
  // Hidden (empty group): ends the process abruptly after N iterations of the first variant it
  // trains, without any clean-up, as a kill would; the resume test uses it.
  app.add_option("--stop-after", o.stop_after, "exit abruptly after N iterations")->group("");
}

/// Registers the run flags (device, threads, output folder, figures), bound to `o`.
inline void add_run_options(CLI::App& app, TrainOptions& o) {
  app.add_option("--device", o.device, "cpu | cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0: all cores)")->capture_default_str();
  app.add_option("--out", o.out, "output folder (results.json, logs, checkpoints, figures)")->capture_default_str();
  app.add_option("--figure-samples", o.figure_samples, "evaluation samples shown in the figures")
      ->capture_default_str();
  app.add_flag("--quiet", o.quiet, "no progress bars");
}

/// After parsing: fills in the dataset's defaults for every flag not given, and checks the rest.
inline void finalize_train_options(const CLI::App& app, TrainOptions& o) {
  if (o.dataset == "synthetic") {
    for (const auto& entry : detail::synthetic_preset()) {
      const auto* option = app.get_option_no_throw(entry.flag);
      if (option == nullptr || option->count() == 0) entry.apply(o);
    }
  } else if (o.root.empty()) {
    throw CLI::ValidationError("--root", "--dataset " + o.dataset + " needs --root DIR");
  }
  if (o.threads <= 0) o.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  if (o.variants.empty()) throw CLI::ValidationError("--variants", "give at least one variant");
  // Keep Table 1's order whatever order the user typed.
  std::vector<std::string> ordered;
  for (const auto& v : all_variants()) {
    if (std::find(o.variants.begin(), o.variants.end(), v) != o.variants.end()) ordered.push_back(v);
  }
  o.variants = ordered;
}

}  // namespace crossview::train
