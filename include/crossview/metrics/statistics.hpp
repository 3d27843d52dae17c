#pragma once
/// \file
/// Statistics of a paired multi-seed study: the mean of a metric over seeds with its standard
/// error and Student-t interval, the t-interval of the paired (same-seed) difference of two
/// variants, and a paired percentile bootstrap over evaluation scenes of the difference in mean
/// IoU or pixel accuracy between two models evaluated on the same scenes.
///
/// The functions on plain numbers throw std::invalid_argument; the bootstrap, which takes
/// tensors, checks them with TORCH_CHECK (c10::Error), as the rest of the metrics do.

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/metrics/confusion_matrix.hpp"
#include "crossview/random.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace crossview {

namespace detail {

/// A double as error messages show it (6 significant digits: "0.95", "nan", "inf").
inline std::string stats_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

/// Continued fraction of the regularized incomplete beta function I_x(a, b) (Numerical Recipes'
/// betacf, evaluated by the modified Lentz method). Converges fast for x < (a + 1) / (a + b + 2);
/// the number of terms grows like sqrt(max(a, b)).
inline double incomplete_beta_continued_fraction(double a, double b, double x) {
  constexpr int kMaxTerms = 1000000;
  constexpr double kTolerance = 1e-15;
  constexpr double kTiny = 1e-300;  // keeps the Lentz denominators away from 0
  const double qab = a + b;
  const double qap = a + 1.0;
  const double qam = a - 1.0;
  double c = 1.0;
  double d = 1.0 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= kMaxTerms; ++m) {
    const double m2 = 2.0 * m;
    // Even term d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m)).
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    // Odd term d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) <= kTolerance) return h;
  }
  throw std::runtime_error("regularized_incomplete_beta: the continued fraction did not converge for a = " +
                           stats_number(a) + ", b = " + stats_number(b) + ", x = " + stats_number(x));
}

/// Regularized incomplete beta function I_x(a, b) for a, b > 0, given x and y = 1 - x separately
/// so that a caller who knows 1 - x more accurately than by subtraction loses nothing.
/// Uses I_x(a, b) = 1 - I_y(b, a) where the continued fraction converges better.
inline double regularized_incomplete_beta(double a, double b, double x, double y) {
  if (x <= 0.0) return 0.0;
  if (y <= 0.0) return 1.0;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log(y);
  const double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * incomplete_beta_continued_fraction(a, b, x) / a;
  return 1.0 - front * incomplete_beta_continued_fraction(b, a, y) / b;
}

/// Upper tail P(T > t) of Student's t with df degrees of freedom, for t >= 0:
/// 0.5 * I_{df / (df + t^2)}(df / 2, 1 / 2).
inline double student_t_upper_tail(double t, double df) {
  if (std::isinf(t)) return 0.0;
  const double r2 = (t / std::sqrt(df)) * (t / std::sqrt(df));  // t^2 / df
  double x;  // df / (df + t^2)
  double y;  // t^2 / (df + t^2), computed directly: 1 - x would cancel for small t
  if (std::isfinite(r2)) {
    x = 1.0 / (1.0 + r2);
    y = r2 / (1.0 + r2);
  } else {
    const double inv = std::sqrt(df) / t;
    x = inv * inv;
    y = 1.0;
  }
  return 0.5 * regularized_incomplete_beta(0.5 * df, 0.5, x, y);
}

