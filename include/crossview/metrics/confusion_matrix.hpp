#pragma once
/// \file
/// Confusion matrix of semantic segmentation and the scores derived from it: per-class IoU, mean
/// IoU (cityscapesScripts' rule), pixel accuracy, mean class accuracy.

#include "crossview/detail/tensor_checks.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <mutex>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace crossview {

/// Accumulates counts[target][prediction] over labelled pixels, in int64 on the CPU.
///
/// Rows are ground truth, columns prediction. Pixels whose target equals ignore_index are not
/// counted; every other target must lie in [0, num_classes), and so must the prediction at every
/// counted pixel. Scores are fractions in [0, 1] (the printed table shows percentages).
class ConfusionMatrix {
 public:
  /// \throws c10::Error if num_classes <= 0 or ignore_index lies in [0, num_classes).
  explicit ConfusionMatrix(int64_t num_classes, int64_t ignore_index = 255)
      : num_classes_(num_classes), ignore_index_(ignore_index) {
    TORCH_CHECK(num_classes > 0, "ConfusionMatrix: num_classes must be > 0, got ", num_classes);
    TORCH_CHECK(ignore_index < 0 || ignore_index >= num_classes,
                "ConfusionMatrix: ignore_index must lie outside [0, num_classes) = [0, ", num_classes, "), got ",
                ignore_index);
    reset();
  }

  int64_t num_classes() const { return num_classes_; }
  int64_t ignore_index() const { return ignore_index_; }
  /// [K, K] int64 (CPU): matrix()[t][p] counts pixels of ground truth t predicted as p.
  const torch::Tensor& matrix() const { return counts_; }
  /// Number of counted pixels.
  int64_t total() const { return counts_.sum().item<int64_t>(); }

  /// Adds a batch: prediction and target are integer tensors of the same shape (e.g. [N, H, W]
  /// or [H, W]; any integer dtypes) on the same device (CPU: a parallel loop with per-thread
  /// histograms; other devices: bincount there, K*K counts copied back).
  /// \throws c10::Error for shape/dtype/device mismatches, `meta` tensors (no values) and
  /// out-of-range labels.
  void update(const torch::Tensor& prediction, const torch::Tensor& target) {
    constexpr const char* kFn = "ConfusionMatrix::update";
    TORCH_CHECK(prediction.defined() && target.defined(), kFn, ": prediction and target must be defined tensors");
    TORCH_CHECK(prediction.sizes() == target.sizes(), kFn, ": prediction and target must have the same shape, got ",
                detail::shape_string(prediction), " and ", detail::shape_string(target));
    TORCH_CHECK(is_integer(prediction), kFn, ": prediction must be an integer tensor, got ", prediction.scalar_type());
    TORCH_CHECK(is_integer(target), kFn, ": target must be an integer tensor, got ", target.scalar_type());
    detail::check_same_device(prediction, target, kFn, "prediction", "target");
    detail::check_has_values(prediction, kFn, "prediction");
    if (prediction.numel() == 0) return;
    if (prediction.device().is_cpu()) {
      update_cpu(prediction, target);
    } else {
      update_aten(prediction, target);
    }
  }

  /// Adds another matrix's counts (data-parallel evaluation).
  /// \throws c10::Error if num_classes or ignore_index differ.
  void merge(const ConfusionMatrix& other) {
    TORCH_CHECK(other.num_classes_ == num_classes_ && other.ignore_index_ == ignore_index_,
                "ConfusionMatrix::merge: other must have num_classes ", num_classes_, " and ignore_index ",
                ignore_index_, ", got ", other.num_classes_, " and ", other.ignore_index_);
    counts_ += other.counts_;
  }

  /// Clears all counts.
  void reset() { counts_ = torch::zeros({num_classes_, num_classes_}, torch::kInt64); }

  /// [K] float64: TP / (TP + FP + FN) per class; NaN where the union is empty (class neither in
  /// the ground truth nor predicted).
  torch::Tensor iou() const {
    const auto c = counts_.to(torch::kFloat64);
    const auto tp = c.diagonal();
    const auto uni = c.sum(1) + c.sum(0) - tp;
    return torch::where(uni > 0, tp / uni.clamp_min(1), torch::full_like(tp, kNaN));
  }

