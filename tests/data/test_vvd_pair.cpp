// VVDPairGenerator, VVDDataset and the collate: patch b against an independent double bilinear
// reference, label correspondences, identity view, determinism, fallback, padding, errors, and a
// torch::data loader with and without workers.
#include <crossview/data/vvd_dataset.hpp>
#include <crossview/data/vvd_pair.hpp>
#include <crossview/geometry.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <random>
#include <vector>

namespace {

// Smooth random image [3, H, W] float32 in [0, 1].
torch::Tensor smooth_rgb(int64_t H, int64_t W, uint64_t seed) {
  torch::manual_seed(int64_t(seed));
  const auto coarse = torch::rand({1, 3, H / 16 + 2, W / 16 + 2});
  namespace F = torch::nn::functional;
  return F::interpolate(coarse, F::InterpolateFuncOptions().size(std::vector<int64_t>{H, W}).mode(torch::kBicubic)
                                    .align_corners(false))
      .clamp(0, 1)[0]
      .contiguous();
}

// Piecewise-constant labels: blocks of `block` x `block` pixels with random classes 0..18.
torch::Tensor block_labels(int64_t H, int64_t W, int64_t block, uint64_t seed) {
  torch::manual_seed(int64_t(seed));
  const auto classes = torch::randint(0, 19, {(H + block - 1) / block, (W + block - 1) / block}, torch::kInt64);
  return classes.repeat_interleave(block, 0).repeat_interleave(block, 1).slice(0, 0, H).slice(1, 0, W).contiguous();
}

Eigen::Matrix3d translation(double tx, double ty) {
  Eigen::Matrix3d T = Eigen::Matrix3d::Identity();
  T(0, 2) = tx;
  T(1, 2) = ty;
  return T;
}

// Bilinear sample of channel c at (sx, sy) in double, taps outside read 0.
double bilinear(const torch::TensorAccessor<float, 3>& a, int64_t c, int64_t H, int64_t W, double sx, double sy) {
  const double fx0 = std::floor(sx), fy0 = std::floor(sy);
  double acc = 0;
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx) {
      const int64_t xx = int64_t(fx0) + dx, yy = int64_t(fy0) + dy;
      const double wx = dx ? sx - fx0 : 1 - (sx - fx0), wy = dy ? sy - fy0 : 1 - (sy - fy0);
      if (xx >= 0 && yy >= 0 && xx < W && yy < H) acc += wx * wy * double(a[c][yy][xx]);
    }
  return acc;
}

// A tiny in-memory {image, label} dataset.
struct Memory : torch::data::datasets::Dataset<Memory> {
  std::vector<torch::Tensor> images, labels;
  torch::data::Example<> get(size_t i) override { return {images[i], labels[i]}; }
  std::optional<size_t> size() const override { return images.size(); }
};

}  // namespace

