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

#include <crossview_programs/cli_errors.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace crossview_programs {

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

/// The segmentation networks crossview-train builds (--model), in the paper's order: PSPNet (Table 1,
/// 4), DeepLabV3 and CCNet (Table 3). All three sit on the same dilated ResNet with the same GGDC
/// placement and consistency-loss taps.
inline const std::vector<std::string>& all_models() {
  static const std::vector<std::string> kModels = {"pspnet", "deeplabv3", "ccnet"};
  return kModels;
}

/// A model's name in titles: "PSPNet", "DeepLabV3", "CCNet"; others as given.
inline std::string model_title(const std::string& name) {
  if (name == "pspnet") return "PSPNet";
  if (name == "deeplabv3") return "DeepLabV3";
  if (name == "ccnet") return "CCNet";
  return name;
}

/// A file-system friendly name: "vvd+ggdc+closs" -> "vvd_ggdc_closs".
inline std::string variant_slug(std::string name) {
  std::replace(name.begin(), name.end(), '+', '_');
  return name;
}

/// Everything that shapes a model (stored in checkpoints so crossview-eval can rebuild it).
struct ModelOptions {
  std::string name{"pspnet"};    ///< the network: pspnet | deeplabv3 | ccnet (all_models)
  int depth{50};                 ///< ResNet depth: 18, 34, 50, 101
  double width{1.0};             ///< width multiplier of the backbone (and the head)
  bool deep_stem{true};          ///< three 3x3 convs instead of the 7x7 stem (ResNetV1c)
  bool ggdc{false};              ///< GGDC in the residual blocks (set per variant, see model_options)
  std::string ggdc_blocks{"every"};    ///< where GGDC goes: every | last (block of each stage)
  std::string ggdc_gradient{"sobel"};  ///< GGDC's gradient operator: sobel (the paper) | scharr | central
  int64_t ggdc_head_channels{0};       ///< hidden width of GGDC's offset head (0: one conv, the paper)
  std::string pretrained;        ///< torchvision ResNet weights exported from Python (optional)
  bool sync_bn{false};           ///< SyncBatchNorm over the run's processes instead of BatchNorm2d (--sync-bn)
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
  std::string eval_split{"test"};     ///< test (report) | val (choose settings; never tune on test)
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
  std::string closs_layers{"blocks"};  ///< blocks (every residual block, the paper) | stages | last
  double warmup{0.0};          ///< fraction of the iterations trained once, shared by every variant (synthetic 0.5)
  double offset_lr_mult{0.1};  ///< learning-rate multiplier of GGDC's offset heads
  // run
  std::vector<std::string> variants{all_variants()};
  uint64_t seed{1};
  std::string seeds;  ///< paired multi-seed study: "A-B" or "a,b,c" (empty: one run with `seed`)
  std::string device{"cpu"};
  int threads{0};
  std::string out{"crossview-out"};
  int64_t checkpoint_every{1000};
  bool resume{false};
  int64_t stop_after{0};  ///< hidden: exit abruptly after this many iterations (tests the resume path)
  int64_t figure_samples{4};
  bool quiet{false};
};

/// Applies `value` to an option unless the user gave it on the command line.
struct PresetEntry {
  const char* flag;
  std::function<void(TrainOptions&)> apply;
};

