#pragma once
/// \file
/// Video consistency (paper Sec. 4.4): how often the labels of two frames agree at pixels that a
/// dense optical flow puts in correspondence, accumulated into a `ConfusionMatrix` (consistency in
/// % = pixel accuracy; per-class agreement = IoU), with an optional forward-backward check that
/// leaves out pixels occluded in the other frame or with unreliable flow. Optical flow itself is
/// the caller's (e.g. OpenCV's DIS or Farnebäck in a program); this header needs libtorch only.

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/metrics/confusion_matrix.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace crossview {

/// Options of `flow_consistency`.
///
/// Forward-backward check (Sundaram, Brox and Keutzer, ECCV 2010; the occlusion test of most
/// flow-based video-consistency measures): with f = flow_b_a(p) and g = flow_a_b(p + f), sampled
/// bilinearly, pixel p of frame b is dropped when
///
///   |f + g|² > fb_alpha · (|f|² + |g|²) + fb_beta,
///
/// i.e. when following the flow to frame a and back does not return to p. Defaults 0.01 and
/// 0.5 px² are the usual values; a fixed pixel threshold t is `fb_alpha(0).fb_beta(t * t)`.
struct FlowConsistencyOptions {
  /// Reverse flow `[2, H_a, W_a]` (or `[N, 2, H_a, W_a]`), floating, (dx, dy) mapping frame-a pixels
  /// to frame-b positions; undefined (the default) skips the forward-backward check.
  TORCH_ARG(torch::Tensor, flow_a_b) = torch::Tensor();
  /// Relative term of the forward-backward threshold (dimensionless).
  TORCH_ARG(double, fb_alpha) = 0.01;
  /// Absolute term of the forward-backward threshold, in px².
  TORCH_ARG(double, fb_beta) = 0.5;
};

namespace detail {

// [N, H, W] view of a [N, H, W] or [H, W] integer label map.
inline torch::Tensor flow_consistency_labels(const torch::Tensor& t, const char* argument) {
  check_rank(t, {2, 3}, "flow_consistency", argument, "[H, W] or [N, H, W]");
  TORCH_CHECK(c10::isIntegralType(t.scalar_type(), false), "flow_consistency: ", argument,
              " must be an integer tensor, got ", t.scalar_type());
  return t.dim() == 2 ? t.unsqueeze(0) : t;
}

// [N, 2, H, W] view of a [2, H, W] or [N, 2, H, W] floating flow over an [N, H, W] frame.
inline torch::Tensor flow_consistency_flow(const torch::Tensor& flow, const torch::Tensor& frame,
                                           const char* argument) {
  check_rank(flow, {3, 4}, "flow_consistency", argument, "[2, H, W] or [N, 2, H, W]");
  check_floating(flow, "flow_consistency", argument);
  const auto f = flow.dim() == 3 ? flow.unsqueeze(0) : flow;
  TORCH_CHECK(f.size(0) == frame.size(0) && f.size(1) == 2 && f.size(2) == frame.size(1) && f.size(3) == frame.size(2),
              "flow_consistency: ", argument, " must have shape [2, ", frame.size(1), ", ", frame.size(2), "]",
              frame.size(0) > 1 ? " with a batch of " + std::to_string(frame.size(0)) : std::string(), ", got ",
              shape_string(flow));
  check_same_device(frame, flow, "flow_consistency", "labels", argument);
  return f;
}

}  // namespace detail

/// Video consistency of two labellings (predictions) of frames a and b, paper Sec. 4.4.
///
/// `labels_a` `[H_a, W_a]`, `labels_b` `[H_b, W_b]` (or batched `[N, H, W]`): integer class ids,
/// `matrix.ignore_index()` for unlabelled pixels. `flow_b_a` `[2, H_b, W_b]` (or `[N, 2, H_b, W_b]`),
/// floating, (dx, dy) in pixels: pixel p = (x, y) of frame b sits at q = p + flow_b_a(p) in frame a
/// (the backward flow of a video from a to b; OpenCV's `calcOpticalFlow*(b, a)`, transposed to
/// channels first). All tensors on one device; the positions are computed in float64 with ATen ops.
///
/// Every pixel p of b whose q lands inside frame a (0 <= q_x <= W_a - 1, 0 <= q_y <= H_a - 1, the
/// rule of `cross_view_consistency`; non-finite flow never does), passes the forward-backward check
/// when `options.flow_a_b()` is given (see `FlowConsistencyOptions`), and whose labels are both
/// not ignored, is counted once as `(target = labels_b(p), prediction = labels_a(nearest pixel to
/// q))`, nearest meaning floor(q + 0.5). Frame b plays the part of the ground truth, as view a does
/// in `cross_view_consistency`; the consistency of a sequence is `matrix.pixel_accuracy()` after
/// all its frame pairs. \returns the number of pixels counted.
/// \throws c10::Error for shapes, dtypes or devices that do not fit (`meta` tensors, which hold no
/// values, included), and (from the matrix) labels
/// outside [0, num_classes) at counted pixels.
inline int64_t flow_consistency(const torch::Tensor& labels_a, const torch::Tensor& labels_b,
                                const torch::Tensor& flow_b_a, ConfusionMatrix& matrix,
                                const FlowConsistencyOptions& options = {}) {
  const auto a = detail::flow_consistency_labels(labels_a, "labels_a").to(torch::kInt64);
  const auto b = detail::flow_consistency_labels(labels_b, "labels_b").to(torch::kInt64);
  TORCH_CHECK(a.size(0) == b.size(0), "flow_consistency: labels_a and labels_b must have the same batch size, got ",
              detail::shape_string(labels_a), " and ", detail::shape_string(labels_b));
  detail::check_same_device(a, b, "flow_consistency", "labels_a", "labels_b");
  detail::check_has_values(a, "flow_consistency", "labels_a");
  const auto f = detail::flow_consistency_flow(flow_b_a, b, "flow_b_a").to(torch::kFloat64);
  TORCH_CHECK(options.fb_alpha() >= 0 && options.fb_beta() >= 0,
              "flow_consistency: fb_alpha and fb_beta must be >= 0, got ", options.fb_alpha(), " and ",
              options.fb_beta());
  const int64_t N = b.size(0), hb = b.size(1), wb = b.size(2), ha = a.size(1), wa = a.size(2);
  const int64_t ignore = matrix.ignore_index();
  if (b.numel() == 0) return 0;

  const auto real = f.options();
  const auto fx = f.select(1, 0), fy = f.select(1, 1);  // [N, H_b, W_b]
  const auto qx = torch::arange(wb, real).view({1, 1, wb}) + fx;
  const auto qy = torch::arange(hb, real).view({1, hb, 1}) + fy;
  // NaN fails every comparison, infinities the range test.
  auto valid = (qx >= 0) & (qx <= double(wa - 1)) & (qy >= 0) & (qy <= double(ha - 1));
  // Positions of invalid pixels replaced by (0, 0) so that every index below is in range.
  const auto sx = torch::where(valid, qx, torch::zeros_like(qx));
  const auto sy = torch::where(valid, qy, torch::zeros_like(qy));

  if (options.flow_a_b().defined()) {
    TORCH_CHECK(ha > 0 && wa > 0, "flow_consistency: labels_a must not be empty when flow_a_b is given");
    const auto g = detail::flow_consistency_flow(options.flow_a_b(), a, "flow_a_b").to(torch::kFloat64);
    // Bilinear sample of g at (sx, sy): corners (x0, y0) .. (x1, y1) with x1 = x0 + 1, or x0 where
    // the weight of x1 is 0 (so that a NaN in g spreads only to the positions that weigh it).
    const auto x0 = torch::floor(sx), y0 = torch::floor(sy);
    const auto wx = sx - x0, wy = sy - y0;
    const auto x1 = torch::where(wx > 0, x0 + 1, x0), y1 = torch::where(wy > 0, y0 + 1, y0);
    const auto g_flat = g.reshape({N, 2, ha * wa});
    const auto corner = [&](const torch::Tensor& x, const torch::Tensor& y) {
      const auto index = (y * double(wa) + x).to(torch::kInt64).reshape({N, 1, hb * wb}).expand({N, 2, hb * wb});
      return g_flat.gather(2, index).reshape({N, 2, hb, wb});
    };
    const auto wx_ = wx.unsqueeze(1), wy_ = wy.unsqueeze(1);
    const auto gs = (corner(x0, y0) * (1 - wx_) + corner(x1, y0) * wx_) * (1 - wy_) +
                    (corner(x0, y1) * (1 - wx_) + corner(x1, y1) * wx_) * wy_;
    const auto gx = gs.select(1, 0), gy = gs.select(1, 1);
    const auto ex = fx + gx, ey = fy + gy;
    const auto bound = options.fb_alpha() * (fx * fx + fy * fy + gx * gx + gy * gy) + options.fb_beta();
    valid = valid & (ex * ex + ey * ey <= bound);
  }

  // Nearest pixel of q in frame a; q inside [0, W_a - 1] x [0, H_a - 1] rounds inside.
  const auto index = (torch::floor(sy + 0.5) * double(wa) + torch::floor(sx + 0.5)).to(torch::kInt64);
  const auto sampled = ha * wa > 0 ? a.reshape({N, ha * wa}).gather(1, index.reshape({N, hb * wb}))
                                   : torch::full({N, hb * wb}, ignore, b.options());
  const auto target = b.reshape({N, hb * wb});
  const auto counted = valid.reshape({N, hb * wb}) & (target != ignore) & (sampled != ignore);
  matrix.update(sampled, torch::where(counted, target, torch::full_like(target, ignore)));
  return counted.sum().item<int64_t>();
}

}  // namespace crossview
