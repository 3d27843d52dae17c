// crossview-train: trains PSPNet (or DeepLabV3, CCNet: --model) with the paper's add-on modules
// and prints its Table 1 (Table 3 for DeepLabV3 and CCNet).
//
// With no arguments it runs the embedded default: all four variants (baseline, vvd, vvd+closs,
// vvd+ggdc+closs) of PSPNet on procedural SyntheticStreet data with a small backbone on the CPU.
// With --dataset camvid|cityscapes --root DIR it trains and evaluates on real data with the paper's
// recipe (SGD, lr 0.01 poly 0.9, batch 8, crop 776, 90K iterations, consistency loss after 45K).
//
//   crossview-train                                   # embedded default, ~15 min on 2 cores
//   crossview-train --dataset camvid --root ../shared/data/camvid --focal 700 --device cuda
//   crossview-train --seeds 1-6 --variants baseline,vvd,vvd+ggdc+closs --out study
//   crossview-train --model deeplabv3 --out deeplabv3-out      # Table 3's networks: deeplabv3, ccnet
//
// Output in --out: results.json, <variant>/train_log.csv, <variant>/model.pt (checkpoint.pt while
// training), fig4_segmentation.png, fig5_inconsistency.png, fig6_class_iou.png.
//
// Several processes (data-parallel on c10d, distributed.hpp):
//   torchrun --no-python --nnodes 1 --nproc-per-node 2 build/bin/crossview-train ...
// or any launcher that sets MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK. --batch stays
// the global batch; every rank evaluates its share of the evaluation pairs (the confusion matrices
// are summed); rank 0 alone writes files.

#include <crossview_programs/datasets.hpp>
#include <crossview_programs/distributed.hpp>
#include <crossview_programs/evaluate.hpp>
#include <crossview_programs/options.hpp>
#include <crossview_programs/threads.hpp>
#include <crossview_programs/report.hpp>
#include <crossview_programs/stop_signal.hpp>
#include <crossview_programs/study.hpp>
#include <crossview_programs/trainer.hpp>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace cp = crossview_programs;

