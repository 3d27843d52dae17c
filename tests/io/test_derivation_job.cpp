// VVD dataset derivation (Sec. 4.2): derived pixels against cv::warpPerspective with the recorded
// H, labels against OpenCV's nearest warp, the crop free of fill pixels and maximal (brute force),
// the JSON record against the recorded angles, resumability, refusal of foreign folders, the
// reader, the synthetic variant, and the program's --help and progress in a log file.
#include <crossview/io.hpp>
#include <crossview/io/derivation_job.hpp>

#include <doctest/doctest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("crossview_derive_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A smooth, textured colour image (gradients of a few levels per pixel, so that OpenCV's 1/32-pixel
// fixed-point interpolation stays within one level) and a label image of blobs.
void make_camvid_fixture(const fs::path& root, int count, int h, int w) {
  fs::create_directories(root / "test");
  fs::create_directories(root / "testannot");
  std::ofstream list(root / "test.txt");
  for (int i = 0; i < count; ++i) {
    cv::Mat image(h, w, CV_8UC3), label(h, w, CV_8UC1);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const double u = double(x) / w, v = double(y) / h;
        image.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(127 + 100 * std::sin(6.0 * u + i)), uchar(127 + 100 * std::cos(5.0 * v)),
                                              uchar(127 + 90 * std::sin(4.0 * (u + v))));
        label.at<uchar>(y, x) = uchar((x / 9 + y / 7 + i) % 12);  // 0..11, 11 = Unlabelled
      }
    }
    const std::string name = "f" + std::to_string(i) + ".png";
    REQUIRE(cv::imwrite((root / "test" / name).string(), image));
    REQUIRE(cv::imwrite((root / "testannot" / name).string(), label));
    list << "test/" << name << " testannot/" << name << "\n";
  }
}

cv::Mat to_mat_rgb(const torch::Tensor& image_u8) {  // [3, H, W] uint8 -> HxWx3 (RGB order kept)
  auto hwc = image_u8.permute({1, 2, 0}).contiguous();
  return cv::Mat(int(hwc.size(0)), int(hwc.size(1)), CV_8UC3, hwc.data_ptr<uint8_t>()).clone();
}
cv::Mat to_mat_u8(const torch::Tensor& label) {
  auto u8 = label.to(torch::kUInt8).contiguous();
  return cv::Mat(int(u8.size(0)), int(u8.size(1)), CV_8UC1, u8.data_ptr<uint8_t>()).clone();
}
cv::Mat to_cv(const Eigen::Matrix3d& H) {
  cv::Mat m(3, 3, CV_64F);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) m.at<double>(r, c) = H(r, c);
  return m;
}

// Largest all-valid axis-aligned rectangle of a mask by brute force over all rectangles (prefix
// sums), independent of largest_inscribed_rect's histogram method.
int64_t brute_force_max_area(const std::vector<std::vector<int>>& valid) {
  const int h = int(valid.size()), w = int(valid[0].size());
  std::vector<std::vector<int>> S(std::size_t(h + 1), std::vector<int>(std::size_t(w + 1), 0));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) S[y + 1][x + 1] = S[y][x + 1] + S[y + 1][x] - S[y][x] + valid[y][x];
  int64_t best = 0;
  for (int y0 = 0; y0 < h; ++y0)
    for (int y1 = y0 + 1; y1 <= h; ++y1)
      for (int x0 = 0; x0 < w; ++x0) {
        for (int x1 = w; x1 > x0; --x1) {
          const int64_t area = int64_t(y1 - y0) * (x1 - x0);
          if (area <= best) break;
          if (S[y1][x1] - S[y0][x1] - S[y1][x0] + S[y0][x0] == area) {
            best = area;
            break;
          }
        }
      }
  return best;
}

bool maps_inside(const Eigen::Matrix3d& H_src_dst, double x, double y, int w, int h) {
  const Eigen::Vector3d q = H_src_dst * Eigen::Vector3d(x, y, 1.0);
  if (q.z() <= 0) return false;
  const double u = q.x() / q.z(), v = q.y() / q.z();
  const double eps = 1e-9;
  return u >= -eps && v >= -eps && u <= w - 1 + eps && v <= h - 1 + eps;
}

