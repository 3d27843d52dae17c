// End-to-end runs of crossview-train and crossview-eval on tiny SyntheticStreet configurations:
// the output files and results.json's schema, the resume guarantee (a run stopped abruptly and
// resumed ends at exactly the weights of an uninterrupted run), crossview-eval reproducing
// the training program's evaluation from a checkpoint, and the networks of --model (DeepLabV3 and
// CCNet beside PSPNet).

#include <crossview_programs/trained_network.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::string kTrain = CROSSVIEW_BINARY_DIR "/bin/crossview-train";
const std::string kEval = CROSSVIEW_BINARY_DIR "/bin/crossview-eval";

/// A tiny configuration: two small renders per split, a 0.125-wide ResNet-18, a few iterations.
const std::string kTinyBase =
    " --iterations 6 --batch 4 --crop 48 --width 0.125 --train-images 3 --eval-images 2 --eval-height 64"
    " --eval-width 96 --checkpoint-every 2 --threads 2 --figure-samples 2";
/// ... with the consistency loss from iteration 3 and every variant trained from scratch.
const std::string kTiny = kTinyBase + " --closs-start 0.3 --warmup 0";

/// The cells of one CSV line.
std::vector<std::string> csv_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream row(line);
  for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
  return cells;
}

/// A fresh folder for one test's outputs.
fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("crossview_programs_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

struct Run {
  int status{-1};
  std::string output;
};

/// Runs `command` with stdout and stderr captured; the exit status (-1 if it did not exit).
Run run(const std::string& command, const fs::path& log) {
  const int raw = std::system((command + " > " + log.string() + " 2>&1").c_str());
  Run r;
  r.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
  std::ifstream in(log);
  std::stringstream s;
  s << in.rdbuf();
  r.output = s.str();
  return r;
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "missing ", path.string());
  return nlohmann::json::parse(in);
}

/// The model parameters and buffers of a crossview-train checkpoint, by name: the network is
/// rebuilt from the configuration the checkpoint stores, as crossview-eval does.
std::vector<std::pair<std::string, torch::Tensor>> checkpoint_tensors(const fs::path& path) {
  auto network = crossview_programs::load_trained_network(path).network;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : network->named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : network->named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

/// The losses of every row of a variant's train_log.csv ("loss" is the third column).
std::vector<double> logged_losses(const fs::path& path) {
  std::ifstream in(path);
  std::vector<double> losses;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) losses.push_back(std::stod(csv_cells(line).at(2)));
  return losses;
}

/// Checks a finished --model run: results.json names the model and holds `variants`, each trained
/// `iterations` with finite metrics and finite logged losses.
void check_model_run(const fs::path& out, const std::string& model, const std::vector<std::string>& variants,
                     int64_t iterations) {
  const auto results = read_json(out / "results.json");
  CHECK(results.at("model") == model);
  CHECK(results.at("config").at("model").at("name") == model);
  REQUIRE(results.at("variants").size() == variants.size());
  for (size_t i = 0; i < variants.size(); ++i) {
    const auto& v = results.at("variants")[i];
    CAPTURE(variants[i]);
    CHECK(v.at("name") == variants[i]);
    CHECK(v.at("iterations") == iterations);
    for (const char* key : {"seg_miou_original", "seg_miou_vvd", "cvc_miou", "cvc_pixacc"}) {
      const double value = v.at(key).get<double>();
      CHECK_MESSAGE((std::isfinite(value) && value >= 0.0 && value <= 100.0), key, " = ", value);
    }
    std::string slug = variants[i];
    std::replace(slug.begin(), slug.end(), '+', '_');
    const auto losses = logged_losses(out / slug / "train_log.csv");
    CHECK(int64_t(losses.size()) == iterations);
    for (double loss : losses) CHECK(std::isfinite(loss));
  }
}

