// The programs' bad-input corpus: crossview-train, crossview-eval and crossview-derive-vvd run as
// built, each on a table of broken inputs (missing root, empty split list, truncated PNG, labels
// of the wrong size or with values out of range, pair JSONs with a NaN or singular H or a missing
// key, truncated and foreign checkpoints, an --out that cannot be written, conflicting flags, a
// flag given twice). Every case must end with a non-zero exit, ONE line "<program>: error: ..."
// that names the file or flag and what was expected, no crash text, and every file that was in
// --out before the run unchanged afterwards.

#include <crossview_programs/checkpoint.hpp>
#include <crossview_programs/trained_network.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::string kTrain = CROSSVIEW_BINARY_DIR "/bin/crossview-train";
const std::string kEval = CROSSVIEW_BINARY_DIR "/bin/crossview-eval";
const std::string kDerive = CROSSVIEW_BINARY_DIR "/bin/crossview-derive-vvd";

/// A tiny network and schedule for CamVid-layout fixtures (the real-data defaults are the paper's).
const std::string kTinyCamVid =
    " --dataset camvid --focal 60 --variants baseline --iterations 2 --batch 2 --crop 32 --depth 18 --width 0.125"
    " --deep-stem false --warmup 0 --checkpoint-every 1 --eval-images 1 --figure-samples 1 --threads 1 --quiet";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Run {
  int status{-1};
  std::string output;
};

Run run(const std::string& command, const fs::path& log) {
  const int raw = std::system((command + " > " + log.string() + " 2>&1").c_str());
  return {(raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1, slurp(log)};
}

/// Every regular file under `dir` with its bytes, by path relative to `dir`.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files[fs::relative(entry.path(), dir).string()] = slurp(entry.path());
  }
  return files;
}

// A CamVid folder (SegNet layout) with train, val and test lists of `count` 64x96 images each.
void make_camvid(const fs::path& root, int count) {
  for (const std::string split : {"train", "val", "test"}) {
    fs::create_directories(root / split);
    fs::create_directories(root / (split + "annot"));
    std::ofstream list(root / (split + ".txt"));
    for (int i = 0; i < count; ++i) {
      cv::Mat image(64, 96, CV_8UC3);
      cv::randu(image, 0, 255);
      cv::Mat labels(64, 96, CV_8UC1);
      cv::randu(labels, 0, 12);  // 0..11: the 11 classes and Unlabelled
      const std::string name = split + std::to_string(i) + ".png";
      REQUIRE(cv::imwrite((root / split / name).string(), image));
      REQUIRE(cv::imwrite((root / (split + "annot") / name).string(), labels));
      list << split << "/" << name << " " << split << "annot/" << name << "\n";
    }
  }
}

/// Rewrites every pair JSON of a derived dataset with `edit`.
template <class Edit>
void edit_pairs(const fs::path& root, Edit edit) {
  for (const auto& entry : fs::directory_iterator(root / "pairs")) {
    auto j = nlohmann::json::parse(slurp(entry.path()));
    edit(j);
    std::ofstream(entry.path()) << j.dump();
  }
}

/// The fixtures every case reads, made once per test process under a fresh temporary folder.
struct Fixtures {
  fs::path dir;
  fs::path camvid, camvid_empty, camvid_truncated, camvid_label_size, camvid_label_range;
  fs::path vvd, vvd_nan, vvd_singular, vvd_missing_key;
  fs::path model, model_truncated, model_foreign, model_other_depth;
  fs::path a_file;  ///< a regular file: an --out below it cannot be created

