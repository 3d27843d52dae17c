// Flow-based video consistency (paper Sec. 4.4): against a brute-force loop over frame b's pixels
// (with and without the forward-backward check, frames of different sizes, batches), and analytic
// cases: a label map and its shifted copy under the shift's flow agree 100 %, nearest-pixel
// rounding, the occlusion check drops exactly the pixels whose flow does not come back, a fixed
// pixel threshold, ignored labels, non-finite flow, error texts.
#include <crossview/metrics/flow_consistency.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace {

using crossview::ConfusionMatrix;
using crossview::flow_consistency;
using crossview::FlowConsistencyOptions;

/// The definition, pixel by pixel, for one [H, W] pair; adds to `counts` [K, K] (rows label_b,
/// columns label_a) and returns the number of counted pixels.
int64_t brute_force(const torch::Tensor& labels_a, const torch::Tensor& labels_b, const torch::Tensor& flow_b_a,
                    const torch::Tensor& flow_a_b, double alpha, double beta, int64_t ignore, torch::Tensor& counts) {
  const auto la = labels_a.to(torch::kInt64).contiguous();
  const auto lb = labels_b.to(torch::kInt64).contiguous();
  const auto f = flow_b_a.to(torch::kFloat64).contiguous();
  const auto g = flow_a_b.defined() ? flow_a_b.to(torch::kFloat64).contiguous() : torch::Tensor();
  auto A = la.accessor<int64_t, 2>();
  auto B = lb.accessor<int64_t, 2>();
  auto Fa = f.accessor<double, 3>();
  auto C = counts.accessor<int64_t, 2>();
  const int64_t ha = la.size(0), wa = la.size(1);
  int64_t n = 0;
  for (int64_t y = 0; y < lb.size(0); ++y) {
    for (int64_t x = 0; x < lb.size(1); ++x) {
      const double fx = Fa[0][y][x], fy = Fa[1][y][x];
      const double qx = double(x) + fx, qy = double(y) + fy;
      if (!(qx >= 0 && qx <= double(wa - 1) && qy >= 0 && qy <= double(ha - 1))) continue;
      if (g.defined()) {
        auto G = g.accessor<double, 3>();
        const double x0 = std::floor(qx), y0 = std::floor(qy);
        const double wx = qx - x0, wy = qy - y0;
        const auto i0 = int64_t(x0), j0 = int64_t(y0);
        const int64_t i1 = wx > 0 ? i0 + 1 : i0, j1 = wy > 0 ? j0 + 1 : j0;
        double gs[2];
        for (int c = 0; c < 2; ++c) {
          gs[c] = (G[c][j0][i0] * (1 - wx) + G[c][j0][i1] * wx) * (1 - wy) +
                  (G[c][j1][i0] * (1 - wx) + G[c][j1][i1] * wx) * wy;
        }
        const double ex = fx + gs[0], ey = fy + gs[1];
        if (ex * ex + ey * ey > alpha * (fx * fx + fy * fy + gs[0] * gs[0] + gs[1] * gs[1]) + beta) continue;
      }
      const auto xa = int64_t(std::floor(qx + 0.5)), ya = int64_t(std::floor(qy + 0.5));
      const int64_t target = B[y][x], prediction = A[ya][xa];
      if (target == ignore || prediction == ignore) continue;
      ++C[target][prediction];
      ++n;
    }
  }
  return n;
}

/// labels_b(x, y) = labels_a(x + dx, y + dy) where that lies inside a, `outside` elsewhere.
torch::Tensor shifted(const torch::Tensor& labels_a, int64_t dx, int64_t dy, int64_t outside) {
  const int64_t H = labels_a.size(0), W = labels_a.size(1);
  auto b = torch::full({H, W}, outside, torch::kInt64);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      if (x + dx >= 0 && x + dx < W && y + dy >= 0 && y + dy < H) b[y][x] = labels_a[y + dy][x + dx];
  return b;
}

torch::Tensor constant_flow(double dx, double dy, int64_t H, int64_t W) {
  auto f = torch::empty({2, H, W});
  f[0].fill_(dx);
  f[1].fill_(dy);
  return f;
}

}  // namespace

