// SyntheticStreet: determinism, content, and the key property -- a render under rotation R is the
// identity render seen through rotation_homography(K, R) (Eq. 2), checked by warping the identity
// render with crossview::warp_image (bilinear) and warp_labels (nearest).
#include <crossview/data/synthetic_street.hpp>
#include <crossview/geometry.hpp>
#include <crossview/warp/warp_image.hpp>
#include <crossview/warp/warp_labels.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <set>

namespace {

struct WarpCheck {
  double label_agreement{0};  // fraction of valid, non-edge pixels with equal labels
  double image_mae{0};        // mean |difference| over valid, non-edge pixels and channels
  std::int64_t compared{0};
};

// Compares `rotated` with `identity` warped by H (identity pixels -> rotated pixels) with
// crossview::warp_image / warp_labels. Pixels whose source lies outside the identity image
// (warp_image's validity mask), or whose nearest source pixel touches a label edge (3x3
// neighbourhood), are skipped.
WarpCheck compare_with_warp(const crossview::StreetView& identity, const crossview::StreetView& rotated,
                            const Eigen::Matrix3d& H) {
  const crossview::SizeHW hw{rotated.label.size(0), rotated.label.size(1)};
  const auto image = crossview::warp_image_with_mask(identity.image, H, hw);
  const auto label = crossview::warp_labels(identity.label, H, hw);
  // 1 where the 3x3 neighbourhood holds more than one label; warped like the labels.
  namespace F = torch::nn::functional;
  const auto l = identity.label.to(torch::kFloat64).unsqueeze(0).unsqueeze(0);
  const auto hi = F::max_pool2d(l, F::MaxPool2dFuncOptions(3).stride(1).padding(1));
  const auto lo = -F::max_pool2d(-l, F::MaxPool2dFuncOptions(3).stride(1).padding(1));
  const auto edge = hi.ne(lo).squeeze().to(torch::kInt64);
  const auto warped_edge = crossview::warp_labels(edge, H, hw, /*ignore_index=*/1);
  const auto keep = image.valid & warped_edge.eq(0);
  WarpCheck r;
  r.compared = keep.sum().item<std::int64_t>();
  if (r.compared == 0) return r;
  r.label_agreement = label.eq(rotated.label).logical_and(keep).sum().item<double>() / double(r.compared);
  r.image_mae = (image.output - rotated.image).abs().sum(0).masked_select(keep).sum().item<double>() /
                double(3 * r.compared);
  return r;
}

constexpr std::int64_t kHeight = 128, kWidth = 256;

crossview::Intrinsicsd test_camera() {
  return crossview::Intrinsicsd::centered(crossview::cityscapes_focal_for_width(kWidth), kWidth, kHeight);
}

}  // namespace

TEST_CASE("SyntheticStreet renders deterministic, labelled street scenes") {
  const auto K = test_camera();
  const Eigen::Matrix3d I = Eigen::Matrix3d::Identity();
  const crossview::SyntheticStreet street(7);
  const auto a = street.render(K, I, kHeight, kWidth);
  const auto b = crossview::SyntheticStreet(7).render(K, I, kHeight, kWidth);
  CHECK((a.image.sizes() == torch::IntArrayRef({3, kHeight, kWidth})));
  CHECK((a.label.sizes() == torch::IntArrayRef({kHeight, kWidth})));
  CHECK((a.image.scalar_type() == torch::kFloat32));
  CHECK((a.label.scalar_type() == torch::kInt64));
  CHECK(torch::equal(a.image, b.image));
  CHECK(torch::equal(a.label, b.label));
  CHECK(a.image.min().item<float>() >= 0.0f);
  CHECK(a.image.max().item<float>() <= 1.0f);
  // Another seed is another scene.
  const auto c = crossview::SyntheticStreet(8).render(K, I, kHeight, kWidth);
  CHECK(c.label.ne(a.label).sum().item<std::int64_t>() > kHeight * kWidth / 50);

  // Road fills much of the lower half, sky much of the top rows; a textured (not flat) image.
  CHECK(a.label.slice(0, kHeight / 2).eq(0).to(torch::kFloat).mean().item<float>() > 0.2f);
  CHECK(a.label.slice(0, 0, 4).eq(10).to(torch::kFloat).mean().item<float>() > 0.2f);
  // Over a few scenes every class of the scene vocabulary shows up.
  std::set<std::int64_t> seen;
  for (std::uint64_t seed = 0; seed < 6; ++seed) {
    const auto v = crossview::SyntheticStreet(seed).render(K, I, kHeight, kWidth);
    const auto u = std::get<0>(at::_unique(v.label));
    for (std::int64_t k = 0; k < u.numel(); ++k) seen.insert(u[k].item<std::int64_t>());
  }
  for (const std::int64_t id : {0, 1, 2, 5, 8, 10, 11, 13}) {
    CAPTURE(id);
    CHECK(seen.count(id) == 1);
  }
  CHECK(seen.size() >= 11);
  for (const auto id : seen) CHECK(((id >= 0 && id <= 15) || id == 255));
}