/// The embedded default: SyntheticStreet, a small backbone, CPU-sized.
inline std::vector<PresetEntry> synthetic_preset() {
  return {
      {"--iterations", [](TrainOptions& o) { o.iterations = 1600; }},
      {"--batch", [](TrainOptions& o) { o.batch = 8; }},
      {"--crop", [](TrainOptions& o) { o.crop = 96; }},
      {"--lr", [](TrainOptions& o) { o.lr = 0.05; }},  // chosen on the validation scenes (README)
      {"--scale-min", [](TrainOptions& o) { o.scale_min = 1.0; }},
      {"--scale-max", [](TrainOptions& o) { o.scale_max = 1.0; }},
      {"--depth", [](TrainOptions& o) { o.model.depth = 18; }},
      {"--width", [](TrainOptions& o) { o.model.width = 0.25; }},
      {"--deep-stem", [](TrainOptions& o) { o.model.deep_stem = false; }},
      {"--checkpoint-every", [](TrainOptions& o) { o.checkpoint_every = 100; }},
      {"--warmup", [](TrainOptions& o) { o.warmup = 0.5; }},
      {"--train-images", [](TrainOptions& o) { o.synthetic_train_images = 640; }},
      {"--eval-images", [](TrainOptions& o) { o.eval_images = 192; }},
      {"--eval-height", [](TrainOptions& o) { o.eval_height = 128; }},
      {"--eval-width", [](TrainOptions& o) { o.eval_width = 256; }},
  };
}

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
  app.add_option("--train-images", o.synthetic_train_images, "synthetic: rendered training images (default 640)");
  app.add_option("--eval-images", o.eval_images, "evaluation images, 0 = the whole split (synthetic default 192)");
  app.add_option("--eval-split", o.eval_split,
                 "test: the split results are reported on | val: validation scenes (synthetic: other scenes; "
                 "CamVid: val, training on train only) for choosing settings")
      ->check(CLI::IsMember({"test", "val"}))
      ->capture_default_str();
  app.add_option("--eval-height", o.eval_height, "synthetic: evaluation image height (default 128)");
  app.add_option("--eval-width", o.eval_width, "synthetic: evaluation image width (default 256)");
}

/// Registers the model and training flags, bound to `o`.
inline void add_train_options(CLI::App& app, TrainOptions& o) {
  app.add_option("--model", o.model.name,
                 "segmentation network: pspnet (the paper's Table 1) | deeplabv3 | ccnet (Table 3), all on the "
                 "dilated ResNet")
      ->check(CLI::IsMember(all_models()))
      ->capture_default_str();
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
  app.add_option("--ggdc-gradient", o.model.ggdc_gradient,
                 "GGDC's gradient operator: sobel (the paper) | scharr | central")
      ->check(CLI::IsMember({"sobel", "scharr", "central"}))
      ->capture_default_str();
  app.add_option("--ggdc-head-channels", o.model.ggdc_head_channels,
                 "hidden width of GGDC's offset head (0: a single conv, the paper's)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--pretrained", o.model.pretrained, "torchvision ResNet weights exported from Python");
  app.add_flag("--sync-bn", o.model.sync_bn,
               "several processes: every BatchNorm of the network becomes a SyncBatchNorm whose batch statistics span "
               "the global batch (mmsegmentation's default); in one process it computes what BatchNorm does");

  app.add_option("--iterations", o.iterations, "training iterations (paper 90000; synthetic default 1600)")
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
  app.add_option("--lr", o.lr, "base learning rate (paper 0.01; synthetic default 0.05)")->capture_default_str();
  app.add_option("--poly-power", o.poly_power, "poly decay power")->capture_default_str();
  app.add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay, "SGD weight decay")->capture_default_str();
  app.add_option("--aux-weight", o.aux_weight, "auxiliary FCN head loss weight")->capture_default_str();
  app.add_option("--closs-alpha", o.closs_alpha, "consistency loss weight alpha (Eq. 11)")->capture_default_str();
  app.add_option("--closs-start", o.closs_start,
                 "fraction of the iterations after which the consistency loss is switched on (paper 0.5)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--closs-layers", o.closs_layers,
                 "feature maps the consistency loss compares: blocks (every residual block's output, the paper) | "
                 "stages (the four stage outputs) | last (the last stage's)")
      ->check(CLI::IsMember({"blocks", "stages", "last"}))
      ->capture_default_str();
  app.add_option("--warmup", o.warmup,
                 "fraction of the iterations trained once with the baseline's recipe and shared by every variant "
                 "(0: each variant trains from scratch; synthetic default 0.5)")
      ->check(CLI::Range(0.0, 0.95))
      ->capture_default_str();
  app.add_option("--offset-lr-mult", o.offset_lr_mult,
                 "learning-rate multiplier of GGDC's offset heads (deformable-convolution practice: 0.1)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  app.add_option("--variants", o.variants, "Table 1 rows to train: baseline vvd vvd+closs vvd+ggdc+closs")
      ->check(CLI::IsMember(all_variants()))
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--seed", o.seed, "seed of every variant (data order, initialisation)")->capture_default_str();
  app.add_option("--seeds", o.seeds,
                 "paired multi-seed study, e.g. 1-6: every variant trained with each seed (OUT/seed_<s>/), then the "
                 "mean +- se of each metric and the 95 % t-interval of each paired difference to the baseline, and a "
                 "bootstrap over scenes")
      ->excludes("--seed");
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "iterations between checkpoints (paper-scale default 1000; synthetic default 100)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--resume", o.resume, "continue from the checkpoints in --out (finished variants are not retrained)");
  // Hidden (empty group): ends the process abruptly after N iterations of the first variant it
  // trains, without any clean-up, as a kill would; the resume test uses it.
  app.add_option("--stop-after", o.stop_after, "exit abruptly after N iterations")->group("");
}

