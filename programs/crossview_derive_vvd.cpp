// crossview-derive-vvd: derives a varying-view-direction (VVD) evaluation dataset as the paper does
// (Sec. 4.2): for each image of a split a random view (yaw/pitch/roll uniform in +-30/+-15/+-3
// degrees, seeded), the image warped bilinearly and the label by nearest neighbour, cropped to the
// largest inscribed rectangle, written as OUT/images/<id>.png, OUT/labels/<id>.png and
// OUT/pairs/<id>.json (DESIGN.md). Resumable: complete pairs are skipped.
//
//   crossview-derive-vvd --dataset camvid --root ../shared/data/camvid --split test --out vvd-camvid
//   crossview-derive-vvd --dataset cityscapes --root /data/cityscapes --split val --out vvd-cityscapes
//   crossview-derive-vvd --dataset synthetic --out vvd-synthetic --limit 100
#include <crossview/io/camvid.hpp>
#include <crossview/io/cityscapes.hpp>
#include <crossview/io/derivation_job.hpp>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

namespace {

constexpr int64_t kSyntheticDefaultCount = 100;  // pairs when --dataset synthetic has no --limit
constexpr int kBarWidth = 30;

std::string format_seconds(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  return buffer;
}

// A one-line progress bar on stderr: [#####.....] done/total  rate  ETA.
class ProgressBar {
 public:
  void operator()(int64_t done, int64_t total, bool skipped) {
    if (skipped) ++skipped_;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const int64_t derived = done - skipped_;
    const double rate = elapsed > 0 ? double(derived) / elapsed : 0.0;
    const double eta = rate > 0 ? double(total - done) / rate : 0.0;
    const int filled = total > 0 ? int(kBarWidth * done / total) : kBarWidth;
    std::cerr << "\r[" << std::string(std::size_t(filled), '#') << std::string(std::size_t(kBarWidth - filled), '.')
              << "] " << done << "/" << total << "  " << std::fixed;
    std::cerr.precision(1);
    std::cerr << rate << " img/s  ETA " << format_seconds(eta);
    if (skipped_ > 0) std::cerr << "  (" << skipped_ << " already there)";
    std::cerr << std::flush;
    if (done == total) std::cerr << "\n";
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  int64_t skipped_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Derive a varying-view-direction (VVD) evaluation dataset (paper Sec. 4.2)"};
  std::string dataset, root, split, out;
  std::uint64_t seed = 0;
  double focal = 0.0;
  int64_t limit = 0;
  bool force = false;
  int64_t synthetic_height = 256, synthetic_width = 512;
  app.add_option("--dataset", dataset, "Source dataset")
      ->required()
      ->check(CLI::IsMember({"camvid", "cityscapes", "synthetic"}));
  app.add_option("--root", root, "Dataset root (camvid: SegNet layout with train.txt...; cityscapes: leftImg8bit/, gtFine/)");
  app.add_option("--split", split, "Split to derive (default: test for camvid, val for cityscapes)");
  app.add_option("--out", out, "Output folder (created; resumed when it holds this derivation)")->required();
  app.add_option("--seed", seed, "Seed of the random views")->capture_default_str();
  app.add_option("--focal", focal,
                 "Focal length in pixels (default 0: 2262 scaled to the image width, the Cityscapes camera)")
      ->capture_default_str();
  app.add_option("--limit", limit, "Derive only the first N images (synthetic: N scenes, default 100)");
  app.add_flag("--force", force, "Write into a non-empty folder of other content and re-derive existing pairs");
  app.add_option("--synthetic-height", synthetic_height, "Synthetic render height")->capture_default_str();
  app.add_option("--synthetic-width", synthetic_width, "Synthetic render width")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    if (split.empty()) split = dataset == "cityscapes" ? "val" : "test";
    auto options = crossview::DeriveVVDOptions().seed(seed).focal(focal).limit(limit).force(force);
    ProgressBar bar;
    crossview::DeriveVVDReport report;
    if (dataset == "synthetic") {
      options.source("synthetic " + std::to_string(synthetic_height) + "x" + std::to_string(synthetic_width));
      const auto scenes = crossview::SyntheticStreetOptions().height(synthetic_height).width(synthetic_width);
      const int64_t count = limit > 0 ? limit : kSyntheticDefaultCount;
      std::cerr << "deriving " << count << " synthetic pairs into " << out << "\n";
      report = crossview::derive_synthetic_vvd_dataset(scenes, count, out, options, std::ref(bar));
    } else {
      if (root.empty()) throw std::invalid_argument("--root is required for --dataset " + dataset);
      options.source(dataset + " " + split + " " + std::filesystem::weakly_canonical(root).string());
      const bool camvid = dataset == "camvid";
      const auto files = camvid ? crossview::camvid_files(root, split) : crossview::cityscapes_files(root, split);
      const int64_t classes = camvid ? crossview::kCamVidNumClasses : crossview::kCityscapesNumClasses;
      std::cerr << "deriving " << (limit > 0 ? std::min<int64_t>(limit, int64_t(files.size())) : int64_t(files.size()))
                << " of " << files.size() << " " << dataset << " " << split << " images into " << out
                << (focal > 0 ? "" : " (focal 2262 * width / 2048)") << "\n";
      report = crossview::derive_vvd_dataset(files, classes, out, options, std::ref(bar));
    }
    std::cout << "wrote " << report.written << " pairs, kept " << report.skipped << " existing, in " << out << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "\ncrossview-derive-vvd: " << e.what() << "\n";
    return 1;
  }
}
