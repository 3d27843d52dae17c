#pragma once
/// \file
/// One run of crossview-train for one seed (the shared warm-up, then every variant trained and
/// evaluated), and the paired multi-seed study (--seeds A-B): every seed's metrics, the mean and
/// standard error of each variant's paired difference to the baseline with its 95 % Student-t
/// interval, and a bootstrap over evaluation scenes of the seed-pooled difference.

#include <crossview_programs/datasets.hpp>
#include <crossview_programs/evaluate.hpp>
#include <crossview_programs/options.hpp>
#include <crossview_programs/report.hpp>
#include <crossview_programs/trainer.hpp>

#include <crossview/metrics/statistics.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace crossview_programs {

/// "1-6" -> {1, ..., 6}; "3" -> {3}; "1,4,9" -> {1, 4, 9}.
/// \throws std::invalid_argument for anything else (or an empty or reversed range).
inline std::vector<uint64_t> parse_seeds(const std::string& text) {
  const auto bad = [&] {
    return std::invalid_argument("--seeds: expected A-B (e.g. 1-6) or a comma-separated list, got '" + text + "'");
  };
  const auto number = [&](const std::string& s) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) throw bad();
    return uint64_t(std::stoull(s));
  };
  std::vector<uint64_t> seeds;
  const auto dash = text.find('-');
  if (dash != std::string::npos) {
    const auto a = number(text.substr(0, dash)), b = number(text.substr(dash + 1));
    if (b < a || b - a > 1000) throw bad();
    for (uint64_t s = a; s <= b; ++s) seeds.push_back(s);
    return seeds;
  }
  size_t begin = 0;
  while (begin <= text.size()) {
    const auto comma = text.find(',', begin);
    seeds.push_back(number(text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin)));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return seeds;
}

/// What one seed's run produced.
struct SeedRun {
  uint64_t seed{0};
  double warmup_seconds{0};
  std::vector<VariantResult> results;
  std::vector<Evaluation> evaluations;
};

/// Trains and evaluates every variant of `o.variants` with seed o.seed into o.out (after the shared
/// warm-up, when o.warmup > 0), writing o.out/results.json after each variant.
inline SeedRun run_seed(const TrainOptions& o, const Dataset& data, torch::Device device,
                        const nlohmann::json& summary, const std::string& prefix = "") {
  SeedRun run;
  run.seed = o.seed;
  std::filesystem::path warm_model;
  const size_t stages = o.variants.size() + (o.warmup > 0 ? 1 : 0);
  size_t stage = 0;
  const auto label = [&](const std::string& name) {
    return "[" + prefix + std::to_string(++stage) + "/" + std::to_string(stages) + " " + name + "]";
  };
  auto summary_with = summary;
  if (o.warmup > 0) {
    const auto spec = warmup_spec();
    const auto trained = train_stage(o, spec, data, device, label(spec.name), 0, warmup_iterations(o));
    run.warmup_seconds = trained.train_seconds;
    warm_model = variant_dir(o, spec.name) / "model.pt";
    summary_with["warmup"] = {{"iterations", trained.iterations}, {"train_seconds", trained.train_seconds}};
  }
  for (const auto& name : o.variants) {
    const auto spec = variant_spec(name);
    const auto stage_label = label(spec.name);
    auto trained = train_variant(o, spec, data, device, stage_label, warm_model);
    auto evaluation = evaluate(trained.network, data, device, size_t(o.figure_samples));
    evaluation.result.name = spec.name;
    evaluation.result.iterations = trained.iterations;
    evaluation.result.train_seconds = trained.train_seconds;
    const auto& r = evaluation.result;
    std::fprintf(stderr, "%s original mIoU %.2f | VVD mIoU %.2f | CVC mIoU %.2f | CVC pixAcc %.2f | %.0f s\n",
                 stage_label.c_str(), r.seg_miou_original, r.seg_miou_vvd, r.cvc_miou, r.cvc_pixacc,
                 r.train_seconds);
    run.results.push_back(r);
    run.evaluations.push_back(std::move(evaluation));
    // Written after every variant, so an interrupted run keeps what it finished.
    write_results_json(std::filesystem::path(o.out) / "results.json", o.dataset, run.results, summary_with);
  }
  return run;
}