/// The s >= 0 with P(T > s) = q, for q in (0, 0.5]: bisection on the (monotone) upper tail down
/// to adjacent doubles, so the result is as accurate as the tail itself.
inline double student_t_upper_quantile(double q, double df) {
  if (q >= 0.5) return 0.0;
  double lo = 0.0;
  double hi = 1.0;
  while (student_t_upper_tail(hi, df) > q) {
    lo = hi;
    hi *= 2.0;
    if (std::isinf(hi)) return hi;
  }
  // At most ~1100 halvings reach adjacent doubles even from [0, 1] down to subnormals.
  for (int i = 0; i < 2200; ++i) {
    const double mid = lo + 0.5 * (hi - lo);
    if (mid <= lo || mid >= hi) break;
    if (student_t_upper_tail(mid, df) > q) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo + 0.5 * (hi - lo);
}

inline void check_student_t_df(double df, const char* function) {
  if (!(std::isfinite(df) && df > 0.0)) {
    throw std::invalid_argument(std::string(function) + ": df must be finite and > 0, got " + stats_number(df));
  }
}

inline void check_confidence(double confidence, const char* function) {
  if (!(confidence > 0.0 && confidence < 1.0)) {
    throw std::invalid_argument(std::string(function) + ": confidence must lie in (0, 1), got " +
                                stats_number(confidence));
  }
}

}  // namespace detail

/// P(T <= t) for Student's t distribution with df degrees of freedom (df > 0, need not be an
/// integer), through the regularized incomplete beta function.
/// \throws std::invalid_argument if df is not finite and positive or t is NaN.
inline double student_t_cdf(double t, double df) {
  detail::check_student_t_df(df, "student_t_cdf");
  if (std::isnan(t)) throw std::invalid_argument("student_t_cdf: t must not be NaN");
  return t >= 0.0 ? 1.0 - detail::student_t_upper_tail(t, df) : detail::student_t_upper_tail(-t, df);
}

/// The p-quantile of Student's t with df degrees of freedom: the t with P(T <= t) = p, e.g.
/// student_t_quantile(0.975, 5) = 2.5706. Found by bisection on the CDF (no table): about 1e-13
/// relative for small df; the log-gamma terms cancel for large df (about 1e-9 relative at 1e6).
/// \throws std::invalid_argument if p is not in (0, 1) or df is not finite and positive.
inline double student_t_quantile(double p, double df) {
  detail::check_student_t_df(df, "student_t_quantile");
  if (!(p > 0.0 && p < 1.0)) {
    throw std::invalid_argument("student_t_quantile: p must lie in (0, 1), got " + detail::stats_number(p));
  }
  // Symmetry: solve in the smaller tail, where q = min(p, 1 - p) carries p's full precision.
  return p > 0.5 ? detail::student_t_upper_quantile(1.0 - p, df) : -detail::student_t_upper_quantile(p, df);
}

/// A sample mean with its standard error and two-sided Student-t confidence interval.
/// The first five members are the summary (mean ± se, [lo, hi], n); the rest describe it.
struct MeanInterval {
  double mean = std::numeric_limits<double>::quiet_NaN();  ///< sample mean
  double se = std::numeric_limits<double>::quiet_NaN();    ///< standard error: sd / sqrt(n)
  double lo = std::numeric_limits<double>::quiet_NaN();    ///< mean - t_{(1+confidence)/2, n-1} * se
  double hi = std::numeric_limits<double>::quiet_NaN();    ///< mean + t_{(1+confidence)/2, n-1} * se
  int64_t n = 0;                                           ///< number of values
  double sd = std::numeric_limits<double>::quiet_NaN();    ///< sample standard deviation (divisor n - 1)
  double confidence = 0.95;                                ///< two-sided coverage of [lo, hi]

  /// hi - mean: the "±" of the interval.
  double half_width() const { return hi - mean; }
};

