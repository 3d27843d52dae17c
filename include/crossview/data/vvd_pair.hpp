#pragma once
/// \file
/// The online varying-view-direction (VVD) pair generator (paper Sec. 3.1, Eq. 1-4): from one
/// image and its labels, two 2a x 2a patches of the same scene seen in two view directions, the
/// homography between them and the validity mask of the second patch.

#include "crossview/detail/tensor_checks.hpp"
#include "crossview/geometry/homography.hpp"
#include "crossview/geometry/intrinsics.hpp"
#include "crossview/geometry/rotation.hpp"
#include "crossview/geometry/view_sampling.hpp"
#include "crossview/random.hpp"
#include "crossview/warp/warp_image.hpp"
#include "crossview/warp/warp_labels.hpp"

#include <Eigen/Core>
#include <torch/arg.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>

namespace crossview {

/// Options of VVDPairGenerator (and VVDDataset). Chained setters, as libtorch's options:
/// `VVDOptions().crop_size(512).min_valid_fraction(0.6)`.
struct VVDOptions {
  /// \throws c10::Error naming the field if an option is out of range.
  void validate(const char* fn) const {
    TORCH_CHECK(crop_size_ > 0, fn, ": crop_size must be > 0, got ", crop_size_);
    TORCH_CHECK(!focal_ || (std::isfinite(*focal_) && *focal_ > 0), fn, ": focal must be finite and > 0, got ",
                focal_ ? *focal_ : 0.0);
    TORCH_CHECK(min_valid_fraction_ >= 0 && min_valid_fraction_ <= 1, fn,
                ": min_valid_fraction must lie in [0, 1], got ", min_valid_fraction_);
    TORCH_CHECK(max_tries_ >= 1, fn, ": max_tries must be >= 1, got ", max_tries_);
    try {
      view_range_.validate(fn);
    } catch (const std::invalid_argument& e) {
      TORCH_CHECK(false, e.what());
    }
  }