void require_programs() {
  REQUIRE_MESSAGE(fs::exists(kTrain), kTrain, " is missing: build the crossview-train target first");
  REQUIRE_MESSAGE(fs::exists(kEval), kEval, " is missing: build the crossview-eval target first");
}

}  // namespace

TEST_CASE("crossview-train --help lists the Table 1 options") {
  require_programs();
  const auto dir = fresh_dir("help");
  const auto r = run(kTrain + " --help", dir / "log.txt");
  CHECK(r.status == 0);
  for (const char* flag : {"--variants", "--iterations", "--lr", "--crop", "--closs-alpha", "--resume", "--device"}) {
    CHECK_MESSAGE(r.output.find(flag) != std::string::npos, flag);
  }
  CHECK(r.output.find("--stop-after") == std::string::npos);  // hidden test hook
  CHECK(r.output.find("--model") != std::string::npos);
  // An unknown network: one line that names the flag and the value.
  const auto model = run(kTrain + " --model segformer --out " + (dir / "model").string(), dir / "model.txt");
  CHECK(model.status != 0);
  CHECK(model.output.find("crossview-train: error: --model") != std::string::npos);
  CHECK(model.output.find("segformer") != std::string::npos);
  CHECK(std::count(model.output.begin(), model.output.end(), '\n') == 1);
  CHECK_FALSE(fs::exists(dir / "model"));
  const auto bad = run(kTrain + " --variants baseline,nope --out " + (dir / "bad").string(), dir / "bad.txt");
  CHECK(bad.status != 0);
  CHECK(bad.output.find("nope") != std::string::npos);
  const auto no_root = run(kTrain + " --dataset camvid", dir / "no_root.txt");
  CHECK(no_root.status != 0);
  CHECK(no_root.output.find("--root") != std::string::npos);
}

TEST_CASE("crossview-train: a tiny run writes the table, results.json, logs, checkpoints and figures") {
  require_programs();
  const auto dir = fresh_dir("tiny");
  const auto out = dir / "out";
  const auto r = run(kTrain + kTiny + " --variants vvd+ggdc+closs,baseline --out " + out.string(), dir / "log.txt");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("Table 1") != std::string::npos);
  // Synthetic data: no paper figures inside the table, a line below that names them.
  CHECK(r.output.find("( 72.79)") == std::string::npos);
  CHECK(r.output.find("not comparable") != std::string::npos);

  const auto results = read_json(out / "results.json");
  CHECK(results.at("dataset") == "synthetic");
  const auto& variants = results.at("variants");
  REQUIRE(variants.size() == 2);
  CHECK(variants[0].at("name") == "baseline");  // Table 1's order, whatever the command line's
  CHECK(variants[1].at("name") == "vvd+ggdc+closs");
  for (const auto& v : variants) {
    for (const char* key : {"seg_miou_original", "seg_miou_vvd", "cvc_miou", "cvc_pixacc"}) {
      const double value = v.at(key).get<double>();
      CHECK_MESSAGE((value >= 0.0 && value <= 100.0), key, " = ", value);
    }
    CHECK(v.at("iterations") == 6);
    CHECK(v.at("train_seconds").get<double>() > 0.0);
    // Per-class IoU lists hold one entry per class (null for classes absent from the split).
    CHECK(v.at("per_class_iou_vvd").size() == 19);
  }

  for (const char* variant : {"baseline", "vvd_ggdc_closs"}) {
    CHECK(fs::exists(out / variant / "model.pt"));
    CHECK_FALSE(fs::exists(out / variant / "checkpoint.pt"));  // removed once the model is final
    std::ifstream log(out / variant / "train_log.csv");
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(log, line)) lines.push_back(line);
    REQUIRE(lines.size() == 7);  // header + one row per iteration
    const bool ggdc = std::string(variant) != "baseline";
    const auto header = csv_cells(lines[0]);
    // The mean |offset| of each of ResNet-18's 8 GGDC layers sits between the losses and the time.
    CHECK(lines[0].rfind("iteration,lr,loss,ce,aux,closs,", 0) == 0);
    CHECK(header.back() == "seconds");
    CHECK(header.size() == (ggdc ? 15u : 7u));
    if (ggdc) CHECK(header[6] == "offset:backbone.layer1.0.conv2");
    CHECK(lines[6].rfind("6,", 0) == 0);
    // The closs column: never on for the baseline; on from iteration 3 (30 % of 6 -> 2 done).
    for (size_t i = 1; i < lines.size(); ++i) {
      const auto cells = csv_cells(lines[i]);
      REQUIRE(cells.size() == header.size());
      if (ggdc) CHECK(std::stod(cells[6]) >= 0.0);
      const double closs = std::stod(cells[5]);
      if (std::string(variant) == "baseline" || i <= 2) {
        CHECK(closs == 0.0);
      } else {
        CHECK(closs > 0.0);
      }
    }
  }
  for (const char* figure : {"fig4_segmentation.png", "fig5_inconsistency.png", "fig6_class_iou.png"}) {
    const auto image = cv::imread((out / figure).string());
    CHECK_MESSAGE(!image.empty(), figure);
    CHECK(image.cols > 100);
  }
}