  Fixtures() {
    dir = fs::temp_directory_path() / ("crossview_bad_inputs_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    camvid = dir / "camvid";
    make_camvid(camvid, 2);

    camvid_empty = dir / "camvid_empty";
    make_camvid(camvid_empty, 1);
    for (const char* list : {"train.txt", "val.txt", "test.txt"}) std::ofstream(camvid_empty / list, std::ios::trunc);

    // One image per split; that image cut to half its bytes (its label file intact).
    camvid_truncated = dir / "camvid_truncated";
    make_camvid(camvid_truncated, 1);
    for (const char* split : {"train", "val", "test"}) {
      const auto png = camvid_truncated / split / (std::string(split) + "0.png");
      fs::resize_file(png, fs::file_size(png) / 2);
    }

    camvid_label_size = dir / "camvid_label_size";
    make_camvid(camvid_label_size, 1);
    camvid_label_range = dir / "camvid_label_range";
    make_camvid(camvid_label_range, 1);
    for (const char* split : {"train", "val", "test"}) {
      const std::string name = std::string(split) + "0.png";
      REQUIRE(cv::imwrite((camvid_label_size / (std::string(split) + "annot") / name).string(),
                          cv::Mat(40, 60, CV_8UC1, cv::Scalar(3))));
      REQUIRE(cv::imwrite((camvid_label_range / (std::string(split) + "annot") / name).string(),
                          cv::Mat(64, 96, CV_8UC1, cv::Scalar(200))));
    }

    // A derived VVD set of the CamVid test split, written by the program, and broken copies.
    vvd = dir / "vvd";
    const auto derived = run(kDerive + " --dataset camvid --root " + camvid.string() + " --focal 60 --out " + vvd.string(),
                             dir / "derive.txt");
    REQUIRE_MESSAGE(derived.status == 0, derived.output);
    vvd_nan = dir / "vvd_nan";
    vvd_singular = dir / "vvd_singular";
    vvd_missing_key = dir / "vvd_missing_key";
    for (const auto& copy : {vvd_nan, vvd_singular, vvd_missing_key}) fs::copy(vvd, copy, fs::copy_options::recursive);
    // JSON has no NaN: nlohmann (and Python's json with allow_nan=False) write null for it.
    edit_pairs(vvd_nan, [](nlohmann::json& j) { j["H"][1][2] = nullptr; });
    edit_pairs(vvd_singular, [](nlohmann::json& j) { j["H"][2] = j["H"][1]; });
    edit_pairs(vvd_missing_key, [](nlohmann::json& j) { j.erase("focal"); });

    // A trained model (11 CamVid classes) and broken or foreign ones.
    const auto trained =
        run(kTrain + kTinyCamVid + " --root " + camvid.string() + " --out " + (dir / "trained").string(), dir / "train.txt");
    REQUIRE_MESSAGE(trained.status == 0, trained.output);
    model = dir / "trained" / "baseline" / "model.pt";
    REQUIRE(fs::exists(model));
    model_truncated = dir / "truncated.pt";
    fs::copy_file(model, model_truncated);
    fs::resize_file(model_truncated, fs::file_size(model) * 2 / 3);
    model_foreign = dir / "foreign.pt";  // a libtorch archive of some other module
    torch::nn::Linear linear(4, 2);
    torch::save(linear, model_foreign.string());
    // The same tensors under a configuration that describes another network (ResNet-34).
    {
      auto loaded = crossview_programs::load_trained_network(model);
      auto meta = crossview_programs::read_checkpoint_meta(model);
      auto config = nlohmann::json::parse(meta.config_json);
      config["model"]["depth"] = 34;
      meta.config_json = config.dump();
      model_other_depth = dir / "other_depth.pt";
      crossview_programs::save_checkpoint(model_other_depth, *loaded.network, nullptr, meta);
    }
    a_file = dir / "a_file.txt";
    std::ofstream(a_file) << "not a folder\n";
  }
  ~Fixtures() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Fixtures& fixtures() {
  static Fixtures f;
  return f;
}

/// One bad input: the arguments after the program, the texts its error line must hold, and
/// whether --out is appended (pointing at a folder with earlier results that must survive).
struct BadInput {
  std::string name;
  std::string args;
  std::vector<std::string> expected;
  bool append_out{true};
};

/// Runs `program` on every case and checks the contract in the file comment. With
/// `earlier_results`, --out holds files of an earlier run before each case (crossview-derive-vvd
/// refuses such a folder, so its cases get a fresh --out).
void check_bad_inputs(const std::string& program, const std::vector<BadInput>& cases, bool earlier_results = true) {
  const auto& f = fixtures();
  const std::string program_name = fs::path(program).filename().string();
  int index = 0;
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const auto out = f.dir / ("out_" + program_name + "_" + std::to_string(index++));
    std::string command = program + " " + c.args;
    if (c.append_out && earlier_results) {
      // Earlier results the failed run must leave alone.
      // (A variant the cases do not train: see the test below for the one they train.)
      fs::create_directories(out / "vvd");
      std::ofstream(out / "results.json") << "{\"earlier\": true}\n";
      std::ofstream(out / "eval.json") << "{\"earlier\": true}\n";
      std::ofstream(out / "vvd" / "train_log.csv") << "iteration,loss\n1,2.5\n";
    }
    if (c.append_out) command += " --out " + out.string();
    const auto before = snapshot(out);
    const auto r = run(command, f.dir / "log.txt");
    CAPTURE(command);
    CAPTURE(r.output);
    CHECK(r.status != 0);
    CHECK(r.status != -1);  // exited, not killed by a signal
    std::vector<std::string> error_lines;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      if (line.find(": error: ") != std::string::npos) error_lines.push_back(line);
      for (const char* crash : {"terminate called", "Segmentation fault", "Aborted", "Exception raised from",
                                "core dumped", "what():"}) {
        CHECK_MESSAGE(line.find(crash) == std::string::npos, "crash text: ", line);
      }
    }
    REQUIRE_MESSAGE(error_lines.size() == 1, "expected one error line");
    CHECK(error_lines[0].rfind(program_name + ": error: ", 0) == 0);
    for (const auto& text : c.expected) CHECK_MESSAGE(error_lines[0].find(text) != std::string::npos, "missing '", text, "'");
    const auto after = snapshot(out);
    for (const auto& [path, bytes] : before) {
      const auto it = after.find(path);
      CHECK_MESSAGE(it != after.end(), path, " was deleted");
      if (it != after.end()) CHECK_MESSAGE(it->second == bytes, path, " was changed");
    }
  }
}

}  // namespace

