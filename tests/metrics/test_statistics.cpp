// Statistics of a paired multi-seed study: Student-t quantiles against published tables and
// closed forms, t-intervals against hand arithmetic, the paired bootstrap against a brute-force
// reference written here.
#include <crossview/metrics/statistics.hpp>

#include <crossview/metrics/confusion_matrix.hpp>
#include <crossview/random.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

namespace {

constexpr double kPi = 3.14159265358979323846;
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// Closed forms of the Student-t quantile for 1, 2 and 4 degrees of freedom. Cauchy's
// tan(pi (p - 1/2)) is written as -cot(pi p) (p < 1/2) so that small tails keep their digits.
double cauchy_quantile(double p) {
  if (p == 0.5) return 0.0;
  return p < 0.5 ? -1.0 / std::tan(kPi * p) : 1.0 / std::tan(kPi * (1.0 - p));
}
double t2_quantile(double p) { return (2.0 * p - 1.0) / std::sqrt(2.0 * p * (1.0 - p)); }
double t4_quantile(double p) {
  const double alpha = 4.0 * p * (1.0 - p);
  const double q = std::cos(std::acos(std::sqrt(alpha)) / 3.0) / std::sqrt(alpha);
  return (p < 0.5 ? -2.0 : 2.0) * std::sqrt(q - 1.0);
}

// numpy.percentile's default (linear) rule, written again for the reference.
double reference_percentile(std::vector<double> v, double percent) {
  std::sort(v.begin(), v.end());
  const double position = percent / 100.0 * double(v.size() - 1);
  const auto below = size_t(position);
  const double above_weight = position - double(below);
  if (above_weight == 0.0) return v[below];
  return (1.0 - above_weight) * v[below] + above_weight * v[below + 1];
}

// Mean IoU and pixel accuracy of a pooled matrix from scratch in double: a class counts when it
// occurs in the ground truth or in the prediction.
double reference_miou(const std::vector<std::vector<double>>& m) {
  const size_t K = m.size();
  double sum = 0.0;
  int present = 0;
  for (size_t k = 0; k < K; ++k) {
    double gt = 0.0;
    double predicted = 0.0;
    for (size_t j = 0; j < K; ++j) {
      gt += m[k][j];
      predicted += m[j][k];
    }
    if (gt == 0.0 && predicted == 0.0) continue;
    sum += m[k][k] / (gt + predicted - m[k][k]);
    ++present;
  }
  return sum / present;
}
double reference_pixel_accuracy(const std::vector<std::vector<double>>& m) {
  double correct = 0.0;
  double total = 0.0;
  for (size_t r = 0; r < m.size(); ++r) {
    correct += m[r][r];
    for (size_t c = 0; c < m.size(); ++c) total += m[r][c];
  }
  return correct / total;
}

// Sum of the chosen scenes' matrices, in double.
std::vector<std::vector<double>> reference_pool(const std::vector<torch::Tensor>& scenes,
                                                const std::vector<int64_t>& chosen) {
  const auto K = scenes[0].size(0);
  std::vector<std::vector<double>> m(size_t(K), std::vector<double>(size_t(K), 0.0));
  for (const auto s : chosen) {
    auto a = scenes[size_t(s)].accessor<int64_t, 2>();
    for (int64_t r = 0; r < K; ++r)
      for (int64_t c = 0; c < K; ++c) m[size_t(r)][size_t(c)] += double(a[r][c]);
  }
  return m;
}

// Labels of one synthetic scene: the prediction is right with probability `accuracy`, otherwise
// a uniform label in [0, K - 1). The last class K - 1 occurs (in the ground truth only) in scene 0,
// so resamples without scene 0 leave it out of the mean.
crossview::ConfusionMatrix synthetic_scene(int64_t scene, int64_t K, double accuracy, std::uint64_t seed) {
  std::mt19937_64 rng(crossview::mix_seed(seed, 7, std::uint64_t(scene)));
  const int64_t pixels = 50 + 30 * scene;
  std::vector<int64_t> target(static_cast<size_t>(pixels));
  std::vector<int64_t> prediction(static_cast<size_t>(pixels));
  for (int64_t i = 0; i < pixels; ++i) {
    const int64_t t = scene == 0 && i % 5 == 0 ? K - 1 : crossview::uniform_index(rng, K - 1);
    target[size_t(i)] = t;
    prediction[size_t(i)] = crossview::uniform01(rng) < accuracy ? t : crossview::uniform_index(rng, K - 1);
  }
  crossview::ConfusionMatrix cm(K);
  cm.update(torch::tensor(prediction, torch::kInt64), torch::tensor(target, torch::kInt64));
  return cm;
}

std::vector<torch::Tensor> matrices(const std::vector<crossview::ConfusionMatrix>& cms) {
  std::vector<torch::Tensor> out;
  for (const auto& cm : cms) out.push_back(cm.matrix());
  return out;
}

}  // namespace