namespace {

/// The device of this process: the group's (cuda:LOCAL_RANK, chosen by cp::Distributed) in a run of
/// several processes, otherwise the CPU or the first CUDA device.
torch::Device pick_device(const std::string& name, const cp::Distributed* dist) {
  if (dist != nullptr) return dist->device();
  if (name == "cuda") {
    if (!torch::cuda::is_available()) throw std::runtime_error("--device cuda: no CUDA device is available");
    return torch::Device(torch::kCUDA, 0);
  }
  return torch::Device(torch::kCPU);
}

/// "rank R of W: " in a run of several processes, "" otherwise.
std::string rank_prefix() {
  const auto* dist = cp::current_distributed();
  if (dist == nullptr) return "";
  return "rank " + std::to_string(dist->rank()) + " of " + std::to_string(dist->world_size()) + ": ";
}

/// Gloo's message for a lost peer, first line only, with what it usually means.
std::string with_peer_hint(const std::string& message) {
  if (cp::current_distributed() == nullptr) return message;
  const bool lost = message.find("Connection reset") != std::string::npos ||
                    message.find("Connection closed") != std::string::npos ||
                    message.find("Timed out") != std::string::npos || message.find("timed out") != std::string::npos;
  if (!lost) return message;
  return message.substr(0, message.find(". This is typically")) +
         " (another process of the run died, was killed, or did not answer within --dist-timeout; see its log)";
}

/// The stages run_seed trains (shared warm-up, then every variant, each followed by its share of the
/// sharded evaluation), without writing anything: what the ranks other than 0 do while rank 0 runs
/// run_seed.
void train_stages_as_follower(const cp::TrainOptions& o, const cp::Dataset& data, torch::Device device) {
  std::filesystem::path warm_model;
  if (o.warmup > 0) {
    const auto spec = cp::warmup_spec();
    cp::train_stage(o, spec, data, device, spec.name, 0, cp::warmup_iterations(o));
    warm_model = cp::variant_dir(o, spec.name) / "model.pt";  // read by rank 0 only
  }
  for (const auto& name : o.variants) {
    auto trained = cp::train_variant(o, cp::variant_spec(name), data, device, name, warm_model);
    cp::evaluate(trained.network, data, device, size_t(o.figure_samples));  // a collective, as on rank 0
  }
}

/// results.json's "config" (every option, in to_json(TrainOptions)'s sections, plus what the run
/// found: device, focal, split sizes), "model" (pspnet | deeplabv3 | ccnet, also config.model.name)
/// and "class_names".
nlohmann::json run_summary(const cp::TrainOptions& o, const cp::Dataset& data, torch::Device device) {
  nlohmann::json config = o;
  config["data"]["focal_used"] = data.focal;
  config["data"]["train_images_used"] = data.train_size;
  config["evaluation"]["eval_pairs"] = data.eval_size;
  config["run"]["device"] = device.str();
  const auto* dist = cp::current_distributed();
  config["world_size"] = dist != nullptr ? dist->world_size() : 1;
  config["backend"] = dist != nullptr ? dist->backend() : "none";
  return {{"config", config}, {"model", o.model.name}, {"class_names", data.class_names}};
}

/// The seed-difference figure's panels from the study's JSON.
std::vector<std::pair<std::string, std::vector<cp::SeedDifferences>>> difference_panels(const nlohmann::json& study) {
  std::vector<std::pair<std::string, std::vector<cp::SeedDifferences>>> panels;
  for (const auto& [key, member] : cp::table_metrics()) {
    (void)member;
    std::vector<cp::SeedDifferences> rows;
    const nlohmann::json* base = nullptr;
    for (const auto& v : study) {
      if (v.at("name") == "baseline") base = &v;
    }
    for (const auto& v : study) {
      if (!v.contains("difference_to_baseline") || base == nullptr) continue;
      cp::SeedDifferences row;
      row.variant = v.at("name").get<std::string>();
      for (size_t s = 0; s < v.at("seeds").size(); ++s) {
        row.per_seed.push_back(v.at("seeds")[s].at(key).get<double>() - base->at("seeds")[s].at(key).get<double>());
      }
      const auto& d = v.at("difference_to_baseline").at(key);
      row.mean = d.at("mean").get<double>();
      row.lo = d.at("ci95")[0].get<double>();
      row.hi = d.at("ci95")[1].get<double>();
      rows.push_back(row);
    }
    panels.emplace_back(key, rows);
  }
  return panels;
}

/// A file an earlier run wrote under `out` (results, checkpoints, logs, up to seed_<s>/<variant>/),
/// or nothing: without --resume or --force, a run must not replace what an earlier one left.
std::optional<std::filesystem::path> earlier_run_file(const std::filesystem::path& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(out, ec)) return std::nullopt;
  for (auto it = fs::recursive_directory_iterator(out, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it.depth() > 2) {
      it.disable_recursion_pending();
      continue;
    }
    const auto name = it->path().filename().string();
    if (name == "results.json" || name == "model.pt" || name == "checkpoint.pt" || name == "train_log.csv") {
      return it->path();
    }
  }
  return std::nullopt;
}

/// The same for a study with `seeds`: its summary (out/results.json) and its own seeds' folders
/// only, so that the halves of a study started as separate processes can share one --out.
std::optional<std::filesystem::path> earlier_study_file(const std::filesystem::path& out,
                                                        const std::vector<uint64_t>& seeds) {
  std::error_code ec;
  if (std::filesystem::exists(out / "results.json", ec)) return out / "results.json";
  for (const auto seed : seeds) {
    if (auto file = earlier_run_file(out / ("seed_" + std::to_string(seed)))) return file;
  }
  return std::nullopt;
}