TEST_CASE("crossview-train: every bad input ends with one error line naming the flag or file; --out untouched") {
  REQUIRE_MESSAGE(fs::exists(kTrain), kTrain, " is missing: build the crossview-train target first");
  const auto& f = fixtures();
  const std::string tiny = kTinyCamVid + " --root ";
  std::vector<BadInput> cases = {
      {"missing root", tiny + (f.dir / "nope").string(), {"nope/train.txt", "cannot open"}},
      {"empty split list", tiny + f.camvid_empty.string(), {"train.txt", "lists no images"}},
      {"truncated PNG", tiny + f.camvid_truncated.string(), {"train0.png", "truncated PNG"}},
      {"label of the wrong size", tiny + f.camvid_label_size.string(), {"trainannot/train0.png", "60x40", "96x64"}},
      {"label value out of range", tiny + f.camvid_label_range.string(), {"unexpected label value 200", "train0.png"}},
      {"pairs JSON with a NaN H", tiny + f.camvid.string() + " --vvd-root " + f.vvd_nan.string(),
       {"vvd_nan/pairs/", "H[1][2] must be a finite number, got null"}},
      {"pairs JSON with a singular H", tiny + f.camvid.string() + " --vvd-root " + f.vvd_singular.string(),
       {"vvd_singular/pairs/", "H must be invertible"}},
      {"pairs JSON without a key", tiny + f.camvid.string() + " --vvd-root " + f.vvd_missing_key.string(),
       {"vvd_missing_key/pairs/", "'focal'"}},
      {"--vvd-root that is no derived set", tiny + f.camvid.string() + " --vvd-root " + f.camvid.string(),
       {"camvid/pairs", "not a derived VVD dataset"}},
      {"--out below a regular file", tiny + f.camvid.string() + " --out " + (f.a_file / "out").string(),
       {"a_file.txt"}, false},
      {"--seed and --seeds", tiny + f.camvid.string() + " --seed 1 --seeds 1-2", {"--seeds", "--seed"}},
      {"--scale-min above --scale-max", tiny + f.camvid.string() + " --scale-min 2 --scale-max 1.5",
       {"--scale-min", "--scale-max"}},
      {"--threads given twice", tiny + f.camvid.string() + " --threads 2", {"--threads was given 2 times (1, 2)"}},
      {"--lr given twice", tiny + f.camvid.string() + " --lr 0.1 --lr 0.2", {"--lr was given 2 times (0.1, 0.2)"}},
      {"--dataset camvid without --root", " --dataset camvid", {"--root"}},
      {"unknown variant", tiny + f.camvid.string() + " --variants baseline,nope", {"--variants", "nope"}},
      {"negative --iterations", tiny + f.camvid.string() + " --iterations -3", {"--iterations", "-3"}},
      {"--out holding an earlier run, without --resume or --force", tiny + f.camvid.string(),
       {"holds an earlier run", "--resume", "--force"}},
  };
  if (!torch::cuda::is_available()) {
    cases.push_back({"--device cuda without a GPU", tiny + f.camvid.string() + " --device cuda", {"--device cuda"}});
  }
  // --out holds an earlier run, which crossview-train refuses to replace without --force: every
  // other case passes --force, so its own error shows, and the earlier files must survive anyway.
  for (auto& c : cases) {
    if (c.name.rfind("--out holding an earlier run", 0) != 0) c.args += " --force";
  }
  check_bad_inputs(kTrain, cases);
}