TEST_CASE("student_t_quantile: published table values") {
  // Two-sided critical values as printed in t tables (4 decimals), e.g. NIST/SEMATECH 1.3.6.7.2.
  struct Row {
    double p, df, table;
  };
  for (const auto& row : {Row{0.975, 1, 12.7062}, Row{0.975, 2, 4.3027}, Row{0.975, 3, 3.1824},
                          Row{0.975, 5, 2.5706}, Row{0.975, 10, 2.2281}, Row{0.975, 30, 2.0423},
                          Row{0.995, 4, 4.6041}, Row{0.95, 2, 2.9200}, Row{0.95, 20, 1.7247},
                          Row{0.9995, 1, 636.6192}, Row{0.9, 100, 1.2901}}) {
    CAPTURE(row.p);
    CAPTURE(row.df);
    // The table rounds to 4 decimals: the exact quantile lies within 5e-5 of it.
    CHECK(std::abs(crossview::student_t_quantile(row.p, row.df) - row.table) <= 5e-5);
    CHECK(std::abs(crossview::student_t_quantile(1.0 - row.p, row.df) + row.table) <= 5e-5);
  }
}

TEST_CASE("student_t_quantile: closed forms for 1, 2 and 4 degrees of freedom") {
  for (const double p : {1e-12, 1e-6, 0.001, 0.025, 0.2, 0.4999, 0.5, 0.51, 0.8, 0.975, 0.9999}) {
    CAPTURE(p);
    const double t1 = cauchy_quantile(p);
    const double t2 = t2_quantile(p);
    CHECK(crossview::student_t_quantile(p, 1) == doctest::Approx(t1).epsilon(1e-11).scale(1e-3));
    CHECK(crossview::student_t_quantile(p, 2) == doctest::Approx(t2).epsilon(1e-11).scale(1e-3));
    if (p != 0.5) {
      CHECK(crossview::student_t_quantile(p, 4) == doctest::Approx(t4_quantile(p)).epsilon(1e-9));
    }
  }
  CHECK(crossview::student_t_quantile(0.5, 7) == 0.0);
}

TEST_CASE("student_t_quantile: large df approaches the normal (Cornish-Fisher)") {
  // t_{p, nu} = z + (z^3 + z) / (4 nu) + (5 z^5 + 16 z^3 + 3 z) / (96 nu^2) + O(nu^-3), z = 1.959963984540054.
  const double z = 1.959963984540054;
  // The next term is ~2.6 / nu^3: below 1e-11 for nu >= 1e4.
  for (const double nu : {1e4, 1e5}) {
    const double expected =
        z + (z * z * z + z) / (4 * nu) + (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * nu * nu);
    CHECK(crossview::student_t_quantile(0.975, nu) == doctest::Approx(expected).epsilon(1e-9));
  }
}

TEST_CASE("student_t_cdf: closed forms, symmetry and the inverse of the quantile") {
  for (const double t : {-50.0, -3.0, -0.2, 0.0, 1e-9, 0.7, 4.0, 1e6}) {
    CAPTURE(t);
    CHECK(crossview::student_t_cdf(t, 1) == doctest::Approx(0.5 + std::atan(t) / kPi).epsilon(1e-13));
    CHECK(crossview::student_t_cdf(t, 2) == doctest::Approx(0.5 + t / (2 * std::sqrt(2 + t * t))).epsilon(1e-13));
    CHECK(crossview::student_t_cdf(-t, 6.5) == doctest::Approx(1.0 - crossview::student_t_cdf(t, 6.5)).epsilon(1e-13));
  }
  for (const double df : {1.0, 2.5, 7.0, 40.0, 1e4}) {
    for (const double p : {0.001, 0.3, 0.9, 0.995}) {
      CAPTURE(df);
      CAPTURE(p);
      CHECK(crossview::student_t_cdf(crossview::student_t_quantile(p, df), df) == doctest::Approx(p).epsilon(1e-12));
    }
  }
  CHECK(crossview::student_t_cdf(kInf, 3) == 1.0);
  CHECK(crossview::student_t_cdf(-kInf, 3) == 0.0);
}