  /// Side 2a of both square patches, pixels (the paper's 776).
  TORCH_ARG(int64_t, crop_size) = 776;
  /// Ranges of yaw / pitch / roll, sampled uniformly (defaults: the paper's +-30 / +-15 / +-3 degrees).
  TORCH_ARG(ViewRange, view_range) = ViewRange{};
  /// Focal length in pixels of the image the pairs are cut from; unset: the paper's 2262 px
  /// scaled to the image width (cityscapes_focal_for_width). Principal point: the image centre.
  TORCH_ARG(std::optional<double>, focal) = std::nullopt;
  /// Label of pixels without a source (outside the image, padding).
  TORCH_ARG(int64_t, ignore_index) = 255;
  /// A sampled view is kept when at least this fraction of patch b is valid (estimated on every
  /// 4th pixel in x and y); otherwise the view and crop are resampled.
  TORCH_ARG(double, min_valid_fraction) = 0.5;
  /// Views sampled per pair before falling back to the identity view (counted in statistics()).
  TORCH_ARG(int64_t, max_tries) = 10;
  /// Images smaller than the crop: pad them (image 0, labels ignore_index) when true, raise
  /// otherwise. Padding keeps every pair the same size, so batches of mixed datasets stack.
  TORCH_ARG(bool, pad_small_images) = true;
  /// Seed of VVDDataset (each example's generator is derived from (seed, index)).
  TORCH_ARG(uint64_t, seed) = 0;
};

/// One training pair (paper Sec. 3.1). Patch a is a plain crop of the image; patch b is the image
/// seen in another view direction, warped straight into the 2a x 2a crop centred at o' = H o.
struct ViewPair {
  torch::Tensor image_a;  ///< [C, 2a, 2a], the input image's dtype and device
  torch::Tensor label_a;  ///< [2a, 2a] int64 (ignore_index where padded)
  torch::Tensor image_b;  ///< [C, 2a, 2a]; 0 where patch b has no source
  torch::Tensor label_b;  ///< [2a, 2a] int64; ignore_index where no source pixel (nearest)
  /// Eq. (3): maps patch-a pixels to patch-b pixels, Hc = T(-origin_b) H T(origin_a).
  Eigen::Matrix3d H_b_a = Eigen::Matrix3d::Identity();
  torch::Tensor valid_b;  ///< [2a, 2a] bool: patch-b pixels whose bilinear source needs no fill
  EulerAngles<double> view;  ///< the sampled yaw / pitch / roll (radians); zeros for the fallback
  /// Top-left pixel of patch a in the image, and of patch b in the full view-b image (o - a, o' - a).
  Eigen::Vector2d origin_a = Eigen::Vector2d::Zero();
  Eigen::Vector2d origin_b = Eigen::Vector2d::Zero();
  int64_t tries = 0;      ///< views sampled for this pair
  bool fallback = false;  ///< true when no sampled view met min_valid_fraction (identity view used)
};

/// Counters of a generator, shared by its copies (data-loader workers).
struct VVDStatistics {
  int64_t pairs = 0;      ///< pairs produced
  int64_t tries = 0;      ///< views sampled (>= pairs)
  int64_t fallbacks = 0;  ///< pairs that fell back to the identity view
};

namespace detail {

struct VVDCounters {
  std::atomic<int64_t> pairs{0}, tries{0}, fallbacks{0};
};

/// Integer uniform in [lo, hi] from uniform01 (portable across standard libraries).
template <typename URBG>
int64_t vvd_uniform_int(URBG& rng, int64_t lo, int64_t hi) {
  const auto span = double(hi - lo + 1);
  return std::min(hi, lo + int64_t(uniform01(rng) * span));
}

/// Fraction of the out x out patch whose source under H_src_dst lies inside [0, W-1] x [0, H-1]
/// with w > 0, on every `step`-th pixel.
inline double vvd_valid_fraction(const Eigen::Matrix3d& H_src_dst, int64_t out, int64_t src_h, int64_t src_w,
                                 int64_t step = 4) {
  int64_t inside = 0, total = 0;
  for (int64_t y = step / 2; y < out; y += step) {
    for (int64_t x = step / 2; x < out; x += step) {
      const Eigen::Vector3d p = H_src_dst * Eigen::Vector3d(double(x), double(y), 1.0);
      ++total;
      if (!(p.z() > 0)) continue;
      const double sx = p.x() / p.z(), sy = p.y() / p.z();
      inside += sx >= 0 && sx <= double(src_w - 1) && sy >= 0 && sy <= double(src_h - 1);
    }
  }
  return total ? double(inside) / double(total) : 0.0;
}

/// The size x size crop of `t` ([..., H, W]) with top-left (x0, y0); parts outside are `fill`.
inline torch::Tensor vvd_crop(const torch::Tensor& t, int64_t x0, int64_t y0, int64_t size, double fill) {
  const int64_t H = t.size(-2), W = t.size(-1);
  if (x0 >= 0 && y0 >= 0 && x0 + size <= W && y0 + size <= H) {
    return t.narrow(-2, y0, size).narrow(-1, x0, size).clone(at::MemoryFormat::Contiguous);
  }
  auto sizes = t.sizes().vec();
  sizes[sizes.size() - 2] = size;
  sizes[sizes.size() - 1] = size;
  auto out = torch::full(sizes, fill, t.options());
  const int64_t sx = std::max<int64_t>(0, x0), sy = std::max<int64_t>(0, y0);
  const int64_t ex = std::min(W, x0 + size), ey = std::min(H, y0 + size);
  if (ex > sx && ey > sy) {
    out.narrow(-2, sy - y0, ey - sy).narrow(-1, sx - x0, ex - sx).copy_(t.narrow(-2, sy, ey - sy).narrow(-1, sx, ex - sx));
  }
  return out;
}

}  // namespace detail

/// Online VVD pair generator (paper Sec. 3.1). For an image and its labels:
/// 1. sample a view (yaw, pitch, roll) in options.view_range and R = rotation_from_euler (Eq. 1);
///    H = K R K^-1 with K = Intrinsics::centered(focal, W, H) (Eq. 2);
/// 2. sample the crop: top-left origin_a uniform over the integer positions that keep patch a
///    inside the image; its centre o = origin_a + (2a - 1)/2;
/// 3. o' = H o (Eq. 4), origin_b = o' - (2a - 1)/2 (real-valued: patch b is centred on o');
/// 4. patch a = the plain crop (image and labels); patch b = warp_image / warp_labels of the
///    original image straight into the 2a x 2a crop at origin_b, i.e. by T(-origin_b) H;
///    H_b_a = crop_homography(H, origin_a, origin_b) (Eq. 3); valid_b = warp_image's mask.
/// If less than min_valid_fraction of patch b is valid (or o' lies behind the camera), the view
/// and the crop are resampled, at most max_tries times; then the identity view is used (patch b
/// = patch a) and counted in statistics().fallbacks.
///
/// Images smaller than the crop (in either side) are padded when pad_small_images (default):
/// origin_a is then sampled so that the crop covers that whole side (origin in [side - 2a, 0]),
/// the padding reads 0 in images and ignore_index in labels of both patches, and is invalid in
/// valid_b. With pad_small_images(false) they raise an error.
///
/// Thread-safe: operator() is const; copies share the statistics counters.
class VVDPairGenerator {
 public:
  explicit VVDPairGenerator(VVDOptions options = {})
      : options_(std::move(options)), counters_(std::make_shared<detail::VVDCounters>()) {
    options_.validate("VVDPairGenerator");
  }

  const VVDOptions& options() const { return options_; }

