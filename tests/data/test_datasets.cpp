// Tensor transforms against direct references, and the synthetic datasets (the readers of files
// on disk are tested in tests/io/).
#include <crossview/data/synthetic_dataset.hpp>
#include <crossview/data/transforms.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <random>
#include <string>

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
  const auto c = crossview::pad_crop(image, label, /*origin x, y=*/{2, -1}, /*crop_hw=*/{3, 4});
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
  const auto warped =
      crossview::warp_labels(p.label, p.H_derived_source, {p.derived_label.size(0), p.derived_label.size(1)});
  const auto valid = warped.ne(255);
  const double agree = warped.eq(p.derived_label).logical_and(valid).sum().item<double>() /
                       valid.sum().item<double>();
  CHECK(agree > 0.93);  // all pixels, label edges included
  // The training and VVD splits render different scenes.
  auto plain = options;
  plain.jitter(crossview::ViewRange::none()).transform(crossview::SegmentationTransform().normalize(false));
  CHECK(!torch::equal(crossview::SyntheticStreetDataset(plain).get(2).data, p.image));
}

TEST_CASE("SyntheticVVDDataset follows the paper's protocol: a crop of the exact render that the original view sees") {
  const auto options = crossview::SyntheticStreetOptions().size(6).seed(3).height(40).width(80);
  crossview::SyntheticVVDDataset cropped(options);
  crossview::SyntheticVVDDataset whole(crossview::SyntheticStreetOptions(options).vvd_crop(false));
  int64_t smaller = 0;
  for (size_t i = 0; i < 6; ++i) {
    CAPTURE(i);
    const auto c = cropped.get(i);
    const auto w = whole.get(i);
    CHECK(torch::equal(c.image, w.image));
    CHECK((w.derived_image.sizes() == torch::IntArrayRef({3, 40, 80})));
    const int64_t h = c.derived_label.size(0), wd = c.derived_label.size(1);
    REQUIRE((h > 0 && wd > 0 && h <= 40 && wd <= 80));
    smaller += (h * wd < 40 * 80) ? 1 : 0;
    // The crop's offset: H_crop = T(-origin) H_whole, so the translation is read off their difference.
    const Eigen::Matrix3d T = c.H_derived_source * w.H_derived_source.inverse();
    CHECK((T.block<2, 2>(0, 0) - Eigen::Matrix2d::Identity()).cwiseAbs().maxCoeff() < 1e-9);
    const auto x0 = int64_t(std::lround(-T(0, 2))), y0 = int64_t(std::lround(-T(1, 2)));
    // Its pixels are the whole render's own (no interpolation).
    using torch::indexing::Slice;
    CHECK(torch::equal(c.derived_label, w.derived_label.index({Slice(y0, y0 + h), Slice(x0, x0 + wd)})));
    CHECK(torch::equal(c.derived_image, w.derived_image.index({Slice(), Slice(y0, y0 + h), Slice(x0, x0 + wd)})));
    // Every pixel of the crop has its correspondence inside the original view (brute force over
    // all pixels, through the inverse homography), and the crop is maximal: widening it by one
    // column or row on any side takes in a pixel without one (or leaves the image).
    const Eigen::Matrix3d H_orig_crop = c.H_derived_source.inverse();
    const auto sees = [&](int64_t x, int64_t y) {
      const auto p = crossview::transform_point(H_orig_crop, Eigen::Vector2d(double(x), double(y)));
      return p && (*p)(0) >= -1e-7 && (*p)(0) <= 79 + 1e-7 && (*p)(1) >= -1e-7 && (*p)(1) <= 39 + 1e-7;
    };
    int64_t outside = 0;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < wd; ++x) outside += sees(x, y) ? 0 : 1;
    CHECK(outside == 0);
    const auto column_sees = [&](int64_t x) {
      if (x + x0 < 0 || x + x0 >= 80) return false;
      for (int64_t y = 0; y < h; ++y)
        if (!sees(x, y)) return false;
      return true;
    };
    const auto row_sees = [&](int64_t y) {
      if (y + y0 < 0 || y + y0 >= 40) return false;
      for (int64_t x = 0; x < wd; ++x)
        if (!sees(x, y)) return false;
      return true;
    };
    CHECK_FALSE(column_sees(-1));
    CHECK_FALSE(column_sees(wd));
    CHECK_FALSE(row_sees(-1));
    CHECK_FALSE(row_sees(h));
  }
  CHECK(smaller == 6);  // a rotated view never sees only what the original sees
  crossview::VVDSample none;
  none.image = torch::zeros({3, 4, 4});
  none.derived_image = torch::zeros({3, 4, 4});
  none.derived_label = torch::zeros({4, 4}, torch::kInt64);
  none.H_derived_source = crossview::translation_homography<double>(Eigen::Vector2d(100.0, 0.0));
  CHECK_THROWS_WITH_AS(crossview::crop_to_source_view(none),
                       "crop_to_source_view: sample.H_derived_source leaves no derived pixel seeing the original view",
                       std::invalid_argument);
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