int run(const cp::TrainOptions& o, bool force) {
  cp::set_cpu_threads(o.threads);
  const auto* dist = cp::current_distributed();
  const bool main = cp::is_main_process();
  const auto device = pick_device(o.device, dist);
  const auto seeds = o.seeds.empty() ? std::vector<uint64_t>{o.seed} : cp::parse_seeds(o.seeds);
  if (main) {
    std::error_code ec;
    std::filesystem::create_directories(o.out, ec);
    if (ec || !std::filesystem::is_directory(o.out)) {
      throw std::runtime_error("--out " + o.out + ": cannot create the output folder (" +
                               (ec ? ec.message() : "a file of that name exists") + ")");
    }
    std::fprintf(stderr, "crossview-train: %s, variants", o.dataset.c_str());
    for (const auto& v : o.variants) std::fprintf(stderr, " %s", v.c_str());
    std::fprintf(stderr,
                 "; %lld iterations (shared warm-up %.0f %%), batch %lld, crop %lld, %s on ResNet-%d x%.3g, %s, %d "
                 "threads, %zu seed(s), out %s\n",
                 (long long)o.iterations, 100.0 * o.warmup, (long long)o.batch, (long long)o.crop,
                 cp::model_title(o.model.name).c_str(), o.model.depth, o.model.width, device.str().c_str(), o.threads,
                 seeds.size(), o.out.c_str());
    if (dist != nullptr) {
      std::fprintf(stderr, "crossview-train: %d processes (%s), global batch %lld = %d x %lld\n", dist->world_size(),
                   dist->backend().c_str(), (long long)o.batch, dist->world_size(),
                   (long long)(o.batch / dist->world_size()));
    }
  }

  const auto data = cp::load_dataset(o);
  // After the data (whose errors name their files first), before anything is written.
  if (main && !o.resume && !force) {
    if (const auto earlier = o.seeds.empty() ? earlier_run_file(o.out) : earlier_study_file(o.out, seeds)) {
      throw std::runtime_error("--out " + o.out + " holds an earlier run (" + earlier->string() +
                               "); pass --resume to continue it, --force to replace it, or choose another --out");
    }
  }
  const auto summary = run_summary(o, data, device);
  // The figures' titles name the network: "DeepLabV3 (ResNet-18 x0.25)".
  char width[32];
  std::snprintf(width, sizeof width, "%.3g", o.model.width);
  const std::string networks =
      cp::model_title(o.model.name) + " (ResNet-" + std::to_string(o.model.depth) + " x" + width + ")";
  if (!main) {
    // Train what rank 0 trains, seed by seed; rank 0 says which seeds --resume finds finished.
    for (const auto seed : seeds) {
      auto os = o;
      os.seed = seed;
      if (!o.seeds.empty()) os.out = (std::filesystem::path(o.out) / ("seed_" + std::to_string(seed))).string();
      if (!o.seeds.empty() && dist->any(false)) continue;
      train_stages_as_follower(os, data, device);
    }
    return 0;
  }
  if (o.seeds.empty()) {
    const auto single = cp::run_seed(o, data, device, summary);
    cp::print_table(stdout, o.dataset, single.results, o.model.name);
    cp::write_figures(o.out, data, o.variants, single.evaluations, size_t(o.figure_samples),
                      networks + " trained by crossview-train, seed " + std::to_string(o.seed));
    std::printf("wrote %s/results.json, fig4_segmentation.png, fig5_inconsistency.png, fig6_class_iou.png\n",
                o.out.c_str());
    return 0;
  }
  if (std::find(o.variants.begin(), o.variants.end(), "baseline") == o.variants.end()) {
    throw std::invalid_argument("--seeds: the study compares every variant with the baseline; add baseline to --variants");
  }
  std::vector<cp::SeedRun> runs;
  for (size_t k = 0; k < seeds.size(); ++k) {
    auto os = o;
    os.seed = seeds[k];
    os.out = (std::filesystem::path(o.out) / ("seed_" + std::to_string(seeds[k]))).string();
    std::filesystem::create_directories(os.out);
    auto summary_seed = summary;
    summary_seed["config"]["training"]["seed"] = seeds[k];
    const std::string prefix = "seed " + std::to_string(seeds[k]) + " (" + std::to_string(k + 1) + "/" +
                               std::to_string(seeds.size()) + ") ";
    auto finished = cp::finished_seed(os, summary_seed);
    if (dist != nullptr && dist->any(finished.has_value())) {
      runs.push_back(std::move(*finished));
      continue;
    }
    if (dist == nullptr && finished) {
      runs.push_back(std::move(*finished));
      continue;
    }
    auto run = cp::run_seed(os, data, device, summary_seed, prefix);
    cp::write_figures(os.out, data, o.variants, run.evaluations, size_t(o.figure_samples),
                      networks + " trained by crossview-train, seed " + std::to_string(os.seed) +
                          " (one of the study's " + std::to_string(seeds.size()) + " seeds)");
    run.evaluations.clear();
    runs.push_back(std::move(run));
  }
  const auto study = cp::study_json(runs, o.variants);
  if (!o.resume && !force && std::filesystem::exists(std::filesystem::path(o.out) / "results.json")) {
    // It was not there at the start: another part of the study, sharing this --out, wrote it.
    cp::print_study(stdout, o.dataset, study, seeds.size(), o.model.name);
    std::fprintf(stderr,
                 "crossview-train: %s/results.json was written by another run meanwhile and is kept; this run's "
                 "seeds are in seed_<s>/. For the summary of every seed: crossview-train --seeds <all seeds> "
                 "--resume --out %s (with the same options)\n",
                 o.out.c_str(), o.out.c_str());
    return 0;
  }
  nlohmann::json results = summary;
  results["dataset"] = o.dataset;
  results["seeds"] = seeds;
  results["variants"] = study;
  cp::write_json_atomically(std::filesystem::path(o.out) / "results.json", results);
  cp::print_study(stdout, o.dataset, study, seeds.size(), o.model.name);
  cp::write_seed_difference_figure(
      std::filesystem::path(o.out) / "fig_seed_differences.png",
      "Paired differences to the baseline over " + std::to_string(seeds.size()) + " seeds, " +
          cp::dataset_title(data.name) + " (all " + std::to_string(data.eval_size) + " evaluation pairs)\nProtocol: " +
          cp::kFigureProtocol + ".\nNetworks: every variant of " + networks +
          " trained by crossview-train with seeds " + o.seeds + ", " + std::to_string(o.iterations) +
          " iterations; each seed's variant minus that seed's baseline, in points.",
      difference_panels(study));
  std::printf("wrote %s/results.json, fig_seed_differences.png and seed_<s>/ for every seed\n", o.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  cp::install_stop_signal_handlers();
  CLI::App app{
      "crossview-train: trains PSPNet, DeepLabV3 or CCNet with online VVD pairs, GGDC and the consistency loss "
      "(IJCAI-21) and prints Table 1 (Table 3).\nWith no arguments: all four variants of PSPNet on SyntheticStreet "
      "with a small backbone on the CPU."};
  cp::TrainOptions options;
  cp::add_data_options(app, options);
  cp::add_train_options(app, options);
  cp::add_run_options(app, options);
  bool force = false;
  app.add_flag("--force", force,
               "replace the results, checkpoints and logs of an earlier run in --out (without --force or "
               "--resume such a run is refused)");
  double dist_timeout_s = 1800;
  app.add_option("--dist-timeout", dist_timeout_s,
                 "several processes: seconds a rank waits for the others (joining, every collective) before it "
                 "fails")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  try {
    app.parse(argc, argv);
    cp::finalize_train_options(app, options);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    const auto launch = cp::launch_environment();
    if (launch && launch->world_size > 1) {
      if (app.count("--threads") == 0) {
        // The machine's cores shared among this node's processes.
        const char* local = std::getenv("LOCAL_WORLD_SIZE");
        const int per_node = local != nullptr ? std::max(1, std::atoi(local)) : launch->world_size;
        options.threads = std::max(1, int(std::max(1u, std::thread::hardware_concurrency())) / per_node);
      }
      cp::set_current_distributed(std::make_shared<cp::Distributed>(
          *launch, std::chrono::milliseconds(int64_t(dist_timeout_s * 1000.0)), options.device));
    }
    return run(options, force);
  } catch (const cp::TrainingStopped& e) {
    std::fprintf(stderr, "\ncrossview-train: %s\n", e.what());
    return cp::stop_exit_code();
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "crossview-train: error: %s%s\n", rank_prefix().c_str(),
                 with_peer_hint(e.what_without_backtrace()).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crossview-train: error: %s%s\n", rank_prefix().c_str(), with_peer_hint(e.what()).c_str());
    return 1;
  }
}