namespace detail {

/// Mean and sample standard deviation (divisor n - 1) of at least 2 values, by the corrected
/// two-pass algorithm: the second sum removes the rounding error of the mean, so equal values
/// give exactly sd = 0.
inline std::pair<double, double> sample_mean_sd(const std::vector<double>& values) {
  const auto n = double(values.size());
  double sum = 0.0;
  for (const double v : values) sum += v;
  const double mean = sum / n;
  double squares = 0.0;
  double residual = 0.0;
  for (const double v : values) {
    squares += (v - mean) * (v - mean);
    residual += v - mean;
  }
  return {mean, std::sqrt(std::max(0.0, (squares - residual * residual / n) / (n - 1.0)))};
}

/// t_interval's body; `function` and `argument` name the caller's entry in error messages.
inline MeanInterval t_interval_checked(const std::vector<double>& values, double confidence, const char* function,
                                       const char* argument) {
  check_confidence(confidence, function);
  const auto n = int64_t(values.size());
  if (n < 2) {
    throw std::invalid_argument(std::string(function) + ": " + argument +
                                " must hold at least 2 values (a t-interval needs n - 1 >= 1 degrees of freedom), "
                                "got " +
                                std::to_string(n));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      throw std::invalid_argument(std::string(function) + ": " + argument + "[" + std::to_string(i) +
                                  "] must be finite, got " + stats_number(values[i]));
    }
  }
  const auto [mean, sd] = sample_mean_sd(values);
  MeanInterval out;
  out.n = n;
  out.confidence = confidence;
  out.mean = mean;
  out.sd = sd;
  out.se = out.sd / std::sqrt(double(n));
  const double t = student_t_upper_quantile(0.5 * (1.0 - confidence), double(n - 1));
  out.lo = mean - t * out.se;
  out.hi = mean + t * out.se;
  return out;
}

}  // namespace detail

/// Mean, standard error (sample sd with divisor n - 1, over sqrt(n)) and the two-sided Student-t
/// interval mean ± t_{(1+confidence)/2, n-1} * se of `values` (e.g. one metric over seeds: this
/// is also how per-seed results are pooled into "mean ± se").
/// \throws std::invalid_argument if values holds fewer than 2 values, any value is not finite, or
/// confidence is not in (0, 1).
inline MeanInterval t_interval(const std::vector<double>& values, double confidence = 0.95) {
  return detail::t_interval_checked(values, confidence, "t_interval", "values");
}

/// The t-interval of the paired differences method[i] - baseline[i] (pairs share a seed): the
/// mean improvement over the baseline, its standard error and its confidence interval.
/// \throws std::invalid_argument if the sizes differ, fewer than 2 pairs are given, any value is
/// not finite, or confidence is not in (0, 1).
inline MeanInterval paired_difference(const std::vector<double>& method, const std::vector<double>& baseline,
                                      double confidence = 0.95) {
  constexpr const char* kFn = "paired_difference";
  if (method.size() != baseline.size()) {
    throw std::invalid_argument(std::string(kFn) +
                                ": method and baseline must have the same size (one value per seed), got " +
                                std::to_string(method.size()) + " and " + std::to_string(baseline.size()));
  }
  for (size_t i = 0; i < method.size(); ++i) {
    if (!std::isfinite(method[i])) {
      throw std::invalid_argument(std::string(kFn) + ": method[" + std::to_string(i) + "] must be finite, got " +
                                  detail::stats_number(method[i]));
    }
    if (!std::isfinite(baseline[i])) {
      throw std::invalid_argument(std::string(kFn) + ": baseline[" + std::to_string(i) + "] must be finite, got " +
                                  detail::stats_number(baseline[i]));
    }
  }
  std::vector<double> differences(method.size());
  for (size_t i = 0; i < method.size(); ++i) differences[i] = method[i] - baseline[i];
  return detail::t_interval_checked(differences, confidence, kFn, "method and baseline");
}

/// A score computed from a (pooled) confusion matrix, with ConfusionMatrix's rules.
enum class SegmentationMetric {
  kMeanIoU,        ///< ConfusionMatrix::mean_iou(): classes with an empty union are left out
  kPixelAccuracy,  ///< ConfusionMatrix::pixel_accuracy(): trace / total
};

/// "mean_iou" or "pixel_accuracy".
inline const char* metric_name(SegmentationMetric metric) {
  switch (metric) {
    case SegmentationMetric::kMeanIoU:
      return "mean_iou";
    case SegmentationMetric::kPixelAccuracy:
      return "pixel_accuracy";
  }
  return "unknown";
}