TEST_CASE("student_t: errors") {
  CHECK_THROWS_WITH_AS(crossview::student_t_quantile(1.0, 3), "student_t_quantile: p must lie in (0, 1), got 1",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::student_t_quantile(kNaN, 3), "student_t_quantile: p must lie in (0, 1), got nan",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::student_t_quantile(0.9, 0), "student_t_quantile: df must be finite and > 0, got 0",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::student_t_cdf(1.0, kInf), "student_t_cdf: df must be finite and > 0, got inf",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::student_t_cdf(kNaN, 2), "student_t_cdf: t must not be NaN", std::invalid_argument);
}

TEST_CASE("t_interval: hand-computed example") {
  // values 1, 2, 3: mean 2; squared deviations 1 + 0 + 1 = 2, sd = sqrt(2 / (3 - 1)) = 1,
  // se = 1 / sqrt(3) = 0.5773502692; t_{0.975, 2} = 0.95 / sqrt(2 * 0.975 * 0.025) = 4.3026527297
  // (closed form for 2 df); half width 4.3026527297 * 0.5773502692 = 2.4841377118.
  const auto m = crossview::t_interval({1.0, 2.0, 3.0});
  CHECK(m.n == 3);
  CHECK(m.mean == doctest::Approx(2.0).epsilon(1e-15));
  CHECK(m.sd == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(m.se == doctest::Approx(0.5773502692).epsilon(1e-10));
  CHECK(m.lo == doctest::Approx(2.0 - 2.4841377118).epsilon(1e-9));
  CHECK(m.hi == doctest::Approx(2.0 + 2.4841377118).epsilon(1e-9));
  CHECK(m.half_width() == doctest::Approx(2.4841377118).epsilon(1e-9));
  CHECK(m.confidence == 0.95);

  // values 2, 4, 4, 4, 5, 5, 7, 9: mean 5; squared deviations 9+1+1+1+0+0+4+16 = 32; sd^2 = 32/7,
  // se = sqrt(32 / 7 / 8) = sqrt(4/7) = 0.7559289460; 99 %: t_{0.995, 7} = 3.4995 (table),
  // half width 3.4995 * 0.7559289460 = 2.6454 (4 decimals).
  const auto w = crossview::t_interval({2, 4, 4, 4, 5, 5, 7, 9}, 0.99);
  CHECK(w.mean == doctest::Approx(5.0).epsilon(1e-15));
  CHECK(w.se == doctest::Approx(std::sqrt(4.0 / 7.0)).epsilon(1e-14));
  CHECK(w.half_width() == doctest::Approx(2.6454).epsilon(1e-4));
  CHECK(w.confidence == 0.99);
}

TEST_CASE("t_interval: identical values give a zero-width interval") {
  const auto m = crossview::t_interval({0.731, 0.731, 0.731, 0.731});
  CHECK(m.mean == doctest::Approx(0.731).epsilon(1e-15));
  CHECK(m.se < 1e-15);
  CHECK(m.lo == doctest::Approx(0.731).epsilon(1e-14));
  CHECK(m.hi == doctest::Approx(0.731).epsilon(1e-14));
}

TEST_CASE("t_interval: covers the true mean of normal samples 95 % of the time") {
  // 4000 samples of n = 5 from N(3, 2^2) (Box-Muller). With the t quantile (2.776) coverage is
  // 0.95 (binomial sd 0.0034); the normal's 1.96 would cover only ~0.88.
  std::mt19937_64 rng(12345);
  int covered = 0;
  const int trials = 4000;
  for (int trial = 0; trial < trials; ++trial) {
    std::vector<double> v;
    for (int i = 0; i < 5; ++i) {
      const double u1 = 1.0 - crossview::uniform01(rng);
      const double u2 = crossview::uniform01(rng);
      v.push_back(3.0 + 2.0 * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2));
    }
    const auto m = crossview::t_interval(v);
    covered += m.lo <= 3.0 && 3.0 <= m.hi;
  }
  const double coverage = double(covered) / trials;
  CAPTURE(coverage);
  CHECK(coverage > 0.937);
  CHECK(coverage < 0.963);
}