TEST_CASE("crossview-train --resume after an abrupt stop reaches the weights of an uninterrupted run") {
  require_programs();
  const auto dir = fresh_dir("resume");
  const std::string common = kTrain + kTiny + " --variants vvd+ggdc+closs --quiet --out ";
  const auto whole = run(common + (dir / "whole").string(), dir / "whole.txt");
  REQUIRE_MESSAGE(whole.status == 0, whole.output);

  // Stops right after iteration 5 without any clean-up; the last checkpoint is iteration 4.
  const auto stopped = run(common + (dir / "split").string() + " --stop-after 5", dir / "stopped.txt");
  REQUIRE_MESSAGE(stopped.status == 3, stopped.output);
  CHECK(fs::exists(dir / "split" / "vvd_ggdc_closs" / "checkpoint.pt"));
  CHECK_FALSE(fs::exists(dir / "split" / "vvd_ggdc_closs" / "model.pt"));
  const auto resumed = run(common + (dir / "split").string() + " --resume", dir / "resumed.txt");
  REQUIRE_MESSAGE(resumed.status == 0, resumed.output);
  CHECK(resumed.output.find("resuming at iteration 4") != std::string::npos);

  const auto a = checkpoint_tensors(dir / "whole" / "vvd_ggdc_closs" / "model.pt");
  const auto b = checkpoint_tensors(dir / "split" / "vvd_ggdc_closs" / "model.pt");
  REQUIRE(a.size() > 10);
  REQUIRE(a.size() == b.size());
  int64_t differing = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].first == b[i].first);
    if (!torch::equal(a[i].second, b[i].second)) {
      ++differing;
      MESSAGE(a[i].first, " differs by ", (a[i].second - b[i].second).abs().max().item<double>());
    }
  }
  CHECK(differing == 0);

  // The same evaluation, and the same log (apart from the timing column).
  const auto ra = read_json(dir / "whole" / "results.json").at("variants")[0];
  const auto rb = read_json(dir / "split" / "results.json").at("variants")[0];
  for (const char* key : {"seg_miou_original", "seg_miou_vvd", "cvc_miou", "cvc_pixacc"}) CHECK(ra.at(key) == rb.at(key));
  auto log_without_time = [](const fs::path& path) {
    std::ifstream in(path);
    std::vector<std::string> rows;
    std::string line;
    while (std::getline(in, line)) rows.push_back(line.substr(0, line.rfind(',')));
    return rows;
  };
  CHECK(log_without_time(dir / "whole" / "vvd_ggdc_closs" / "train_log.csv") ==
        log_without_time(dir / "split" / "vvd_ggdc_closs" / "train_log.csv"));

  // A resumed run with another configuration is refused instead of silently mixing runs.
  const auto other = run(kTrain + kTiny + " --variants vvd+ggdc+closs --quiet --lr 0.5 --resume --out " +
                             (dir / "split").string(),
                         dir / "other.txt");
  CHECK(other.status != 0);
  CHECK(other.output.find("another configuration") != std::string::npos);
  CHECK(other.output.find("/training/lr") != std::string::npos);
}

