// crossview-train: trains PSPNet with the paper's add-on modules and prints its Table 1.
//
// With no arguments it runs the embedded default: all four variants (baseline, vvd, vvd+closs,
// vvd+ggdc+closs) on procedural SyntheticStreet data with a small backbone on the CPU. With
// --dataset camvid|cityscapes --root DIR it trains and evaluates on real data with the paper's
// recipe (SGD, lr 0.01 poly 0.9, batch 8, crop 776, 90K iterations, consistency loss after 45K).
//
//   crossview-train                                   # embedded default, ~15 min on 2 cores
//   crossview-train --dataset camvid --root ../shared/data/camvid --focal 700 --device cuda
//   crossview-train --variants baseline,vvd+ggdc+closs --iterations 200 --out /tmp/run
//
// Output in --out: results.json, <variant>/train_log.csv, <variant>/model.pt (checkpoint.pt while
// training), fig4_segmentation.png, fig5_inconsistency.png, fig6_class_iou.png.

#include "train/datasets.hpp"
#include "train/evaluate.hpp"
#include "train/options.hpp"
#include "train/threads.hpp"
#include "train/report.hpp"
#include "train/trainer.hpp"

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

namespace ct = crossview::train;

namespace {

torch::Device pick_device(const std::string& name) {
  if (name == "cuda") {
    if (!torch::cuda::is_available()) throw std::runtime_error("--device cuda: no CUDA device is available");
    return torch::Device(torch::kCUDA);
  }
  return torch::Device(torch::kCPU);
}

nlohmann::json run_summary(const ct::TrainOptions& o, const ct::Dataset& data, torch::Device device) {
  return {{"config",
           {{"dataset", o.dataset},         {"root", o.root},
            {"iterations", o.iterations},   {"batch", o.batch},
            {"crop", o.crop},               {"lr", o.lr},
            {"poly_power", o.poly_power},   {"momentum", o.momentum},
            {"weight_decay", o.weight_decay}, {"aux_weight", o.aux_weight},
            {"closs_alpha", o.closs_alpha}, {"closs_start", o.closs_start},
            {"closs_layers", o.closs_layers}, {"depth", o.model.depth},
            {"width", o.model.width},       {"deep_stem", o.model.deep_stem},
            {"ggdc_blocks", o.model.ggdc_blocks}, {"pretrained", o.model.pretrained},
            {"yaw_deg", o.yaw_deg},         {"pitch_deg", o.pitch_deg},
            {"roll_deg", o.roll_deg},       {"focal", data.focal},
            {"seed", o.seed},               {"device", device.str()},
            {"threads", o.threads},         {"train_images", data.train_size},
            {"eval_pairs", data.eval_size}}},
          {"class_names", data.class_names}};
}

int run(const ct::TrainOptions& o) {
  ct::set_cpu_threads(o.threads);
  const auto device = pick_device(o.device);
  std::filesystem::create_directories(o.out);
  std::fprintf(stderr, "crossview-train: %s, variants", o.dataset.c_str());
  for (const auto& v : o.variants) std::fprintf(stderr, " %s", v.c_str());
  std::fprintf(stderr, "; %lld iterations, batch %lld, crop %lld, ResNet-%d x%.3g, %s, %d threads, out %s\n",
               (long long)o.iterations, (long long)o.batch, (long long)o.crop, o.model.depth, o.model.width,
               device.str().c_str(), o.threads, o.out.c_str());

  const auto data = ct::load_dataset(o);
  const auto summary = run_summary(o, data, device);
  std::vector<ct::VariantResult> results;
  std::vector<ct::Evaluation> evaluations;
  for (size_t i = 0; i < o.variants.size(); ++i) {
    const auto spec = ct::variant_spec(o.variants[i]);
    const std::string label = "[" + std::to_string(i + 1) + "/" + std::to_string(o.variants.size()) + " " + spec.name + "]";
    auto trained = ct::train_variant(o, spec, data, device, label);
    auto evaluation = ct::evaluate(trained.network, data, device, size_t(o.figure_samples));
    evaluation.result.name = spec.name;
    evaluation.result.iterations = trained.iterations;
    evaluation.result.train_seconds = trained.train_seconds;
    const auto& r = evaluation.result;
    std::fprintf(stderr, "%s original mIoU %.2f | VVD mIoU %.2f | CVC mIoU %.2f | CVC pixAcc %.2f | %.0f s\n",
                 label.c_str(), r.seg_miou_original, r.seg_miou_vvd, r.cvc_miou, r.cvc_pixacc, r.train_seconds);
    results.push_back(r);
    evaluations.push_back(std::move(evaluation));
    // Written after every variant, so an interrupted run keeps what it finished.
    ct::write_results_json(std::filesystem::path(o.out) / "results.json", o.dataset, results, summary);
  }
  ct::print_table(stdout, o.dataset, results);
  ct::write_figures(o.out, data, o.variants, evaluations, size_t(o.figure_samples));
  std::printf("wrote %s/results.json, fig4_segmentation.png, fig5_inconsistency.png, fig6_class_iou.png\n",
              o.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ct::use_passive_openmp_waiting(argv);
  CLI::App app{
      "crossview-train: trains PSPNet with online VVD pairs, GGDC and the consistency loss (IJCAI-21) and prints "
      "Table 1.\nWith no arguments: all four variants on SyntheticStreet with a small backbone on the CPU."};
  ct::TrainOptions options;
  ct::add_data_options(app, options);
  ct::add_train_options(app, options);
  ct::add_run_options(app, options);
  try {
    app.parse(argc, argv);
    ct::finalize_train_options(app, options);
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
