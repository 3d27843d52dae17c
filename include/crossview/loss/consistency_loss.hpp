#pragma once
/// \file
/// The consistency loss between the feature maps of two views (paper Eq. 9-11).

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/loss/detail/bilinear_taps.hpp"
#include "crossview/loss/detail/cosine_pair_loss_cpu.hpp"
#include "crossview/loss/similarity.hpp"
#include "crossview/warp/correspondence.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace crossview {

/// Options of ConsistencyLoss.
struct ConsistencyLossOptions {
  /// Numerical floor (default 1e-6). It enters twice: feature norms are floored at eps inside the
  /// similarity, and the per-pair loss is l = log(1 + eps) - log(0.5 + 0.5 s + eps), i.e. Eq. (9)'s
  /// -log(0.5 + s/2) shifted by eps and normalised so that s = 1 gives exactly 0. Antipodal
  /// features (s = -1) then cost log((1 + eps) / eps) (13.8 for 1e-6) with finite gradients, and
  /// a zero feature column has similarity 0 (loss ~ log 2) with finite gradients.
  TORCH_ARG(double, eps) = 1e-6;
  /// Average of the a->b loss (cells of grid a sampled in grid b) and the b->a loss (cells of
  /// grid b sampled in grid a through inverse(H_b_a)). Applies to the homography overloads; the
  /// explicit-correspondence overload samples both sides already.
  TORCH_ARG(bool, symmetric) = false;
  /// Weights of the layers in Eq. (10) (empty: all 1); must match the number of layers.
  TORCH_ARG(std::vector<double>, layer_weights) = {};
};

/// Consistency loss (paper Eq. 9-11) as a functor without weights.
///
/// One layer (Eq. 9): for every cell i of feature grid a whose centre maps (through the pair
/// homography, feature-grid convention of DESIGN.md) to a valid position of grid b (w > 0, inside
/// grid b's cell centres), b's feature column y_i is sampled bilinearly there and compared with
/// a's column x_i:  L = 1/N_valid * sum_i -log(0.5 + 0.5 * Similarity(x_i, y_i))  (see
/// ConsistencyLossOptions::eps for the exact, numerically safe form). N_valid counts the valid
/// pairs of the whole batch; without any, L = 0 with zero gradients. Gradients flow into both
/// feature maps. Eq. (10) sums the layers (optionally weighted); Eq. (11)'s alpha is the caller's.
///
/// Computation: one batched pass per layer on the features' device, no per-pair loops. With
/// CosineSimilarity and float/double CPU features a fused kernel reads the NCHW maps in place
/// (loss/detail/cosine_pair_loss_cpu.hpp); otherwise feature columns are gathered with ATen ops
/// and the policy's apply() is differentiated by autograd.
///
/// \tparam Similarity policy, contract in loss/similarity.hpp (CosineSimilarity is the paper's).
template <typename Similarity = CosineSimilarity>
class ConsistencyLoss {
  static_assert(detail::is_similarity<Similarity>::value,
                "crossview::ConsistencyLoss: Similarity must provide `static torch::Tensor apply(const "
                "torch::Tensor& x, const torch::Tensor& y, double eps)` ([P, C] x [P, C] -> [P]) and `static "
                "const char* name()`");

 public:
  explicit ConsistencyLoss(ConsistencyLossOptions options = {}) : options_(std::move(options)) {
    TORCH_CHECK(std::isfinite(options_.eps()) && options_.eps() > 0,
                "ConsistencyLoss: options.eps must be finite and > 0, got ", options_.eps());
    for (const double w : options_.layer_weights()) {
      TORCH_CHECK(std::isfinite(w), "ConsistencyLoss: options.layer_weights must be finite, got ", w);
    }
  }

  const ConsistencyLossOptions& options() const { return options_; }