// A run that fails on its first batch must not have emptied an earlier run's log of the same
// variant (crossview-train opens train_log.csv at the first finished step).
TEST_CASE("crossview-train without --resume leaves an earlier run's log of the same variant alone") {
  const auto& f = fixtures();
  const auto out = f.dir / "earlier_run";
  fs::create_directories(out / "baseline");
  std::ofstream(out / "baseline" / "train_log.csv") << "iteration,loss\n1,2.5\n";
  const auto before = slurp(out / "baseline" / "train_log.csv");
  const auto r = run(kTrain + kTinyCamVid + " --root " + f.camvid_truncated.string() + " --out " + out.string(),
                     f.dir / "earlier.txt");
  CHECK(r.status == 1);
  CHECK(slurp(out / "baseline" / "train_log.csv") == before);
}

TEST_CASE("crossview-train --resume: a truncated checkpoint is reported and kept, not overwritten") {
  const auto& f = fixtures();
  const auto out = f.dir / "resume_truncated";
  fs::create_directories(out / "baseline");
  fs::copy_file(f.model_truncated, out / "baseline" / "checkpoint.pt");
  const auto before = slurp(out / "baseline" / "checkpoint.pt");
  const auto r = run(kTrain + kTinyCamVid + " --root " + f.camvid.string() + " --resume --out " + out.string(),
                     f.dir / "resume.txt");
  CAPTURE(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("crossview-train: error: read_checkpoint_meta: " + (out / "baseline" / "checkpoint.pt").string() +
                      " is not a readable checkpoint") != std::string::npos);
  CHECK(slurp(out / "baseline" / "checkpoint.pt") == before);
  CHECK_FALSE(fs::exists(out / "baseline" / "model.pt"));
}

