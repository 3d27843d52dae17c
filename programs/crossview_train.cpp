// crossview-train: trains PSPNet with the paper's add-on modules and prints its Table 1.
//
// With no arguments it runs the embedded default: all four variants (baseline, vvd, vvd+closs,
// vvd+ggdc+closs) on procedural SyntheticStreet data with a small backbone on the CPU. With
// --dataset camvid|cityscapes --root DIR it trains and evaluates on real data with the paper's
// recipe (SGD, lr 0.01 poly 0.9, batch 8, crop 776, 90K iterations, consistency loss after 45K).
//
//   crossview-train                                   # embedded default, ~15 min on 2 cores
//   crossview-train --dataset camvid --root ../shared/data/camvid --focal 700 --device cuda
//   crossview-train --seeds 1-6 --variants baseline,vvd,vvd+ggdc+closs --out study
//
// Output in --out: results.json, <variant>/train_log.csv, <variant>/model.pt (checkpoint.pt while
// training), fig4_segmentation.png, fig5_inconsistency.png, fig6_class_iou.png.

#include <crossview_programs/datasets.hpp>
#include <crossview_programs/evaluate.hpp>
#include <crossview_programs/options.hpp>
#include <crossview_programs/threads.hpp>
#include <crossview_programs/report.hpp>
#include <crossview_programs/study.hpp>
#include <crossview_programs/trainer.hpp>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

namespace cp = crossview_programs;

namespace {

torch::Device pick_device(const std::string& name) {
  if (name == "cuda") {
    if (!torch::cuda::is_available()) throw std::runtime_error("--device cuda: no CUDA device is available");
    return torch::Device(torch::kCUDA);
  }
  return torch::Device(torch::kCPU);
}

/// results.json's "config" (every option, in to_json(TrainOptions)'s sections, plus what the run
/// found: device, focal, split sizes) and "class_names".
nlohmann::json run_summary(const cp::TrainOptions& o, const cp::Dataset& data, torch::Device device) {
  nlohmann::json config = o;
  config["data"]["focal_used"] = data.focal;
  config["data"]["train_images_used"] = data.train_size;
  config["evaluation"]["eval_pairs"] = data.eval_size;
  config["run"]["device"] = device.str();
  return {{"config", config}, {"class_names", data.class_names}};
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

int run(const cp::TrainOptions& o) {
  cp::set_cpu_threads(o.threads);
  const auto device = pick_device(o.device);
  const auto seeds = o.seeds.empty() ? std::vector<uint64_t>{o.seed} : cp::parse_seeds(o.seeds);
  std::filesystem::create_directories(o.out);
  std::fprintf(stderr, "crossview-train: %s, variants", o.dataset.c_str());
  for (const auto& v : o.variants) std::fprintf(stderr, " %s", v.c_str());
  std::fprintf(stderr,
               "; %lld iterations (shared warm-up %.0f %%), batch %lld, crop %lld, ResNet-%d x%.3g, %s, %d threads, "
               "%zu seed(s), out %s\n",
               (long long)o.iterations, 100.0 * o.warmup, (long long)o.batch, (long long)o.crop, o.model.depth,
               o.model.width, device.str().c_str(), o.threads, seeds.size(), o.out.c_str());

  const auto data = cp::load_dataset(o);
  const auto summary = run_summary(o, data, device);
  if (o.seeds.empty()) {
    const auto single = cp::run_seed(o, data, device, summary);
    cp::print_table(stdout, o.dataset, single.results);
    cp::write_figures(o.out, data, o.variants, single.evaluations, size_t(o.figure_samples),
                      "trained by crossview-train, seed " + std::to_string(o.seed));
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
    if (auto finished = cp::finished_seed(os, summary_seed)) {
      runs.push_back(std::move(*finished));
      continue;
    }
    auto run = cp::run_seed(os, data, device, summary_seed, prefix);
    cp::write_figures(os.out, data, o.variants, run.evaluations, size_t(o.figure_samples),
                      "trained by crossview-train, seed " + std::to_string(os.seed) + " (one of the study's " +
                          std::to_string(seeds.size()) + " seeds)");
    run.evaluations.clear();
    runs.push_back(std::move(run));
  }
  const auto study = cp::study_json(runs, o.variants);
  nlohmann::json results = summary;
  results["dataset"] = o.dataset;
  results["seeds"] = seeds;
  results["variants"] = study;
  cp::write_json_atomically(std::filesystem::path(o.out) / "results.json", results);
  cp::print_study(stdout, o.dataset, study, seeds.size());
  cp::write_seed_difference_figure(
      std::filesystem::path(o.out) / "fig_seed_differences.png",
      "Paired differences to the baseline over " + std::to_string(seeds.size()) + " seeds, " +
          cp::dataset_title(data.name) + " (all " + std::to_string(data.eval_size) + " evaluation pairs)\nProtocol: " +
          cp::kFigureProtocol + ".\nNetworks: every variant trained by crossview-train with seeds " + o.seeds + ", " +
          std::to_string(o.iterations) + " iterations; each seed's variant minus that seed's baseline, in points.",
      difference_panels(study));
  std::printf("wrote %s/results.json, fig_seed_differences.png and seed_<s>/ for every seed\n", o.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  cp::use_passive_openmp_waiting(argv);
  CLI::App app{
      "crossview-train: trains PSPNet with online VVD pairs, GGDC and the consistency loss (IJCAI-21) and prints "
      "Table 1.\nWith no arguments: all four variants on SyntheticStreet with a small backbone on the CPU."};
  cp::TrainOptions options;
  cp::add_data_options(app, options);
  cp::add_train_options(app, options);
  cp::add_run_options(app, options);
  try {
    app.parse(argc, argv);
    cp::finalize_train_options(app, options);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run(options);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "crossview-train: error: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crossview-train: error: %s\n", e.what());
    return 1;
  }
}