// Checks every derived pair of `out` against its source: pixels vs cv::warpPerspective, labels vs
// OpenCV's nearest warp, crop inside and maximal, record vs angles.
void check_derived_dataset(const fs::path& out, int64_t expected_pairs, bool brute_force) {
  crossview::DerivedVVDDataset ds(out);
  REQUIRE(int64_t(*ds.size()) == expected_pairs);
  for (std::size_t i = 0; i < *ds.size(); ++i) {
    const auto r = ds.record(i);
    CAPTURE(r.id);
    const auto s = ds.get(i);
    const auto source_u8 = crossview::read_image(r.source_image);
    const int W = int(source_u8.size(2)), Hh = int(source_u8.size(1));
    // The record: angles in the paper's ranges, H = T(-crop origin) K R K^-1.
    CHECK(std::abs(r.yaw_deg) <= 30.0);
    CHECK(std::abs(r.pitch_deg) <= 15.0);
    CHECK(std::abs(r.roll_deg) <= 3.0);
    const auto K = crossview::Intrinsicsd::centered(r.focal, W, Hh);
    const Eigen::Matrix3d R = crossview::rotation_from_euler(crossview::deg2rad(r.yaw_deg), crossview::deg2rad(r.pitch_deg),
                                                             crossview::deg2rad(r.roll_deg));
    const Eigen::Matrix3d H_full = crossview::rotation_homography(K, R);
    Eigen::Matrix3d T = Eigen::Matrix3d::Identity();
    T(0, 2) = -double(r.crop.x);
    T(1, 2) = -double(r.crop.y);
    CHECK((T * H_full - r.H).cwiseAbs().maxCoeff() < 1e-9 * H_full.cwiseAbs().maxCoeff());
    CHECK(torch::allclose(s.image, source_u8.to(torch::kFloat32) / 255.0));
    CHECK((s.derived_image.sizes() == torch::IntArrayRef({3, r.crop.height, r.crop.width})));

    // Pixels: cv::warpPerspective with the recorded H (bilinear, 1/32-pixel fixed point).
    cv::Mat expected;
    cv::warpPerspective(to_mat_rgb(source_u8), expected, to_cv(r.H), cv::Size(int(r.crop.width), int(r.crop.height)),
                        cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
    const auto derived_u8 = crossview::read_image(crossview::derived_image_path(out, r.id));
    cv::Mat diff;
    cv::absdiff(to_mat_rgb(derived_u8), expected, diff);
    double max_diff = 0;
    cv::minMaxLoc(diff.reshape(1), nullptr, &max_diff);
    CHECK(max_diff <= 2.0);
    CHECK(cv::mean(diff)[0] < 0.5);

    // Labels: OpenCV's nearest warp of the source train ids, 255 outside.
    cv::Mat expected_label;
    cv::warpPerspective(to_mat_u8(s.label), expected_label, to_cv(r.H), cv::Size(int(r.crop.width), int(r.crop.height)),
                        cv::INTER_NEAREST, cv::BORDER_CONSTANT, cv::Scalar::all(255));
    const auto cv_label = torch::from_blob(expected_label.data, {expected_label.rows, expected_label.cols}, torch::kUInt8)
                              .to(torch::kInt64);
    const double agree = s.derived_label.eq(cv_label).to(torch::kFloat64).mean().item<double>();
    CHECK(agree >= 0.999);  // exact but for ties at half pixels

    // The crop: every pixel centre samples the source inside (no fill), and no larger rectangle exists.
    const Eigen::Matrix3d H_src_dst = r.H.inverse();
    bool all_inside = true;
    for (int64_t y = 0; y < r.crop.height; ++y)
      for (int64_t x = 0; x < r.crop.width; ++x) all_inside = all_inside && maps_inside(H_src_dst, double(x), double(y), W, Hh);
    CHECK(all_inside);
    CHECK(crossview::largest_inscribed_rect(H_full, W, Hh) == r.crop);
    if (brute_force) {
      // Valid mask of the full rotated view over a canvas around the source's image.
      const Eigen::Matrix3d H_inv = H_full.inverse();
      // Canvas: the bounding box of the source corners' images, one pixel larger on each side.
      double min_x = 1e9, min_y = 1e9, max_x = -1e9, max_y = -1e9;
      for (const double u : {0.0, double(W - 1)})
        for (const double v : {0.0, double(Hh - 1)}) {
          const Eigen::Vector3d q = H_full * Eigen::Vector3d(u, v, 1.0);
          REQUIRE(q.z() > 0);
          min_x = std::min(min_x, q.x() / q.z());
          max_x = std::max(max_x, q.x() / q.z());
          min_y = std::min(min_y, q.y() / q.z());
          max_y = std::max(max_y, q.y() / q.z());
        }
      const int cx0 = int(std::floor(min_x)) - 1, cy0 = int(std::floor(min_y)) - 1;
      const int cw = int(std::ceil(max_x)) + 2 - cx0, ch = int(std::ceil(max_y)) + 2 - cy0;
      std::vector<std::vector<int>> valid(std::size_t(ch), std::vector<int>(std::size_t(cw), 0));
      for (int y = 0; y < ch; ++y)
        for (int x = 0; x < cw; ++x) valid[y][x] = maps_inside(H_inv, double(cx0 + x), double(cy0 + y), W, Hh);
      // The canvas border is outside the valid region (the crop is not clipped by the canvas).
      bool border_clear = true;
      for (int x = 0; x < cw; ++x) border_clear = border_clear && !valid[0][x] && !valid[ch - 1][x];
      for (int y = 0; y < ch; ++y) border_clear = border_clear && !valid[y][0] && !valid[y][cw - 1];
      CHECK(border_clear);
      CHECK(brute_force_max_area(valid) == r.crop.area());
    }
  }
}

}  // namespace