  /// A pair from `image` [C, H, W] (float32 or float64, e.g. RGB in [0, 1] or normalised; any
  /// device; C, H, W > 0) and
  /// `label` [H, W] int64 on the same device, drawing every random number from `rng` (a
  /// uniform random bit generator such as std::mt19937_64; results are the same on every platform).
  /// \throws c10::Error naming the argument for wrong ranks, dtypes, devices, mismatched sizes, or
  /// an image smaller than the crop without padding.
  template <typename URBG>
  ViewPair operator()(const torch::Tensor& image, const torch::Tensor& label, URBG& rng) const {
    constexpr const char* kFn = "VVDPairGenerator";
    detail::check_rank(image, {3}, kFn, "image", "[C, H, W]");
    detail::check_rank(label, {2}, kFn, "label", "[H, W]");
    TORCH_CHECK(image.scalar_type() == torch::kFloat32 || image.scalar_type() == torch::kFloat64, kFn,
                ": image must be a float32 or float64 tensor, got ", image.scalar_type());
    TORCH_CHECK(label.scalar_type() == torch::kInt64, kFn, ": label must be an int64 tensor of train ids, got ",
                label.scalar_type());
    TORCH_CHECK(image.size(1) == label.size(0) && image.size(2) == label.size(1), kFn,
                ": image [C, H, W] and label [H, W] must have the same H and W, got image ",
                detail::shape_string(image), " and label ", detail::shape_string(label));
    detail::check_same_device(image, label, kFn, "image", "label");
    detail::check_has_values(image, kFn, "image");
    const int64_t H = image.size(1), W = image.size(2), a2 = options_.crop_size();
    TORCH_CHECK(H > 0 && W > 0 && image.size(0) > 0, kFn, ": image must not be empty, got ",
                detail::shape_string(image));
    TORCH_CHECK(options_.pad_small_images() || (H >= a2 && W >= a2), kFn, ": image ", H, "x", W,
                " (HxW) is smaller than crop_size ", a2, " and pad_small_images is false");

    const double focal = options_.focal() ? *options_.focal() : cityscapes_focal_for_width(double(W));
    const auto K = Intrinsicsd::centered(focal, double(W), double(H));
    const double half = double(a2 - 1) / 2.0;

    ViewPair pair;
    Eigen::Matrix3d H_view = Eigen::Matrix3d::Identity();
    bool accepted = false;
    for (int64_t t = 0; t < options_.max_tries() && !accepted; ++t) {
      ++pair.tries;
      const auto view = sample_view<double>(options_.view_range(), rng);
      const int64_t ox = detail::vvd_uniform_int(rng, std::min<int64_t>(0, W - a2), std::max<int64_t>(0, W - a2));
      const int64_t oy = detail::vvd_uniform_int(rng, std::min<int64_t>(0, H - a2), std::max<int64_t>(0, H - a2));
      pair.origin_a = Eigen::Vector2d(double(ox), double(oy));
      const Eigen::Matrix3d R = rotation_from_euler(view);
      // K I K^-1 is the identity only up to rounding; keep the identity view exact.
      const Eigen::Matrix3d Hv = R == Eigen::Matrix3d::Identity() ? R : rotation_homography(K, R);
      const auto o_b = transform_point(Hv, Eigen::Vector2d(pair.origin_a + Eigen::Vector2d(half, half)));
      if (!o_b) continue;
      const Eigen::Vector2d origin_b = *o_b - Eigen::Vector2d(half, half);
      const Eigen::Matrix3d H_b_full = crop_homography(Hv, Eigen::Vector2d::Zero().eval(), origin_b);
      if (detail::vvd_valid_fraction(H_b_full.inverse(), a2, H, W) < options_.min_valid_fraction()) continue;
      accepted = true;
      H_view = Hv;
      pair.view = view;
      pair.origin_b = origin_b;
    }
    if (!accepted) {
      pair.fallback = true;
      pair.view = EulerAngles<double>{};
      pair.origin_b = pair.origin_a;
    }
    counters_->pairs += 1;
    counters_->tries += pair.tries;
    counters_->fallbacks += pair.fallback ? 1 : 0;

    const int64_t ox = int64_t(pair.origin_a.x()), oy = int64_t(pair.origin_a.y());
    pair.image_a = detail::vvd_crop(image, ox, oy, a2, 0.0);
    pair.label_a = detail::vvd_crop(label, ox, oy, a2, double(options_.ignore_index()));
    pair.H_b_a = crop_homography(H_view, pair.origin_a, pair.origin_b);
    if (pair.fallback) {
      // Identity view: patch b is patch a; valid where the crop lies inside the image.
      pair.image_b = pair.image_a.clone();
      pair.label_b = pair.label_a.clone();
      pair.valid_b = detail::vvd_crop(torch::ones({H, W}, image.options().dtype(torch::kBool)), ox, oy, a2, 0.0);
      return pair;
    }
    const Eigen::Matrix3d H_b_full = crop_homography(H_view, Eigen::Vector2d::Zero().eval(), pair.origin_b);
    auto warped = warp_image_with_mask(image, H_b_full, {a2, a2});
    pair.image_b = std::move(warped.output);
    pair.valid_b = std::move(warped.valid);
    pair.label_b = warp_labels(label, H_b_full, {a2, a2}, options_.ignore_index());
    return pair;
  }

  /// Counters over all pairs produced by this generator and its copies.
  VVDStatistics statistics() const {
    return VVDStatistics{counters_->pairs.load(), counters_->tries.load(), counters_->fallbacks.load()};
  }

 private:
  VVDOptions options_;
  std::shared_ptr<detail::VVDCounters> counters_;
};

}  // namespace crossview
