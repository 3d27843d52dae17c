#pragma once
/// \file
/// Cross-view consistency (CVC, paper Sec. 4.2) and its optical-flow variant for video frames:
/// the prediction on view a is taken as ground truth and the prediction on view b is scored at
/// the corresponding pixels (nearest), through a ConfusionMatrix (CVC mIoU, CVC pixel accuracy).

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/metrics/confusion_matrix.hpp"
#include "crossview/warp/correspondence.hpp"
#include "crossview/warp/homography_tensor.hpp"

#include <ATen/Parallel.h>
#include <Eigen/Core>
#include <torch/torch.h>

#include <atomic>
#include <cmath>

namespace crossview {
namespace detail {

// [N, H, W] view of a [N, H, W] or [H, W] integer map.
inline torch::Tensor batched_labels(const torch::Tensor& t, const char* fn, const char* argument) {
  check_rank(t, {2, 3}, fn, argument, "[N, H, W] or [H, W]");
  TORCH_CHECK(c10::isIntegralType(t.scalar_type(), false), fn, ": ", argument, " must be an integer tensor, got ",
              t.scalar_type());
  return t.dim() == 2 ? t.unsqueeze(0) : t;
}

// Scores pred_b at the nearest pixel of position_b [N, H_a, W_a, 2] (x, y in b's pixels) against
// pred_a where `valid` [N, H_a, W_a] holds (and gt_a is not ignore); returns the scored count.
inline int64_t score_at_positions(const torch::Tensor& pred_a, const torch::Tensor& pred_b,
                                  const torch::Tensor& position_b, torch::Tensor valid, ConfusionMatrix& confusion,
                                  const torch::Tensor& gt_a, const char* fn) {
  const int64_t N = pred_a.size(0);
  const int64_t hb = pred_b.size(1), wb = pred_b.size(2);
  const auto p = position_b.to(pred_a.device(), torch::kFloat64);
  // Nearest pixel; positions inside [0, W-1] x [0, H-1] round inside.
  const auto ix = torch::floor(p.select(-1, 0) + 0.5);
  const auto iy = torch::floor(p.select(-1, 1) + 0.5);
  valid = valid.to(pred_a.device()) & (ix >= 0) & (ix <= double(wb - 1)) & (iy >= 0) & (iy <= double(hb - 1));
  if (gt_a.defined()) {
    const auto gt = batched_labels(gt_a, fn, "gt_a");
    TORCH_CHECK(gt.sizes() == pred_a.sizes(), fn, ": gt_a must have pred_a's shape ", shape_string(pred_a), ", got ",
                shape_string(gt));
    valid = valid & (gt.to(pred_a.device()) != confusion.ignore_index());
  }
  const auto index = torch::where(valid, iy * double(wb) + ix, torch::zeros_like(ix)).to(torch::kInt64);
  const auto sampled = pred_b.to(pred_a.device()).reshape({N, -1}).gather(1, index.reshape({N, -1}));
  const auto target = torch::where(valid.reshape({N, -1}), pred_a.reshape({N, -1}).to(torch::kInt64),
                                   torch::full({}, confusion.ignore_index(), torch::kInt64).to(pred_a.device()));
  confusion.update(sampled, target);
  return valid.sum().item<int64_t>();
}

// CPU path of the homography CVC: one pass over a's pixels, mapping in float64 (the same
// validity rule as correspondence_grid with stride 1), then one ConfusionMatrix update.
inline int64_t cvc_homography_cpu(const torch::Tensor& pred_a, const torch::Tensor& pred_b, const torch::Tensor& H_b_a,
                                  const torch::Tensor& gt_a, ConfusionMatrix& confusion) {
  const auto pa = pred_a.to(torch::kInt64).contiguous();
  const auto pb = pred_b.to(torch::kInt64).contiguous();
  const auto gt = gt_a.defined() ? gt_a.to(torch::kInt64).contiguous() : torch::Tensor();
  const auto H = H_b_a.contiguous();
  const int64_t N = pa.size(0), ha = pa.size(1), wa = pa.size(2), hb = pb.size(1), wb = pb.size(2);
  const int64_t ignore = confusion.ignore_index();
  auto target = torch::empty({N, ha * wa}, torch::kInt64);
  auto sampled = torch::zeros({N, ha * wa}, torch::kInt64);
  const int64_t* A = pa.data_ptr<int64_t>();
  const int64_t* B = pb.data_ptr<int64_t>();
  const int64_t* G = gt.defined() ? gt.data_ptr<int64_t>() : nullptr;
  const double* h = H.data_ptr<double>();
  int64_t* T = target.data_ptr<int64_t>();
  int64_t* S = sampled.data_ptr<int64_t>();
  std::atomic<int64_t> scored{0};
  at::parallel_for(0, N * ha, 8, [&](int64_t begin, int64_t end) {
    int64_t local = 0;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / ha;
      const double y = double(r % ha);
      const double* m = h + n * 9;
      for (int64_t x = 0; x < wa; ++x) {
        const int64_t i = r * wa + x;
        const double u = m[0] * double(x) + m[1] * y + m[2];
        const double v = m[3] * double(x) + m[4] * y + m[5];
        const double w = m[6] * double(x) + m[7] * y + m[8];
        bool ok = w > 0;
        double qx = 0, qy = 0;
        if (ok) {
          qx = u / w;
          qy = v / w;
          ok = qx >= 0 && qx <= double(wb - 1) && qy >= 0 && qy <= double(hb - 1);
        }
        if (ok && G != nullptr) ok = G[i] != ignore;
        if (ok) {
          const auto xb = int64_t(std::floor(qx + 0.5));
          const auto yb = int64_t(std::floor(qy + 0.5));
          S[i] = B[(n * hb + yb) * wb + xb];
          T[i] = A[i];
          ++local;
        } else {
          T[i] = ignore;
        }
      }
    }
    scored += local;
  });
  confusion.update(sampled, target);
  return scored.load();
}

}  // namespace detail

