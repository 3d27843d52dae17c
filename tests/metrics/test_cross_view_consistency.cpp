// Cross-view consistency (paper Sec. 4.2) and its flow variant against brute-force loops and
// exact warps.
#include <crossview/metrics.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <Eigen/Core>
#include <Eigen/LU>

#include <cmath>
#include <vector>

namespace {

using crossview::ConfusionMatrix;

// Blocky random labels [N, H, W] in [0, K): 8x8 blocks, as segmentations look.
torch::Tensor blocky_labels(int64_t N, int64_t H, int64_t W, int64_t K) {
  const auto coarse = torch::randint(0, K, {N, 1, (H + 7) / 8, (W + 7) / 8}, torch::kFloat32);
  return torch::nn::functional::interpolate(coarse, torch::nn::functional::InterpolateFuncOptions()
                                                        .size(std::vector<int64_t>{H, W})
                                                        .mode(torch::kNearest))
      .squeeze(1)
      .to(torch::kInt64);
}

// pred_b(x_b) = pred_a(nearest(H_a_b x_b)) where that lands in a, else a random class: the exact
// warp of pred_a into view b.
torch::Tensor warp_nearest(const torch::Tensor& pred_a, const Eigen::Matrix3d& H_b_a, int64_t hb, int64_t wb, int64_t K) {
  const Eigen::Matrix3d H_a_b = H_b_a.inverse();
  auto out = torch::randint(0, K, {hb, wb}, torch::kInt64);
  auto o = out.accessor<int64_t, 2>();
  const auto a = pred_a.contiguous();
  auto pa = a.accessor<int64_t, 2>();
  for (int64_t y = 0; y < hb; ++y)
    for (int64_t x = 0; x < wb; ++x) {
      const Eigen::Vector3d q = H_a_b * Eigen::Vector3d(double(x), double(y), 1.0);
      if (q.z() <= 0) continue;
      const auto xa = int64_t(std::floor(q.x() / q.z() + 0.5)), ya = int64_t(std::floor(q.y() / q.z() + 0.5));
      if (xa >= 0 && ya >= 0 && xa < a.size(1) && ya < a.size(0)) o[y][x] = pa[ya][xa];
    }
  return out;
}

// The CVC confusion matrix by a plain loop in double: every pixel of a that maps inside b.
std::vector<int64_t> brute_force_cvc(const torch::Tensor& pred_a, const torch::Tensor& pred_b, const Eigen::Matrix3d& H,
                                     int64_t K, int64_t& scored) {
  std::vector<int64_t> m(size_t(K * K), 0);
  auto pa = pred_a.accessor<int64_t, 2>();
  auto pb = pred_b.accessor<int64_t, 2>();
  scored = 0;
  for (int64_t y = 0; y < pred_a.size(0); ++y)
    for (int64_t x = 0; x < pred_a.size(1); ++x) {
      const Eigen::Vector3d q = H * Eigen::Vector3d(double(x), double(y), 1.0);
      if (q.z() <= 0) continue;
      const double u = q.x() / q.z(), v = q.y() / q.z();
      if (u < 0 || v < 0 || u > double(pred_b.size(1) - 1) || v > double(pred_b.size(0) - 1)) continue;
      const auto xb = int64_t(std::floor(u + 0.5)), yb = int64_t(std::floor(v + 0.5));
      ++m[size_t(pa[y][x] * K + pb[yb][xb])];
      ++scored;
    }
  return m;
}

Eigen::Matrix3d rotation_about(double angle, double cx, double cy, double tx, double ty) {
  Eigen::Matrix3d H;
  const double c = std::cos(angle), s = std::sin(angle);
  H << c, -s, cx - c * cx + s * cy + tx, s, c, cy - s * cx - c * cy + ty, 2e-4, -1e-4, 1;
  return H;
}

}  // namespace