TEST_CASE("derive_vvd_dataset: derived pixels are OpenCV's warps of the source, in a maximal crop") {
  TempDir dir("fixture");
  make_camvid_fixture(dir.path / "camvid", 3, 36, 48);
  const auto files = crossview::camvid_files(dir.path / "camvid", "test");
  const auto out = dir.path / "out";
  const auto options = crossview::DeriveVVDOptions().seed(4).focal(45.0).source("fixture");
  std::vector<int64_t> progress;
  const auto report = crossview::derive_vvd_dataset(files, crossview::kCamVidNumClasses, out, options,
                                                    [&](int64_t done, int64_t, bool) { progress.push_back(done); });
  CHECK(report.written == 3);
  CHECK((progress == std::vector<int64_t>{1, 2, 3}));
  for (const char* field : {"source_image", "source_label", "H", "yaw_deg", "pitch_deg", "roll_deg", "focal", "crop"}) {
    CAPTURE(field);
    CHECK(slurp(out / "pairs/f0.json").find(std::string("\"") + field + "\"") != std::string::npos);
  }
  check_derived_dataset(out, 3, /*brute_force=*/true);

  // Deterministic for a seed; another seed draws other views.
  const auto again = dir.path / "again";
  crossview::derive_vvd_dataset(files, crossview::kCamVidNumClasses, again, options);
  CHECK(slurp(again / "pairs/f1.json") == slurp(out / "pairs/f1.json"));
  const auto other = dir.path / "other";
  crossview::derive_vvd_dataset(files, crossview::kCamVidNumClasses, other, crossview::DeriveVVDOptions(options).seed(5));
  CHECK(slurp(other / "pairs/f1.json") != slurp(out / "pairs/f1.json"));

  // Resumable: complete pairs are kept, missing ones derived again identically.
  const std::string f2 = slurp(out / "pairs/f2.json");
  fs::remove(out / "pairs/f2.json");
  const auto resumed = crossview::derive_vvd_dataset(files, crossview::kCamVidNumClasses, out, options);
  CHECK(resumed.skipped == 2);
  CHECK(resumed.written == 1);
  CHECK(slurp(out / "pairs/f2.json") == f2);
  // A damaged record is reported with its file.
  std::ofstream(out / "pairs/f0.json", std::ios::trunc) << "{\"id\": \"f0\"}";
  const std::string damaged = [&] {
    try {
      crossview::DerivedVVDDataset(out).get(0);
    } catch (const crossview::DatasetError& e) {
      return std::string(e.what());
    }
    return std::string("(no exception)");
  }();
  CHECK(damaged.rfind("DerivedPairRecord: malformed pair file '" + (out / "pairs/f0.json").string() + "': ", 0) == 0);
  // --limit.
  const auto limited = crossview::derive_vvd_dataset(files, crossview::kCamVidNumClasses, dir.path / "limited",
                                                     crossview::DeriveVVDOptions(options).limit(2));
  CHECK(limited.written == 2);
}

