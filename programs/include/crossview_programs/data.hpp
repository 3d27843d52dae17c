#pragma once
/// \file
/// The data the programs train and evaluate on, in memory: a pool of labelled training images and
/// an evaluation split of (original view, VVD view, homography) triples, for SyntheticStreet,
/// CamVid and Cityscapes; and the per-iteration batch sampling.

#include <crossview_programs/options.hpp>

#include <crossview/data/classes.hpp>
#include <torch/torch.h>

#include <Eigen/Core>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace crossview_programs {

/// One image with its labels.
struct LabeledImage {
  torch::Tensor image;  ///< [3, H, W] float32 RGB in [0, 1], CPU
  torch::Tensor label;  ///< [H, W] int64 train ids, 255 = ignore, CPU
};

/// One evaluation item: an original (street-aligned) view, a VVD view of the same scene that the
/// original view sees whole (the paper's protocol, Sec. 4.2: a rotated view cropped to the largest
/// rectangle whose every pixel has its correspondence in the original view), and the homography
/// from original pixels to VVD pixels (exact for SyntheticStreet; Eq. 2-4 with the largest
/// inscribed rectangle for derived views of real images). SyntheticStreet also keeps the whole
/// rotated render (a second, labelled protocol).
struct EvalPair {
  std::string id;
  LabeledImage original;
  LabeledImage vvd;
  Eigen::Matrix3d H_vvd_orig{Eigen::Matrix3d::Identity()};
  LabeledImage vvd_whole;  ///< the whole rotated view; undefined tensors when there is none
  Eigen::Matrix3d H_whole_orig{Eigen::Matrix3d::Identity()};
};

/// A dataset: its classes, the training images (read on demand: Cityscapes does not fit in
/// memory) and the evaluation split.
struct Dataset {
  std::string name;
  std::vector<std::string> class_names;
  /// The dataset's standard colour of each class id (crossview::palette_for(name)), for figures.
  std::vector<crossview::Rgb> palette;
  int64_t num_classes{0};
  /// Focal length (pixels) of the training images at their stored size; 0: the paper's
  /// 2262 * width / 2048 of whatever width an image has (VVD generator's default).
  double focal{0};
  int64_t train_size{0};
  std::function<LabeledImage(int64_t)> train_sample;  ///< image i of the training split
  int64_t eval_size{0};
  std::function<EvalPair(int64_t)> eval_pair;  ///< pair i of the evaluation split
};

}  // namespace crossview_programs