/// Registers the run flags (device, threads, output folder, figures), bound to `o`, and makes the
/// app report its errors on one line (cli_errors.hpp).
inline void add_run_options(CLI::App& app, TrainOptions& o) {
  use_one_line_errors(app);
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
    for (const auto& entry : synthetic_preset()) {
      const auto* option = app.get_option_no_throw(entry.flag);
      if (option == nullptr || option->count() == 0) entry.apply(o);
    }
  } else if (o.root.empty()) {
    throw CLI::ValidationError("--root", "--dataset " + o.dataset + " needs --root DIR");
  }
  if (o.threads <= 0) o.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  if (o.variants.empty()) throw CLI::ValidationError("--variants", "give at least one variant");
  if (o.scale_min > o.scale_max) {
    throw CLI::ValidationError("--scale-min", "must not exceed --scale-max (" + std::to_string(o.scale_max) + "), got " +
                                                  std::to_string(o.scale_min));
  }
  // Keep Table 1's order whatever order the user typed.
  std::vector<std::string> ordered;
  for (const auto& v : all_variants()) {
    if (std::find(o.variants.begin(), o.variants.end(), v) != o.variants.end()) ordered.push_back(v);
  }
  o.variants = ordered;
}

/// The model of a variant: `o.model` with GGDC switched on or off as the variant says.
inline ModelOptions model_options(const TrainOptions& o, const VariantSpec& spec) {
  ModelOptions m = o.model;
  m.ggdc = spec.ggdc;
  return m;
}

// ---- JSON: one (de)serialisation of the options, used by checkpoints, results.json and eval ------

inline void to_json(nlohmann::json& j, const ModelOptions& m) {
  j = {{"name", m.name},
       {"depth", m.depth},
       {"width", m.width},
       {"deep_stem", m.deep_stem},
       {"ggdc", m.ggdc},
       {"ggdc_blocks", m.ggdc_blocks},
       {"ggdc_gradient", m.ggdc_gradient},
       {"ggdc_head_channels", m.ggdc_head_channels},
       {"pretrained", m.pretrained}};
  // Written only when set, so a configuration from before --sync-bn equals one without it (--resume).
  if (m.sync_bn) j["sync_bn"] = true;
}

/// Reads what to_json wrote; keys that are absent keep `m`'s values (a configuration written before
/// --model existed has no "name": it was PSPNet, ModelOptions' default).
inline void from_json(const nlohmann::json& j, ModelOptions& m) {
  m.name = j.value("name", m.name);
  m.depth = j.value("depth", m.depth);
  m.width = j.value("width", m.width);
  m.deep_stem = j.value("deep_stem", m.deep_stem);
  m.ggdc = j.value("ggdc", m.ggdc);
  m.ggdc_blocks = j.value("ggdc_blocks", m.ggdc_blocks);
  m.ggdc_gradient = j.value("ggdc_gradient", m.ggdc_gradient);
  m.ggdc_head_channels = j.value("ggdc_head_channels", m.ggdc_head_channels);
  m.pretrained = j.value("pretrained", m.pretrained);
  m.sync_bn = j.value("sync_bn", m.sync_bn);
}