TEST_CASE("crossview-train --resume refuses a checkpoint trained with other loss settings") {
  require_programs();
  const auto dir = fresh_dir("resume_loss");
  const std::string common = kTrain + kTinyBase + " --warmup 0 --variants vvd+closs --quiet --out " + (dir / "out").string();
  const auto stopped = run(common + " --closs-start 0.3 --stop-after 3", dir / "stopped.txt");
  REQUIRE_MESSAGE(stopped.status == 3, stopped.output);
  const auto checkpoint = dir / "out" / "vvd_closs" / "checkpoint.pt";
  REQUIRE(fs::exists(checkpoint));
  const auto before = fs::last_write_time(checkpoint);
  // Every option of the loss and of the optimiser that the old configuration format left out.
  for (const std::string& change :
       {"--closs-start 0.3 --closs-alpha 2", "--closs-start 0.6", "--closs-start 0.3 --closs-layers last",
        "--closs-start 0.3 --aux-weight 0.2", "--closs-start 0.3 --momentum 0.8",
        "--closs-start 0.3 --offset-lr-mult 1"}) {
    CAPTURE(change);
    const auto r = run(common + " --resume " + change, dir / "changed.txt");
    CHECK(r.status != 0);
    CHECK(r.output.find("another configuration") != std::string::npos);
    CHECK(fs::last_write_time(checkpoint) == before);  // the checkpoint is left as it was
    CHECK_FALSE(fs::exists(dir / "out" / "vvd_closs" / "model.pt"));
  }
  const auto same = run(common + " --closs-start 0.3 --resume", dir / "same.txt");
  CHECK_MESSAGE(same.status == 0, same.output);
}

TEST_CASE("crossview-eval reproduces the training program's evaluation from the checkpoint") {
  require_programs();
  const auto dir = fresh_dir("eval");
  const auto train = run(kTrain + kTiny + " --variants vvd --quiet --out " + (dir / "train").string(), dir / "t.txt");
  REQUIRE_MESSAGE(train.status == 0, train.output);
  const auto eval = run(kEval + " --checkpoint " + (dir / "train" / "vvd" / "model.pt").string() +
                            " --eval-images 2 --eval-height 64 --eval-width 96 --threads 2 --figure-samples 2 --out " +
                            (dir / "eval").string(),
                        dir / "e.txt");
  REQUIRE_MESSAGE(eval.status == 0, eval.output);
  const auto trained = read_json(dir / "train" / "results.json").at("variants")[0];
  const auto evaluated = read_json(dir / "eval" / "eval.json").at("variants")[0];
  CHECK(evaluated.at("name") == "vvd");
  for (const char* key : {"seg_miou_original", "seg_miou_vvd", "cvc_miou", "cvc_pixacc"}) {
    CHECK(trained.at(key).get<double>() == doctest::Approx(evaluated.at(key).get<double>()).epsilon(1e-9));
  }
  CHECK(fs::exists(dir / "eval" / "fig5_inconsistency.png"));

  // --vvd-control evaluates the rotated crops too: rotated - control, paired over the scenes.
  const auto control = run(kEval + " --checkpoint " + (dir / "train" / "vvd" / "model.pt").string() +
                               " --eval-images 2 --eval-height 64 --eval-width 96 --threads 2 --figure-samples 2 "
                               "--vvd-control --out " +
                               (dir / "control").string(),
                           dir / "c.txt");
  REQUIRE_MESSAGE(control.status == 0, control.output);
  CHECK(control.output.find("rotated - control, 95 % paired bootstrap over the 2 scenes") != std::string::npos);
  const auto control_json = read_json(dir / "control" / "eval.json");
  const auto& on_control = control_json.at("variants")[0];
  const auto& pairs = control_json.at("rotated_minus_control");
  REQUIRE(pairs.size() == 1);
  CHECK(pairs[0].at("rotated").at("seg_miou_vvd").get<double>() ==
        doctest::Approx(trained.at("seg_miou_vvd").get<double>()).epsilon(1e-9));
  CHECK(on_control.at("seg_miou_original").get<double>() ==
        doctest::Approx(trained.at("seg_miou_original").get<double>()).epsilon(1e-9));
  for (const char* key : {"seg_miou_vvd", "cvc_miou", "cvc_pixacc"}) {
    CAPTURE(key);
    const auto& d = pairs[0].at("difference").at(key);
    const double expected = trained.at(key).get<double>() - on_control.at(key).get<double>();
    CHECK(d.at("observed").get<double>() == doctest::Approx(expected).epsilon(1e-6));
    CHECK(d.at("ci95")[0].get<double>() <= d.at("ci95")[1].get<double>());
  }
}