  /// Mean of iou() over the classes with a non-empty union (cityscapesScripts leaves the others
  /// out); NaN if there is none.
  double mean_iou() const { return nan_mean(iou()); }

  /// Correct pixels / counted pixels; NaN if nothing was counted.
  double pixel_accuracy() const {
    const auto n = total();
    return n > 0 ? double(counts_.diagonal().sum().item<int64_t>()) / double(n) : kNaN;
  }

  /// [K] float64: TP / (TP + FN) per class (recall); NaN for classes absent from the ground truth.
  torch::Tensor class_accuracy() const {
    const auto c = counts_.to(torch::kFloat64);
    const auto gt = c.sum(1);
    return torch::where(gt > 0, c.diagonal() / gt.clamp_min(1), torch::full_like(gt, kNaN));
  }

  /// Mean of class_accuracy() over the classes present in the ground truth; NaN if none.
  double mean_accuracy() const { return nan_mean(class_accuracy()); }

  /// A per-class table: name, IoU %, accuracy %, ground-truth pixels; then mean IoU, mean
  /// accuracy and pixel accuracy. `class_names` (optional) must hold num_classes names.
  std::string to_string(const std::vector<std::string>& class_names = {}) const {
    TORCH_CHECK(class_names.empty() || int64_t(class_names.size()) == num_classes_,
                "ConfusionMatrix::to_string: class_names must hold num_classes = ", num_classes_, " names, got ",
                class_names.size());
    const auto ious = iou().contiguous();
    const auto accs = class_accuracy().contiguous();
    const auto gt = counts_.sum(1).contiguous();
    size_t width = 14;
    for (const auto& name : class_names) width = std::max(width, name.size() + 2);
    std::ostringstream out;
    auto percent = [&](double v) {
      std::ostringstream s;
      if (std::isnan(v)) {
        s << "-";
      } else {
        s << std::fixed << std::setprecision(2) << 100.0 * v;
      }
      return s.str();
    };
    out << std::left << std::setw(int(width)) << "class" << std::right << std::setw(9) << "IoU %" << std::setw(9)
        << "acc %" << std::setw(14) << "pixels" << "\n";
    for (int64_t k = 0; k < num_classes_; ++k) {
      const std::string name = class_names.empty() ? "class " + std::to_string(k) : class_names[size_t(k)];
      out << std::left << std::setw(int(width)) << name << std::right << std::setw(9)
          << percent(ious[k].item<double>()) << std::setw(9) << percent(accs[k].item<double>()) << std::setw(14)
          << gt[k].item<int64_t>() << "\n";
    }
    out << std::left << std::setw(int(width)) << "mean" << std::right << std::setw(9) << percent(mean_iou())
        << std::setw(9) << percent(mean_accuracy()) << std::setw(14) << total() << "\n";
    out << std::left << std::setw(int(width)) << "pixel accuracy" << std::right << std::setw(9)
        << percent(pixel_accuracy()) << "\n";
    return out.str();
  }

  friend std::ostream& operator<<(std::ostream& os, const ConfusionMatrix& m) { return os << m.to_string(); }

 private:
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

  static bool is_integer(const torch::Tensor& t) {
    return c10::isIntegralType(t.scalar_type(), /*includeBool=*/false);
  }

  static double nan_mean(const torch::Tensor& v) {
    const auto keep = ~torch::isnan(v);
    const auto n = keep.sum().item<int64_t>();
    return n > 0 ? v.masked_select(keep).sum().item<double>() / double(n) : kNaN;
  }

  void throw_bad_target(int64_t value) const {
    TORCH_CHECK(false, "ConfusionMatrix::update: target values must lie in [0, ", num_classes_,
                ") or equal ignore_index ", ignore_index_, ", got ", value);
  }
  void throw_bad_prediction(int64_t value) const {
    TORCH_CHECK(false, "ConfusionMatrix::update: prediction values must lie in [0, ", num_classes_,
                ") at counted pixels, got ", value);
  }