TEST_CASE("paired_difference: hand-computed example") {
  // differences 0.71-0.70, 0.73-0.70, 0.70-0.69, 0.74-0.71 = 0.01, 0.03, 0.01, 0.03: mean 0.02,
  // squared deviations 4 * 1e-4, sd = sqrt(4e-4 / 3) = 0.0115470054, se = sd / 2 = 0.0057735027;
  // t_{0.975, 3} = 3.1824463053 (tables: 3.1824), half width 3.1824463053 * 0.0057735027 = 0.0183738623.
  const std::vector<double> method{0.71, 0.73, 0.70, 0.74};
  const std::vector<double> baseline{0.70, 0.70, 0.69, 0.71};
  const auto d = crossview::paired_difference(method, baseline);
  CHECK(d.n == 4);
  CHECK(d.mean == doctest::Approx(0.02).epsilon(1e-12));
  CHECK(d.se == doctest::Approx(0.0057735027).epsilon(1e-8));
  CHECK(d.lo == doctest::Approx(0.02 - 0.0183738623).epsilon(1e-8));
  CHECK(d.hi == doctest::Approx(0.02 + 0.0183738623).epsilon(1e-8));
  // Pairing removes the seed-to-seed variation the two unpaired intervals carry.
  CHECK(d.se < crossview::t_interval(method).se);
}

TEST_CASE("t_interval and paired_difference: errors") {
  CHECK_THROWS_WITH_AS(crossview::t_interval({0.5}),
                       "t_interval: values must hold at least 2 values (a t-interval needs n - 1 >= 1 degrees of "
                       "freedom), got 1",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::t_interval({0.5, kNaN, 0.7}), "t_interval: values[1] must be finite, got nan",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::t_interval({0.5, 0.6}, 1.0), "t_interval: confidence must lie in (0, 1), got 1",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::paired_difference({0.5, 0.6, 0.7}, {0.5, 0.6}),
                       "paired_difference: method and baseline must have the same size (one value per seed), got 3 "
                       "and 2",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::paired_difference({0.5, 0.6}, {kInf, 0.6}),
                       "paired_difference: baseline[0] must be finite, got inf", std::invalid_argument);
  CHECK_THROWS_WITH_AS(crossview::paired_difference({0.5}, {0.4}),
                       "paired_difference: method and baseline must hold at least 2 values (a t-interval needs n - 1 "
                       ">= 1 degrees of freedom), got 1",
                       std::invalid_argument);
}

TEST_CASE("bootstrap_scene_indices: mt19937_64 seeded with mix_seed(seed, kBootstrapStream, r)") {
  for (const int64_t r : {0, 1, 1999}) {
    const auto indices = crossview::bootstrap_scene_indices(37, 5, r);
    std::mt19937_64 rng(crossview::mix_seed(5, crossview::kBootstrapStream, std::uint64_t(r)));
    REQUIRE(indices.size() == 37);
    for (const auto i : indices) CHECK(i == crossview::uniform_index(rng, 37));
  }
  CHECK(crossview::bootstrap_scene_indices(37, 5, 3) == crossview::bootstrap_scene_indices(37, 5, 3));
  CHECK(crossview::bootstrap_scene_indices(37, 5, 3) != crossview::bootstrap_scene_indices(37, 6, 3));
  CHECK_THROWS_WITH_AS(crossview::bootstrap_scene_indices(0, 5, 3),
                       "bootstrap_scene_indices: num_scenes must be > 0, got 0", std::invalid_argument);
}