TEST_CASE("derive_vvd_dataset refuses folders of other content and other settings unless forced") {
  TempDir dir("refuse");
  make_camvid_fixture(dir.path / "camvid", 1, 24, 32);
  const auto files = crossview::camvid_files(dir.path / "camvid", "test");
  const auto out = dir.path / "out";
  fs::create_directories(out);
  std::ofstream(out / "notes.txt") << "mine";
  const auto options = crossview::DeriveVVDOptions().focal(30.0);
  CHECK_THROWS_WITH_AS(crossview::derive_vvd_dataset(files, 11, out, options),
                       ("derive_vvd_dataset: output folder '" + out.string() +
                        "' is not empty and holds no crossview_vvd.json: refusing to write into a folder of other "
                        "content (use --force / force(true))")
                           .c_str(),
                       crossview::DatasetError);
  CHECK(crossview::derive_vvd_dataset(files, 11, out, crossview::DeriveVVDOptions(options).force(true)).written == 1);
  CHECK(fs::exists(out / "notes.txt"));
  // Resuming with another seed would mix two derivations.
  CHECK_THROWS_AS(crossview::derive_vvd_dataset(files, 11, out, crossview::DeriveVVDOptions(options).seed(2)),
                  crossview::DatasetError);
}

TEST_CASE("derive_vvd_dataset on real CamVid frames") {
  const fs::path root = fs::path(CROSSVIEW_TEST_DATA_DIR) / "camvid";
  if (!fs::exists(root / "test.txt")) {
    MESSAGE("skipped: no CamVid at " << root.string());
    return;
  }
  TempDir dir("camvid");
  const auto files = crossview::camvid_files(root, "test");
  const auto report = crossview::derive_vvd_dataset(files, crossview::kCamVidNumClasses, dir.path,
                                                    crossview::DeriveVVDOptions().seed(1).limit(2));
  CHECK(report.written == 2);
  // Real frames have sharp edges: OpenCV's 1/32-pixel coordinates differ from exact bilinear
  // sampling by up to gradient/32 levels, so compare with a looser bound than the smooth fixture.
  crossview::DerivedVVDDataset ds(dir.path);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto r = ds.record(i);
    const auto s = ds.get(i);
    CHECK(r.focal == doctest::Approx(2262.0 * 480.0 / 2048.0));
    CHECK(crossview::largest_inscribed_rect(crossview::rotation_homography(
                                                crossview::Intrinsicsd::centered(r.focal, 480, 360),
                                                crossview::rotation_from_euler(crossview::deg2rad(r.yaw_deg),
                                                                               crossview::deg2rad(r.pitch_deg),
                                                                               crossview::deg2rad(r.roll_deg))),
                                            480, 360) == r.crop);
    cv::Mat expected;
    cv::warpPerspective(to_mat_rgb(crossview::read_image(r.source_image)), expected, to_cv(r.H),
                        cv::Size(int(r.crop.width), int(r.crop.height)), cv::INTER_LINEAR);
    cv::Mat diff;
    cv::absdiff(to_mat_rgb(crossview::read_image(crossview::derived_image_path(dir.path, r.id))), expected, diff);
    const double close = double(cv::countNonZero(diff.reshape(1) <= 2)) / double(diff.total() * 3);
    CHECK(close >= 0.99);
    CHECK(cv::mean(diff)[0] < 0.6);
    cv::Mat expected_label;
    cv::warpPerspective(to_mat_u8(s.label), expected_label, to_cv(r.H), cv::Size(int(r.crop.width), int(r.crop.height)),
                        cv::INTER_NEAREST, cv::BORDER_CONSTANT, cv::Scalar::all(255));
    const auto cv_label = torch::from_blob(expected_label.data, {expected_label.rows, expected_label.cols}, torch::kUInt8)
                              .to(torch::kInt64);
    CHECK(s.derived_label.eq(cv_label).to(torch::kFloat64).mean().item<double>() >= 0.999);
  }
}