TEST_CASE("flow_consistency: equals the brute-force loop (fractional flows, ignore labels, forward-backward check)") {
  torch::manual_seed(0);
  constexpr int64_t K = 6;
  // Frames of different sizes: b is 13 x 17, a is 11 x 19.
  for (const bool check : {false, true}) {
    CAPTURE(check);
    auto labels_a = torch::randint(0, K, {11, 19}, torch::kInt64);
    auto labels_b = torch::randint(0, K, {13, 17}, torch::kInt64);
    labels_a.masked_fill_(torch::rand({11, 19}) < 0.1, 255);
    labels_b.masked_fill_(torch::rand({13, 17}) < 0.1, 255);
    // A motion of (1.3, -0.7) px with per-pixel noise, and a reverse flow near its negative, so that
    // positions are fractional and some pixels pass the check and some fail.
    const auto motion = torch::tensor({1.3, -0.7}, torch::kFloat32).view({2, 1, 1});
    const auto flow_b_a = motion + torch::randn({2, 13, 17}) * 0.3;
    const auto flow_a_b = -motion + torch::randn({2, 11, 19}) * 0.5;
    FlowConsistencyOptions options;
    if (check) options.flow_a_b(flow_a_b);
    ConfusionMatrix matrix(K);
    const auto n = flow_consistency(labels_a, labels_b, flow_b_a, matrix, options);
    auto expected = torch::zeros({K, K}, torch::kInt64);
    const auto n_expected =
        brute_force(labels_a, labels_b, flow_b_a, check ? flow_a_b : torch::Tensor(), 0.01, 0.5, 255, expected);
    CHECK(n == n_expected);
    CHECK(n == matrix.total());
    CHECK(torch::equal(matrix.matrix(), expected));
    CHECK(n > 20);
    if (check) {
      // The check dropped some of the pixels counted without it.
      ConfusionMatrix without(K);
      CHECK(flow_consistency(labels_a, labels_b, flow_b_a, without) > n);
    }
  }
}

TEST_CASE("flow_consistency: a batch is the sum of its pairs; int32 labels and double flows work") {
  torch::manual_seed(1);
  const auto labels_a = torch::randint(0, 4, {3, 9, 10}, torch::kInt32);
  const auto labels_b = torch::randint(0, 4, {3, 9, 10}, torch::kInt32);
  const auto flow_b_a = torch::randn({3, 2, 9, 10}, torch::kFloat64) * 2;
  const auto flow_a_b = -flow_b_a + torch::randn({3, 2, 9, 10}, torch::kFloat64) * 0.5;
  ConfusionMatrix batched(4), single(4);
  const auto n = flow_consistency(labels_a, labels_b, flow_b_a, batched, FlowConsistencyOptions().flow_a_b(flow_a_b));
  int64_t sum = 0;
  for (int64_t i = 0; i < 3; ++i) {
    sum +=
        flow_consistency(labels_a[i], labels_b[i], flow_b_a[i], single, FlowConsistencyOptions().flow_a_b(flow_a_b[i]));
  }
  CHECK(n == sum);
  CHECK(torch::equal(batched.matrix(), single.matrix()));
}

TEST_CASE("flow_consistency: a label map and its shifted copy agree 100 % under the shift's flow") {
  torch::manual_seed(2);
  const int64_t H = 20, W = 24;
  const auto labels_a = torch::randint(0, 5, {H, W}, torch::kInt64);
  for (const auto& d : std::vector<std::pair<int64_t, int64_t>>{{3, 2}, {-4, 1}, {0, -5}, {0, 0}}) {
    CAPTURE(d.first);
    CAPTURE(d.second);
    const auto labels_b = shifted(labels_a, d.first, d.second, /*outside=*/0);
    ConfusionMatrix matrix(5);
    const auto flow = constant_flow(double(d.first), double(d.second), H, W);
    const auto n = flow_consistency(labels_a, labels_b, flow, matrix);
    CHECK(n == (W - std::abs(d.first)) * (H - std::abs(d.second)));
    CHECK(matrix.pixel_accuracy() == 1.0);
    CHECK(matrix.mean_iou() == 1.0);
    // The exact reverse flow passes the check everywhere: nothing is dropped.
    ConfusionMatrix checked(5);
    const auto reverse = constant_flow(-double(d.first), -double(d.second), H, W);
    CHECK(flow_consistency(labels_a, labels_b, flow, checked, FlowConsistencyOptions().flow_a_b(reverse)) == n);
    if (d.first != 0 || d.second != 0) {
      // The test can fail: without the flow the shifted copy does not agree.
      ConfusionMatrix unaligned(5);
      flow_consistency(labels_a, labels_b, torch::zeros({2, H, W}), unaligned);
      CHECK(unaligned.pixel_accuracy() < 0.5);
    }
  }
}