TEST_CASE("VVDPairGenerator: patch b is the bilinear sample of the original image at H^-1 (double reference)") {
  const int64_t H = 192, W = 288, a2 = 128;
  const auto image = smooth_rgb(H, W, 1);
  const auto label = block_labels(H, W, 24, 2);
  crossview::VVDPairGenerator gen(crossview::VVDOptions().crop_size(a2));
  std::mt19937_64 rng(42);
  const auto img = image.accessor<float, 3>();
  for (int trial = 0; trial < 6; ++trial) {
    const auto pair = gen(image, label, rng);
    CAPTURE(trial);
    REQUIRE_FALSE(pair.fallback);
    CHECK((pair.image_a.sizes() == torch::IntArrayRef({3, a2, a2})));
    CHECK((pair.valid_b.scalar_type() == torch::kBool));
    CHECK((pair.label_b.scalar_type() == torch::kInt64));
    // The geometry, recomputed from the sampled view with plain matrices (Eq. 2-4).
    const double f = 2262.0 * double(W) / 2048.0, half = (a2 - 1) / 2.0;
    Eigen::Matrix3d K;
    K << f, 0, (W - 1) / 2.0, 0, f, (H - 1) / 2.0, 0, 0, 1;
    const Eigen::Matrix3d Hv = K * crossview::rotation_from_euler(pair.view.yaw, pair.view.pitch, pair.view.roll) *
                               K.inverse();
    const Eigen::Vector3d o_b = Hv * Eigen::Vector3d(pair.origin_a.x() + half, pair.origin_a.y() + half, 1.0);
    CHECK((pair.origin_b - (o_b.head<2>() / o_b.z() - Eigen::Vector2d(half, half))).norm() < 1e-6);
    const Eigen::Matrix3d Hc = translation(-pair.origin_b.x(), -pair.origin_b.y()) * Hv *
                               translation(pair.origin_a.x(), pair.origin_a.y());
    CHECK((pair.H_b_a - Hc).norm() < 1e-9 * Hc.norm());
    CHECK(std::abs(crossview::rad2deg(pair.view.yaw)) <= 30.0);
    CHECK(std::abs(crossview::rad2deg(pair.view.pitch)) <= 15.0);
    CHECK(std::abs(crossview::rad2deg(pair.view.roll)) <= 3.0);
    // Patch a is the plain crop.
    const int64_t ox = int64_t(pair.origin_a.x()), oy = int64_t(pair.origin_a.y());
    CHECK(torch::equal(pair.image_a, image.slice(1, oy, oy + a2).slice(2, ox, ox + a2)));
    CHECK(torch::equal(pair.label_a, label.slice(0, oy, oy + a2).slice(1, ox, ox + a2)));
    // Every valid pixel of patch b against the reference at H^-1 of its full-image position.
    const Eigen::Matrix3d src_of_b = (Hv).inverse() * translation(pair.origin_b.x(), pair.origin_b.y());
    const auto ib = pair.image_b.accessor<float, 3>();
    const auto vb = pair.valid_b.accessor<bool, 2>();
    double max_err = 0;
    int64_t valid = 0, mask_mismatch = 0;
    for (int64_t y = 0; y < a2; ++y)
      for (int64_t x = 0; x < a2; ++x) {
        const Eigen::Vector3d s = src_of_b * Eigen::Vector3d(double(x), double(y), 1.0);
        const double sx = s.x() / s.z(), sy = s.y() / s.z();
        const bool inside = s.z() > 0 && sx >= 0 && sx <= W - 1 && sy >= 0 && sy <= H - 1;
        mask_mismatch += inside != vb[y][x];
        if (!vb[y][x]) continue;
        ++valid;
        for (int64_t c = 0; c < 3; ++c) max_err = std::max(max_err, std::abs(ib[c][y][x] - bilinear(img, c, H, W, sx, sy)));
      }
    CHECK(max_err < 1e-5);
    CHECK(mask_mismatch <= 2);
    CHECK(double(valid) >= (0.5 - 0.02) * double(a2 * a2));
  }
  const auto stats = gen.statistics();
  CHECK(stats.pairs == 6);
  CHECK(stats.tries >= 6);
  CHECK(stats.fallbacks == 0);
}

TEST_CASE("VVDPairGenerator: labels correspond through H_b_a on piecewise-constant label maps") {
  const int64_t H = 240, W = 320, a2 = 160, block = 20;
  const auto image = smooth_rgb(H, W, 3);
  const auto label = block_labels(H, W, block, 4);
  crossview::VVDPairGenerator gen(crossview::VVDOptions().crop_size(a2));
  std::mt19937_64 rng(7);
  // Distance of a full-image position to the nearest block edge (edges at k*block - 0.5).
  auto edge_distance = [&](double v) {
    const double r = std::fmod(v + 0.5, double(block));
    return std::min(r, double(block) - r);
  };
  int64_t total = 0, equal = 0;
  for (int trial = 0; trial < 5; ++trial) {
    const auto pair = gen(image, label, rng);
    const auto la = pair.label_a.accessor<int64_t, 2>();
    const auto lb = pair.label_b.accessor<int64_t, 2>();
    const Eigen::Matrix3d src_of_b = pair.H_b_a.inverse();
    for (int64_t y = 0; y < a2; ++y)
      for (int64_t x = 0; x < a2; ++x) {
        const auto q = crossview::transform_point(pair.H_b_a, Eigen::Vector2d(double(x), double(y)));
        if (!q) continue;
        const int64_t qx = std::lround(q->x()), qy = std::lround(q->y());
        if (qx < 0 || qy < 0 || qx >= a2 || qy >= a2 || lb[qy][qx] == 255) continue;
        // Away from label edges: both p and the patch-a position of round(q) are 2 px from an edge.
        const auto back = crossview::transform_point(src_of_b, Eigen::Vector2d(double(qx), double(qy)));
        if (!back) continue;
        const double pxs[] = {double(x), double(y), back->x(), back->y()};
        const double offs[] = {pair.origin_a.x(), pair.origin_a.y(), pair.origin_a.x(), pair.origin_a.y()};
        bool near_edge = false;
        for (int k = 0; k < 4; ++k) near_edge = near_edge || edge_distance(pxs[k] + offs[k]) < 2.0;
        if (near_edge) continue;
        ++total;
        equal += la[y][x] == lb[qy][qx];
      }
  }
  REQUIRE(total > 10000);
  CHECK(double(equal) >= 0.99 * double(total));
}