/// The options in sections: "data" and "training" (everything that changes the weights a run
/// reaches: checkpoints compare them before --resume), "model", "evaluation" and "run" (where and
/// how the program runs; no effect on the weights).
inline void to_json(nlohmann::json& j, const TrainOptions& o) {
  j = {{"data",
        {{"dataset", o.dataset},
         {"root", o.root},
         {"focal", o.focal},
         {"yaw_deg", o.yaw_deg},
         {"pitch_deg", o.pitch_deg},
         {"roll_deg", o.roll_deg},
         {"train_images", o.synthetic_train_images},
         {"eval_split", o.eval_split}}},  // CamVid trains on train alone when it evaluates on val
       {"model", o.model},
       {"training",
        {{"iterations", o.iterations},
         {"batch", o.batch},
         {"crop", o.crop},
         {"scale_min", o.scale_min},
         {"scale_max", o.scale_max},
         {"lr", o.lr},
         {"poly_power", o.poly_power},
         {"momentum", o.momentum},
         {"weight_decay", o.weight_decay},
         {"aux_weight", o.aux_weight},
         {"closs_alpha", o.closs_alpha},
         {"closs_start", o.closs_start},
         {"closs_layers", o.closs_layers},
         {"warmup", o.warmup},
         {"offset_lr_mult", o.offset_lr_mult},
         {"seed", o.seed}}},
       {"evaluation",
        {{"vvd_root", o.vvd_root},
         {"eval_images", o.eval_images},
         {"eval_height", o.eval_height},
         {"eval_width", o.eval_width}}},
       {"run",
        {{"variants", o.variants},
         {"seeds", o.seeds},
         {"device", o.device},
         {"threads", o.threads},
         {"out", o.out},
         {"checkpoint_every", o.checkpoint_every},
         {"figure_samples", o.figure_samples}}}};
}

/// Reads what to_json wrote; absent sections and keys keep `o`'s values.
inline void from_json(const nlohmann::json& j, TrainOptions& o) {
  const auto section = [&](const char* name) { return j.contains(name) ? j.at(name) : nlohmann::json::object(); };
  const auto d = section("data");
  o.dataset = d.value("dataset", o.dataset);
  o.root = d.value("root", o.root);
  o.focal = d.value("focal", o.focal);
  o.yaw_deg = d.value("yaw_deg", o.yaw_deg);
  o.pitch_deg = d.value("pitch_deg", o.pitch_deg);
  o.roll_deg = d.value("roll_deg", o.roll_deg);
  o.synthetic_train_images = d.value("train_images", o.synthetic_train_images);
  o.eval_split = d.value("eval_split", o.eval_split);
  if (j.contains("model")) j.at("model").get_to(o.model);
  const auto t = section("training");
  o.iterations = t.value("iterations", o.iterations);
  o.batch = t.value("batch", o.batch);
  o.crop = t.value("crop", o.crop);
  o.scale_min = t.value("scale_min", o.scale_min);
  o.scale_max = t.value("scale_max", o.scale_max);
  o.lr = t.value("lr", o.lr);
  o.poly_power = t.value("poly_power", o.poly_power);
  o.momentum = t.value("momentum", o.momentum);
  o.weight_decay = t.value("weight_decay", o.weight_decay);
  o.aux_weight = t.value("aux_weight", o.aux_weight);
  o.closs_alpha = t.value("closs_alpha", o.closs_alpha);
  o.closs_start = t.value("closs_start", o.closs_start);
  o.closs_layers = t.value("closs_layers", o.closs_layers);
  o.warmup = t.value("warmup", o.warmup);
  o.offset_lr_mult = t.value("offset_lr_mult", o.offset_lr_mult);
  o.seed = t.value("seed", o.seed);
  const auto e = section("evaluation");
  o.vvd_root = e.value("vvd_root", o.vvd_root);
  o.eval_images = e.value("eval_images", o.eval_images);
  o.eval_height = e.value("eval_height", o.eval_height);
  o.eval_width = e.value("eval_width", o.eval_width);
  const auto r = section("run");
  o.variants = r.value("variants", o.variants);
  o.seeds = r.value("seeds", o.seeds);
  o.device = r.value("device", o.device);
  o.threads = r.value("threads", o.threads);
  o.out = r.value("out", o.out);
  o.checkpoint_every = r.value("checkpoint_every", o.checkpoint_every);
  o.figure_samples = r.value("figure_samples", o.figure_samples);
}

}  // namespace crossview_programs