TEST_CASE("CVC: a prediction against its exact warp is 100 %") {
  const int64_t K = 6, H = 40, W = 48;
  const auto pred_a = blocky_labels(2, H, W, K);
  // Pixel-to-pixel maps: an integer translation, a mirror with a shift.
  Eigen::Matrix3d T, M;
  T << 1, 0, 5, 0, 1, -3, 0, 0, 1;
  M << -1, 0, 40, 0, 1, 2, 0, 0, 1;
  const auto pred_b = torch::stack({warp_nearest(pred_a[0], T, H, W, K), warp_nearest(pred_a[1], M, H, W, K)});
  const auto Hs = crossview::homographies_to_tensor({T, M});
  ConfusionMatrix cm(K);
  const int64_t scored = crossview::cross_view_consistency(pred_a, pred_b, Hs, cm);
  CHECK(scored == (H - 3) * (W - 5) + (H - 2) * (W - 7));
  CHECK(cm.total() == scored);
  CHECK(cm.pixel_accuracy() == 1.0);
  CHECK(cm.mean_iou() == 1.0);
}

TEST_CASE("CVC: agrees with a brute-force loop under a general homography; warps score high, shuffles low") {
  const int64_t K = 6, H = 60, W = 80;
  const auto pred_a = blocky_labels(1, H, W, K)[0];
  const Eigen::Matrix3d Hba = rotation_about(0.15, 40, 30, 4.3, -2.7);
  SUBCASE("exact warp") {
    const auto pred_b = warp_nearest(pred_a, Hba, H, W, K);
    ConfusionMatrix cm(K);
    const int64_t scored = crossview::cross_view_consistency(pred_a, pred_b, Hba, cm);
    int64_t expected_scored = 0;
    const auto expected = brute_force_cvc(pred_a, pred_b, Hba, K, expected_scored);
    // The library maps in float32 positions: a pixel may round the other way at an exact .5.
    CHECK(std::abs(scored - expected_scored) <= 2);
    const auto m = cm.matrix().contiguous();
    int64_t diff = 0;
    for (int64_t i = 0; i < K * K; ++i) diff += std::abs(m.view({-1})[i].item<int64_t>() - expected[size_t(i)]);
    CHECK(diff <= 4);
    CHECK(scored > H * W / 2);
    // Nearest twice: off by at most a pixel at block borders.
    CHECK(cm.pixel_accuracy() > 0.9);
    CHECK(cm.mean_iou() > 0.8);
  }
  SUBCASE("shuffled prediction") {
    const auto pred_b = warp_nearest(pred_a, Hba, H, W, K).view({-1});
    const auto shuffled = pred_b.index_select(0, torch::randperm(pred_b.numel())).view({H, W});
    ConfusionMatrix cm(K);
    crossview::cross_view_consistency(pred_a, shuffled, Hba, cm);
    CHECK(cm.pixel_accuracy() < 0.35);
    CHECK(cm.mean_iou() < 0.25);
  }
}

TEST_CASE("CVC: ignore pixels of gt_a and views behind the camera are left out") {
  const int64_t K = 4, H = 20, W = 30;
  const auto pred_a = blocky_labels(1, H, W, K);
  const auto pred_b = blocky_labels(1, H, W, K);
  const auto I = torch::eye(3, torch::kFloat64);
  auto gt_a = torch::zeros({1, H, W}, torch::kInt64);
  gt_a.slice(1, 0, 5).fill_(255);
  ConfusionMatrix cm(K);
  CHECK(crossview::cross_view_consistency(pred_a, pred_b, I, cm, gt_a) == (H - 5) * W);
  CHECK(cm.total() == (H - 5) * W);
  ConfusionMatrix behind(K);
  CHECK(crossview::cross_view_consistency(pred_a, pred_b, -I, behind) == 0);
  CHECK(behind.total() == 0);
}