/// CVC of a pair of predictions (paper Sec. 4.2): pred_a [N, H_a, W_a] and pred_b [N, H_b, W_b]
/// (or [H, W]; integer class ids, same device) on views a and b related by H_b_a [N, 3, 3] or
/// [3, 3] (patch-a pixels -> patch-b pixels, Eq. 3). Every pixel of a whose centre maps inside b
/// (w > 0, 0 <= x <= W_b - 1, 0 <= y <= H_b - 1) takes pred_a as ground truth and the
/// prediction of b's nearest pixel as prediction; other pixels, and pixels where the optional
/// gt_a [N, H_a, W_a] equals confusion.ignore_index(), are left out. CVC mIoU and CVC pixel
/// accuracy are then confusion.mean_iou() and confusion.pixel_accuracy(). CPU tensors take one
/// float64 pass over the pixels; other devices map through correspondence_grid (float32
/// positions), so a pixel whose image lies within ~1e-5 px of a rounding boundary may round the
/// other way there.
/// \returns the number of pixels scored.
/// \throws c10::Error for wrong ranks, shapes, dtypes or devices, and a non-finite (or `meta`) H_b_a.
inline int64_t cross_view_consistency(const torch::Tensor& pred_a, const torch::Tensor& pred_b,
                                      const torch::Tensor& H_b_a, ConfusionMatrix& confusion,
                                      const torch::Tensor& gt_a = {}) {
  constexpr const char* kFn = "cross_view_consistency";
  const auto a = detail::batched_labels(pred_a, kFn, "pred_a");
  const auto b = detail::batched_labels(pred_b, kFn, "pred_b");
  TORCH_CHECK(a.size(0) == b.size(0), kFn, ": pred_a and pred_b must have the same batch size, got ",
              detail::shape_string(pred_a), " and ", detail::shape_string(pred_b));
  detail::check_rank(H_b_a, {2, 3}, kFn, "H_b_a", "[N, 3, 3] or [3, 3]");
  TORCH_CHECK(H_b_a.size(-1) == 3 && H_b_a.size(-2) == 3 && (H_b_a.dim() == 2 || H_b_a.size(0) == a.size(0)), kFn,
              ": H_b_a must have shape [", a.size(0), ", 3, 3] or [3, 3], got ", detail::shape_string(H_b_a));
  TORCH_CHECK(b.device() == a.device(), kFn, ": pred_a and pred_b must be on the same device, got ", a.device(),
              " and ", b.device());
  detail::check_has_values(a, kFn, "pred_a");
  // A NaN or infinity would leave every pixel silently unscored: refused (9*N values read on the CPU).
  detail::check_homographies(H_b_a, kFn, "H_b_a");
  auto H = H_b_a.to(a.device(), torch::kFloat64);
  if (H.dim() == 2) H = H.unsqueeze(0).expand({a.size(0), 3, 3}).contiguous();
  torch::Tensor gt;
  if (gt_a.defined()) {
    gt = detail::batched_labels(gt_a, kFn, "gt_a");
    TORCH_CHECK(gt.sizes() == a.sizes(), kFn, ": gt_a must have pred_a's shape ", detail::shape_string(a), ", got ",
                detail::shape_string(gt));
  }
  if (a.device().is_cpu()) return detail::cvc_homography_cpu(a, b, H, gt.defined() ? gt : torch::Tensor(), confusion);
  // Pixel grids are feature grids of stride 1.
  const SizeHW hw_a{a.size(1), a.size(2)}, hw_b{b.size(1), b.size(2)};
  // H_b_a was checked above, before it moved to the predictions' device.
  const auto corr = detail::correspondence_grid_impl(H, hw_a, hw_a, hw_b, hw_b, /*check_values=*/false);
  return detail::score_at_positions(a, b, corr.position_b, corr.valid, confusion, gt, kFn);
}