  /// Eq. (9) for one layer. feat_a [N, C, h_a, w_a] and feat_b [N, C, h_b, w_b]: floating, same
  /// dtype and device, any strides (the grids may differ in size); H_b_a [N, 3, 3] (or [3, 3] for
  /// all items; any dtype; any device holding values, its 9*N values checked on the CPU; used in
  /// float64) maps patch-a pixels to patch-b pixels; it must be finite, and invertible when
  /// symmetric. image_hw {H, W} is the size of both image patches. Returns a 0-dim tensor of the
  /// features' dtype.
  torch::Tensor operator()(const torch::Tensor& feat_a, const torch::Tensor& feat_b, const torch::Tensor& H_b_a,
                           SizeHW image_hw) const {
    return layer(feat_a, feat_b, H_b_a, image_hw, /*check_values=*/true);
  }

  /// Eq. (10): sum over layers l of layer_weights[l] * Eq. (9) for feats_a[l], feats_b[l] (each
  /// layer as in the one-layer overload; layers may differ in channels and size).
  torch::Tensor operator()(const std::vector<torch::Tensor>& feats_a, const std::vector<torch::Tensor>& feats_b,
                           const torch::Tensor& H_b_a, SizeHW image_hw) const {
    constexpr const char* kFn = "ConsistencyLoss";
    TORCH_CHECK(!feats_a.empty() && feats_a.size() == feats_b.size(), kFn,
                ": feats_a and feats_b must hold the same, non-zero number of layers, got ", feats_a.size(), " and ",
                feats_b.size());
    const auto& weights = options_.layer_weights();
    TORCH_CHECK(weights.empty() || weights.size() == feats_a.size(), kFn, ": options.layer_weights must have one ",
                "weight per layer (", feats_a.size(), "), got ", weights.size());
    torch::Tensor total;
    for (size_t l = 0; l < feats_a.size(); ++l) {
      // H_b_a's values are checked once, with the first layer.
      auto term = layer(feats_a[l], feats_b[l], H_b_a, image_hw, /*check_values=*/l == 0);
      if (!weights.empty()) term = term * weights[l];
      total = total.defined() ? total + term : term;
    }
    return total;
  }

  /// Eq. (9) over explicit correspondences (e.g. from optical flow): position_a and position_b
  /// [N, ..., 2] (same shape, floating, (x, y) in cell units of grid a and grid b, cell centres at
  /// integers) pair a sub-cell position in grid a with one in grid b; both sides are sampled
  /// bilinearly. A pair counts when valid [N, ...] (bool, optional) holds and both positions are
  /// finite and inside their grids (0 <= x <= w - 1, 0 <= y <= h - 1).
  torch::Tensor operator()(const torch::Tensor& feat_a, const torch::Tensor& feat_b, const torch::Tensor& position_a,
                           const torch::Tensor& position_b, const torch::Tensor& valid = {}) const {
    constexpr const char* kFn = "ConsistencyLoss";
    check_features(feat_a, feat_b, kFn);
    TORCH_CHECK(position_a.defined() && position_a.dim() >= 2 && position_a.size(-1) == 2, kFn,
                ": position_a must have shape [N, ..., 2], got ",
                position_a.defined() ? detail::shape_string(position_a) : std::string("an undefined tensor"));
    TORCH_CHECK(position_b.defined() && position_b.sizes() == position_a.sizes(), kFn,
                ": position_b must have the shape of position_a ", detail::shape_string(position_a), ", got ",
                position_b.defined() ? detail::shape_string(position_b) : std::string("an undefined tensor"));
    TORCH_CHECK(position_a.size(0) == feat_a.size(0), kFn, ": position_a must have N = ", feat_a.size(0),
                " batch items, got ", position_a.size(0));
    detail::check_floating(position_a, kFn, "position_a");
    detail::check_floating(position_b, kFn, "position_b");
    const int64_t N = feat_a.size(0);
    const auto dev = feat_a.device();
    const auto pa = position_a.to(dev, torch::kFloat64).reshape({N, -1, 2});
    const auto pb = position_b.to(dev, torch::kFloat64).reshape({N, -1, 2});
    auto ok = inside(pa, feat_a.size(2), feat_a.size(3)) & inside(pb, feat_b.size(2), feat_b.size(3));
    if (valid.defined()) {
      TORCH_CHECK(valid.scalar_type() == torch::kBool && valid.numel() == ok.numel() &&
                      valid.dim() == position_a.dim() - 1,
                  kFn, ": valid must be a bool tensor of shape ", detail::shape_string(position_a.select(-1, 0)),
                  ", got ", valid.scalar_type(), " ", detail::shape_string(valid));
      ok = ok & valid.to(dev).reshape({N, -1});
    }
    const auto index = ok.reshape({-1}).nonzero().squeeze(1);
    detail::PairTaps taps;
    taps.batch = torch::div(index, ok.size(1), "floor");
    detail::bilinear_taps(pa.reshape({-1, 2}).index_select(0, index), feat_a.size(2), feat_a.size(3), taps.cell_a,
                          taps.weight_a);
    detail::bilinear_taps(pb.reshape({-1, 2}).index_select(0, index), feat_b.size(2), feat_b.size(3), taps.cell_b,
                          taps.weight_b);
    return pair_loss(feat_a, feat_b, taps);
  }