  void update_cpu(const torch::Tensor& prediction, const torch::Tensor& target) {
    auto pred = prediction.contiguous();
    auto tgt = target.contiguous();
    if (pred.scalar_type() != tgt.scalar_type()) {
      pred = pred.to(torch::kInt64);
      tgt = tgt.to(torch::kInt64);
    }
    const int64_t K = num_classes_;
    const int64_t ignore = ignore_index_;
    const int64_t n = pred.numel();
    // The batch is counted apart and added only when all of it is valid: a bad label leaves the
    // matrix as it was.
    std::vector<int64_t> batch(size_t(K * K), 0);
    std::mutex merge_mutex;
    // First offending value of each kind (checked after the loop; exceptions stay out of it).
    std::atomic<bool> bad_target{false}, bad_prediction{false};
    int64_t bad_target_value = 0, bad_prediction_value = 0;
    AT_DISPATCH_INTEGRAL_TYPES(pred.scalar_type(), "ConfusionMatrix::update", [&] {
      const scalar_t* p = pred.data_ptr<scalar_t>();
      const scalar_t* t = tgt.data_ptr<scalar_t>();
      at::parallel_for(0, n, int64_t(1) << 16, [&](int64_t begin, int64_t end) {
        std::vector<int64_t> local(size_t(K * K), 0);
        for (int64_t i = begin; i < end; ++i) {
          const int64_t ti = int64_t(t[i]);
          if (ti == ignore) continue;
          const int64_t pi = int64_t(p[i]);
          if (ti < 0 || ti >= K) {
            std::lock_guard<std::mutex> lock(merge_mutex);
            if (!bad_target.exchange(true)) bad_target_value = ti;
            return;
          }
          if (pi < 0 || pi >= K) {
            std::lock_guard<std::mutex> lock(merge_mutex);
            if (!bad_prediction.exchange(true)) bad_prediction_value = pi;
            return;
          }
          ++local[size_t(ti * K + pi)];
        }
        std::lock_guard<std::mutex> lock(merge_mutex);
        for (size_t k = 0; k < batch.size(); ++k) batch[k] += local[k];
      });
    });
    if (bad_target) throw_bad_target(bad_target_value);
    if (bad_prediction) throw_bad_prediction(bad_prediction_value);
    auto counts = counts_.accessor<int64_t, 2>();
    for (int64_t r = 0; r < K; ++r)
      for (int64_t c = 0; c < K; ++c) counts[r][c] += batch[size_t(r * K + c)];
  }

  // Counts of the valid pixels as ATen ops on the tensors' device, returned as [K, K] int64 CPU.
  // Out-of-range labels throw before anything is counted.
  torch::Tensor histogram_aten(const torch::Tensor& prediction, const torch::Tensor& target) const {
    const int64_t K = num_classes_;
    const auto t = target.reshape({-1}).to(torch::kInt64);
    const auto p = prediction.reshape({-1}).to(torch::kInt64);
    const auto keep = t != ignore_index_;
    const auto tk = t.masked_select(keep);
    const auto pk = p.masked_select(keep);
    if (tk.numel() > 0) {
      const auto bad_t = tk.masked_select((tk < 0) | (tk >= K));
      if (bad_t.numel() > 0) throw_bad_target(bad_t[0].item<int64_t>());
      const auto bad_p = pk.masked_select((pk < 0) | (pk >= K));
      if (bad_p.numel() > 0) throw_bad_prediction(bad_p[0].item<int64_t>());
    }
    return torch::bincount(tk * K + pk, {}, K * K).view({K, K}).to(torch::kCPU, torch::kInt64);
  }

  void update_aten(const torch::Tensor& prediction, const torch::Tensor& target) {
    counts_ += histogram_aten(prediction, target);
  }

  int64_t num_classes_;
  int64_t ignore_index_;
  torch::Tensor counts_;
};

}  // namespace crossview
