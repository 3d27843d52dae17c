// crossview-eval: evaluates trained checkpoints on a dataset and its VVD views: segmentation mIoU
// on the original views and on the VVD views, cross-view consistency (CVC) mIoU and pixel
// accuracy; prints them in the layout of the paper's Table 1 and draws the same figures as
// crossview-train (Fig. 4-, 5- and 6-like PNGs).
//
//   crossview-eval --checkpoint crossview-out/baseline/model.pt --checkpoint crossview-out/vvd_ggdc_closs/model.pt
//   crossview-eval --checkpoint model.pt --dataset camvid --root ../shared/data/camvid --focal 700 --out eval-camvid
//
// The network is rebuilt from the configuration stored in each checkpoint (model: PSPNet,
// DeepLabV3 or CCNet; variant, ResNet depth, width, GGDC placement, classes). The table shows the
// paper's figures of the checkpoints' model (Table 1 / 4 for PSPNet, Table 3 for DeepLabV3 and
// CCNet), none when the checkpoints hold several models.

#include <crossview_programs/checkpoint.hpp>
#include <crossview_programs/cli_errors.hpp>
#include <crossview_programs/datasets.hpp>
#include <crossview_programs/evaluate.hpp>
#include <crossview_programs/options.hpp>
#include <crossview_programs/threads.hpp>
#include <crossview_programs/report.hpp>
#include <crossview_programs/trained_network.hpp>
#include <crossview_programs/vvd_control.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace cp = crossview_programs;