TEST_CASE("CVC flow variant: constant flow equals the translation homography; validity masks") {
  const int64_t K = 5, H = 30, W = 40;
  const auto pred_a = blocky_labels(2, H, W, K);
  const auto pred_b = blocky_labels(2, H, W, K);
  Eigen::Matrix3d T;
  T << 1, 0, 3, 0, 1, -2, 0, 0, 1;
  ConfusionMatrix by_h(K), by_flow(K);
  crossview::cross_view_consistency(pred_a, pred_b, crossview::homographies_to_tensor({T, T}), by_h);
  auto flow = torch::zeros({2, H, W, 2}, torch::kFloat32);
  flow.select(3, 0).fill_(3.0);
  flow.select(3, 1).fill_(-2.0);
  crossview::cross_view_consistency_flow(pred_a, pred_b, flow, by_flow);
  CHECK(torch::equal(by_h.matrix(), by_flow.matrix()));
  // Masked pixels and non-finite flow do not count.
  auto valid = torch::ones({2, H, W}, torch::kBool);
  valid.slice(2, 0, 10).fill_(false);
  auto nan_flow = flow.clone();
  nan_flow[1].fill_(std::nan(""));
  ConfusionMatrix masked(K);
  CHECK(crossview::cross_view_consistency_flow(pred_a, pred_b, nan_flow, masked, valid) == (H - 2) * (W - 10 - 3 + 0));
}

TEST_CASE("CVC: errors name the argument") {
  ConfusionMatrix cm(3);
  const auto p = torch::zeros({2, 4, 5}, torch::kInt64);
  const auto I = torch::eye(3, torch::kFloat64);
  CHECK_THROWS_WITH_AS(crossview::cross_view_consistency(p, torch::zeros({3, 4, 5}, torch::kInt64), I, cm),
                       doctest::Contains("cross_view_consistency: pred_a and pred_b must have the same batch size, got "
                                         "[2, 4, 5] and [3, 4, 5]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(crossview::cross_view_consistency(p.to(torch::kFloat32), p, I, cm),
                       doctest::Contains("cross_view_consistency: pred_a must be an integer tensor, got Float"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(crossview::cross_view_consistency(p, p, I.expand({3, 3, 3}), cm),
                       doctest::Contains("cross_view_consistency: H_b_a must have shape [2, 3, 3] or [3, 3], got "
                                         "[3, 3, 3]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(crossview::cross_view_consistency(p, p, I, cm, torch::zeros({2, 4, 4}, torch::kInt64)),
                       doctest::Contains("cross_view_consistency: gt_a must have pred_a's shape [2, 4, 5], got [2, 4, 4]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(crossview::cross_view_consistency_flow(p, p, torch::zeros({2, 4, 5, 3}), cm),
                       doctest::Contains("cross_view_consistency_flow: flow_a_b must have shape [2, 4, 5, 2], got "
                                         "[2, 4, 5, 3]"),
                       c10::Error);
}

TEST_CASE("CVC: the device-agnostic path (correspondence_grid + gather) agrees with the CPU loop") {
  const int64_t K = 6, H = 50, W = 70;
  const auto pred_a = blocky_labels(2, H, W, K);
  const auto pred_b = blocky_labels(2, H + 6, W - 4, K);
  auto gt_a = blocky_labels(2, H, W, K);
  gt_a.masked_fill_(gt_a == 0, 255);
  const auto Hs = crossview::homographies_to_tensor({rotation_about(0.1, 35, 25, 3.3, -1.2), rotation_about(-0.2, 30, 20, -2.1, 4.4)});
  ConfusionMatrix loop(K), aten(K);
  const int64_t n_loop = crossview::cross_view_consistency(pred_a, pred_b, Hs, loop, gt_a);
  const auto corr = crossview::correspondence_grid(Hs, {H, W}, {H, W}, {H + 6, W - 4}, {H + 6, W - 4});
  const int64_t n_aten =
      crossview::detail::score_at_positions(pred_a, pred_b, corr.position_b, corr.valid, aten, gt_a, "test");
  CHECK(n_loop > H * W / 2);
  CHECK(std::abs(n_loop - n_aten) <= 2);
  CHECK((loop.matrix() - aten.matrix()).abs().sum().item<int64_t>() <= 4);
  if (torch::cuda::is_available()) {
    ConfusionMatrix gpu(K);
    crossview::cross_view_consistency(pred_a.cuda(), pred_b.cuda(), Hs, gpu, gt_a.cuda());
    CHECK((loop.matrix() - gpu.matrix()).abs().sum().item<int64_t>() <= 4);
  }
}