TEST_CASE("derive_synthetic_vvd_dataset writes real renders, cropped to what the source sees, with the exact homography") {
  TempDir dir("synthetic");
  const auto scenes = crossview::SyntheticStreetOptions().height(40).width(80);
  const auto report = crossview::derive_synthetic_vvd_dataset(scenes, 2, dir.path, crossview::DeriveVVDOptions().seed(2));
  CHECK(report.written == 2);
  crossview::DerivedVVDDataset ds(dir.path);
  REQUIRE(*ds.size() == 2);
  const auto s = ds.get(1);
  const auto r = ds.record(1);
  // The same pair as SyntheticVVDDataset's (to PNG precision), and H from the recorded angles.
  const auto expected = crossview::SyntheticVVDDataset(crossview::SyntheticStreetOptions(scenes).size(2).seed(2)).get(1);
  CHECK(torch::equal(s.derived_label, expected.derived_label));
  CHECK(torch::equal(s.label, expected.label));
  CHECK((s.derived_image - expected.derived_image).abs().max().item<float>() <= 0.5f / 255.0f + 1e-6f);
  // H from the recorded angles and crop: T(-crop origin) K R K^-1; the crop is the paper's.
  const auto K = crossview::Intrinsicsd::centered(r.focal, 80, 40);
  const Eigen::Matrix3d H = crossview::rotation_homography(
      K, crossview::rotation_from_euler(crossview::deg2rad(r.yaw_deg), crossview::deg2rad(r.pitch_deg),
                                        crossview::deg2rad(r.roll_deg)));
  const Eigen::Matrix3d T =
      crossview::translation_homography<double>(Eigen::Vector2d(-double(r.crop.x), -double(r.crop.y)));
  CHECK((T * H - s.H_derived_source).cwiseAbs().maxCoeff() < 1e-9);
  CHECK(r.crop.width == s.derived_label.size(1));
  CHECK(r.crop.height == s.derived_label.size(0));
  CHECK(r.crop.width * r.crop.height < 80 * 40);
}

TEST_CASE("crossview-derive-vvd --help and a run on a fixture") {
  const fs::path program = fs::path(CROSSVIEW_BINARY_DIR) / "bin" / "crossview-derive-vvd";
  if (!fs::exists(program)) {
    MESSAGE("skipped: " << program.string() << " is not built");
    return;
  }
  TempDir dir("program");
  CHECK(std::system((program.string() + " --help > " + (dir.path / "help.txt").string()).c_str()) == 0);
  const auto help = slurp(dir.path / "help.txt");
  for (const char* flag : {"--dataset", "--root", "--split", "--out", "--seed", "--focal", "--limit", "--force"}) {
    CAPTURE(flag);
    CHECK(help.find(flag) != std::string::npos);
  }
  make_camvid_fixture(dir.path / "camvid", 25, 24, 32);
  const std::string run = program.string() + " --dataset camvid --root " + (dir.path / "camvid").string() + " --out " +
                          (dir.path / "out").string() + " --focal 30 2> " + (dir.path / "log.txt").string() + " > /dev/null";
  CHECK(std::system(run.c_str()) == 0);
  CHECK(*crossview::DerivedVVDDataset(dir.path / "out").size() == 25);
  // Progress in a log file: a line every 10 % (plus the opening line), never a redrawn one.
  const auto log = slurp(dir.path / "log.txt");
  CAPTURE(log);
  CHECK(log.find("ETA") != std::string::npos);
  CHECK(log.find("img/s") != std::string::npos);
  CHECK(log.find("25/25") != std::string::npos);
  CHECK(log.find('\r') == std::string::npos);
  CHECK(std::count(log.begin(), log.end(), '\n') <= 12);
  // Resumed: every pair is kept, and the log says so.
  CHECK(std::system(run.c_str()) == 0);
  const auto resumed = slurp(dir.path / "log.txt");
  CAPTURE(resumed);
  CHECK(resumed.find("25 already there") != std::string::npos);
  CHECK(std::count(resumed.begin(), resumed.end(), '\n') <= 12);
  std::ofstream(dir.path / "camvid" / "extra.txt") << "x";
  const std::string foreign = program.string() + " --dataset camvid --root " + (dir.path / "camvid").string() + " --out " +
                              (dir.path / "camvid").string() + " 2> /dev/null > /dev/null";
  CHECK(std::system(foreign.c_str()) != 0);
}