TEST_CASE("crossview-train --warmup trains a shared start once; every variant continues from it") {
  require_programs();
  const auto dir = fresh_dir("warmup");
  const auto out = dir / "out";
  const auto r = run(kTrain + kTinyBase + " --warmup 0.5 --variants baseline,vvd+ggdc+closs --quiet --out " + out.string(),
                     dir / "log.txt");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(fs::exists(out / "warmup" / "model.pt"));
  for (const char* variant : {"baseline", "vvd_ggdc_closs"}) {
    CAPTURE(variant);
    std::ifstream log(out / variant / "train_log.csv");
    std::vector<std::string> rows;
    for (std::string line; std::getline(log, line);) rows.push_back(line);
    REQUIRE(rows.size() == 4);  // header + iterations 4, 5, 6: the warm-up did 1-3
    CHECK(rows[1].rfind("4,", 0) == 0);
  }
  const auto results = read_json(out / "results.json");
  CHECK(results.at("warmup").at("iterations") == 3);
  CHECK(results.at("config").at("training").at("warmup") == 0.5);
  // Every scene's confusion matrices are kept for bootstrapping: 2 evaluation scenes.
  CHECK(results.at("variants")[0].at("per_scene_confusion").at("cvc").size() == 2);
  CHECK(results.at("variants")[1].at("mean_abs_offset").size() == 8);
}