TEST_CASE("flow_consistency: q is rounded to the nearest pixel and must lie within a's pixel centres") {
  // Label = column index in both frames: the sampled column tells where q was rounded to.
  const int64_t H = 3, W = 8;
  const auto columns = torch::arange(W, torch::kInt64).view({1, W}).expand({H, W}).contiguous();
  {
    ConfusionMatrix matrix(W);
    // x + 0.4 rounds to x; x + 0.4 <= 7 for x <= 6.
    CHECK(flow_consistency(columns, columns, constant_flow(0.4, 0.0, H, W), matrix) == (W - 1) * H);
    CHECK(matrix.pixel_accuracy() == 1.0);
  }
  {
    ConfusionMatrix matrix(W);
    // x + 0.6 rounds to x + 1.
    CHECK(flow_consistency(columns, columns, constant_flow(0.6, 0.0, H, W), matrix) == (W - 1) * H);
    CHECK(matrix.pixel_accuracy() == 0.0);
    CHECK(matrix.matrix()[2][3].item<int64_t>() == H);
  }
  {
    // Ties round up (floor(q + 0.5)), as cross_view_consistency.
    ConfusionMatrix matrix(W);
    flow_consistency(columns, columns, constant_flow(0.5, 0.0, H, W), matrix);
    CHECK(matrix.matrix()[0][1].item<int64_t>() == H);
  }
  {
    // Slightly outside a (x = -0.2 or y > H - 1) is not counted, though the nearest pixel exists.
    ConfusionMatrix matrix(W);
    CHECK(flow_consistency(columns, columns, constant_flow(-0.2, 0.0, H, W), matrix) == (W - 1) * H);
    ConfusionMatrix below(W);
    CHECK(flow_consistency(columns, columns, constant_flow(0.0, 0.2, H, W), below) == W * (H - 1));
  }
}

TEST_CASE("flow_consistency: the forward-backward check drops the pixels whose flow does not come back") {
  torch::manual_seed(3);
  const int64_t H = 16, W = 20, dx = 3, dy = 2;
  const auto labels_a = torch::randint(0, 4, {H, W}, torch::kInt64);
  auto labels_b = shifted(labels_a, dx, dy, 0);
  // An occluder in frame a, rows 5..9, columns 6..11: its reverse flow is 0 (it moved with the
  // camera), and b's labels there disagree with a's.
  auto reverse = constant_flow(-double(dx), -double(dy), H, W);
  reverse.slice(1, 5, 10).slice(2, 6, 12).zero_();
  labels_b.slice(0, 5 - dy, 10 - dy).slice(1, 6 - dx, 12 - dx).add_(1).remainder_(4);
  const auto flow = constant_flow(double(dx), double(dy), H, W);
  const int64_t in_frame = (W - dx) * (H - dy), occluded = 5 * 6;

  ConfusionMatrix unchecked(4);
  CHECK(flow_consistency(labels_a, labels_b, flow, unchecked) == in_frame);
  CHECK(unchecked.pixel_accuracy() == doctest::Approx(double(in_frame - occluded) / double(in_frame)));

  // |f + g|^2 = 13 > 0.01 * (13 + 0) + 0.5 in the occluder; 0 elsewhere.
  ConfusionMatrix checked(4);
  CHECK(flow_consistency(labels_a, labels_b, flow, checked, FlowConsistencyOptions().flow_a_b(reverse)) ==
        in_frame - occluded);
  CHECK(checked.pixel_accuracy() == 1.0);

  // A fixed pixel threshold t: fb_alpha 0, fb_beta t^2. The occluder's error is sqrt(13) = 3.6 px.
  ConfusionMatrix loose(4), tight(4);
  CHECK(flow_consistency(labels_a, labels_b, flow, loose,
                         FlowConsistencyOptions().flow_a_b(reverse).fb_alpha(0).fb_beta(4.0 * 4.0)) == in_frame);
  CHECK(flow_consistency(labels_a, labels_b, flow, tight,
                         FlowConsistencyOptions().flow_a_b(reverse).fb_alpha(0).fb_beta(3.5 * 3.5)) ==
        in_frame - occluded);
}

