// What users look at: each dataset's labels in its own standard colours (palette_for, through the
// function the figures draw labels with, through the Dataset the programs load, and in the PNG
// written), the legend's classes, figures that survive captions of any length, and the progress bar
// in a log file (a line every 10 %, no carriage returns).

#include <crossview_programs/datasets.hpp>
#include <crossview_programs/evaluate.hpp>
#include <crossview_programs/figures.hpp>
#include <crossview_programs/progress.hpp>

#include <crossview/data/classes.hpp>

#include <doctest/doctest.h>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace cp = crossview_programs;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("crossview_figures_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

cv::Vec3b bgr(const crossview::Rgb& rgb) { return {rgb[2], rgb[1], rgb[0]}; }

int64_t count_colour(const cv::Mat& image, const cv::Vec3b& colour) {
  int64_t n = 0;
  for (int y = 0; y < image.rows; ++y)
    for (int x = 0; x < image.cols; ++x) n += image.at<cv::Vec3b>(y, x) == colour;
  return n;
}

// A CamVid folder (SegNet layout) of `count` test images whose labels are all `label`.
void make_camvid(const fs::path& root, int count, int label) {
  fs::create_directories(root / "test");
  fs::create_directories(root / "testannot");
  std::ofstream list(root / "test.txt");
  for (int i = 0; i < count; ++i) {
    const cv::Mat image(48, 64, CV_8UC3, cv::Scalar(40 * i, 120, 200));
    const cv::Mat labels(48, 64, CV_8UC1, cv::Scalar(label));
    const std::string name = "f" + std::to_string(i) + ".png";
    REQUIRE(cv::imwrite((root / "test" / name).string(), image));
    REQUIRE(cv::imwrite((root / "testannot" / name).string(), labels));
    list << "test/" << name << " testannot/" << name << "\n";
  }
}

// An evaluation whose kept predictions are the VVD views' ground truth.
cp::Evaluation perfect_evaluation(const cp::Dataset& data, size_t keep) {
  cp::Evaluation e;
  e.result.name = "oracle";
  e.result.iterations = 3;
  e.result.iou_vvd.assign(size_t(data.num_classes), std::nan(""));
  e.result.iou_vvd[0] = 100.0;
  for (size_t i = 0; i < keep && int64_t(i) < data.eval_size; ++i) {
    const auto pair = data.eval_pair(int64_t(i));
    const auto valid = torch::ones_like(pair.vvd.label, torch::kBool);
    e.kept.push_back({pair.vvd.label, torch::zeros_like(valid), valid});
  }
  return e;
}

