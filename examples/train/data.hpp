#pragma once
/// \file
/// The data the programs train and evaluate on, in memory: a pool of labelled training images and
/// an evaluation split of (original view, VVD view, homography) triples, for SyntheticStreet,
/// CamVid and Cityscapes; and the per-iteration batch sampling.

#include "options.hpp"

#include <crossview/geometry.hpp>
#include <torch/torch.h>

#include <Eigen/Core>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace crossview::train {

/// One image with its labels.
struct LabeledImage {
  torch::Tensor image;  ///< [3, H, W] float32 RGB in [0, 1], CPU
  torch::Tensor label;  ///< [H, W] int64 train ids, 255 = ignore, CPU
};

/// One evaluation item: an original (street-aligned) view, a VVD view of the same scene, and the
/// homography from original pixels to VVD pixels (exact for SyntheticStreet; Eq. 2-4 with the
/// largest inscribed rectangle for derived views of real images).
struct EvalPair {
  std::string id;
  LabeledImage original;
  LabeledImage vvd;
  Eigen::Matrix3d H_vvd_orig{Eigen::Matrix3d::Identity()};
};

/// A dataset: its classes, the training images (read on demand: Cityscapes does not fit in
/// memory) and the evaluation split.
struct Dataset {
  std::string name;
  std::vector<std::string> class_names;
  int64_t num_classes{0};
  /// Focal length (pixels) of the training images at their stored size; 0: the paper's
  /// 2262 * width / 2048 of whatever width an image has (VVD generator's default).
  double focal{0};
  int64_t train_size{0};
  std::function<LabeledImage(int64_t)> train_sample;  ///< image i of the training split
  int64_t eval_size{0};
  std::function<EvalPair(int64_t)> eval_pair;  ///< pair i of the evaluation split
};

/// Cityscapes' 19 train-id class names (SyntheticStreet uses the same ids).
inline std::vector<std::string> cityscapes_class_names() {
  return {"road",  "sidewalk",   "building", "wall", "fence", "pole",  "traffic light", "traffic sign", "vegetation",
          "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"};
}

/// CamVid's 11 classes (SegNet version; 11 = unlabelled is mapped to 255).
inline std::vector<std::string> camvid_class_names() {
  return {"sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car", "pedestrian", "bicyclist"};
}

/// A well-mixed 64-bit value of (seed, stream, index) (splitmix64 steps): seeds that make the
/// data of an iteration a pure function of the run's seed and the iteration.
inline uint64_t mix_seed(uint64_t seed, uint64_t stream, uint64_t index) {
  auto splitmix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return splitmix(splitmix(splitmix(seed) ^ stream) ^ index);
}

/// Uniform integer in [0, n) from a 64-bit engine, the same on every standard library.
inline int64_t uniform_index(std::mt19937_64& rng, int64_t n) {
  return int64_t(crossview::detail::uniform01(rng) * double(n)) % n;
}

}  // namespace crossview::train