TEST_CASE("VVDPairGenerator: the identity view reproduces the plain crop exactly") {
  const auto image = smooth_rgb(100, 150, 5);
  const auto label = block_labels(100, 150, 10, 6);
  crossview::VVDPairGenerator gen(crossview::VVDOptions().crop_size(64).view_range(crossview::ViewRange::none()));
  std::mt19937_64 rng(1);
  for (int trial = 0; trial < 3; ++trial) {
    const auto pair = gen(image, label, rng);
    CHECK_FALSE(pair.fallback);
    CHECK(pair.H_b_a == Eigen::Matrix3d::Identity());
    CHECK(torch::equal(pair.image_b, pair.image_a));
    CHECK(torch::equal(pair.label_b, pair.label_a));
    CHECK(pair.valid_b.all().item<bool>());
  }
}

TEST_CASE("VVDPairGenerator: the same seed gives the same pair; the dataset depends on (seed, index) only") {
  const auto image = smooth_rgb(120, 160, 8);
  const auto label = block_labels(120, 160, 10, 9);
  crossview::VVDPairGenerator gen(crossview::VVDOptions().crop_size(64));
  std::mt19937_64 r1(123), r2(123), r3(124);
  const auto p1 = gen(image, label, r1), p2 = gen(image, label, r2), p3 = gen(image, label, r3);
  CHECK(p1.H_b_a == p2.H_b_a);
  CHECK(torch::equal(p1.image_b, p2.image_b));
  CHECK(torch::equal(p1.label_b, p2.label_b));
  CHECK(p1.H_b_a != p3.H_b_a);

  Memory memory;
  memory.images = {image, image * 0.5};
  memory.labels = {label, label};
  crossview::VVDDataset<Memory> ds(memory, crossview::VVDOptions().crop_size(64).seed(5), /*repeats=*/2);
  CHECK(ds.size().value() == 4);
  CHECK(ds.get(3).H_b_a == ds.get(3).H_b_a);
  CHECK(ds.get(1).H_b_a != ds.get(3).H_b_a);  // the same source example, another view
  crossview::VVDDataset<Memory> other_seed(memory, crossview::VVDOptions().crop_size(64).seed(6));
  CHECK(ds.get(0).H_b_a != other_seed.get(0).H_b_a);
  CHECK_THROWS_WITH_AS(ds.get(4), doctest::Contains("VVDDataset: index 4 out of range for size 4"), c10::Error);
}

TEST_CASE("VVDPairGenerator: views that never meet min_valid_fraction fall back to the identity and are counted") {
  // The crop is the whole (square) image, so any rotation leaves part of patch b empty.
  const auto square = smooth_rgb(64, 64, 10);
  const auto square_label = block_labels(64, 64, 8, 11);
  crossview::VVDPairGenerator gen(crossview::VVDOptions().crop_size(64).min_valid_fraction(1.0).max_tries(3));
  std::mt19937_64 rng(3);
  const auto pair = gen(square, square_label, rng);
  CHECK(pair.fallback);
  CHECK(pair.tries == 3);
  CHECK(pair.H_b_a == Eigen::Matrix3d::Identity());
  CHECK(torch::equal(pair.image_b, square));
  CHECK(pair.valid_b.all().item<bool>());
  CHECK(gen.statistics().fallbacks == 1);
  CHECK(gen.statistics().tries == 3);
}