 private:
  // Eq. (9) for one layer; `check_values`: test H_b_a for finite (and, symmetric, invertible) values.
  torch::Tensor layer(const torch::Tensor& feat_a, const torch::Tensor& feat_b, const torch::Tensor& H_b_a,
                      SizeHW image_hw, bool check_values) const {
    constexpr const char* kFn = "ConsistencyLoss";
    check_features(feat_a, feat_b, kFn);
    const auto H = batched_homography(H_b_a, feat_a.size(0), feat_a.device(), kFn, check_values, options_.symmetric());
    TORCH_CHECK(image_hw[0] > 0 && image_hw[1] > 0, kFn, ": image_hw must be positive, got ", image_hw[0], "x",
                image_hw[1]);
    auto loss = directed(feat_a, feat_b, H, image_hw);
    if (options_.symmetric()) {
      loss = 0.5 * (loss + directed(feat_b, feat_a, torch::linalg_inv(H), image_hw));
    }
    return loss;
  }

  // The mean loss over the given pairs (taps of both sides); the one place the work happens.
  torch::Tensor pair_loss(const torch::Tensor& feat_a, const torch::Tensor& feat_b, const detail::PairTaps& taps) const {
    const bool fused = std::is_same<Similarity, CosineSimilarity>::value && feat_a.device().is_cpu() &&
                       (feat_a.scalar_type() == torch::kFloat || feat_a.scalar_type() == torch::kDouble);
    if (fused) {
      return detail::CosinePairLossFunction::apply(feat_a, feat_b, taps.batch, taps.cell_a, taps.weight_a,
                                                   taps.cell_b, taps.weight_b, options_.eps());
    }
    return generic_pair_loss(feat_a, feat_b, taps);
  }

  // pair_loss through gather_columns + Similarity::apply + autograd (what non-CPU devices,
  // reduced precision and other policies use).
  torch::Tensor generic_pair_loss(const torch::Tensor& feat_a, const torch::Tensor& feat_b,
                                  const detail::PairTaps& taps) const {
    const double eps = options_.eps();
    const auto x = detail::gather_columns(feat_a, taps.batch, taps.cell_a, taps.weight_a);
    const auto y = detail::gather_columns(feat_b, taps.batch, taps.cell_b, taps.weight_b);
    const auto s = Similarity::apply(x, y, eps);
    const auto l = std::log1p(eps) - torch::log(0.5 + 0.5 * s + eps);
    return l.sum() / double(std::max<int64_t>(taps.size(), 1));
  }