/// CVC of one pair with an Eigen homography H_b_a (3x3, patch-a pixels -> patch-b pixels).
template <typename Derived>
int64_t cross_view_consistency(const torch::Tensor& pred_a, const torch::Tensor& pred_b,
                               const Eigen::MatrixBase<Derived>& H_b_a, ConfusionMatrix& confusion,
                               const torch::Tensor& gt_a = {}) {
  return cross_view_consistency(pred_a, pred_b, homography_to_tensor(H_b_a)[0], confusion, gt_a);
}

/// Flow-based consistency (video frames): as cross_view_consistency, with a dense correspondence
/// field instead of a homography. flow_a_b [N, H_a, W_a, 2] (or [H_a, W_a, 2]; floating, x then
/// y, in pixels) moves pixel (x, y) of a to (x + flow_x, y + flow_y) in b -- the layout of
/// OpenCV's dense optical flow from frame a to frame b. Pixels count where the optional
/// valid [N, H_a, W_a] (bool) holds, the flow is finite and the target lies inside b.
/// \returns the number of pixels scored.
inline int64_t cross_view_consistency_flow(const torch::Tensor& pred_a, const torch::Tensor& pred_b,
                                           const torch::Tensor& flow_a_b, ConfusionMatrix& confusion,
                                           const torch::Tensor& valid = {}, const torch::Tensor& gt_a = {}) {
  constexpr const char* kFn = "cross_view_consistency_flow";
  const auto a = detail::batched_labels(pred_a, kFn, "pred_a");
  const auto b = detail::batched_labels(pred_b, kFn, "pred_b");
  TORCH_CHECK(a.size(0) == b.size(0), kFn, ": pred_a and pred_b must have the same batch size, got ",
              detail::shape_string(pred_a), " and ", detail::shape_string(pred_b));
  detail::check_rank(flow_a_b, {3, 4}, kFn, "flow_a_b", "[N, H_a, W_a, 2]");
  const auto flow = flow_a_b.dim() == 3 ? flow_a_b.unsqueeze(0) : flow_a_b;
  TORCH_CHECK(flow.size(0) == a.size(0) && flow.size(1) == a.size(1) && flow.size(2) == a.size(2) &&
                  flow.size(3) == 2,
              kFn, ": flow_a_b must have shape [", a.size(0), ", ", a.size(1), ", ", a.size(2), ", 2], got ",
              detail::shape_string(flow_a_b));
  detail::check_floating(flow, kFn, "flow_a_b");
  detail::check_has_values(flow, kFn, "flow_a_b");
  if (valid.defined()) detail::check_has_values(valid, kFn, "valid");
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64).device(a.device());
  const auto xs = torch::arange(a.size(2), opts).view({1, 1, -1}).expand({a.size(0), a.size(1), a.size(2)});
  const auto ys = torch::arange(a.size(1), opts).view({1, -1, 1}).expand({a.size(0), a.size(1), a.size(2)});
  const auto position = torch::stack({xs, ys}, -1) + flow.to(opts);
  // NaN positions fail every comparison in score_at_positions; infinities fail the range test.
  auto ok = torch::ones({a.size(0), a.size(1), a.size(2)}, opts.dtype(torch::kBool));
  if (valid.defined()) {
    TORCH_CHECK(valid.scalar_type() == torch::kBool && valid.numel() == ok.numel(), kFn,
                ": valid must be a bool tensor of shape ", detail::shape_string(ok), ", got ", valid.scalar_type(),
                " ", detail::shape_string(valid));
    ok = valid.to(a.device()).reshape(ok.sizes());
  }
  return detail::score_at_positions(a, b, position, ok, confusion, gt_a, kFn);
}

}  // namespace crossview
