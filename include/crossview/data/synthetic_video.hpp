#pragma once
/// \file
/// A synthetic video with exact correspondences: one SyntheticStreet scene seen by a camera that
/// stands still and pans and tilts smoothly from frame to frame. Consecutive frames are related by
/// the rotation homography H = K R_a R_b^T K^-1 (Eq. 2), so the flow between any two frames is
/// known exactly, and nothing is occluded except what leaves the frame -- the ground truth against
/// which an optical flow (and a flow-based video-consistency measure, paper Sec. 4.4) is checked.

#include "crossview/data/synthetic_street.hpp"
#include "crossview/geometry/homography.hpp"
#include "crossview/geometry/intrinsics.hpp"
#include "crossview/geometry/rotation.hpp"
#include "crossview/random.hpp"
#include "crossview/warp/homography_flow.hpp"

#include <Eigen/Core>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace crossview {

/// Options of `SyntheticVideo`. The camera's view direction follows a smooth figure of eight
/// around the street direction (angles in degrees, t the frame index, w = 2 pi / period):
///
///   yaw(t) = yaw_deg * sin(w t),  pitch(t) = pitch_deg * sin(2 w t),  roll(t) = roll_deg * sin(w t),
///
/// so frame 0 looks along the street and the view turns by at most about yaw_deg * w degrees per
/// frame (2.6 degrees, 13 px at 256 px width with the defaults).
struct SyntheticVideoOptions {
  /// Number of frames.
  TORCH_ARG(int64_t, frames) = 48;
  /// Seed of the scene (scenes of videos are distinct from those of the synthetic datasets' splits).
  TORCH_ARG(std::uint64_t, seed) = 0;
  TORCH_ARG(int64_t, height) = 128;
  TORCH_ARG(int64_t, width) = 256;
  /// Focal length in pixels; 0 means the paper's 2262 px scaled to the width (2262 * width / 2048).
  TORCH_ARG(double, focal) = 0.0;
  /// Amplitudes of the pan (yaw), tilt (pitch) and roll, degrees.
  TORCH_ARG(double, yaw_deg) = 20.0;
  TORCH_ARG(double, pitch_deg) = 5.0;
  TORCH_ARG(double, roll_deg) = 1.0;
  /// Frames of one full cycle of the pan.
  TORCH_ARG(double, period) = 48.0;

 public:
  /// The camera of every frame: focal() (or the scaled Cityscapes focal), principal point at the
  /// image centre.
  Intrinsicsd intrinsics() const {
    const double f = focal_ > 0.0 ? focal_ : cityscapes_focal_for_width(double(width_));
    return Intrinsicsd::centered(f, double(width_), double(height_));
  }
  /// \throws c10::Error naming `fn` and the option that is out of range.
  void validate(const char* fn) const {
    TORCH_CHECK(frames_ >= 2, fn, ": options.frames must be >= 2 (a video needs a frame pair), got ", frames_);
    TORCH_CHECK(height_ > 0 && width_ > 0, fn, ": options height x width must be positive, got ", height_, "x",
                width_);
    TORCH_CHECK(focal_ >= 0.0 && std::isfinite(focal_), fn,
                ": options.focal must be finite and >= 0 (0: scaled Cityscapes focal), got ", focal_);
    TORCH_CHECK(std::isfinite(yaw_deg_) && std::isfinite(pitch_deg_) && std::isfinite(roll_deg_) &&
                    std::abs(yaw_deg_) < 90.0 && std::abs(pitch_deg_) < 90.0 && std::abs(roll_deg_) < 90.0,
                fn, ": options yaw_deg, pitch_deg and roll_deg must be finite and below 90 in magnitude, got ",
                yaw_deg_, ", ", pitch_deg_, ", ", roll_deg_);
    TORCH_CHECK(period_ > 0.0 && std::isfinite(period_), fn, ": options.period must be positive, got ", period_);
  }
};

namespace detail {
inline constexpr std::uint64_t kSyntheticVideoSalt = 0x766964656f5f7371ULL;
}  // namespace detail

/// The frames of a camera panning and tilting in one SyntheticStreet scene (see
/// SyntheticVideoOptions for the motion), with the exact homography and flow between any two.
///
///   SyntheticVideo video(SyntheticVideoOptions().frames(160));
///   const auto a = video.frame(0), b = video.frame(1);
///   const auto exact = video.flow(1, 0);   // pixels of frame 1 -> positions in frame 0
class SyntheticVideo {
 public:
  /// \throws c10::Error for options out of range (SyntheticVideoOptions::validate).
  explicit SyntheticVideo(SyntheticVideoOptions options = {})
      : options_(std::move(options)),
        street_((options_.validate("SyntheticVideo"), splitmix64(options_.seed() ^ detail::kSyntheticVideoSalt))) {}

  int64_t size() const { return options_.frames(); }
  const SyntheticVideoOptions& options() const { return options_; }
  Intrinsicsd intrinsics() const { return options_.intrinsics(); }
  /// The scene the frames show.
  const SyntheticStreet& street() const { return street_; }

  /// Yaw, pitch and roll of frame t, radians.
  EulerAngles<double> angles(int64_t t) const {
    check_frame(t, "t");
    const double w = 2.0 * kPi<double> / options_.period();
    return {deg2rad(options_.yaw_deg() * std::sin(w * double(t))),
            deg2rad(options_.pitch_deg() * std::sin(2.0 * w * double(t))),
            deg2rad(options_.roll_deg() * std::sin(w * double(t)))};
  }
  /// Rotation of frame t (camera-from-street, the convention of SyntheticStreet::render).
  Eigen::Matrix3d rotation(int64_t t) const { return rotation_from_euler(angles(t)); }

  /// Frame t: {image [3, H, W] float32 RGB in [0, 1], label [H, W] int64 Cityscapes train ids}, CPU.
  StreetView frame(int64_t t) const {
    return street_.render(intrinsics(), rotation(t), options_.height(), options_.width());
  }

  /// H_dst_src = K R_dst R_src^T K^-1 (Eq. 2): maps pixels of frame `src` to pixels of frame `dst`.
  /// Frame src's pixel p shows the street ray R_src^T K^-1 p, which frame dst sees at
  /// K R_dst R_src^T K^-1 p.
  Eigen::Matrix3d homography(int64_t dst, int64_t src) const {
    check_frame(dst, "dst");
    check_frame(src, "src");
    return rotation_homography(intrinsics(), Eigen::Matrix3d(rotation(dst) * rotation(src).transpose()));
  }

  /// The exact flow from frame b to frame a: pixel p of b shows what a shows at p + flow(p)
  /// (homography_flow of homography(a, b)); `valid` marks the pixels of b that a sees.
  HomographyFlow flow(int64_t b, int64_t a) const {
    check_frame(b, "b");
    check_frame(a, "a");
    const SizeHW hw{options_.height(), options_.width()};
    return homography_flow(homography(a, b), hw, hw);
  }

 private:
  void check_frame(int64_t t, const char* argument) const {
    TORCH_CHECK(t >= 0 && t < options_.frames(), "SyntheticVideo: frame ", argument, " must be in [0, ",
                options_.frames(), "), got ", t);
  }

  SyntheticVideoOptions options_;
  SyntheticStreet street_;
};

}  // namespace crossview