TEST_CASE("crossview-eval: every bad input ends with one error line naming the flag or file; --out untouched") {
  REQUIRE_MESSAGE(fs::exists(kEval), kEval, " is missing: build the crossview-eval target first");
  const auto& f = fixtures();
  const std::string common = " --dataset camvid --focal 60 --eval-images 1 --figure-samples 1 --threads 1 --quiet";
  const std::string good = " --checkpoint " + f.model.string() + common + " --root ";
  std::vector<BadInput> cases = {
      {"missing checkpoint", "--checkpoint " + (f.dir / "nope.pt").string() + common + " --root " + f.camvid.string(),
       {"--checkpoint", "nope.pt"}},
      {"truncated checkpoint", "--checkpoint " + f.model_truncated.string() + common + " --root " + f.camvid.string(),
       {"truncated.pt", "not a readable checkpoint"}},
      {"checkpoint of another program", "--checkpoint " + f.model_foreign.string() + common + " --root " + f.camvid.string(),
       {"foreign.pt", "not a crossview-train checkpoint", "'iteration'"}},
      {"checkpoint whose configuration is another network",
       "--checkpoint " + f.model_other_depth.string() + common + " --root " + f.camvid.string(),
       {"other_depth.pt", "do not fit the network"}},
      {"checkpoint of other classes than the data",
       "--checkpoint " + f.model.string() + " --eval-images 1 --eval-height 64 --eval-width 96 --threads 1",
       {"model.pt", "predicts 11 classes", "synthetic data has 19"}},
      {"missing root", good + (f.dir / "nope").string(), {"nope/test.txt", "cannot open"}},
      {"empty split list", good + f.camvid_empty.string(), {"test.txt", "lists no images"}},
      {"truncated PNG", good + f.camvid_truncated.string(), {"test0.png", "truncated PNG"}},
      {"label of the wrong size", good + f.camvid_label_size.string(), {"testannot/test0.png", "60x40", "96x64"}},
      {"label value out of range", good + f.camvid_label_range.string(), {"unexpected label value 200", "test0.png"}},
      {"pairs JSON with a NaN H", good + f.camvid.string() + " --vvd-root " + f.vvd_nan.string(),
       {"vvd_nan/pairs/", "H[1][2] must be a finite number, got null"}},
      {"pairs JSON with a singular H", good + f.camvid.string() + " --vvd-root " + f.vvd_singular.string(),
       {"vvd_singular/pairs/", "H must be invertible"}},
      {"pairs JSON without a key", good + f.camvid.string() + " --vvd-root " + f.vvd_missing_key.string(),
       {"vvd_missing_key/pairs/", "'focal'"}},
      {"--out that is a file", good + f.camvid.string() + " --out " + f.a_file.string(), {"a_file.txt"}, false},
      {"--threads given twice", good + f.camvid.string() + " --threads 2", {"--threads was given 2 times (1, 2)"}},
      {"no --checkpoint", common + " --root " + f.camvid.string(), {"--checkpoint", "required"}},
  };
  check_bad_inputs(kEval, cases);
}

TEST_CASE("crossview-derive-vvd: every bad input ends with one error line naming the flag or file") {
  REQUIRE_MESSAGE(fs::exists(kDerive), kDerive, " is missing: build the crossview-derive-vvd target first");
  const auto& f = fixtures();
  const std::string camvid = "--dataset camvid --focal 60 --root ";
  std::vector<BadInput> cases = {
      {"missing root", camvid + (f.dir / "nope").string(), {"nope/test.txt", "cannot open"}},
      {"empty split list", camvid + f.camvid_empty.string(), {"test.txt", "lists no images"}},
      {"truncated PNG", camvid + f.camvid_truncated.string(), {"test0.png", "truncated PNG"}},
      {"label of the wrong size", camvid + f.camvid_label_size.string(), {"testannot/test0.png", "60x40", "96x64"}},
      {"label value out of range", camvid + f.camvid_label_range.string(), {"unexpected label value 200", "test0.png"}},
      {"negative --focal", "--dataset camvid --focal -5 --root " + f.camvid.string(), {"focal", "-5"}},
      {"--seed given twice", camvid + f.camvid.string() + " --seed 1 --seed 2", {"--seed was given 2 times (1, 2)"}},
      {"--root with --dataset synthetic", "--dataset synthetic --root " + f.camvid.string(), {"--root", "synthetic"}},
      {"--synthetic-width with camvid", camvid + f.camvid.string() + " --synthetic-width 64",
       {"--synthetic-width", "camvid"}},
      {"no --out", camvid + f.camvid.string(), {"--out", "required"}, false},
      {"--out that is a file", camvid + f.camvid.string() + " --out " + f.a_file.string(), {"a_file.txt", "not a folder"},
       false},
      // Another derivation's folder (other seed): refused, and left as it was.
      {"--out holding another derivation", camvid + f.camvid.string() + " --seed 7 --out " + f.vvd.string(),
       {"vvd", "other settings"}, false},
  };
  const auto vvd_before = snapshot(f.vvd);
  check_bad_inputs(kDerive, cases, /*earlier_results=*/false);
  CHECK(snapshot(f.vvd) == vvd_before);
}