TEST_CASE("crossview-train --seeds runs a paired study with intervals and a figure") {
  require_programs();
  const auto dir = fresh_dir("seeds");
  const auto out = dir / "out";
  const auto r = run(kTrain + kTiny + " --seeds 1-2 --variants baseline,vvd --quiet --out " + out.string(),
                     dir / "log.txt");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("2 seeds") != std::string::npos);
  const auto results = read_json(out / "results.json");
  CHECK(results.at("seeds") == std::vector<int>{1, 2});
  const auto& variants = results.at("variants");
  REQUIRE(variants.size() == 2);
  const auto& vvd = variants[1];
  CHECK(vvd.at("name") == "vvd");
  REQUIRE(vvd.at("seeds").size() == 2);
  for (const char* key : {"seg_miou_vvd", "cvc_miou", "cvc_pixacc", "seg_miou_original"}) {
    CAPTURE(key);
    const auto& d = vvd.at("difference_to_baseline").at(key);
    const double d1 = vvd.at("seeds")[0].at(key).get<double>() - variants[0].at("seeds")[0].at(key).get<double>();
    const double d2 = vvd.at("seeds")[1].at(key).get<double>() - variants[0].at("seeds")[1].at(key).get<double>();
    CHECK(d.at("mean").get<double>() == doctest::Approx((d1 + d2) / 2));
    CHECK(d.at("se").get<double>() == doctest::Approx(std::abs(d1 - d2) / 2));  // sd/sqrt(2) of two values
    CHECK(d.at("ci95")[0].get<double>() <= d.at("mean").get<double>());
    CHECK(d.at("ci95")[1].get<double>() >= d.at("mean").get<double>());
    const auto& b = vvd.at("bootstrap_difference_to_baseline").at(key);
    CHECK(b.at("ci95")[0].get<double>() <= b.at("ci95")[1].get<double>());
  }
  CHECK_FALSE(variants[0].contains("difference_to_baseline"));
  CHECK(fs::exists(out / "seed_1" / "results.json"));
  CHECK(fs::exists(out / "seed_2" / "vvd" / "model.pt"));
  const auto figure = cv::imread((out / "fig_seed_differences.png").string());
  CHECK(figure.cols > 300);

  // --resume reads back seeds that are complete (a study split over processes is aggregated so),
  // and reaches the same summary.
  const auto again = run(kTrain + kTiny + " --seeds 1-2 --variants baseline,vvd --quiet --resume --out " +
                             out.string(),
                         dir / "again.txt");
  REQUIRE_MESSAGE(again.status == 0, again.output);
  CHECK(again.output.find("seed 1: every variant already evaluated") != std::string::npos);
  CHECK(again.output.find("seed 2: every variant already evaluated") != std::string::npos);
  const auto reread = read_json(out / "results.json").at("variants");
  CHECK(reread[1].at("difference_to_baseline") == variants[1].at("difference_to_baseline"));
  CHECK(reread[1].at("bootstrap_difference_to_baseline") == variants[1].at("bootstrap_difference_to_baseline"));

  // Parts of a study may share one --out (separate processes): each refuses only its own seeds'
  // folders and the summary, and keeps a summary another part wrote meanwhile.
  fs::remove(out / "results.json");
  const auto own = run(kTrain + kTiny + " --seeds 2 --variants baseline,vvd --quiet --out " + out.string(),
                       dir / "own.txt");
  CHECK(own.status != 0);
  CHECK(own.output.find("seed_2") != std::string::npos);
  const auto other = run(kTrain + kTiny + " --seeds 3 --variants baseline,vvd --quiet --out " + out.string(),
                         dir / "other.txt");
  REQUIRE_MESSAGE(other.status == 0, other.output);
  CHECK(read_json(out / "results.json").at("seeds") == std::vector<int>{3});
  CHECK(fs::exists(out / "seed_1" / "vvd" / "model.pt"));
}

TEST_CASE("crossview-train --model deeplabv3 trains all four variants and prints them beside Table 3") {
  require_programs();
  const auto dir = fresh_dir("deeplabv3");
  const auto out = dir / "out";
  const auto r = run(kTrain + kTiny + " --model deeplabv3 --quiet --out " + out.string(), dir / "log.txt");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("DeepLabV3 on ResNet-18 x0.125") != std::string::npos);
  CHECK(r.output.find("Table 3 on synthetic, DeepLabV3") != std::string::npos);
  CHECK(r.output.find("(Table 3: baseline VVD / CVC mIoU 73.61 / 82.89, full method 76.88 / 87.24)") !=
        std::string::npos);
  check_model_run(out, "deeplabv3", {"baseline", "vvd", "vvd+closs", "vvd+ggdc+closs"}, 6);
  // The checkpoint rebuilds a DeepLabV3 (ASPP parameters, no pyramid pooling).
  const auto tensors = checkpoint_tensors(out / "vvd_ggdc_closs" / "model.pt");
  const auto has = [&](const std::string& name) {
    return std::any_of(tensors.begin(), tensors.end(), [&](const auto& t) { return t.first == name; });
  };
  CHECK(has("aspp.branches.1.0.weight"));
  CHECK(std::any_of(tensors.begin(), tensors.end(),
                    [](const auto& t) { return t.first.rfind("backbone.layer1.0.conv2.offset_head.", 0) == 0; }));
  CHECK_FALSE(has("ppm.0.1.weight"));

  // crossview-eval rebuilds the network from the checkpoint and reaches the training run's metrics.
  const auto eval = run(kEval + " --checkpoint " + (out / "vvd_ggdc_closs" / "model.pt").string() +
                            " --eval-images 2 --eval-height 64 --eval-width 96 --threads 2 --figure-samples 2 --out " +
                            (dir / "eval").string(),
                        dir / "e.txt");
  REQUIRE_MESSAGE(eval.status == 0, eval.output);
  CHECK(eval.output.find("Table 3 on synthetic, DeepLabV3") != std::string::npos);
  const auto trained = read_json(out / "results.json").at("variants")[3];
  const auto evaluated = read_json(dir / "eval" / "eval.json");
  CHECK(evaluated.at("models") == std::vector<std::string>{"deeplabv3"});
  CHECK(evaluated.at("variants")[0].at("name") == "vvd+ggdc+closs");
  for (const char* key : {"seg_miou_original", "seg_miou_vvd", "cvc_miou", "cvc_pixacc"}) {
    CAPTURE(key);
    CHECK(trained.at(key).get<double>() ==
          doctest::Approx(evaluated.at("variants")[0].at(key).get<double>()).epsilon(1e-9));
  }
}