/// A paired bootstrap's result: the observed difference and its percentile interval.
struct BootstrapInterval {
  double observed = std::numeric_limits<double>::quiet_NaN();  ///< metric(pooled A) - metric(pooled B)
  double lo = std::numeric_limits<double>::quiet_NaN();  ///< (1-confidence)/2 percentile of the replicates
  double hi = std::numeric_limits<double>::quiet_NaN();  ///< (1+confidence)/2 percentile of the replicates
  double se = std::numeric_limits<double>::quiet_NaN();  ///< standard deviation of the replicates
  int64_t resamples = 0;  ///< replicates used (a replicate whose pooled matrix is empty is NaN, left out)
  int64_t scenes = 0;     ///< number of scenes resampled
  double confidence = 0.95;
};

/// Stream of mix_seed reserved for the bootstrap's scene draws.
constexpr std::uint64_t kBootstrapStream = 0xb0075u;

namespace detail {

// The scene indices of replicate `resample`: num_scenes draws of uniform_index(rng, num_scenes)
// from std::mt19937_64 seeded with mix_seed(seed, kBootstrapStream, resample).
inline void fill_bootstrap_indices(int64_t num_scenes, std::uint64_t seed, int64_t resample, int64_t* out) {
  std::mt19937_64 rng(mix_seed(seed, kBootstrapStream, std::uint64_t(resample)));
  for (int64_t s = 0; s < num_scenes; ++s) out[s] = uniform_index(rng, num_scenes);
}

// The metric of a pooled row-major [K, K] count matrix `c` (rows ground truth), in double, with
// ConfusionMatrix's rules; NaN for an empty matrix.
inline double pooled_metric(const int64_t* c, int64_t K, SegmentationMetric metric) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  if (metric == SegmentationMetric::kPixelAccuracy) {
    int64_t correct = 0;
    int64_t total = 0;
    for (int64_t i = 0; i < K * K; ++i) total += c[i];
    for (int64_t k = 0; k < K; ++k) correct += c[k * K + k];
    return total > 0 ? double(correct) / double(total) : kNaN;
  }
  double sum = 0.0;
  int64_t present = 0;
  for (int64_t k = 0; k < K; ++k) {
    int64_t row = 0;
    int64_t col = 0;
    for (int64_t j = 0; j < K; ++j) {
      row += c[k * K + j];
      col += c[j * K + k];
    }
    const int64_t tp = c[k * K + k];
    const int64_t uni = row + col - tp;
    if (uni > 0) {
      sum += double(tp) / double(uni);
      ++present;
    }
  }
  return present > 0 ? sum / double(present) : kNaN;
}

// Linear-interpolation percentile of sorted values (numpy.percentile's default, Hyndman & Fan
// type 7): position (n - 1) * q between the order statistics.
inline double percentile_sorted(const std::vector<double>& sorted, double q) {
  const auto n = sorted.size();
  const double h = double(n - 1) * q;
  const auto i = size_t(std::floor(h));
  if (i + 1 >= n) return sorted[n - 1];
  return sorted[i] + (h - double(i)) * (sorted[i + 1] - sorted[i]);
}

// Checks the per-scene matrices and stacks them into a [S, K*K] int64 contiguous CPU tensor.
// K is per_scene_a[0]'s (checked by the caller); `argument` names the vector in messages.
inline torch::Tensor stack_scene_matrices(const std::vector<torch::Tensor>& matrices, int64_t K, const char* function,
                                          const char* argument) {
  std::vector<torch::Tensor> cpu;
  cpu.reserve(matrices.size());
  for (size_t s = 0; s < matrices.size(); ++s) {
    const auto& m = matrices[s];
    TORCH_CHECK(m.defined(), function, ": ", argument, "[", s, "] must be a defined [", K, ", ", K,
                "] int64 confusion matrix, got an undefined tensor");
    TORCH_CHECK(m.dim() == 2 && m.size(0) == K && m.size(1) == K, function, ": ", argument, "[", s,
                "] must have shape [", K, ", ", K, "] like per_scene_a[0], got ", shape_string(m));
    TORCH_CHECK(m.scalar_type() == torch::kInt64, function, ": ", argument, "[", s,
                "] must be an int64 confusion matrix, got ", m.scalar_type());
    cpu.push_back(m.to(torch::kCPU));
  }
  const auto stacked = torch::stack(cpu).reshape({int64_t(matrices.size()), K * K}).contiguous();
  const int64_t* counts = stacked.data_ptr<int64_t>();
  for (int64_t i = 0; i < stacked.numel(); ++i) {
    TORCH_CHECK(counts[i] >= 0, function, ": ", argument, "[", i / (K * K), "] must hold non-negative counts, got ",
                counts[i]);
  }
  return stacked;
}

}  // namespace detail