  static void check_features(const torch::Tensor& feat_a, const torch::Tensor& feat_b, const char* fn) {
    detail::check_rank(feat_a, {4}, fn, "feat_a", "[N, C, h_a, w_a]");
    detail::check_rank(feat_b, {4}, fn, "feat_b", "[N, C, h_b, w_b]");
    detail::check_floating(feat_a, fn, "feat_a");
    TORCH_CHECK(feat_b.scalar_type() == feat_a.scalar_type(), fn, ": feat_b must have feat_a's dtype ",
                feat_a.scalar_type(), ", got ", feat_b.scalar_type());
    detail::check_same_device(feat_a, feat_b, fn, "feat_a", "feat_b");
    detail::check_has_values(feat_a, fn, "feat_a");
    TORCH_CHECK(feat_a.size(0) == feat_b.size(0) && feat_a.size(1) == feat_b.size(1), fn,
                ": feat_a and feat_b must have the same N and C, got ", detail::shape_string(feat_a), " and ",
                detail::shape_string(feat_b));
    TORCH_CHECK(feat_a.numel() > 0 && feat_b.numel() > 0, fn, ": feature maps must not be empty, got ",
                detail::shape_string(feat_a), " and ", detail::shape_string(feat_b));
  }

  static torch::Tensor batched_homography(const torch::Tensor& H_b_a, int64_t N, torch::Device device,
                                          const char* fn, bool check_values, bool invertible) {
    detail::check_rank(H_b_a, {2, 3}, fn, "H_b_a", "[N, 3, 3]");
    TORCH_CHECK(H_b_a.size(-1) == 3 && H_b_a.size(-2) == 3 && (H_b_a.dim() == 2 || H_b_a.size(0) == N), fn,
                ": H_b_a must have shape [", N, ", 3, 3] (or [3, 3]), got ", detail::shape_string(H_b_a));
    // A NaN or infinity would make every pair silently invalid (loss 0): refused. 9*N values are
    // read on the CPU; a meta H_b_a has none and is refused. The symmetric loss inverts H_b_a.
    if (check_values) detail::check_homographies(H_b_a, fn, "H_b_a", invertible);
    auto H = H_b_a.to(device, torch::kFloat64);
    return H.dim() == 2 ? H.unsqueeze(0).expand({N, 3, 3}).contiguous() : H;
  }

  static torch::Tensor inside(const torch::Tensor& p, int64_t h, int64_t w) {
    const auto x = p.select(-1, 0);
    const auto y = p.select(-1, 1);
    // NaN fails every comparison, so non-finite positions are outside.
    return (x >= 0) & (x <= double(w - 1)) & (y >= 0) & (y <= double(h - 1));
  }

  // Cells of grid a (exact, one tap) against their bilinear positions in grid b.
  torch::Tensor directed(const torch::Tensor& feat_a, const torch::Tensor& feat_b, const torch::Tensor& H_b_a,
                         SizeHW image_hw) const {
    const SizeHW grid_a{feat_a.size(2), feat_a.size(3)};
    const SizeHW grid_b{feat_b.size(2), feat_b.size(3)};
    // H_b_a was checked before it moved to the features' device.
    const auto corr =
        detail::correspondence_grid_impl(H_b_a, grid_a, image_hw, grid_b, image_hw, /*check_values=*/false);
    const auto index = corr.valid.reshape({-1}).nonzero().squeeze(1);
    const int64_t hw_a = grid_a[0] * grid_a[1];
    detail::PairTaps taps;
    taps.batch = torch::div(index, hw_a, "floor");
    taps.cell_a = (index - taps.batch * hw_a).unsqueeze(1);
    taps.weight_a = torch::ones({index.size(0), 1}, index.options().dtype(torch::kFloat64));
    detail::bilinear_taps(corr.position_b.reshape({-1, 2}).index_select(0, index), grid_b[0], grid_b[1],
                          taps.cell_b, taps.weight_b);
    return pair_loss(feat_a, feat_b, taps);
  }

  ConsistencyLossOptions options_;
};

}  // namespace crossview
