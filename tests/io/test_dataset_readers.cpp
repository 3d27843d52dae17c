// Cityscapes and CamVid read from fixtures written here in their official layouts (with the
// error messages for bad data pinned), and a few real CamVid frames when present.
#include <crossview/io.hpp>

#include <doctest/doctest.h>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>

namespace fs = std::filesystem;

namespace {

// A fresh temporary folder, removed at the end of the scope.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("crossview_data_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A deterministic BGR test image and a label image holding `values` in vertical stripes.
cv::Mat fixture_image(int h, int w, int seed) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar((x * 7 + seed) % 256), uchar((y * 5) % 256), uchar((x + y + 3 * seed) % 256));
  return m;
}
cv::Mat fixture_label(int h, int w, const std::vector<int>& values) {
  cv::Mat m(h, w, CV_8UC1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m.at<uchar>(y, x) = uchar(values[std::size_t(x * int(values.size()) / w)]);
  return m;
}
void write(const fs::path& p, const cv::Mat& m) {
  fs::create_directories(p.parent_path());
  REQUIRE(cv::imwrite(p.string(), m));
}

// Cityscapes fixture: two cities in "val", one frame with labelIds only, one with labelTrainIds.
void make_cityscapes(const fs::path& root) {
  write(root / "leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png", fixture_image(8, 34, 1));
  write(root / "gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png",
        fixture_label(8, 34, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                              24, 25, 26, 27, 28, 29, 30, 31, 32, 33}));
  write(root / "leftImg8bit/val/bremen/bremen_000001_000019_leftImg8bit.png", fixture_image(8, 20, 2));
  write(root / "gtFine/val/bremen/bremen_000001_000019_gtFine_labelTrainIds.png", fixture_label(8, 20, {0, 18, 255, 5}));
  write(root / "gtFine/val/bremen/bremen_000001_000019_gtFine_labelIds.png", fixture_label(8, 20, {33}));
}

// CamVid fixture in the SegNet layout.
void make_camvid(const fs::path& root) {
  write(root / "train/a.png", fixture_image(6, 12, 3));
  write(root / "trainannot/a.png", fixture_label(6, 12, {0, 3, 10, 11}));
  write(root / "train/b.png", fixture_image(6, 12, 4));
  write(root / "trainannot/b.png", fixture_label(6, 12, {8}));
  write(root / "val/c.png", fixture_image(6, 12, 5));
  write(root / "valannot/c.png", fixture_label(6, 12, {5}));
  std::ofstream(root / "train.txt") << "train/a.png trainannot/a.png\n/SegNet/CamVid/train/b.png /SegNet/CamVid/trainannot/b.png\n";
  std::ofstream(root / "val.txt") << "val/c.png valannot/c.png\n";
}

