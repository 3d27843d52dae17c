// ConfusionMatrix against hand-computed matrices and a brute-force loop reference.
#include <crossview/metrics/confusion_matrix.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

namespace {

using crossview::ConfusionMatrix;

torch::Tensor labels(std::vector<int64_t> v) { return torch::tensor(v, torch::kInt64); }

// counts[t][p] by a plain loop.
std::vector<std::vector<int64_t>> brute_force(const torch::Tensor& pred, const torch::Tensor& target, int64_t K,
                                              int64_t ignore) {
  std::vector<std::vector<int64_t>> m(size_t(K), std::vector<int64_t>(size_t(K), 0));
  const auto p = pred.reshape({-1}).to(torch::kInt64).contiguous();
  const auto t = target.reshape({-1}).to(torch::kInt64).contiguous();
  auto pa = p.accessor<int64_t, 1>();
  auto ta = t.accessor<int64_t, 1>();
  for (int64_t i = 0; i < p.numel(); ++i) {
    if (ta[i] == ignore) continue;
    ++m[size_t(ta[i])][size_t(pa[i])];
  }
  return m;
}

void check_equal(const ConfusionMatrix& cm, const std::vector<std::vector<int64_t>>& expected) {
  const auto m = cm.matrix().contiguous();
  auto a = m.accessor<int64_t, 2>();
  int64_t mismatches = 0;
  for (size_t r = 0; r < expected.size(); ++r)
    for (size_t c = 0; c < expected.size(); ++c) mismatches += a[int64_t(r)][int64_t(c)] != expected[r][c];
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("ConfusionMatrix: hand-computed example") {
  // target 0 0 1 1 2 255 ; prediction 0 1 1 1 0 2
  ConfusionMatrix cm(3);
  cm.update(labels({0, 1, 1, 1, 0, 2}), labels({0, 0, 1, 1, 2, 255}));
  check_equal(cm, {{1, 1, 0}, {0, 2, 0}, {1, 0, 0}});
  CHECK(cm.total() == 5);
  const auto iou = cm.iou();
  CHECK(iou[0].item<double>() == doctest::Approx(1.0 / 3));  // 1 / (2 + 2 - 1)
  CHECK(iou[1].item<double>() == doctest::Approx(2.0 / 3));  // 2 / (2 + 3 - 2)
  CHECK(iou[2].item<double>() == 0.0);                       // 0 / (1 + 0 - 0)
  CHECK(cm.mean_iou() == doctest::Approx(1.0 / 3));
  CHECK(cm.pixel_accuracy() == doctest::Approx(3.0 / 5));
  CHECK(cm.class_accuracy()[0].item<double>() == doctest::Approx(0.5));
  CHECK(cm.mean_accuracy() == doctest::Approx((0.5 + 1.0 + 0.0) / 3));
}

TEST_CASE("ConfusionMatrix: classes with an empty union are left out of the mean (cityscapesScripts)") {
  ConfusionMatrix cm(5, 255);
  // Class 3 is never in the ground truth nor predicted; class 4 is only predicted (IoU 0, counts).
  cm.update(labels({0, 1, 1, 1, 0, 4}), labels({0, 0, 1, 1, 2, 1}));
  const auto iou = cm.iou();
  CHECK(std::isnan(iou[3].item<double>()));
  CHECK(iou[4].item<double>() == 0.0);
  // IoUs 1/3, 2/4, 0, -, 0.
  CHECK(cm.mean_iou() == doctest::Approx((1.0 / 3 + 0.5 + 0 + 0) / 4));
  // Accuracy: classes 3 and 4 have no ground truth.
  CHECK(cm.mean_accuracy() == doctest::Approx((0.5 + 2.0 / 3 + 0.0) / 3));
  ConfusionMatrix empty(4);
  CHECK(std::isnan(empty.mean_iou()));
  CHECK(std::isnan(empty.pixel_accuracy()));
  CHECK(empty.total() == 0);
}

TEST_CASE("ConfusionMatrix: random batches against a brute-force loop, any integer dtypes") {
  const int64_t K = 7;
  auto target = torch::randint(0, K, {3, 37, 53}, torch::kInt64);
  target.masked_fill_(torch::rand({3, 37, 53}) < 0.1, 255);
  auto pred = torch::randint(0, K, {3, 37, 53}, torch::kInt64);
  // Predictions at ignored pixels may be anything, even out of range.
  pred.masked_fill_(target == 255, 200);
  const auto expected = brute_force(pred, target, K, 255);
  for (const auto& [pd, td] : std::vector<std::pair<torch::Dtype, torch::Dtype>>{
           {torch::kInt64, torch::kInt64}, {torch::kUInt8, torch::kUInt8}, {torch::kInt32, torch::kInt64},
           {torch::kUInt8, torch::kInt64}, {torch::kInt16, torch::kInt16}}) {
    CAPTURE(pd);
    CAPTURE(td);
    ConfusionMatrix cm(K);
    cm.update(pred.to(pd), target.to(td));
    check_equal(cm, expected);
  }
  // Non-contiguous inputs.
  ConfusionMatrix t(K);
  t.update(pred.transpose(1, 2), target.transpose(1, 2));
  check_equal(t, expected);
  // Scores against the formulas evaluated on the loop's matrix.
  ConfusionMatrix cm(K);
  cm.update(pred, target);
  double sum_iou = 0, correct = 0, total = 0, sum_acc = 0;
  for (int64_t k = 0; k < K; ++k) {
    double row = 0, col = 0;
    for (int64_t j = 0; j < K; ++j) {
      row += double(expected[size_t(k)][size_t(j)]);
      col += double(expected[size_t(j)][size_t(k)]);
    }
    const double tp = double(expected[size_t(k)][size_t(k)]);
    CHECK(cm.iou()[k].item<double>() == doctest::Approx(tp / (row + col - tp)));
    sum_iou += tp / (row + col - tp);
    sum_acc += tp / row;
    correct += tp;
    total += row;
  }
  CHECK(cm.mean_iou() == doctest::Approx(sum_iou / K));
  CHECK(cm.mean_accuracy() == doctest::Approx(sum_acc / K));
  CHECK(cm.pixel_accuracy() == doctest::Approx(correct / total));
}

TEST_CASE("ConfusionMatrix: merge, reset, accumulation") {
  const int64_t K = 4;
  const auto target = torch::randint(0, K, {4, 20, 30}, torch::kInt64);
  const auto pred = torch::randint(0, K, {4, 20, 30}, torch::kInt64);
  ConfusionMatrix all(K), first(K), second(K), accumulated(K);
  all.update(pred, target);
  first.update(pred.slice(0, 0, 1), target.slice(0, 0, 1));
  second.update(pred.slice(0, 1), target.slice(0, 1));
  first.merge(second);
  CHECK(torch::equal(first.matrix(), all.matrix()));
  for (int64_t n = 0; n < 4; ++n) accumulated.update(pred[n], target[n]);
  CHECK(torch::equal(accumulated.matrix(), all.matrix()));
  accumulated.reset();
  CHECK(accumulated.total() == 0);
  ConfusionMatrix other(K + 1);
  CHECK_THROWS_WITH_AS(first.merge(other),
                       doctest::Contains("ConfusionMatrix::merge: other must have num_classes 4 and ignore_index 255, "
                                         "got 5 and 255"),
                       c10::Error);
}

TEST_CASE("ConfusionMatrix: CUDA tensors give the CPU counts") {
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: skipped");
    return;
  }
  auto target = torch::randint(0, 6, {2, 64, 80}, torch::kInt64);
  target.masked_fill_(torch::rand({2, 64, 80}) < 0.1, 255);
  const auto pred = torch::randint(0, 6, {2, 64, 80}, torch::kUInt8);
  ConfusionMatrix cpu(6), gpu(6);
  cpu.update(pred, target);
  gpu.update(pred.cuda(), target.cuda());
  CHECK(torch::equal(cpu.matrix(), gpu.matrix()));
  CHECK_THROWS_WITH_AS(gpu.update(pred.cuda(), torch::full({2, 64, 80}, 6, torch::kInt64).cuda()),
                       doctest::Contains("target values must lie in [0, 6) or equal ignore_index 255, got 6"),
                       c10::Error);
}

TEST_CASE("ConfusionMatrix: printable table") {
  ConfusionMatrix cm(3);
  cm.update(labels({0, 1, 1, 1, 0, 2}), labels({0, 0, 1, 1, 2, 255}));
  const auto table = cm.to_string({"road", "sidewalk", "building"});
  CHECK(table.find("road") != std::string::npos);
  CHECK(table.find("building") != std::string::npos);
  CHECK(table.find("33.33") != std::string::npos);  // IoU of road and the mean
  CHECK(table.find("66.67") != std::string::npos);  // IoU of sidewalk
  CHECK(table.find("60.00") != std::string::npos);  // pixel accuracy
  CHECK(ConfusionMatrix(2).to_string().find("class 1") != std::string::npos);
  CHECK_THROWS_WITH_AS(cm.to_string({"road"}),
                       doctest::Contains("ConfusionMatrix::to_string: class_names must hold num_classes = 3 names, "
                                         "got 1"),
                       c10::Error);
}

TEST_CASE("ConfusionMatrix: errors name the argument and leave the counts untouched") {
  ConfusionMatrix cm(3);
  cm.update(labels({0, 1}), labels({0, 1}));
  CHECK_THROWS_WITH_AS(cm.update(labels({0, 1, 2}), labels({0, 1})),
                       doctest::Contains("ConfusionMatrix::update: prediction and target must have the same shape, got "
                                         "[3] and [2]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(cm.update(torch::zeros({2}), labels({0, 1})),
                       doctest::Contains("ConfusionMatrix::update: prediction must be an integer tensor, got Float"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(cm.update(labels({0, 1}), labels({0, 7})),
                       doctest::Contains("ConfusionMatrix::update: target values must lie in [0, 3) or equal "
                                         "ignore_index 255, got 7"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(cm.update(labels({0, -1}), labels({0, 1})),
                       doctest::Contains("ConfusionMatrix::update: prediction values must lie in [0, 3) at counted "
                                         "pixels, got -1"),
                       c10::Error);
  // A large batch with one bad label somewhere in the middle: nothing of it is counted.
  auto big = torch::zeros({1 << 18}, torch::kInt64);
  big[100000] = 9;
  CHECK_THROWS_AS(cm.update(torch::zeros_like(big), big), c10::Error);
  CHECK(cm.total() == 2);
  CHECK_THROWS_WITH_AS(ConfusionMatrix(0), doctest::Contains("ConfusionMatrix: num_classes must be > 0, got 0"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(ConfusionMatrix(19, 3),
                       doctest::Contains("ConfusionMatrix: ignore_index must lie outside [0, num_classes) = [0, 19), "
                                         "got 3"),
                       c10::Error);
}