TEST_CASE("bootstrap_difference: identical models give 0 and [0, 0]") {
  std::vector<crossview::ConfusionMatrix> scenes;
  for (int64_t s = 0; s < 9; ++s) scenes.push_back(synthetic_scene(s, 4, 0.6, 1));
  for (const auto metric : {crossview::SegmentationMetric::kMeanIoU, crossview::SegmentationMetric::kPixelAccuracy}) {
    const auto b = crossview::bootstrap_difference(scenes, scenes, metric, 300);
    CHECK(b.observed == 0.0);
    CHECK(b.lo == 0.0);
    CHECK(b.hi == 0.0);
    CHECK(b.se == 0.0);
    CHECK(b.resamples == 300);
    CHECK(b.scenes == 9);
  }
}

TEST_CASE("bootstrap_difference: a difference that is the same in every resample collapses the interval") {
  // Scene j of B is w_j * M and scene j of A is w_j * diag(row sums of M): the same ground truth,
  // A perfect. Any pooled resample of B is proportional to M, so the difference never changes.
  // M = [[3,1,0,0],[0,2,0,0],[1,0,0,0],[0,0,0,0]]: IoU 3/5, 2/3, 0; class 3 is absent (left out),
  // mIoU(M) = (3/5 + 2/3 + 0) / 3 = 19/45, so mIoU(A) - mIoU(B) = 1 - 19/45 = 26/45;
  // pixel accuracy 1 - 5/7 = 2/7.
  const auto M = torch::tensor({3, 1, 0, 0, 0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, torch::kInt64).view({4, 4});
  const auto perfect = torch::diag(M.sum(1));
  std::vector<torch::Tensor> a;
  std::vector<torch::Tensor> b;
  for (int64_t j = 0; j < 10; ++j) {
    a.push_back(perfect * (1 + j % 4));
    b.push_back(M * (1 + j % 4));
  }
  const auto miou = crossview::bootstrap_difference(a, b, crossview::SegmentationMetric::kMeanIoU, 400, 3);
  CHECK(miou.observed == doctest::Approx(26.0 / 45.0).epsilon(1e-14));
  CHECK(miou.lo == doctest::Approx(26.0 / 45.0).epsilon(1e-14));
  CHECK(miou.hi == doctest::Approx(26.0 / 45.0).epsilon(1e-14));
  CHECK(std::abs(miou.se) < 1e-14);
  const auto acc = crossview::bootstrap_difference(a, b, crossview::SegmentationMetric::kPixelAccuracy, 400, 3);
  CHECK(acc.observed == doctest::Approx(2.0 / 7.0).epsilon(1e-14));
  CHECK(acc.lo == doctest::Approx(2.0 / 7.0).epsilon(1e-14));
  CHECK(acc.hi == doctest::Approx(2.0 / 7.0).epsilon(1e-14));
}

TEST_CASE("bootstrap_difference: against a brute-force reference with the same draws") {
  // The reference's percentile rule against numpy: np.percentile([0.3, -1.2, 2.5, 0.0, 4.1, 1.7, -0.4],
  // [2.5, 97.5, 50, 10]) = [-1.08, 3.86, 0.3, -0.72].
  const std::vector<double> sample{0.3, -1.2, 2.5, 0.0, 4.1, 1.7, -0.4};
  CHECK(reference_percentile(sample, 2.5) == doctest::Approx(-1.08).epsilon(1e-14));
  CHECK(reference_percentile(sample, 97.5) == doctest::Approx(3.86).epsilon(1e-14));
  CHECK(reference_percentile(sample, 50) == doctest::Approx(0.3).epsilon(1e-14));
  CHECK(reference_percentile(sample, 10) == doctest::Approx(-0.72).epsilon(1e-14));

  const int64_t S = 12;
  const int64_t K = 5;
  std::vector<crossview::ConfusionMatrix> scenes_a;
  std::vector<crossview::ConfusionMatrix> scenes_b;
  crossview::ConfusionMatrix pooled_a(K);
  crossview::ConfusionMatrix pooled_b(K);
  for (int64_t s = 0; s < S; ++s) {
    scenes_a.push_back(synthetic_scene(s, K, 0.75, 11));
    scenes_b.push_back(synthetic_scene(s, K, 0.65, 22));
    pooled_a.merge(scenes_a.back());
    pooled_b.merge(scenes_b.back());
  }
  const auto a = matrices(scenes_a);
  const auto b = matrices(scenes_b);
  const int64_t R = 500;
  const std::uint64_t seed = 42;
  for (const auto metric : {crossview::SegmentationMetric::kMeanIoU, crossview::SegmentationMetric::kPixelAccuracy}) {
    CAPTURE(crossview::metric_name(metric));
    const bool is_miou = metric == crossview::SegmentationMetric::kMeanIoU;
    auto score = [&](const std::vector<std::vector<double>>& m) {
      return is_miou ? reference_miou(m) : reference_pixel_accuracy(m);
    };
    std::vector<double> replicates;
    int without_scene_0 = 0;
    for (int64_t r = 0; r < R; ++r) {
      const auto chosen = crossview::bootstrap_scene_indices(S, seed, r);
      without_scene_0 += std::count(chosen.begin(), chosen.end(), 0) == 0;
      replicates.push_back(score(reference_pool(a, chosen)) - score(reference_pool(b, chosen)));
    }
    // The rare class must be missing from some resamples for the test to exercise the rule.
    CHECK(without_scene_0 > 50);
    double mean = 0.0;
    for (const double v : replicates) mean += v / R;
    double squares = 0.0;
    for (const double v : replicates) squares += (v - mean) * (v - mean);

    const auto got = crossview::bootstrap_difference(a, b, metric, R, seed);
    const double observed = is_miou ? pooled_a.mean_iou() - pooled_b.mean_iou()
                                    : pooled_a.pixel_accuracy() - pooled_b.pixel_accuracy();
    CHECK(got.observed == doctest::Approx(observed).epsilon(1e-12));
    CHECK(got.lo == doctest::Approx(reference_percentile(replicates, 2.5)).epsilon(1e-12));
    CHECK(got.hi == doctest::Approx(reference_percentile(replicates, 97.5)).epsilon(1e-12));
    CHECK(got.se == doctest::Approx(std::sqrt(squares / (R - 1))).epsilon(1e-10));
    CHECK(got.resamples == R);
    CHECK(got.lo < got.observed);
    CHECK(got.observed < got.hi);

    // 80 % interval from the same replicates.
    const auto narrow = crossview::bootstrap_difference(a, b, metric, R, seed, 0.8);
    CHECK(narrow.lo == doctest::Approx(reference_percentile(replicates, 10)).epsilon(1e-12));
    CHECK(narrow.hi == doctest::Approx(reference_percentile(replicates, 90)).epsilon(1e-12));

    // Same seed, same result; another seed, other draws.
    const auto again = crossview::bootstrap_difference(a, b, metric, R, seed);
    CHECK(again.lo == got.lo);
    CHECK(again.hi == got.hi);
    const auto other = crossview::bootstrap_difference(a, b, metric, R, seed + 1);
    CHECK(other.observed == got.observed);
    CHECK(other.lo != got.lo);
  }
  // The ConfusionMatrix overload reads matrix().
  const auto from_objects =
      crossview::bootstrap_difference(scenes_a, scenes_b, crossview::SegmentationMetric::kMeanIoU, 50);
  const auto from_tensors = crossview::bootstrap_difference(a, b, crossview::SegmentationMetric::kMeanIoU, 50);
  CHECK(from_objects.lo == from_tensors.lo);
  CHECK(from_objects.hi == from_tensors.hi);
}

TEST_CASE("bootstrap_difference: replicates that draw only empty scenes are left out") {
  // Scene 0 counts nothing; replicates drawing scene 0 twice have no pixel and are dropped, the
  // others pool copies of scene 1 and reproduce the observed difference.
  const auto empty = torch::zeros({3, 3}, torch::kInt64);
  const auto a1 = torch::tensor({5, 1, 0, 0, 4, 0, 1, 0, 3}, torch::kInt64).view({3, 3});
  const auto b1 = torch::tensor({4, 2, 0, 1, 3, 0, 2, 0, 2}, torch::kInt64).view({3, 3});
  const int64_t R = 200;
  int64_t expected = 0;
  for (int64_t r = 0; r < R; ++r) {
    const auto chosen = crossview::bootstrap_scene_indices(2, 9, r);
    expected += !(chosen[0] == 0 && chosen[1] == 0);
  }
  const auto got =
      crossview::bootstrap_difference({empty, a1}, {empty, b1}, crossview::SegmentationMetric::kPixelAccuracy, R, 9);
  CHECK(got.resamples == expected);
  CHECK(got.resamples < R);
  CHECK(got.observed == doctest::Approx(12.0 / 14.0 - 9.0 / 14.0).epsilon(1e-14));
  CHECK(got.lo == doctest::Approx(got.observed).epsilon(1e-14));
  CHECK(got.hi == doctest::Approx(got.observed).epsilon(1e-14));
}

TEST_CASE("bootstrap_difference: study size (192 scenes, 19 classes, 2000 resamples)") {
  torch::manual_seed(0);
  std::vector<torch::Tensor> a;
  std::vector<torch::Tensor> b;
  for (int s = 0; s < 192; ++s) {
    const auto noise = torch::randint(0, 50, {19, 19}, torch::kInt64);
    a.push_back(noise + torch::diag(torch::randint(400, 1000, {19}, torch::kInt64)));
    b.push_back(noise + torch::diag(torch::randint(300, 1000, {19}, torch::kInt64)));
  }
  const auto got = crossview::bootstrap_difference(a, b, crossview::SegmentationMetric::kMeanIoU);
  CHECK(got.resamples == 2000);
  CHECK(got.scenes == 192);
  CHECK(std::isfinite(got.lo));
  CHECK(got.lo < got.observed);
  CHECK(got.observed < got.hi);
  CHECK(got.lo > 0.0);  // A's diagonal is larger in expectation: a clear improvement
}

TEST_CASE("bootstrap_difference: errors name the argument") {
  const auto m = torch::eye(3, torch::kInt64);
  const auto miou = crossview::SegmentationMetric::kMeanIoU;
  CHECK_THROWS_WITH_AS(crossview::bootstrap_difference({m, m, m}, {m, m}, miou),
                       doctest::Contains("bootstrap_difference: per_scene_a and per_scene_b must hold one matrix per "
                                         "scene for the same scenes, got 3 and 2 matrices"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(
      crossview::bootstrap_difference(std::vector<torch::Tensor>{}, std::vector<torch::Tensor>{}, miou),
      doctest::Contains("bootstrap_difference: per_scene_a and per_scene_b must hold at least one scene, got none"),
      c10::Error);
  CHECK_THROWS_WITH_AS(crossview::bootstrap_difference({torch::zeros({2, 3}, torch::kInt64)}, {m}, miou),
                       doctest::Contains("bootstrap_difference: per_scene_a[0] must be a square [K, K] confusion "
                                         "matrix with K > 0, got [2, 3]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(crossview::bootstrap_difference({m, m}, {m, torch::zeros({3, 4}, torch::kInt64)}, miou),
                       doctest::Contains("bootstrap_difference: per_scene_b[1] must have shape [3, 3] like "
                                         "per_scene_a[0], got [3, 4]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(crossview::bootstrap_difference({m, m, m.to(torch::kFloat32)}, {m, m, m}, miou),
                       doctest::Contains("bootstrap_difference: per_scene_a[2] must be an int64 confusion matrix, "
                                         "got Float"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(crossview::bootstrap_difference({m, m}, {m, -m}, miou),
                       doctest::Contains("bootstrap_difference: per_scene_b[1] must hold non-negative counts, got -1"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(crossview::bootstrap_difference({m}, {m}, miou, 0),
                       doctest::Contains("bootstrap_difference: resamples must be >= 1, got 0"), c10::Error);
  CHECK_THROWS_WITH_AS(crossview::bootstrap_difference({m}, {m}, miou, 10, 0, 1.0),
                       doctest::Contains("bootstrap_difference: confidence must lie in (0, 1), got 1"), c10::Error);
  const auto z = torch::zeros({3, 3}, torch::kInt64);
  CHECK_THROWS_WITH_AS(crossview::bootstrap_difference({z, z}, {z, m}, miou),
                       doctest::Contains("bootstrap_difference: the pooled matrices of per_scene_a and per_scene_b "
                                         "must count at least one pixel each, got 0 and 3"),
                       c10::Error);
}