// stderr of `body`, run with stderr redirected to a file (so that it is not a terminal).
template <class Body>
std::string stderr_of(const fs::path& file, Body body) {
  std::fflush(stderr);
  const int saved = ::dup(2);
  REQUIRE(saved >= 0);
  std::FILE* f = std::fopen(file.string().c_str(), "w");
  REQUIRE(f != nullptr);
  ::dup2(::fileno(f), 2);
  body();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::fclose(f);
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("palette_for: each dataset's labels in its own standard colours") {
  // CamVid: SegNet-Tutorial's camvid11 colours; Cityscapes: cityscapesScripts' labels.py.
  const auto camvid = crossview::palette_for("camvid");
  const auto cityscapes = crossview::palette_for("cityscapes");
  REQUIRE(camvid.size() == size_t(crossview::kCamVidNumClasses));
  REQUIRE(cityscapes.size() == size_t(crossview::kCityscapesNumClasses));
  CHECK((camvid[0] == crossview::Rgb{128, 128, 128}));   // sky
  CHECK((camvid[3] == crossview::Rgb{128, 64, 128}));    // road
  CHECK((camvid[4] == crossview::Rgb{60, 40, 222}));     // pavement
  CHECK((camvid[5] == crossview::Rgb{128, 128, 0}));     // tree
  CHECK((camvid[10] == crossview::Rgb{0, 128, 192}));    // bicyclist
  CHECK((cityscapes[0] == crossview::Rgb{128, 64, 128}));  // road
  CHECK((cityscapes[10] == crossview::Rgb{70, 130, 180}));  // sky
  CHECK((cityscapes[18] == crossview::Rgb{119, 11, 32}));   // bicycle
  // SyntheticStreet renders Cityscapes' train ids.
  CHECK((crossview::palette_for("synthetic") == cityscapes));
  CHECK((crossview::class_names_for("synthetic") == crossview::cityscapes_class_names()));
  CHECK(crossview::class_names_for("camvid")[0] == "sky");
  // Names and colours pair up, and every class of a set has its own colour.
  for (const auto& name : {"camvid", "cityscapes"}) {
    CAPTURE(name);
    auto palette = crossview::palette_for(name);
    CHECK(palette.size() == crossview::class_names_for(name).size());
    std::sort(palette.begin(), palette.end());
    CHECK(std::adjacent_find(palette.begin(), palette.end()) == palette.end());
  }
  CHECK_THROWS_WITH_AS(crossview::palette_for("kitti"),
                       "palette_for: dataset must be camvid, cityscapes or synthetic, got \"kitti\"",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::class_names_for("kitti"),
                       "class_names_for: dataset must be camvid, cityscapes or synthetic, got \"kitti\"",
                       std::invalid_argument);
}

TEST_CASE("colorize_labels draws a known label in its dataset's colour (BGR), ignore in black") {
  const auto labels = torch::tensor({0, 4, 10, 255}, torch::kInt64).view({1, 4});
  const auto camvid = cp::colorize_labels(labels, crossview::palette_for("camvid"));
  CHECK(camvid.at<cv::Vec3b>(0, 0) == cv::Vec3b(128, 128, 128));  // CamVid sky
  CHECK(camvid.at<cv::Vec3b>(0, 1) == cv::Vec3b(222, 40, 60));    // CamVid pavement, RGB 60,40,222
  CHECK(camvid.at<cv::Vec3b>(0, 2) == cv::Vec3b(192, 128, 0));    // CamVid bicyclist, RGB 0,128,192
  CHECK(camvid.at<cv::Vec3b>(0, 3) == cv::Vec3b(0, 0, 0));
  const auto cityscapes = cp::colorize_labels(labels, crossview::palette_for("cityscapes"));
  CHECK(cityscapes.at<cv::Vec3b>(0, 0) == cv::Vec3b(128, 64, 128));  // Cityscapes road
  CHECK(cityscapes.at<cv::Vec3b>(0, 1) == cv::Vec3b(153, 153, 190));  // fence, RGB 190,153,153
  CHECK(cityscapes.at<cv::Vec3b>(0, 2) == cv::Vec3b(180, 130, 70));   // sky, RGB 70,130,180
  CHECK(cityscapes.at<cv::Vec3b>(0, 3) == cv::Vec3b(0, 0, 0));
}

TEST_CASE("classes_present: the legend's classes are those in the labels shown, ignore left out") {
  const auto a = torch::tensor({3, 3, 255, 0}, torch::kInt64).view({2, 2});
  const auto b = torch::tensor({7, 42, -1, 3}, torch::kInt64).view({2, 2});
  CHECK(cp::classes_present({a}, 11) == std::vector<int64_t>{0, 3});
  CHECK(cp::classes_present({a, b}, 11) == std::vector<int64_t>{0, 3, 7});
  CHECK(cp::classes_present({}, 11).empty());
}

TEST_CASE("the programs' figures draw CamVid in CamVid's colours and SyntheticStreet in Cityscapes'") {
  TempDir dir("datasets");
  SUBCASE("camvid: sky (0) is grey 128,128,128, never Cityscapes' road purple or sky blue") {
    make_camvid(dir.path / "camvid", 2, 0);
    cp::TrainOptions o;
    o.dataset = "camvid";
    o.root = (dir.path / "camvid").string();
    const auto data = cp::load_dataset(o, /*with_train=*/false);
    REQUIRE(data.eval_size == 2);
    CHECK((data.palette == crossview::palette_for("camvid")));
    const auto evaluation = perfect_evaluation(data, 2);
    cp::write_figures(dir.path, data, {"oracle"}, {evaluation}, 2, "a test");
    const auto fig4 = cv::imread((dir.path / "fig4_segmentation.png").string(), cv::IMREAD_COLOR);
    REQUIRE(!fig4.empty());
    // Two rows of ground truth and prediction tiles, 160 rows high each.
    CHECK(count_colour(fig4, bgr(crossview::camvid_palette()[0])) > 4 * 160 * 50);
    CHECK(count_colour(fig4, bgr(crossview::cityscapes_palette()[0])) == 0);
    CHECK(count_colour(fig4, bgr(crossview::cityscapes_palette()[10])) == 0);
    for (const char* name : {"fig5_inconsistency.png", "fig6_class_iou.png"}) {
      CAPTURE(name);
      CHECK(!cv::imread((dir.path / name).string()).empty());
    }
  }
  SUBCASE("synthetic: the same label (0, road) is Cityscapes' road purple") {
    cp::TrainOptions o;
    o.eval_images = 1;
    o.eval_height = 64;
    o.eval_width = 96;
    const auto data = cp::load_dataset(o, /*with_train=*/false);
    CHECK((data.palette == crossview::palette_for("cityscapes")));
    auto evaluation = perfect_evaluation(data, 1);
    evaluation.kept[0].vvd = torch::zeros_like(evaluation.kept[0].vvd);
    cp::write_figures(dir.path, data, {"all road"}, {evaluation}, 1, "a test");
    const auto fig4 = cv::imread((dir.path / "fig4_segmentation.png").string(), cv::IMREAD_COLOR);
    REQUIRE(!fig4.empty());
    CHECK(count_colour(fig4, bgr(crossview::cityscapes_palette()[0])) > 160 * 100);
  }
}

TEST_CASE("figures take captions of any length: long names wrap, tiles of a row stay aligned") {
  TempDir dir("captions");
  cp::FigureSample s;
  s.id = "a_rather_long_pair_identifier_0001";
  s.image = torch::rand({3, 20, 30});
  s.label = torch::zeros({20, 30}, torch::kInt64);
  const std::vector<std::string> variants = {"a", "a variant with a long name that must wrap in its caption"};
  for (size_t v = 0; v < variants.size(); ++v) {
    s.predictions.push_back(torch::full({20, 30}, int64_t(v), torch::kInt64));
    s.disagree.push_back(torch::rand({20, 30}) > 0.5);
    s.valid.push_back(torch::ones({20, 30}, torch::kBool));
  }
  const cp::LabelStyle style{crossview::camvid_class_names(), crossview::palette_for("camvid")};
  const std::string title = "A title long enough to need more than one line at the figure's width, and then some "
                            "more words\nsecond paragraph";
  CHECK_NOTHROW(cp::write_segmentation_figure(dir.path / "seg.png", title, {s, s}, variants, style, 48));
  CHECK_NOTHROW(cp::write_inconsistency_figure(dir.path / "inc.png", title, {s}, variants, 48));
  CHECK_NOTHROW(cp::write_class_iou_figure(dir.path / "iou.png", title, crossview::camvid_class_names(), variants,
                                           {{50.0}, {std::nan(""), 20.0}}));
  const auto seg = cv::imread((dir.path / "seg.png").string());
  REQUIRE(!seg.empty());
  CHECK(seg.cols >= cp::drawing::kMinWidth);
}

TEST_CASE("ProgressBar in a log file: a line every 10 %, no carriage returns, the rate and what was skipped") {
  TempDir dir("progress");
  const auto log = stderr_of(dir.path / "stderr.txt", [] {
    cp::ProgressBar bar("deriving", 233, 0, true);
    bar.unit("img").skipped_note("already there");
    for (int64_t i = 1; i <= 233; ++i) bar.update(i, {}, i <= 50);
  });
  CHECK(log.find('\r') == std::string::npos);
  CHECK(log.find("\033[K") == std::string::npos);
  const auto lines = std::count(log.begin(), log.end(), '\n');
  CHECK(lines >= 10);
  CHECK(lines <= 11);
  CHECK(log.find("233/233") != std::string::npos);
  CHECK(log.find("img/s") != std::string::npos);
  CHECK(log.find("ETA") != std::string::npos);
  CHECK(log.find("50 already there") != std::string::npos);

  // The training loop's form: loss terms, it/s; resumed at 40 of 100.
  const auto train = stderr_of(dir.path / "train.txt", [] {
    cp::ProgressBar bar("[1/1 baseline]", 100, 40, true);
    for (int64_t i = 41; i <= 100; ++i) bar.update(i, {{"loss", 0.5}});
  });
  CHECK(std::count(train.begin(), train.end(), '\n') <= 11);
  CHECK(train.find("[1/1 baseline] [") == 0);
  CHECK(train.find("100/100 loss 0.500") != std::string::npos);
  CHECK(train.find("it/s | ETA") != std::string::npos);
  CHECK(train.find("skipped") == std::string::npos);

  const auto quiet = stderr_of(dir.path / "quiet.txt", [] {
    cp::ProgressBar bar("quiet", 10, 0, false);
    for (int64_t i = 1; i <= 10; ++i) bar.update(i);
  });
  CHECK(quiet.empty());
}