TEST_CASE("crossview-train --model ccnet trains; crossview-eval reproduces it; --resume refuses another --model") {
  require_programs();
  const auto dir = fresh_dir("ccnet");
  const auto out = dir / "out";
  const std::string common = kTrain + kTiny + " --variants baseline,vvd+ggdc+closs --quiet --out " + out.string();
  const auto r = run(common + " --model ccnet", dir / "log.txt");
  REQUIRE_MESSAGE(r.status == 0, r.output);
  CHECK(r.output.find("Table 3 on synthetic, CCNet") != std::string::npos);
  CHECK(r.output.find("73.94 / 81.47") != std::string::npos);
  check_model_run(out, "ccnet", {"baseline", "vvd+ggdc+closs"}, 6);

  const auto eval = run(kEval + " --checkpoint " + (out / "baseline" / "model.pt").string() + " --checkpoint " +
                            (out / "vvd_ggdc_closs" / "model.pt").string() +
                            " --eval-images 2 --eval-height 64 --eval-width 96 --threads 2 --figure-samples 2 --out " +
                            (dir / "eval").string(),
                        dir / "e.txt");
  REQUIRE_MESSAGE(eval.status == 0, eval.output);
  const auto trained = read_json(out / "results.json").at("variants");
  const auto evaluated = read_json(dir / "eval" / "eval.json");
  CHECK(evaluated.at("models") == std::vector<std::string>{"ccnet", "ccnet"});
  for (size_t i = 0; i < 2; ++i) {
    CHECK(evaluated.at("variants")[i].at("name") == trained[i].at("name"));
    for (const char* key : {"seg_miou_original", "seg_miou_vvd", "cvc_miou", "cvc_pixacc"}) {
      CAPTURE(key);
      CHECK(trained[i].at(key).get<double>() ==
            doctest::Approx(evaluated.at("variants")[i].at(key).get<double>()).epsilon(1e-9));
    }
  }

  // The finished run's checkpoints are CCNet's: another --model (PSPNet by default) is refused,
  // naming the key, and nothing in --out changes.
  const auto before = fs::last_write_time(out / "baseline" / "model.pt");
  const auto results_before = read_json(out / "results.json");
  for (const std::string other : {" --model deeplabv3", ""}) {
    CAPTURE(other);
    const auto refused = run(common + other + " --resume", dir / "refused.txt");
    CHECK(refused.status != 0);
    CHECK(refused.output.find("another configuration (/model/name differ)") != std::string::npos);
    CHECK(fs::last_write_time(out / "baseline" / "model.pt") == before);
    CHECK(read_json(out / "results.json") == results_before);
  }
  const auto same = run(common + " --model ccnet --resume", dir / "same.txt");
  CHECK_MESSAGE(same.status == 0, same.output);
  CHECK(same.output.find("already trained") != std::string::npos);
}