/// With --resume, a seed whose results.json already holds every variant, evaluated with the same
/// data, model, training and evaluation options as `summary` (the run options may differ), is
/// read back instead of being loaded and evaluated again. Empty when it cannot be reused.
inline std::optional<SeedRun> finished_seed(const TrainOptions& o, const nlohmann::json& summary) {
  const auto path = std::filesystem::path(o.out) / "results.json";
  if (!o.resume || !std::filesystem::exists(path)) return std::nullopt;
  try {
    std::ifstream in(path);
    const auto j = nlohmann::json::parse(in);
    const auto config = with_model_name(j.at("config"));  // written before --model: PSPNet
    for (const char* section : {"data", "model", "training", "evaluation"}) {
      if (config.at(section) != summary.at("config").at(section)) return std::nullopt;
    }
    SeedRun run;
    run.seed = o.seed;
    for (const auto& name : o.variants) {
      const nlohmann::json* found = nullptr;
      for (const auto& v : j.at("variants")) {
        if (v.at("name") == name) found = &v;
      }
      if (found == nullptr) return std::nullopt;
      run.results.push_back(variant_result_from_json(*found));
    }
    if (j.contains("warmup")) run.warmup_seconds = j.at("warmup").at("train_seconds").get<double>();
    std::fprintf(stderr, "seed %llu: every variant already evaluated, read %s\n", (unsigned long long)o.seed,
                 path.string().c_str());
    return run;
  } catch (const std::exception&) {
    return std::nullopt;  // unreadable or of another version: train / evaluate as usual
  }
}

/// The four metrics of Table 1, in results.json's names.
inline const std::vector<std::pair<std::string, double VariantResult::*>>& table_metrics() {
  static const std::vector<std::pair<std::string, double VariantResult::*>> kMetrics = {
      {"seg_miou_vvd", &VariantResult::seg_miou_vvd},
      {"cvc_miou", &VariantResult::cvc_miou},
      {"cvc_pixacc", &VariantResult::cvc_pixacc},
      {"seg_miou_original", &VariantResult::seg_miou_original}};
  return kMetrics;
}

/// {"mean", "se", "ci95": [lo, hi], "n"} of an interval.
inline nlohmann::json interval_json(const crossview::MeanInterval& m) {
  return {{"mean", m.mean}, {"se", m.se}, {"ci95", {m.lo, m.hi}}, {"n", m.n}};
}

/// The per-scene confusion matrices of one variant summed over seeds (scene by scene).
inline std::vector<torch::Tensor> pooled_scenes(const std::vector<SeedRun>& runs, size_t variant,
                                                std::vector<torch::Tensor> VariantResult::*which) {
  std::vector<torch::Tensor> pooled;
  for (const auto& run : runs) {
    const auto& scenes = run.results.at(variant).*which;
    if (pooled.empty()) {
      for (const auto& m : scenes) pooled.push_back(m.clone());
    } else {
      for (size_t s = 0; s < scenes.size(); ++s) pooled[s] += scenes[s];
    }
  }
  return pooled;
}

