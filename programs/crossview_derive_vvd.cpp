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
#include <crossview_programs/cli_errors.hpp>
#include <crossview_programs/progress.hpp>

#include <CLI/CLI.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

namespace {

constexpr int64_t kSyntheticDefaultCount = 100;  // pairs when --dataset synthetic has no --limit

// The programs' progress bar (one redrawn line on a terminal, a line every 10 % in a log file), as
// a derivation's progress callback.
crossview::DeriveVVDProgress progress_bar(int64_t total) {
  auto bar = std::make_shared<crossview_programs::ProgressBar>("deriving", total, 0, true);
  bar->unit("img").skipped_note("already there");
  return [bar](int64_t done, int64_t, bool skipped) { bar->update(done, {}, skipped); };
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Derive a varying-view-direction (VVD) evaluation dataset (paper Sec. 4.2)"};
  crossview_programs::use_one_line_errors(app);
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
    // Flags that the chosen source would silently ignore are conflicts, not no-ops.
    if (dataset == "synthetic") {
      for (const char* flag : {"--root", "--split"}) {
        if (app.count(flag) > 0) {
          throw std::invalid_argument(std::string(flag) + " is not used with --dataset synthetic (it renders its scenes)");
        }
      }
    } else {
      for (const char* flag : {"--synthetic-height", "--synthetic-width"}) {
        if (app.count(flag) > 0) {
          throw std::invalid_argument(std::string(flag) + " is only used with --dataset synthetic, not " + dataset);
        }
      }
    }
    if (split.empty()) split = dataset == "cityscapes" ? "val" : "test";
    auto options = crossview::DeriveVVDOptions().seed(seed).focal(focal).limit(limit).force(force);
    crossview::DeriveVVDReport report;
    if (dataset == "synthetic") {
      options.source("synthetic " + std::to_string(synthetic_height) + "x" + std::to_string(synthetic_width));
      const auto scenes = crossview::SyntheticStreetOptions().height(synthetic_height).width(synthetic_width);
      const int64_t count = limit > 0 ? limit : kSyntheticDefaultCount;
      std::cerr << "deriving " << count << " synthetic pairs into " << out << "\n";
      report = crossview::derive_synthetic_vvd_dataset(scenes, count, out, options, progress_bar(count));
    } else {
      if (root.empty()) throw std::invalid_argument("--root is required for --dataset " + dataset);
      options.source(dataset + " " + split + " " + std::filesystem::weakly_canonical(root).string());
      const bool camvid = dataset == "camvid";
      const auto files = camvid ? crossview::camvid_files(root, split) : crossview::cityscapes_files(root, split);
      const int64_t classes = camvid ? crossview::kCamVidNumClasses : crossview::kCityscapesNumClasses;
      const int64_t total = limit > 0 ? std::min<int64_t>(limit, int64_t(files.size())) : int64_t(files.size());
      std::cerr << "deriving " << total << " of " << files.size() << " " << dataset << " " << split << " images into " << out
                << (focal > 0 ? "" : " (focal 2262 * width / 2048)") << "\n";
      report = crossview::derive_vvd_dataset(files, classes, out, options, progress_bar(total));
    }
    std::cout << "wrote " << report.written << " pairs, kept " << report.skipped << " existing, in " << out << "\n";
    return 0;
  } catch (const c10::Error& e) {
    std::cerr << (::isatty(2) ? "\n" : "") << "crossview-derive-vvd: error: "
              << crossview_programs::one_line(e.what_without_backtrace()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << (::isatty(2) ? "\n" : "") << "crossview-derive-vvd: error: " << crossview_programs::one_line(e.what())
              << "\n";
    return 1;
  }
}