TEST_CASE("VVDPairGenerator: images smaller than the crop are padded (image 0, labels 255), or rejected") {
  const auto image = smooth_rgb(48, 80, 12) + 0.5;  // > 0 everywhere, so padding is visible
  const auto label = block_labels(48, 80, 8, 13);
  crossview::VVDPairGenerator gen(crossview::VVDOptions().crop_size(96).view_range(crossview::ViewRange::none()));
  std::mt19937_64 rng(4);
  const auto pair = gen(image, label, rng);
  const int64_t ox = int64_t(pair.origin_a.x()), oy = int64_t(pair.origin_a.y());
  CHECK(ox <= 0);
  CHECK(ox >= 80 - 96);
  CHECK(oy <= 0);
  CHECK(oy >= 48 - 96);
  CHECK(torch::equal(pair.image_a.slice(1, -oy, -oy + 48).slice(2, -ox, -ox + 80), image));
  CHECK(torch::equal(pair.label_a.slice(0, -oy, -oy + 48).slice(1, -ox, -ox + 80), label));
  CHECK(pair.valid_b.sum().item<int64_t>() == 48 * 80);
  CHECK(pair.label_a.eq(255).sum().item<int64_t>() == 96 * 96 - 48 * 80);
  CHECK(pair.image_a.eq(0).sum().item<int64_t>() == 3 * (96 * 96 - 48 * 80));
  CHECK(torch::equal(pair.image_b, pair.image_a));

  crossview::VVDPairGenerator strict(crossview::VVDOptions().crop_size(96).pad_small_images(false));
  CHECK_THROWS_WITH_AS(strict(image, label, rng),
                       doctest::Contains("VVDPairGenerator: image 48x80 (HxW) is smaller than crop_size 96 and "
                                         "pad_small_images is false"),
                       c10::Error);
}