/// The scene indices drawn for bootstrap replicate `resample` (0-based) of a study seeded with
/// `seed`: num_scenes indices in [0, num_scenes), with replacement, from std::mt19937_64 seeded
/// with mix_seed(seed, kBootstrapStream, resample) through uniform_index. A pure function of its
/// arguments, the same on every platform and thread count; bootstrap_difference uses exactly these.
/// \throws std::invalid_argument if num_scenes <= 0 or resample < 0.
inline std::vector<int64_t> bootstrap_scene_indices(int64_t num_scenes, std::uint64_t seed, int64_t resample) {
  if (num_scenes <= 0) {
    throw std::invalid_argument("bootstrap_scene_indices: num_scenes must be > 0, got " + std::to_string(num_scenes));
  }
  if (resample < 0) {
    throw std::invalid_argument("bootstrap_scene_indices: resample must be >= 0, got " + std::to_string(resample));
  }
  std::vector<int64_t> out(static_cast<size_t>(num_scenes));
  detail::fill_bootstrap_indices(num_scenes, seed, resample, out.data());
  return out;
}

/// Paired percentile bootstrap over scenes of metric(A) - metric(B) for two models evaluated on
/// the same scenes.
///
/// per_scene_a[s] and per_scene_b[s] are scene s's [K, K] int64 confusion matrices (rows ground
/// truth or reference, columns prediction; any device, e.g. ConfusionMatrix::matrix()). The
/// observed difference pools all scenes' matrices of each model and takes the metric of the sums
/// (so mIoU is a dataset mIoU, not a mean of per-scene mIoUs). Each of `resamples` replicates draws
/// S scene indices with replacement (bootstrap_scene_indices(S, seed, r): the same indices for A
/// and B, which is what pairs them), pools the drawn matrices and takes the difference; [lo, hi]
/// are the (1 ∓ confidence)/2 percentiles of the replicates (linear interpolation, as
/// numpy.percentile). Replicates run in parallel; the result does not depend on the thread count.
/// \throws c10::Error if the vectors differ in size or are empty, a matrix is not [K, K] int64 with
/// the K of per_scene_a[0] or holds a negative count, resamples < 1, confidence is not in (0, 1), or
/// the pooled matrices are empty (no observed difference).
inline BootstrapInterval bootstrap_difference(const std::vector<torch::Tensor>& per_scene_a,
                                              const std::vector<torch::Tensor>& per_scene_b, SegmentationMetric metric,
                                              int64_t resamples = 2000, std::uint64_t seed = 0,
                                              double confidence = 0.95) {
  constexpr const char* kFn = "bootstrap_difference";
  TORCH_CHECK(per_scene_a.size() == per_scene_b.size(), kFn,
              ": per_scene_a and per_scene_b must hold one matrix per scene for the same scenes, got ",
              per_scene_a.size(), " and ", per_scene_b.size(), " matrices");
  TORCH_CHECK(!per_scene_a.empty(), kFn, ": per_scene_a and per_scene_b must hold at least one scene, got none");
  TORCH_CHECK(resamples >= 1, kFn, ": resamples must be >= 1, got ", resamples);
  TORCH_CHECK(confidence > 0.0 && confidence < 1.0, kFn, ": confidence must lie in (0, 1), got ", confidence);
  const auto& first = per_scene_a[0];
  TORCH_CHECK(first.defined() && first.dim() == 2 && first.size(0) == first.size(1) && first.size(0) > 0, kFn,
              ": per_scene_a[0] must be a square [K, K] confusion matrix with K > 0, got ",
              first.defined() ? detail::shape_string(first) : std::string("an undefined tensor"));
  const int64_t K = first.size(0);
  const auto a = detail::stack_scene_matrices(per_scene_a, K, kFn, "per_scene_a");
  const auto b = detail::stack_scene_matrices(per_scene_b, K, kFn, "per_scene_b");
  const int64_t S = a.size(0);
  const int64_t KK = K * K;

  BootstrapInterval out;
  out.scenes = S;
  out.confidence = confidence;
  const auto pooled_a = a.sum(0).contiguous();
  const auto pooled_b = b.sum(0).contiguous();
  out.observed = detail::pooled_metric(pooled_a.data_ptr<int64_t>(), K, metric) -
                 detail::pooled_metric(pooled_b.data_ptr<int64_t>(), K, metric);
  TORCH_CHECK(!std::isnan(out.observed), kFn, ": the pooled matrices of per_scene_a and per_scene_b must count ",
              "at least one pixel each, got ", pooled_a.sum().item<int64_t>(), " and ", pooled_b.sum().item<int64_t>());

  const int64_t* pa = a.data_ptr<int64_t>();
  const int64_t* pb = b.data_ptr<int64_t>();
  std::vector<double> replicates(static_cast<size_t>(resamples));
  at::parallel_for(0, resamples, 8, [&](int64_t begin, int64_t end) {
    // Per-chunk buffers: nothing is allocated per replicate or per scene.
    std::vector<int64_t> indices(static_cast<size_t>(S));
    std::vector<int64_t> sum_a(static_cast<size_t>(KK));
    std::vector<int64_t> sum_b(static_cast<size_t>(KK));
    for (int64_t r = begin; r < end; ++r) {
      detail::fill_bootstrap_indices(S, seed, r, indices.data());
      std::fill(sum_a.begin(), sum_a.end(), 0);
      std::fill(sum_b.begin(), sum_b.end(), 0);
      for (const int64_t s : indices) {
        const int64_t* row_a = pa + s * KK;
        const int64_t* row_b = pb + s * KK;
        for (int64_t i = 0; i < KK; ++i) {
          sum_a[size_t(i)] += row_a[i];
          sum_b[size_t(i)] += row_b[i];
        }
      }
      replicates[size_t(r)] = detail::pooled_metric(sum_a.data(), K, metric) -
                              detail::pooled_metric(sum_b.data(), K, metric);
    }
  });

  replicates.erase(std::remove_if(replicates.begin(), replicates.end(), [](double v) { return std::isnan(v); }),
                   replicates.end());
  out.resamples = int64_t(replicates.size());
  if (replicates.empty()) return out;  // every replicate drew only empty scenes: no interval
  std::sort(replicates.begin(), replicates.end());
  const double tail = 0.5 * (1.0 - confidence);
  out.lo = detail::percentile_sorted(replicates, tail);
  out.hi = detail::percentile_sorted(replicates, 1.0 - tail);
  if (replicates.size() >= 2) out.se = detail::sample_mean_sd(replicates).second;
  return out;
}

/// bootstrap_difference on ConfusionMatrix objects, one per scene (their matrix()).
/// \throws c10::Error as the tensor overload.
inline BootstrapInterval bootstrap_difference(const std::vector<ConfusionMatrix>& per_scene_a,
                                              const std::vector<ConfusionMatrix>& per_scene_b,
                                              SegmentationMetric metric, int64_t resamples = 2000,
                                              std::uint64_t seed = 0, double confidence = 0.95) {
  std::vector<torch::Tensor> a;
  std::vector<torch::Tensor> b;
  a.reserve(per_scene_a.size());
  b.reserve(per_scene_b.size());
  for (const auto& m : per_scene_a) a.push_back(m.matrix());
  for (const auto& m : per_scene_b) b.push_back(m.matrix());
  return bootstrap_difference(a, b, metric, resamples, seed, confidence);
}

}  // namespace crossview