TEST_CASE("flow_consistency: ignored labels in either frame and non-finite flow are not counted") {
  const int64_t H = 4, W = 5;
  auto labels_a = torch::zeros({H, W}, torch::kInt64);
  auto labels_b = torch::zeros({H, W}, torch::kInt64);
  labels_a[0][0] = 255;  // sampled by b's (0, 0) under zero flow
  labels_b[3][4] = 255;
  auto flow = torch::zeros({2, H, W});
  flow[0][1][1] = std::numeric_limits<float>::quiet_NaN();
  flow[1][2][2] = std::numeric_limits<float>::infinity();
  ConfusionMatrix matrix(2);
  CHECK(flow_consistency(labels_a, labels_b, flow, matrix) == H * W - 4);
  CHECK(matrix.pixel_accuracy() == 1.0);
  // A NaN in the reverse flow fails the check.
  auto reverse = torch::zeros({2, H, W});
  reverse[0][3][3] = std::numeric_limits<float>::quiet_NaN();
  ConfusionMatrix checked(2);
  CHECK(flow_consistency(labels_a, labels_b, flow, checked, FlowConsistencyOptions().flow_a_b(reverse)) == H * W - 5);
}

TEST_CASE("flow_consistency: errors name the argument, the expected and the given shape") {
  const auto labels = torch::zeros({4, 5}, torch::kInt64);
  ConfusionMatrix matrix(3);
  CHECK_THROWS_WITH_AS(flow_consistency(labels, labels, torch::zeros({4, 5, 2}), matrix),
                       doctest::Contains("flow_consistency: flow_b_a must have shape [2, 4, 5], got [4, 5, 2]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(flow_consistency(labels.to(torch::kFloat32), labels, torch::zeros({2, 4, 5}), matrix),
                       doctest::Contains("flow_consistency: labels_a must be an integer tensor, got Float"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(flow_consistency(labels, labels, torch::zeros({2, 4, 5}, torch::kInt64), matrix),
                       doctest::Contains("flow_consistency: flow_b_a must be a floating-point tensor, got Long"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(flow_consistency(labels, labels, torch::zeros({2, 4, 5}), matrix,
                                        FlowConsistencyOptions().flow_a_b(torch::zeros({2, 5, 4}))),
                       doctest::Contains("flow_consistency: flow_a_b must have shape [2, 4, 5], got [2, 5, 4]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(
      flow_consistency(torch::zeros({2, 4, 5}, torch::kInt64), labels, torch::zeros({2, 4, 5}), matrix),
      doctest::Contains("flow_consistency: labels_a and labels_b must have the same batch size"), c10::Error);
  CHECK_THROWS_WITH_AS(
      flow_consistency(labels, labels, torch::zeros({2, 4, 5}), matrix, FlowConsistencyOptions().fb_alpha(-1)),
      doctest::Contains("flow_consistency: fb_alpha and fb_beta must be >= 0, got -1 and 0.5"), c10::Error);
  // Labels outside [0, num_classes) at counted pixels: the matrix says so.
  CHECK_THROWS_WITH_AS(flow_consistency(labels + 5, labels, torch::zeros({2, 4, 5}), matrix),
                       doctest::Contains("ConfusionMatrix::update: prediction values must lie in [0, 3)"), c10::Error);
}

TEST_CASE("flow_consistency: CUDA agrees with the CPU") {
  if (!torch::cuda::is_available()) {
    MESSAGE("skipped: no CUDA device");
    return;
  }
  torch::manual_seed(4);
  const auto labels_a = torch::randint(0, 5, {2, 30, 40}, torch::kInt64);
  const auto labels_b = torch::randint(0, 5, {2, 30, 40}, torch::kInt64);
  const auto flow = torch::randn({2, 2, 30, 40}) * 3;
  const auto reverse = -flow + torch::randn({2, 2, 30, 40}) * 0.5;
  ConfusionMatrix cpu(5), cuda(5);
  const auto n_cpu = flow_consistency(labels_a, labels_b, flow, cpu, FlowConsistencyOptions().flow_a_b(reverse));
  const auto n_cuda = flow_consistency(labels_a.cuda(), labels_b.cuda(), flow.cuda(), cuda,
                                       FlowConsistencyOptions().flow_a_b(reverse.cuda()));
  CHECK(n_cpu == n_cuda);
  CHECK(torch::equal(cpu.matrix(), cuda.matrix()));
}