namespace {

/// Hidden test hook (--dump-logits FILE): the first checkpoint's logits on the first evaluation
/// pair's original view (eval mode), with the normalised input it saw, as a pickled dict
/// {"input": [1, 3, H, W], "logits": [1, K, H, W]} (CPU float) that Python's torch.load reads with
/// weights_only=True. tests/python/test_python_weights.py compares a Python re-implementation of
/// the network, loaded from the model's .weights.pt export, against it.
void dump_logits(const std::string& path, cp::Network& network, const cp::Dataset& data, torch::Device device) {
  if (data.eval_size == 0) throw std::runtime_error("--dump-logits: the evaluation split is empty");
  torch::NoGradGuard no_grad;
  network->eval();
  const auto input = crossview::normalize_imagenet(data.eval_pair(0).original.image.unsqueeze(0));
  const auto logits = network->forward(input.to(device)).logits.cpu();
  c10::impl::GenericDict probe(c10::StringType::get(), c10::AnyType::get());
  probe.insert("input", input.contiguous());
  probe.insert("logits", logits.contiguous());
  cp::save_for_torch_load("--dump-logits", path, c10::IValue(probe));
}

int run(const cp::TrainOptions& o, const std::vector<std::string>& checkpoints, const std::string& dump_logits_path,
        bool vvd_control) {
  cp::set_cpu_threads(o.threads);
  if (o.device == "cuda" && !torch::cuda::is_available()) {
    throw std::runtime_error("--device cuda: no CUDA device is available");
  }
  const torch::Device device(o.device == "cuda" ? torch::kCUDA : torch::kCPU);
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  if (ec || !std::filesystem::is_directory(o.out)) {
    throw std::runtime_error("--out " + o.out + ": cannot create the output folder (" +
                             (ec ? ec.message() : "a file of that name exists") + ")");
  }
  auto data = cp::load_dataset(o, /*with_train=*/false);
  const std::string protocol =
      vvd_control ? "--vvd-control: the VVD views are unrotated crops of the original views, each of its rotated "
                    "crop's size and centred on what that crop sees"
                  : "";
  // With --vvd-control the checkpoints are evaluated twice, on the rotated crops and on their
  // controls; the same scenes feed both, so rotated - control is bootstrapped over paired scenes.
  const auto rotated = data;
  if (vvd_control) {
    data.eval_pair = [pairs = data.eval_pair](int64_t i) { return cp::control_pair(pairs(i)); };
    std::fprintf(stderr, "%s\n", protocol.c_str());
  }
  nlohmann::json rotated_minus_control = nlohmann::json::array();
  std::vector<cp::VariantResult> results;
  std::vector<cp::Evaluation> evaluations;
  std::vector<std::string> names, models;
  for (const auto& path : checkpoints) {
    auto loaded = cp::load_trained_network(path, device);
    if (loaded.num_classes != data.num_classes) {
      throw std::runtime_error(path + " predicts " + std::to_string(loaded.num_classes) + " classes, the " +
                               data.name + " data has " + std::to_string(data.num_classes));
    }
    if (!dump_logits_path.empty() && path == checkpoints.front()) dump_logits(dump_logits_path, loaded.network, data, device);
    auto evaluation = cp::evaluate(loaded.network, data, device, size_t(o.figure_samples));
    evaluation.result.name = loaded.variant;
    evaluation.result.iterations = loaded.iterations;
    evaluation.result.train_seconds = loaded.train_seconds;
    const auto& r = evaluation.result;
    std::fprintf(stderr, "%s %s (%s): original mIoU %.2f | VVD mIoU %.2f | CVC mIoU %.2f | CVC pixAcc %.2f\n",
                 cp::model_title(loaded.network->model_name()).c_str(), loaded.variant.c_str(), path.c_str(),
                 r.seg_miou_original, r.seg_miou_vvd, r.cvc_miou, r.cvc_pixacc);
    if (vvd_control) {
      const auto on_rotated = cp::evaluate(loaded.network, rotated, device, 0).result;
      rotated_minus_control.push_back(
          {{"checkpoint", path}, {"variant", loaded.variant}, {"rotated", cp::to_json(on_rotated)},
           {"difference", cp::rotated_minus_control(stdout, loaded.variant, on_rotated, r)}});
    }
    names.push_back(loaded.variant);
    models.push_back(loaded.network->model_name());
    results.push_back(r);
    evaluations.push_back(std::move(evaluation));
  }
  // One model: its paper figures beside ours; several: none ("").
  const bool one_model = std::all_of(models.begin(), models.end(), [&](const auto& m) { return m == models.front(); });
  cp::print_table(stdout, data.name, results, one_model ? models.front() : std::string(), protocol);
  cp::write_results_json(std::filesystem::path(o.out) / "eval.json", data.name, results,
                         {{"checkpoints", checkpoints}, {"models", models}, {"class_names", data.class_names},
                          {"focal", data.focal}, {"eval_pairs", data.eval_size},
                          {"vvd_control", vvd_control}, {"rotated_minus_control", rotated_minus_control}});
  std::string sources;
  for (size_t i = 0; i < checkpoints.size(); ++i) {
    sources += (i ? ", " : "") + (one_model ? "" : cp::model_title(models[i]) + " ") + checkpoints[i];
  }
  cp::write_figures(o.out, data, names, evaluations, size_t(o.figure_samples),
                    (one_model ? cp::model_title(models.front()) + " " : std::string()) +
                        (checkpoints.size() > 1 ? "checkpoints in that order: " : "checkpoint ") + sources,
                    protocol);
  std::printf("wrote %s/eval.json, fig4_segmentation.png, fig5_inconsistency.png, fig6_class_iou.png\n",
              o.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"crossview-eval: segmentation and cross-view consistency (CVC) of trained crossview-train checkpoints."};
  cp::TrainOptions options;
  options.out = "crossview-eval-out";
  std::vector<std::string> checkpoints;
  std::string dump_logits_path;
  bool vvd_control = false;
  app.add_option("--checkpoint", checkpoints, "model.pt or checkpoint.pt written by crossview-train (repeatable)")
      ->required()
      ->check(CLI::ExistingFile);
  cp::add_data_options(app, options);
  cp::add_run_options(app, options);
  app.add_flag("--vvd-control", vvd_control,
               "control of the VVD columns: evaluate, instead of each rotated crop, the original view cropped to the "
               "same size around what the crop sees (no rotation); VVD mIoU minus its control is what the view "
               "direction costs, the rest of the gap to the original views is lost context. The rotated crops are "
               "evaluated too, and rotated - control is printed with a paired bootstrap over the scenes");
  app.add_option("--dump-logits", dump_logits_path, "write the logits of the first pair")->group("");  // test hook
  try {
    app.parse(argc, argv);
    cp::finalize_train_options(app, options);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run(options, checkpoints, dump_logits_path, vvd_control);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "crossview-eval: error: %s\n", cp::one_line(e.what_without_backtrace()).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crossview-eval: error: %s\n", cp::one_line(e.what()).c_str());
    return 1;
  }
}