std::string error_text(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

// ---- Cityscapes ------------------------------------------------------------------------------------

TEST_CASE("CityscapesDataset reads the official layout with the labelIds -> trainIds table") {
  TempDir dir("cityscapes");
  make_cityscapes(dir.path);
  crossview::CityscapesDataset ds(dir.path, "val");
  REQUIRE(*ds.size() == 2);
  CHECK(ds.files()[0].id == "aachen_000000_000019");
  CHECK((ds.files()[0].format == crossview::LabelFormat::kCityscapesLabelIds));
  CHECK((ds.files()[1].format == crossview::LabelFormat::kTrainIds));  // labelTrainIds preferred
  const auto a = ds.read(0);
  CHECK((a.image.sizes() == torch::IntArrayRef({3, 8, 34})));
  CHECK((a.image.scalar_type() == torch::kUInt8));
  // RGB order: channel 0 holds the fixture's red (BGR index 2).
  CHECK(a.image[0][1][2].item<int>() == (1 + 2 + 3) % 256);
  CHECK(a.image[2][1][2].item<int>() == (2 * 7 + 1) % 256);
  // Column x holds labelId x: the official table.
  const std::vector<int> expected{255, 255, 255, 255, 255, 255, 255, 0,   1,   255, 255, 2,  3,  4,  255, 255, 255,
                                  5,   255, 6,   7,   8,   9,   10,  11,  12,  13,  14,  15, 255, 255, 16, 17, 18};
  for (int x = 0; x < 34; ++x) {
    CAPTURE(x);
    CHECK(a.label[3][x].item<int64_t>() == expected[std::size_t(x)]);
  }
  const auto b = ds.read(1);
  CHECK(b.label[0][0].item<int64_t>() == 0);
  CHECK(b.label[0][6].item<int64_t>() == 18);
  CHECK(b.label[0][11].item<int64_t>() == 255);
  // Through torch::data: normalised float image, int64 target.
  const auto e = ds.get(0);
  CHECK((e.data.scalar_type() == torch::kFloat32));
  CHECK(torch::equal(e.target, a.label));
  crossview::CityscapesDataset training(dir.path, "val", crossview::SegmentationTransform::training({8, 8}), 3);
  CHECK((training.get(0).data.sizes() == torch::IntArrayRef({3, 8, 8})));
}

TEST_CASE("CityscapesDataset: bad data gives errors naming the file") {
  TempDir dir("cityscapes_bad");
  CHECK_THROWS_WITH_AS(crossview::CityscapesDataset(dir.path, "val"),
                       ("cityscapes_files: no Cityscapes image folder '" + (dir.path / "leftImg8bit/val").string() +
                        "' (expected ROOT/leftImg8bit/SPLIT/CITY/*_leftImg8bit.png)")
                           .c_str(),
                       crossview::DatasetError);
  make_cityscapes(dir.path);
  const auto img = dir.path / "leftImg8bit/val/aachen/aachen_000000_000019_leftImg8bit.png";
  const auto ids = dir.path / "gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png";
  // A labelId above 33.
  write(ids, fixture_label(8, 34, {7, 40}));
  CHECK(error_text([&] { crossview::CityscapesDataset(dir.path, "val").read(0); }) ==
        "map_label_values: unexpected label value 40 in '" + ids.string() +
            "' (cityscapes_labelIds labels, pixel 17,0)");
  // Image and label sizes disagree.
  write(ids, fixture_label(9, 34, {7}));
  CHECK(error_text([&] { crossview::CityscapesDataset(dir.path, "val").read(0); }) ==
        "read_segmentation_file: label '" + ids.string() + "' is 34x9 (width x height) but image '" + img.string() +
            "' is 34x8");
  // An unreadable image.
  std::ofstream(img, std::ios::trunc) << "not a png";
  CHECK(error_text([&] { crossview::CityscapesDataset(dir.path, "val").read(0); }) ==
        "read_image: cannot read image '" + img.string() + "': not a readable image file");
  // No label at all.
  fs::remove(ids);
  CHECK(error_text([&] { crossview::CityscapesDataset(dir.path, "val"); }) ==
        "cityscapes_files: no label for image '" + img.string() + "': expected '" + ids.string() +
            "' or *_gtFine_labelTrainIds.png");
}

// ---- CamVid ----------------------------------------------------------------------------------------

TEST_CASE("CamVidDataset reads SegNet lists; Unlabelled (11) becomes 255") {
  TempDir dir("camvid");
  make_camvid(dir.path);
  crossview::CamVidDataset train(dir.path, "train");
  REQUIRE(*train.size() == 2);
  CHECK((train.files()[1].image == dir.path / "train/b.png"));  // SegNet's absolute path resolved
  const auto a = train.read(0);
  CHECK((a.label.sizes() == torch::IntArrayRef({6, 12})));
  CHECK(a.label[0][0].item<int64_t>() == 0);
  CHECK(a.label[0][3].item<int64_t>() == 3);
  CHECK(a.label[0][6].item<int64_t>() == 10);
  CHECK(a.label[0][9].item<int64_t>() == 255);
  CHECK(*crossview::CamVidDataset(dir.path, "trainval").size() == 3);
  CHECK(train.num_classes() == 11);
}

TEST_CASE("CamVidDataset: bad data gives errors naming the file") {
  TempDir dir("camvid_bad");
  CHECK(error_text([&] { crossview::CamVidDataset(dir.path, "test"); }) ==
        "camvid_files: cannot open CamVid split list '" + (dir.path / "test.txt").string() + "'");
  make_camvid(dir.path);
  write(dir.path / "trainannot/a.png", fixture_label(6, 12, {3, 12}));
  CHECK(error_text([&] { crossview::CamVidDataset(dir.path, "train").read(0); }) ==
        "map_label_values: unexpected label value 12 in '" + (dir.path / "trainannot/a.png").string() +
            "' (camvid labels, pixel 6,0)");
  fs::remove(dir.path / "train/a.png");
  CHECK(error_text([&] { crossview::CamVidDataset(dir.path, "train").read(0); }) ==
        "read_image: cannot read image '" + (dir.path / "train/a.png").string() + "': no such file");
  write(dir.path / "trainannot/b.png", fixture_image(6, 12, 1));
  CHECK(error_text([&] { crossview::CamVidDataset(dir.path, "train").read(1); }) ==
        "read_label: label image '" + (dir.path / "trainannot/b.png").string() +
            "' must be a single-channel 8- or 16-bit image, got 3 channels of depth 0");
  std::ofstream(dir.path / "val.txt") << "val/c.png\n";
  CHECK(error_text([&] { crossview::CamVidDataset(dir.path, "val"); }) ==
        "camvid_files: line 1 of '" + (dir.path / "val.txt").string() + "' must hold 'image label', got 'val/c.png'");
}

TEST_CASE("CamVidDataset reads real CamVid frames") {
  const fs::path root = fs::path(CROSSVIEW_TEST_DATA_DIR) / "camvid";
  if (!fs::exists(root / "test.txt")) {
    MESSAGE("skipped: no CamVid at " << root.string());
    return;
  }
  crossview::CamVidDataset test(root, "test");
  CHECK(*test.size() == 233);
  CHECK(*crossview::CamVidDataset(root, "trainval").size() == 468);
  for (const std::size_t i : {std::size_t(0), std::size_t(100)}) {
    const auto s = test.read(i);
    CHECK((s.image.sizes() == torch::IntArrayRef({3, 360, 480})));
    CHECK((s.label.lt(11) | s.label.eq(255)).all().item<bool>());
    CHECK(s.label.lt(11).to(torch::kFloat).mean().item<float>() > 0.5f);
  }
  crossview::CamVidDataset train(root, "train", crossview::SegmentationTransform::training({224, 224}), 1);
  const auto e = train.get(3);
  CHECK((e.data.sizes() == torch::IntArrayRef({3, 224, 224})));
}