TEST_CASE("VVDPairGenerator: bad inputs raise errors naming the argument") {
  crossview::VVDPairGenerator gen(crossview::VVDOptions().crop_size(32));
  std::mt19937_64 rng(0);
  const auto image = torch::rand({3, 40, 50});
  const auto label = torch::zeros({40, 50}, torch::kInt64);
  using doctest::Contains;
  CHECK_THROWS_WITH_AS(gen(image[0], label, rng), Contains("VVDPairGenerator: image must have shape [C, H, W], got [40, 50]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(gen(image, label[0], rng), Contains("VVDPairGenerator: label must have shape [H, W], got [50]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(gen(image.to(torch::kUInt8), label, rng),
                       Contains("VVDPairGenerator: image must be a float32 or float64 tensor, got Byte"), c10::Error);
  CHECK_THROWS_WITH_AS(gen(image, label.to(torch::kFloat32), rng),
                       Contains("VVDPairGenerator: label must be an int64 tensor of train ids, got Float"), c10::Error);
  CHECK_THROWS_WITH_AS(gen(image, torch::zeros({40, 51}, torch::kInt64), rng),
                       Contains("VVDPairGenerator: image [C, H, W] and label [H, W] must have the same H and W, got "
                                "image [3, 40, 50] and label [40, 51]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(crossview::VVDPairGenerator(crossview::VVDOptions().min_valid_fraction(1.5)),
                       Contains("VVDPairGenerator: min_valid_fraction must lie in [0, 1], got 1.5"), c10::Error);
  CHECK_THROWS_WITH_AS(crossview::VVDPairGenerator(crossview::VVDOptions().crop_size(0)),
                       Contains("VVDPairGenerator: crop_size must be > 0, got 0"), c10::Error);
  auto bad_range = crossview::ViewRange{};
  bad_range.yaw_deg = -1;
  CHECK_THROWS_WITH_AS(crossview::VVDPairGenerator(crossview::VVDOptions().view_range(bad_range)),
                       Contains("VVDPairGenerator: ViewRange::yaw_deg must lie in [0, 180] degrees"), c10::Error);
  CHECK_THROWS_WITH_AS(crossview::collate_view_pairs({}), Contains("collate_view_pairs: pairs must not be empty"),
                       c10::Error);
}

TEST_CASE("VVDDataset + VVDCollate: a torch::data loader gives the same batches with 0 and 2 workers") {
  Memory memory;
  for (int i = 0; i < 5; ++i) {
    memory.images.push_back(smooth_rgb(72, 96, 20 + i));
    memory.labels.push_back(block_labels(72, 96, 8, 30 + i));
  }
  auto load = [&](size_t workers) {
    auto ds = crossview::VVDDataset<Memory>(memory, crossview::VVDOptions().crop_size(48).seed(9))
                  .map(crossview::VVDCollate());
    auto loader = torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(
        std::move(ds), torch::data::DataLoaderOptions().batch_size(2).workers(workers));
    std::vector<crossview::VVDBatch> batches;
    for (auto& batch : *loader) batches.push_back(batch);
    return batches;
  };
  const auto serial = load(0);
  const auto parallel = load(2);
  REQUIRE(serial.size() == 3);
  REQUIRE(parallel.size() == 3);
  const auto& b = serial.front();
  CHECK((b.image_a.sizes() == torch::IntArrayRef({2, 3, 48, 48})));
  CHECK((b.image_b.sizes() == torch::IntArrayRef({2, 3, 48, 48})));
  CHECK((b.label_a.sizes() == torch::IntArrayRef({2, 48, 48})));
  CHECK((b.label_b.scalar_type() == torch::kInt64));
  CHECK((b.H_b_a.sizes() == torch::IntArrayRef({2, 3, 3})));
  CHECK((b.H_b_a.scalar_type() == torch::kFloat64));
  CHECK((b.valid_b.sizes() == torch::IntArrayRef({2, 48, 48})));
  CHECK((b.valid_b.scalar_type() == torch::kBool));
  CHECK((serial.back().image_a.sizes() == torch::IntArrayRef({1, 3, 48, 48})));
  for (size_t i = 0; i < serial.size(); ++i) {
    CHECK(torch::equal(serial[i].image_a, parallel[i].image_a));
    CHECK(torch::equal(serial[i].image_b, parallel[i].image_b));
    CHECK(torch::equal(serial[i].label_b, parallel[i].label_b));
    CHECK(torch::equal(serial[i].H_b_a, parallel[i].H_b_a));
    CHECK(torch::equal(serial[i].valid_b, parallel[i].valid_b));
  }
  // The pair in the batch is the dataset's pair of that index.
  crossview::VVDDataset<Memory> ds(memory, crossview::VVDOptions().crop_size(48).seed(9));
  CHECK(torch::equal(serial[1].image_b[1], ds.get(3).image_b));
}

TEST_CASE("explicit instantiations: Eigen float homographies, 32-bit engines, every label dtype") {
  const auto image = smooth_rgb(48, 64, 40);
  const auto labels = block_labels(48, 64, 8, 41);
  Eigen::Matrix3f Hf = Eigen::Matrix3f::Identity();
  Hf(0, 2) = -3.0f;
  Hf(1, 2) = -2.0f;
  CHECK(torch::equal(crossview::warp_image(image, Hf, {20, 30}), image.slice(1, 2, 22).slice(2, 3, 33)));
  CHECK(torch::equal(crossview::warp_image_with_mask(image, Hf, {20, 30}).output, image.slice(1, 2, 22).slice(2, 3, 33)));
  const Eigen::Matrix3d Hd = Hf.cast<double>();
  const auto expected = crossview::warp_labels(labels, Hd, {20, 30});
  for (const auto dtype : {torch::kUInt8, torch::kInt16, torch::kInt32}) {
    CHECK(torch::equal(crossview::warp_labels(labels.to(dtype), Hf, {20, 30}).to(torch::kInt64), expected));
    CHECK(torch::equal(crossview::warp_labels_with_mask(labels.to(dtype), Hf, {20, 30}).valid,
                       crossview::warp_labels_with_mask(labels, Hd, {20, 30}).valid));
  }
  crossview::VVDPairGenerator gen(crossview::VVDOptions().crop_size(32).focal(100.0));
  std::mt19937 rng32(5);
  const auto pair = gen(image.to(torch::kFloat64), labels, rng32);
  CHECK((pair.image_b.scalar_type() == torch::kFloat64));
  CHECK(pair.tries >= 1);
}