TEST_CASE("SyntheticStreet: the rotated render is the identity render warped by K R K^-1 (Eq. 2)") {
  const auto K = test_camera();
  const crossview::SyntheticStreet street(3);
  const auto identity = street.render(K, Eigen::Matrix3d::Identity(), kHeight, kWidth);
  std::mt19937_64 rng(11);
  std::vector<crossview::EulerAngles<double>> views;
  for (int i = 0; i < 4; ++i) views.push_back(crossview::sample_view(crossview::ViewRange{}, rng));
  // The corners of the paper's ranges.
  views.push_back({crossview::deg2rad(30.0), crossview::deg2rad(15.0), crossview::deg2rad(3.0)});
  views.push_back({crossview::deg2rad(-30.0), crossview::deg2rad(-15.0), crossview::deg2rad(-3.0)});
  double worst_agreement = 1.0, worst_mae = 0.0;
  for (const auto& view : views) {
    CAPTURE(crossview::rad2deg(view.yaw));
    CAPTURE(crossview::rad2deg(view.pitch));
    CAPTURE(crossview::rad2deg(view.roll));
    const Eigen::Matrix3d R = crossview::rotation_from_euler(view);
    const auto rotated = street.render(K, R, kHeight, kWidth);
    const Eigen::Matrix3d H = crossview::rotation_homography(K, R);
    const auto check = compare_with_warp(identity, rotated, H);
    CAPTURE(check.compared);
    CHECK(check.compared > kHeight * kWidth / 8);
    CHECK(check.label_agreement >= 0.99);
    CHECK(check.image_mae < 0.03);
    worst_agreement = std::min(worst_agreement, check.label_agreement);
    worst_mae = std::max(worst_mae, check.image_mae);
    // The check can fail: the wrong direction (R^T) does not reproduce the render.
    const auto wrong = compare_with_warp(identity, rotated, crossview::rotation_homography(K, R.transpose()));
    CHECK(wrong.label_agreement < 0.95);
  }
  MESSAGE("warp vs render over " << views.size() << " views: worst label agreement " << worst_agreement
                                   << ", worst image MAE " << worst_mae);
}

TEST_CASE("SyntheticStreet: bad arguments are refused with clear messages") {
  const crossview::SyntheticStreet street(1);
  const auto K = test_camera();
  CHECK_THROWS_WITH_AS(street.render(K, Eigen::Matrix3d::Identity(), 0, 8),
                       "SyntheticStreet::render: height x width must be positive, got 0x8", std::invalid_argument);
  Eigen::Matrix3d bad = Eigen::Matrix3d::Identity();
  bad(0, 0) = std::nan("");
  CHECK_THROWS_AS(street.render(K, bad, 8, 8), std::invalid_argument);
}

TEST_CASE("SyntheticStreet renders a 128x256 view in a few tens of milliseconds per core") {
  const auto K = test_camera();
  const crossview::SyntheticStreet street(5);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  double ms = 1e9;
  crossview::StreetView v;
  for (int repeat = 0; repeat < 3; ++repeat) {
    const auto start = std::chrono::steady_clock::now();
    v = street.render(K, Eigen::Matrix3d::Identity(), kHeight, kWidth);
    ms = std::min(ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  at::set_num_threads(threads);
  MESSAGE("128x256 render: " << ms << " ms on one thread (best of 3)");
  CHECK(v.label.numel() == kHeight * kWidth);
}

TEST_CASE_TEMPLATE("SyntheticStreet::render takes cameras in float and double", Scalar, float, double) {
  const auto Kd = crossview::Intrinsicsd::centered(70.0, 64, 32);
  const auto K = Kd.cast<Scalar>();
  const Eigen::Matrix<Scalar, 3, 3> R =
      crossview::rotation_from_euler(Scalar(0.2), Scalar(-0.1), Scalar(0.03));
  const crossview::SyntheticStreet street(4);
  const crossview::StreetView v = street.render(K, R, 32, 64);
  // The same view as the double camera of the same parameters (rounding moves rays by ~1e-7).
  const crossview::StreetView expected = street.render(Kd, R.template cast<double>().eval(), 32, 64);
  CHECK((v.image.sizes() == torch::IntArrayRef({3, 32, 64})));
  CHECK(v.label.eq(expected.label).to(torch::kFloat).mean().item<float>() >= 0.99f);
}
