// Datasets and transforms: tensor transforms against direct references, the synthetic datasets,
// Cityscapes and CamVid read from fixtures written here in their official layouts (with the
// error messages for bad data pinned), and a few real CamVid frames when present.
#include <crossview/data/synthetic_dataset.hpp>
#include <crossview/data/transforms.hpp>
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

// ---- transforms --------------------------------------------------------------------------------

TEST_CASE("normalize_imagenet matches (x - mean) / std per channel and inverts") {
  const auto x = torch::rand({3, 4, 5});
  const auto y = crossview::normalize_imagenet(x);
  for (int c = 0; c < 3; ++c) {
    const auto expected = (x[c] - crossview::kImageNetMean[std::size_t(c)]) / crossview::kImageNetStd[std::size_t(c)];
    CHECK(torch::allclose(y[c], expected));
  }
  CHECK(torch::allclose(crossview::denormalize_imagenet(y), x, 1e-5, 1e-6));
  CHECK_THROWS_AS(crossview::normalize_imagenet(torch::rand({2, 4, 5})), c10::Error);
}

TEST_CASE("pad_crop pads images with the fill and labels with 255; flips mirror both") {
  const auto image = torch::arange(3 * 4 * 5, torch::kFloat32).view({3, 4, 5});
  const auto label = torch::arange(20, torch::kInt64).view({4, 5});
  const auto c = crossview::pad_crop(image, label, {-1, 2}, {3, 4});
  CHECK((c.image.sizes() == torch::IntArrayRef({3, 3, 4})));
  // Row 0 of the crop is above the image; columns 3.. of the crop lie right of the image.
  CHECK(c.label[0].eq(255).all().item<bool>());
  CHECK(c.label.select(1, 3).eq(255).all().item<bool>());
  CHECK(c.label[1][0].item<int64_t>() == label[0][2].item<int64_t>());
  CHECK(c.label[2][2].item<int64_t>() == label[1][4].item<int64_t>());
  CHECK(c.image[1][2][1].item<float>() == image[1][1][3].item<float>());
  CHECK(c.image[2][0][0].item<float>() == 0.0f);
  const auto f = crossview::hflip_image_label(image, label);
  CHECK(f.label[2][0].item<int64_t>() == label[2][4].item<int64_t>());
  CHECK(f.image[1][3][1].item<float>() == image[1][3][3].item<float>());
}

TEST_CASE("resize_image_label: bilinear image as torch interpolate, nearest labels keep their values") {
  const auto image = torch::rand({3, 6, 8});
  const auto label = torch::randint(0, 5, {6, 8}, torch::kInt64);
  const auto r = crossview::resize_image_label(image, label, {12, 16});
  namespace F = torch::nn::functional;
  const auto expected = F::interpolate(image.unsqueeze(0), F::InterpolateFuncOptions()
                                                               .size(std::vector<int64_t>{12, 16})
                                                               .mode(torch::kBilinear)
                                                               .align_corners(false))
                            .squeeze(0);
  CHECK(torch::allclose(r.image, expected));
  // Upsampling by 2: every label pixel becomes a 2x2 block.
  CHECK(torch::equal(r.label, label.repeat_interleave(2, 0).repeat_interleave(2, 1)));
}

TEST_CASE("SegmentationTransform: training crops, scales and flips reproducibly; evaluation only normalises") {
  const auto image = torch::randint(0, 256, {3, 20, 30}, torch::kUInt8);
  const auto label = torch::randint(0, 19, {20, 30}, torch::kInt64);
  const auto train = crossview::SegmentationTransform::training({16, 40});
  std::mt19937_64 a(5), b(5);
  const auto x = train(image, label, a);
  const auto y = train(image, label, b);
  CHECK((x.image.sizes() == torch::IntArrayRef({3, 16, 40})));
  CHECK((x.label.sizes() == torch::IntArrayRef({16, 40})));
  CHECK(torch::equal(x.image, y.image));
  CHECK(torch::equal(x.label, y.label));
  // The labels hold only source classes and padding.
  CHECK((x.label.lt(19) | x.label.eq(255)).all().item<bool>());
  bool padded = false;
  for (int i = 0; i < 10 && !padded; ++i) padded = train(image, label, a).label.eq(255).any().item<bool>();
  CHECK(padded);  // crops wider than the scaled image are padded with 255
  const auto eval = crossview::SegmentationTransform::evaluation()(image, label, a);
  CHECK(torch::allclose(eval.image, crossview::normalize_imagenet(image.to(torch::kFloat32) / 255.0)));
  CHECK(torch::equal(eval.label, label));
}

// ---- synthetic datasets ------------------------------------------------------------------------

TEST_CASE("SyntheticStreetDataset and SyntheticVVDDataset") {
  const auto options = crossview::SyntheticStreetOptions().size(4).seed(9).height(48).width(96);
  crossview::SyntheticStreetDataset train(options);
  CHECK(*train.size() == 4);
  const auto s0 = train.get(1), s1 = train.get(1);
  CHECK((s0.data.sizes() == torch::IntArrayRef({3, 48, 96})));
  CHECK(torch::equal(s0.data, s1.data));
  CHECK(s0.data.min().item<float>() < -0.5f);  // normalised (not [0, 1])
  train.set_epoch(1);
  CHECK(!torch::equal(train.get(1).data, s0.data));  // another jitter
  CHECK_THROWS_AS(train.get(4), c10::Error);

  crossview::SyntheticVVDDataset vvd(options);
  const auto p = vvd.get(2);
  CHECK((p.image.sizes() == torch::IntArrayRef({3, 48, 96})));
  CHECK(p.image.min().item<float>() >= 0.0f);
  // The recorded homography carries the original labels onto the derived labels.
  const auto warped = crossview::warp_labels(p.label, p.H_derived_source, {48, 96});
  const auto valid = warped.ne(255);
  const double agree = warped.eq(p.derived_label).logical_and(valid).sum().item<double>() /
                       valid.sum().item<double>();
  CHECK(agree > 0.93);  // all pixels, label edges included
  // The training and VVD splits render different scenes.
  auto plain = options;
  plain.jitter(crossview::ViewRange::none()).transform(crossview::SegmentationTransform().normalize(false));
  CHECK(!torch::equal(crossview::SyntheticStreetDataset(plain).get(2).data, p.image));
}

TEST_CASE("SyntheticStreetDataset batches through torch::data's DataLoader") {
  auto dataset = crossview::SyntheticStreetDataset(crossview::SyntheticStreetOptions().size(3).height(16).width(32))
                     .map(torch::data::transforms::Stack<>());
  auto loader = torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(
      std::move(dataset), torch::data::DataLoaderOptions().batch_size(2));
  std::vector<int64_t> batch_sizes;
  for (const auto& batch : *loader) {
    CHECK((batch.data.sizes().slice(1) == torch::IntArrayRef({3, 16, 32})));
    CHECK((batch.target.scalar_type() == torch::kInt64));
    batch_sizes.push_back(batch.data.size(0));
  }
  CHECK((batch_sizes == std::vector<int64_t>{2, 1}));
}

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