/// The study's summary (results.json of a --seeds run): per variant every seed's metrics, their
/// mean +- se and t-interval, and for every variant but the baseline the paired difference to the
/// baseline (by seed: mean, se, 95 % t-interval) and a bootstrap over scenes of the difference of
/// the seed-pooled confusion matrices (percentile 95 % interval, 2000 resamples).
inline nlohmann::json study_json(const std::vector<SeedRun>& runs, const std::vector<std::string>& variants) {
  auto out = nlohmann::json::array();
  const auto base = std::find(variants.begin(), variants.end(), "baseline");
  const size_t b = size_t(base - variants.begin());
  for (size_t v = 0; v < variants.size(); ++v) {
    nlohmann::json j = {{"name", variants[v]}};
    auto seeds = nlohmann::json::array();
    for (const auto& run : runs) {
      const auto& r = run.results.at(v);
      nlohmann::json s = {{"seed", run.seed}, {"train_seconds", r.train_seconds}};
      for (const auto& [key, member] : table_metrics()) s[key] = r.*member;
      seeds.push_back(s);
    }
    j["seeds"] = seeds;
    for (const auto& [key, member] : table_metrics()) {
      std::vector<double> values;
      for (const auto& run : runs) values.push_back(run.results.at(v).*member);
      double sum = 0;
      for (double x : values) sum += x;
      j[key] = sum / double(values.size());
      if (values.size() >= 2) j["interval"][key] = interval_json(crossview::t_interval(values));
    }
    if (base != variants.end() && v != b && runs.size() >= 2) {
      for (const auto& [key, member] : table_metrics()) {
        std::vector<double> method, baseline;
        for (const auto& run : runs) {
          method.push_back(run.results.at(v).*member);
          baseline.push_back(run.results.at(b).*member);
        }
        j["difference_to_baseline"][key] = interval_json(crossview::paired_difference(method, baseline));
      }
      for (const auto& boot : kSceneMetrics) {
        const auto d = crossview::bootstrap_difference(pooled_scenes(runs, v, boot.scenes),
                                                       pooled_scenes(runs, b, boot.scenes), boot.metric);
        j["bootstrap_difference_to_baseline"][boot.key] = {
            {"observed", 100.0 * d.observed}, {"ci95", {100.0 * d.lo, 100.0 * d.hi}}, {"resamples", d.resamples}};
      }
    }
    out.push_back(j);
  }
  return out;
}

/// Prints the study: per variant and metric, the mean over seeds +- se, and the paired difference
/// to the baseline with its 95 % t-interval (and the bootstrap interval over scenes). `model` names
/// the network in the heading (Table 1 for PSPNet, Table 3 for DeepLabV3 and CCNet).
inline void print_study(std::FILE* out, const std::string& dataset, const nlohmann::json& variants, size_t seeds,
                        const std::string& model = "pspnet") {
  std::fprintf(out,
               "\n%s on %s, %s, %zu seeds: mean +- standard error; difference to the baseline [95 %% t-interval] "
               "{95 %% bootstrap over scenes}\n",
               model == "pspnet" ? "Table 1" : "Table 3", dataset.c_str(), model_title(model).c_str(), seeds);
  for (const auto& v : variants) {
    std::fprintf(out, "%-16s", v.at("name").get<std::string>().c_str());
    for (const auto& [key, member] : table_metrics()) {
      (void)member;
      const auto mean = v.at(key).get<double>();
      const double se = v.contains("interval") ? v.at("interval").at(key).at("se").get<double>() : 0.0;
      std::fprintf(out, " | %s %6.2f +- %4.2f", key.c_str(), mean, se);
    }
    std::fprintf(out, "\n");
    if (v.contains("difference_to_baseline")) {
      std::fprintf(out, "%-16s", "  - baseline");
      for (const auto& [key, member] : table_metrics()) {
        (void)member;
        const auto& d = v.at("difference_to_baseline").at(key);
        const auto& bt = v.at("bootstrap_difference_to_baseline").at(key);
        std::fprintf(out, " | %+6.2f [%+.2f, %+.2f] {%+.2f, %+.2f}", d.at("mean").get<double>(),
                     d.at("ci95")[0].get<double>(), d.at("ci95")[1].get<double>(), bt.at("ci95")[0].get<double>(),
                     bt.at("ci95")[1].get<double>());
      }
      std::fprintf(out, "\n");
    }
  }
  std::fflush(out);
}

}  // namespace crossview_programs
